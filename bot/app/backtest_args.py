"""Argument definitions of ``alvh backtest`` and ``alvh rules diff``.

Kept apart from the implementations so ``bot.app.cli`` can build its parser on
every start without importing pandas or the engine.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

DateArg = Callable[[str], dt.date]


def _sources(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", choices=["snapshot", "store"],
                   help="the shipped snapshot or the data directory's store "
                        "(default: snapshot when ALVH_SOURCE=snapshot, else store)")
    p.add_argument("--capital", type=float, metavar="USD",
                   help="portfolio capital for sizing (default: ALVH_CAPITAL)")


def add_backtest_parser(sub: argparse._SubParsersAction[Any], date: DateArg) -> None:
    bt = sub.add_parser(
        "backtest", help="replay a date range through the engine: decisions and statistics")
    bt.add_argument("--from", dest="start", type=date, required=True, metavar="D1")
    bt.add_argument("--to", dest="end", type=date, required=True, metavar="D2")
    bt.add_argument("--rules", type=Path, metavar="FILE",
                    help="rules file (default: the configured rules file)")
    _sources(bt)
    bt.add_argument("--out", type=Path, metavar="DIR",
                    help="write report.html, decisions.csv/.json, layer_actions.csv, "
                         "hedge_pnl.csv here")
    bt.add_argument("--drawdown-pct", type=float, default=10.0, metavar="PCT",
                    help="SPX drawdown episodes of at least this much (default 10)")
    bt.add_argument("--lead-sessions", type=int, default=60, metavar="N",
                    help="an episode counts as preceded by a layer-1 trigger within N "
                         "sessions before its start (default 60)")
    bt.add_argument("--false-alarm-pct", type=float, default=5.0, metavar="PCT",
                    help="a layer-1 trigger is a false alarm when SPX's max drawdown over "
                         "the next --false-alarm-horizon sessions stays below PCT (default 5)")
    bt.add_argument("--false-alarm-horizon", type=int, default=60, metavar="N",
                    help="sessions after a trigger judged for false alarms (default 60)")


def add_rules_diff_parser(rsub: argparse._SubParsersAction[Any], date: DateArg) -> None:
    d = rsub.add_parser(
        "diff", help="replay two rules files and list the sessions whose decisions differ")
    d.add_argument("old", type=Path, metavar="OLD")
    d.add_argument("new", type=Path, metavar="NEW")
    d.add_argument("--from", dest="start", type=date, metavar="D1",
                   help="default: the first session with warmed-up indicators")
    d.add_argument("--to", dest="end", type=date, metavar="D2",
                   help="default: the last session with SPX data")
    _sources(d)
