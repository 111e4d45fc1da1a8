"""The ``backtest`` and ``rules diff`` commands (called from ``bot.app.commands.dispatch``).

They build their collaborators from the settings like every other command
and write human output to ``out``; the progress bar goes to ``err`` and
only when that is a terminal. Errors a person can fix (bad dates, a bad
rules file, an empty store) are one line, via :class:`ConfigError`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import TextIO

from bot.app.settings import Settings
from bot.engine.rules import Rules, RulesFileError, load_default_rules, load_rules
from bot.kernel.errors import ConfigError, RulesError
from bot.kernel.sessions import SessionCalendar, get_calendar
from bot.pipeline.evaluation import WARMUP_SESSIONS
from bot.store import Store, open_store


def source_of(args: argparse.Namespace, settings: Settings) -> str:
    """``--source``, else ``snapshot`` when the bot runs on the snapshot, else the store."""
    if args.source:
        return str(args.source)
    return "snapshot" if settings.source == "snapshot" else "store"


def open_source(source: str, settings: Settings, calendar: SessionCalendar) -> Store:
    if source == "snapshot":
        from bot.market.snapshot import open_snapshot_store

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return open_snapshot_store(settings.data_dir, calendar)
    return open_store(settings.store_url)


def rules_one_line(path: Path | None) -> Rules:
    """Load a rules file; a refused file becomes one line naming file, line and key."""
    if path is None:
        return load_default_rules()
    try:
        return load_rules(path)
    except RulesFileError as exc:
        first = str(exc.problems[0]).split("\n")[0] if exc.problems else str(path)
        more = len(exc.problems) - 1
        tail = (f" (and {more} more problem{'s' if more != 1 else ''}; "
                f"see `alvh rules check {os.fspath(path)}`)") if more > 0 else ""
        raise ConfigError(f"rules file refused: {first}{tail}") from None
    except RulesError as exc:
        raise ConfigError(f"rules file refused: {str(exc).splitlines()[0]}") from None


def _full_range(store: Store, calendar: SessionCalendar) -> tuple[dt.date, dt.date]:
    """From the first warmed-up session to the last session with SPX data."""
    spx = store.sessions_present("SPX")
    if not spx:
        raise ConfigError("the store has no SPX history: import some, or use --source snapshot")
    first = calendar.offset(spx[0], WARMUP_SESSIONS) if len(spx) > WARMUP_SESSIONS else spx[0]
    return first, spx[-1]


def backtest(
    args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO | None = None
) -> int:
    from bot.backtest.report import text_lines, write_files, write_text
    from bot.backtest.run import run_backtest
    from bot.backtest.summary import StatsParams, summarize

    err = err if err is not None else sys.stderr
    if args.end < args.start:
        raise ConfigError(f"--to {args.end} is before --from {args.start}")
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
    rules = rules_one_line(args.rules or settings.rules_file)
    calendar = get_calendar()
    source = source_of(args, settings)
    capital = args.capital if args.capital is not None else settings.capital
    if not capital > 0:
        raise ConfigError(f"--capital must be positive, got {capital:g}")
    store = open_source(source, settings, calendar)
    try:
        result = run_backtest(store, calendar, rules, args.start, args.end, capital=capital,
                              source=source, progress=err)
    finally:
        store.close()
    summary = summarize(result, calendar, params)
    lines = text_lines(result, summary)
    if args.out is not None:
        try:
            written = write_files(args.out, result, summary, lines)
        except OSError as exc:
            raise ConfigError(f"cannot write the report to --out {args.out}: "
                              f"{exc.strerror or exc}") from None
        lines += ["", "files written: " + ", ".join(str(p) for p in written)]
    write_text(out, lines)
    return 0


def rules_diff(
    args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO | None = None
) -> int:
    from bot.backtest.diff import preview_diff

    err = err if err is not None else sys.stderr
    old = rules_one_line(args.old)
    new = rules_one_line(args.new)
    calendar = get_calendar()
    source = source_of(args, settings)
    capital = args.capital if args.capital is not None else settings.capital
    store = open_source(source, settings, calendar)
    try:
        first, last = _full_range(store, calendar)
        start = args.start or first
        end = args.end or last
        if end < start:
            raise ConfigError(f"--to {end} is before --from {start}")
        result = preview_diff(store, calendar, old, new, start, end, capital=capital,
                              progress=err)
    finally:
        store.close()
    out.write(result.text() + "\n")
    return 0
