"""Benchmark: how long the commands people type take, from the shell prompt back.

Each command runs as a fresh process (what a user or cron pays: interpreter,
imports, settings, calendar, work), ``--repeat`` times; the median wall time
is printed with its ratio to the target of issue 9 (``alvh --help`` and
``alvh rules check`` under 0.5 s, ``alvh run-once --source snapshot --dry-run``
under 1.5 s on 2 cores). The snapshot store is loaded once before timing, as
it is after a first run. The machine's load average is printed too: timings
on a shared machine move with it.

    .venv/bin/python bench/bench_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ALVH = str(Path(sys.executable).parent / "alvh")
COMMANDS: list[tuple[str, list[str], float]] = [
    ("alvh --help", ["--help"], 0.5),
    ("alvh rules check", ["rules", "check"], 0.5),
    ("alvh run-once --source snapshot --dry-run", ["run-once", "--source", "snapshot",
                                                   "--dry-run"], 1.5),
]


def wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([ALVH, *argv], env=env, check=True, stdout=subprocess.DEVNULL,  # noqa: S603
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="alvh-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALVH_")}
    env["ALVH_DATA_DIR"] = str(data)
    try:
        wall(COMMANDS[2][1], env)  # loads the snapshot store once, as a first run does
        print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores)")
        print(f"{'command':<46} {'median':>8} {'min':>7} {'max':>7} {'target':>7} {'ratio':>6}")
        for label, argv, target in COMMANDS:
            times = [wall(argv, env) for _ in range(args.repeat)]
            med = statistics.median(times)
            print(f"{label:<46} {med:7.2f}s {min(times):6.2f}s {max(times):6.2f}s "
                  f"{target:6.1f}s {med / target:6.2f}")
        print(f"load average after:  {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
