"""``alvh calendar``: the known FOMC, CPI and PPI events, and how far each kind reaches."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING, Any, TextIO

from bot.app.commands import date_arg
from bot.kernel.errors import ConfigError

if TYPE_CHECKING:
    from bot.app.root import Root


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    cal = sub.add_parser("calendar", help="list FOMC/CPI/PPI events and each kind's coverage")
    cal.add_argument("--from", dest="start", type=date_arg, metavar="D1",
                     help="first date (default: today)")
    cal.add_argument("--to", dest="end", type=date_arg, metavar="D2",
                     help="last date (default: D1 + 1 year)")
    cal.add_argument("--source", choices=["live", "snapshot"], help="default: ALVH_SOURCE")


def run(args: argparse.Namespace, root: Root, out: TextIO) -> int:
    from bot.kernel.sessions import ET
    from bot.market.calendars import coverage, listing

    today = dt.datetime.now(tz=ET).date()
    start = args.start or today
    end = args.end or start + dt.timedelta(days=366)
    if end < start:
        raise ConfigError(f"--to {end} is before --from {start}")
    with root.market_store(root.source(args.source)) as store:
        events = store.events(start=start, end=end)
        covered = coverage(store, root.calendar, today)
    out.write(f"events {start} .. {end} (times ET)\n")
    for line in listing(events, covered):
        out.write(line + "\n")
    out.write(f"(coverage seen from today, {today})\n")
    return 0
