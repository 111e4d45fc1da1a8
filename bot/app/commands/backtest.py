"""``alvh backtest``: replay a date range through the same engine as the live job.

The progress bar goes to ``err`` and only when that is a terminal. Errors a
person can fix (bad dates, a bad rules file, an empty store) are one line,
via :class:`ConfigError`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bot.app.commands import date_arg
from bot.kernel.errors import ConfigError

if TYPE_CHECKING:
    from bot.app.root import MarketSource, Root
    from bot.kernel.sessions import SessionCalendar
    from bot.store import Store


def add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", choices=["snapshot", "store"],
                   help="the shipped snapshot or the data directory's store "
                        "(default: snapshot when ALVH_SOURCE=snapshot, else store)")
    p.add_argument("--capital", type=float, metavar="USD",
                   help="portfolio capital for sizing (default: ALVH_CAPITAL)")


def backtest_source(args: argparse.Namespace, root: Root) -> MarketSource:
    """``--source``, else ``snapshot`` when the bot runs on the snapshot, else the store."""
    if args.source:
        return "snapshot" if args.source == "snapshot" else "live"
    return root.source()


def full_range(store: Store, calendar: SessionCalendar) -> tuple[dt.date, dt.date]:
    """From the first warmed-up session to the last session with SPX data."""
    from bot.pipeline.evaluation import WARMUP_SESSIONS

    spx = store.sessions_present("SPX")
    if not spx:
        raise ConfigError("the store has no SPX history: import some, or use --source snapshot")
    first = calendar.offset(spx[0], WARMUP_SESSIONS) if len(spx) > WARMUP_SESSIONS else spx[0]
    return first, spx[-1]


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    bt = sub.add_parser(
        "backtest", help="replay a date range through the engine: decisions and statistics")
    bt.add_argument("--from", dest="start", type=date_arg, metavar="D1",
                    help="default: the first session with warmed-up indicators")
    bt.add_argument("--to", dest="end", type=date_arg, metavar="D2",
                    help="default: the last session with SPX data")
    bt.add_argument("--rules", type=Path, metavar="FILE",
                    help="rules file (default: the configured rules file)")
    add_source_args(bt)
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
    bt.add_argument("--sweep", action="append", metavar="KEY=V1,V2,…",
                    help="replay every combination of these values (repeat for more keys; KEY "
                         "is a threshold name or a dotted rules-file key such as "
                         "hedge.cooldown_sessions) and print one row of figures each")
    bt.add_argument("--split", type=date_arg, metavar="DATE",
                    help="with --sweep: each figure for the sessions before DATE and from DATE "
                         "on, side by side (an out-of-sample check)")


def run(args: argparse.Namespace, root: Root, out: TextIO, err: TextIO | None = None) -> int:
    from bot.backtest.report import write_files, write_text
    from bot.backtest.run import run_backtest
    from bot.backtest.summary import StatsParams, summarize
    from bot.backtest.text import text_lines

    err = err if err is not None else sys.stderr
    if args.start and args.end and args.end < args.start:
        raise ConfigError(f"--to {args.end} is before --from {args.start}")
    if args.split is not None and not args.sweep:
        raise ConfigError("--split needs --sweep (e.g. --sweep ad_min_days=10 for the rules "
                          "file as it is)")
    params = StatsParams(drawdown_pct=args.drawdown_pct, lead_sessions=args.lead_sessions,
                         false_alarm_pct=args.false_alarm_pct,
                         false_alarm_horizon=args.false_alarm_horizon)
    for name, value in (("--drawdown-pct", params.drawdown_pct),
                        ("--false-alarm-pct", params.false_alarm_pct)):
        if not 0 < value < 100:
            raise ConfigError(f"{name} must be a percentage in (0, 100), got {value:g}")
    for name, n in (("--lead-sessions", params.lead_sessions),
                    ("--false-alarm-horizon", params.false_alarm_horizon)):
        if n < 1:
            raise ConfigError(f"{name} must be at least 1 session, got {n}")
    if args.sweep:
        return sweep(args, root, out, err, params)
    rules = root.load_rules(args.rules)
    source = backtest_source(args, root)
    capital = _capital(args, root)
    with root.market_store(source) as store:
        start, end = _range(args, store, root)
        result = run_backtest(store, root.calendar, rules, start, end,
                              capital=capital, source="snapshot" if source == "snapshot"
                              else "store", progress=err)
    summary = summarize(result, root.calendar, params)
    lines = text_lines(result, summary)
    if args.out is not None:
        written = _write(args.out, lambda: write_files(args.out, result, summary, lines))
        lines += ["", "files written: " + ", ".join(str(p) for p in written)]
    write_text(out, lines)
    return 0


def sweep(
    args: argparse.Namespace, root: Root, out: TextIO, err: TextIO, params: Any
) -> int:
    """``--sweep``: one row of figures per combination of the swept values."""
    from bot.backtest.sweep import parse_axis, run_sweep, sweep_lines, write_sweep

    axes = [parse_axis(a) for a in args.sweep]
    root.load_rules(args.rules)  # a bad file: one line naming file, line and key
    path = root.rules_path(args.rules)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the rules file {path}: {exc.strerror}") from None
    with root.market_store(backtest_source(args, root)) as store:
        start, end = _range(args, store, root)
        result = run_sweep(store, root.calendar, raw, str(path), axes, start, end,
                           capital=_capital(args, root), split=args.split, params=params,
                           path=path, progress=err)
    lines = sweep_lines(result)
    if args.out is not None:
        written = _write(args.out, lambda: write_sweep(args.out, result))
        lines += ["", "files written: " + ", ".join(str(p) for p in written)]
    for line in lines:
        out.write(line + "\n")
    return 0


def _capital(args: argparse.Namespace, root: Root) -> float:
    capital = float(args.capital if args.capital is not None else root.settings.capital)
    if not capital > 0:
        raise ConfigError(f"--capital must be positive, got {capital:g}")
    return capital


def _range(args: argparse.Namespace, store: Store, root: Root) -> tuple[dt.date, dt.date]:
    """``--from``/``--to``, each defaulting to the store's full warmed-up range."""
    if args.start is not None and args.end is not None:
        return args.start, args.end
    first, last = full_range(store, root.calendar)
    start, end = args.start or first, args.end or last
    if end < start:
        raise ConfigError(f"--to {end} is before --from {start}")
    return start, end


def _write(out_dir: Path, write: Callable[[], list[Path]]) -> list[Path]:
    try:
        return write()
    except OSError as exc:
        raise ConfigError(f"cannot write the report to --out {out_dir}: "
                          f"{exc.strerror or exc}") from None
