"""Benchmark: evaluating rules conditions with their explanations, as a backtest does.

A backtest evaluates every condition of the rules file on every session with the
checks that explain it (27 years x 5 conditions x a sweep's combinations). Prints
the time for 70,000 explained evaluations (10 conditions over 7,000 random rows),
the median of ``--repeat`` runs, and the ratio to the 2 s target on 2 cores, with
the load average. It replaces a timed test: a speed target is a figure to read.

    .venv/bin/python bench/bench_rules.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

from bot.engine.rules import Context, compile_condition

TARGET_SECONDS = 2.0
THRESHOLDS = {"rsi_layer2": 40.0, "ad_min_days": 10.0, "term_ratio_layer3": 1.0}
CONDITIONS = [
    "macd_divergence_days >= 1 and ad_divergence_days > ad_min_days",
    "active_layers >= 1 and rsi < rsi_layer2",
    "active_layers >= 2 and vix_term_ratio > term_ratio_layer3",
    "not blackout and active_layers < 2 and vix < 35",
    "macd_divergence_days == 0 and ad_divergence_days == 0 and rsi > 50",
] * 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    conditions = [compile_condition(c, THRESHOLDS, context=Context.LAYER_ADD)
                  for c in CONDITIONS]
    rng = random.Random(7)
    rows = [
        {
            "macd_divergence_days": rng.randint(0, 3),
            "ad_divergence_days": rng.randint(0, 20),
            "rsi": rng.uniform(20, 80),
            "vix": rng.uniform(10, 40),
            "vix_term_ratio": rng.uniform(0.8, 1.2),
            "active_layers": rng.randint(0, 3),
            "blackout": rng.random() < 0.1,
        }
        for _ in range(7000)
    ]
    times, held = [], 0
    for _ in range(args.repeat):
        start = time.perf_counter()
        held = sum(c.evaluate(row).passed for row in rows for c in conditions)
        times.append(time.perf_counter() - start)
    n = len(rows) * len(conditions)
    median = statistics.median(times)
    print(f"explained evaluations: {n:,} ({held:,} held), median {median:.3f} s over "
          f"{args.repeat} runs ({median / n * 1e6:.1f} µs each), target "
          f"{TARGET_SECONDS:.1f} s, ratio {median / TARGET_SECONDS:.3f}; "
          f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
