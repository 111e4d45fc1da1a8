"""Benchmark: ``alvh backtest`` and ``alvh rules diff`` over the whole shipped history.

Prints wall times (median of ``--repeat`` runs) and µs per session for:
- the backtest's engine part: indicator frame (warm-up included) and replay
  of every session 1999-01-04..2026-02-27 (targets: replay < 2 s);
- grading it (statistics) and writing the report files (charts included);
- a rules diff of the shipped rules against a copy with ``ad_min_days``
  10 → 15 over the same range (target < 5 s): one shared indicator frame,
  two replays, the comparison.

    .venv/bin/python bench/bench_backtest.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from bot.backtest.diff import preview_diff
from bot.backtest.report import write_files
from bot.backtest.run import run_backtest
from bot.backtest.summary import summarize
from bot.backtest.text import text_lines
from bot.engine.rules import default_rules_path, load_default_rules, load_rules_text
from bot.kernel.sessions import get_calendar
from bot.market.snapshot import open_snapshot_store

FIRST = dt.date(1999, 1, 4)
T = TypeVar("T")


def timed(fn: Callable[[], T], repeat: int) -> tuple[float, list[T]]:
    """Median wall time of ``repeat`` calls, and every call's result."""
    times, results = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        results.append(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times), results


def median_of(results: list[Mapping[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in results)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cal = get_calendar()
    old = load_default_rules()
    text = default_rules_path().read_text(encoding="utf-8")
    marker = "  ad_min_days: 10 "
    assert text.count(marker) == 1
    new = load_rules_text(text.replace(marker, "  ad_min_days: 15 "), "ad_min_days_15.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        store = open_snapshot_store(Path(tmp), cal)
        last, _ = store.latest("SPX")
        assert last is not None

        total, results = timed(
            lambda: run_backtest(store, cal, old, FIRST, last, capital=2_000_000,
                                 source="snapshot"), args.repeat)
        result = results[-1]
        n = len(result.evaluations)
        frame_s = median_of([r.timings for r in results], "indicators")
        replay_s = median_of([r.timings for r in results], "replay")

        stats_s, summaries = timed(lambda: summarize(result, cal), args.repeat)
        summary = summaries[-1]
        out = Path(tmp) / "out"
        files_s, _ = timed(
            lambda: write_files(out, result, summary, text_lines(result, summary)), 1)

        diff_s, diffs = timed(
            lambda: preview_diff(store, cal, old, new, FIRST, last, capital=2_000_000),
            args.repeat)
        diff = diffs[-1]
        split = {k: median_of([d.timings for d in diffs], k) for k in diff.timings}
        store.close()

    print(f"sessions replayed   : {n} ({result.start} .. {result.end})")
    print(f"indicator frame     : {frame_s:.3f} s (median; warm-up included, unscheduled FOMC "
          "excluded)")
    print(f"replay              : {replay_s:.3f} s (median; {replay_s / n * 1e6:.0f} µs per "
          "session; target < 2 s)")
    print(f"backtest engine     : {total:.3f} s (median of {args.repeat}; "
          f"{total / n * 1e6:.0f} µs per session)")
    print(f"statistics          : {stats_s:.3f} s")
    print(f"report files        : {files_s:.3f} s (HTML with 3 charts, CSV, JSON)")
    print(f"rules diff          : {diff_s:.3f} s (median of {args.repeat}; "
          f"{diff_s / diff.sessions * 1e6:.0f} µs per session; target < 5 s)")
    print(f"  shared frame      : {diff.shared_frame}; blackout recomputed: "
          f"{diff.blackout_recomputed}")
    print("  split (medians)   : " + ", ".join(f"{k} {v:.3f} s" for k, v in split.items())
          + " (replay = both rule files)")
    print(f"  sessions differing: {len(diff.diffs)} of {diff.sessions}")


if __name__ == "__main__":
    main()
