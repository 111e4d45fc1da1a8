"""Benchmark: parsing every shipped snapshot file, as the first snapshot run does.

Prints the median wall time of :func:`bot.market.snapshot.parse_snapshot` over
``--repeat`` runs, the rows parsed, and the ratio to the 1 s target (on 2 cores),
with the machine's load average (timings on a shared machine move with it). It
replaces a timed test: a speed target is a figure to read, not a pass/fail.

    .venv/bin/python bench/bench_parse.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from bot.kernel.sessions import get_calendar
from bot.market.snapshot import parse_snapshot

TARGET_SECONDS = 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    calendar = get_calendar()
    times, rows = [], 0
    for _ in range(args.repeat):
        start = time.perf_counter()
        items = parse_snapshot(calendar)
        times.append(time.perf_counter() - start)
        rows = sum(len(i.parsed.rows) for i in items)
    median = statistics.median(times)
    print(f"parse_snapshot: {rows:,} rows, median {median:.2f} s over {args.repeat} runs, "
          f"target {TARGET_SECONDS:.1f} s, ratio {median / TARGET_SECONDS:.2f}; "
          f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
