"""Command implementations behind ``bot.cli``.

Each takes the parsed arguments and the settings object, builds its
collaborators, and writes its human output to ``out``. Nothing here parses
the environment.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TextIO

from bot.errors import ConfigError
from bot.sessions import ET, SessionCalendar, get_calendar
from bot.settings import Settings
from bot.store import Store, open_store


def dispatch(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    if args.command == "data":
        if args.data_command == "import":
            return data_import(args, settings, out)
        if args.data_command == "status":
            return data_status(settings, out)
        if args.data_command == "check":
            return data_check(args, settings, out)
    raise ConfigError(f"unknown command {args.command!r}")


def _store(settings: Settings) -> Store:
    return open_store(settings.store_url)


def _session_arg(calendar: SessionCalendar, day: dt.date | None) -> dt.date:
    if day is None:
        return calendar.last_closed_session(dt.datetime.now(tz=ET))
    if not calendar.is_session(day):
        raise ConfigError(
            f"--date {day} is not an NYSE session (previous session: "
            f"{calendar.previous_session(day)})"
        )
    return day


def data_status(settings: Settings, out: TextIO) -> int:
    from bot.history import status_report

    store = _store(settings)
    try:
        lines = status_report(store, get_calendar())
    finally:
        store.close()
    out.write(f"store: {settings.store_url}\n")
    for line in lines:
        out.write(line.line() + "\n")
    return 0


def data_check(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.freshness import check_freshness

    calendar = get_calendar()
    session = _session_arg(calendar, args.date)
    store = _store(settings)
    try:
        result = check_freshness(store, calendar, session)
    finally:
        store.close()
    for c in result.checks:
        out.write(c.describe(session) + "\n")
    out.write(("complete" if result.complete else "NOT complete") + f" for {session}\n")
    return 0 if result.complete else 1


def data_import(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.importer import import_files

    store = _store(settings)
    try:
        report = import_files(
            store, get_calendar(), args.files, fmt=args.format, symbol=args.symbol,
            source=args.source,
        )
    finally:
        store.close()
    for line in report:
        out.write(line + "\n")
    return 0
