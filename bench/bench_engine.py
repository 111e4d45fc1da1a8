"""Benchmark: every session of the shipped history through indicators, rules and state.

Prints the wall time of the real engine (indicators computed once over the
whole history, then the layer state machine and condor construction session
by session) and its ratio to the naive way (recompute every indicator from
scratch for each day). The naive way takes ~0.3 s a day, so it is timed on an
evenly spaced sample of sessions and extrapolated; the printout says so.

    .venv/bin/python bench/bench_engine.py [--sample 60]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from bot.engine.evaluate import evaluate_session
from bot.engine.rules import load_default_rules
from bot.engine.state import LayerState
from bot.kernel.sessions import get_calendar
from bot.market.snapshot import open_snapshot_store
from bot.pipeline.evaluation import frame_rows, history_start, indicator_frame, replay

FIRST = dt.date(1999, 1, 4)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", type=int, default=60, help="sessions timed the naive way")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cal = get_calendar()
    rules = load_default_rules()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_snapshot_store(Path(tmp), cal)
        last, _ = store.latest("SPX")
        assert last is not None
        start = cal.offset(FIRST, 250)  # first session with a warmed-up MACD
        runs = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            frame = indicator_frame(store, cal, rules, FIRST, last)
            t1 = time.perf_counter()
            evs = replay(frame, rules, cal, capital=2_000_000, start=start, end=last)
            t2 = time.perf_counter()
            runs.append((t1 - t0, t2 - t1, t2 - t0))
        frame_s, replay_s, total = (statistics.median(r[i] for r in runs) for i in range(3))
        n = len(evs)
        adds = sum(a.decision.action == "add" for e in evs for a in e.actions)
        gos = sum(bool(e.condor and e.condor.go) for e in evs)

        # The naive way: for each day, load and compute everything from scratch.
        days = [e.session for e in evs]
        step = max(1, len(days) // args.sample)
        sample = days[::step][: args.sample]
        t0 = time.perf_counter()
        state = LayerState()
        for day in sample:
            f = indicator_frame(store, cal, rules, history_start(cal, day, rules), day)
            _, values = next(frame_rows(f.loc[[pd.Timestamp(day)]]))
            state = evaluate_session(day, values, state, rules, calendar=cal,
                                     capital=2_000_000).state_after
        per_day = (time.perf_counter() - t0) / len(sample)
        naive_total = per_day * n
        store.close()

    print(f"sessions evaluated : {n} ({start} .. {last})")
    print(f"layer additions    : {adds}; condor go days: {gos}")
    print(f"indicator frame    : {frame_s:.3f} s (median of {args.repeat})")
    print(f"rules + state      : {replay_s:.3f} s ({replay_s / n * 1e6:.0f} µs per session)")
    print(f"engine total       : {total:.3f} s   (target < 2 s)")
    print(f"naive per session  : {per_day:.3f} s, timed on {len(sample)} sessions")
    print(f"naive total (est.) : {naive_total:.0f} s")
    print(f"speed-up vs naive  : {naive_total / total:.0f}x")


if __name__ == "__main__":
    main()
