"""Benchmark: the full replay 1999–2026 and a 27-combination threshold sweep (issue 13).

Prints wall times (median of ``--repeat`` runs) and the sweep's ratio to one replay:
- full replay: indicator frame (warm-up included), rules, layer state machine and
  condor construction for every session 1999-01-04..2026-02-27 (target < 2 s);
- sweep: ``ad_min_days`` × ``rsi_layer2`` × ``condor_max_vix``, 3 values each (rules
  thresholds only: one indicator frame), every combination replayed and graded
  (drawdowns covered, false alarms, hedged sessions, hedge and condor P&L), one worker
  process per core (target < 15 s).

    .venv/bin/python bench/bench_sweep.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path

from bot.backtest.run import run_backtest
from bot.backtest.sweep import parse_axis, run_sweep
from bot.engine.rules import default_rules_path, load_default_rules
from bot.kernel.sessions import get_calendar
from bot.market.snapshot import open_snapshot_store

FIRST = dt.date(1999, 1, 4)
AXES = ("ad_min_days=5,10,15", "rsi_layer2=35,40,45", "condor_max_vix=30,35,40")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cal = get_calendar()
    rules = load_default_rules()
    raw = default_rules_path().read_bytes()
    axes = [parse_axis(a) for a in AXES]
    with tempfile.TemporaryDirectory() as tmp:
        store = open_snapshot_store(Path(tmp), cal)
        last, _ = store.latest("SPX")
        assert last is not None
        singles, sweeps = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = run_backtest(store, cal, rules, FIRST, last, capital=2_000_000)
            singles.append(time.perf_counter() - t0)
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            sweep = run_sweep(store, cal, raw, "default", axes, FIRST, last, capital=2_000_000)
            sweeps.append(time.perf_counter() - t0)
        store.close()
    single, swept = statistics.median(singles), statistics.median(sweeps)
    n = len(result.evaluations)
    print(f"machine             : {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f} before (timings move with it on a shared machine)")
    print(f"sessions replayed   : {n} ({result.start} .. {result.end})")
    print(f"full replay         : {single:.3f} s (median of {args.repeat}; indicators "
          f"{result.timings['indicators']:.3f} s + rules/state/condors "
          f"{result.timings['replay']:.3f} s; target < 2 s)")
    print(f"sweep, {len(sweep.rows)} combinations: {swept:.3f} s (median of {args.repeat}; "
          f"{sweep.frames} indicator frame; {sweep.timings['workers']:.0f} worker processes; "
          f"replay {sweep.timings['replay']:.3f} s and grading {sweep.timings['grading']:.3f} s "
          "of CPU; target < 15 s)")
    print(f"ratio sweep / replay: {swept / single:.1f}x for {len(sweep.rows)} combinations "
          f"({swept / single / len(sweep.rows):.2f} replays' worth each)")


if __name__ == "__main__":
    main()
