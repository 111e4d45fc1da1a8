"""``alvh data import | status | check | backfill``: load and inspect the market history."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bot.app.commands import date_arg

if TYPE_CHECKING:
    from bot.app.root import Root
    from bot.store import Store


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    data = sub.add_parser("data", help="import and inspect market history")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    imp = dsub.add_parser("import", help="load history files into the store")
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.add_argument(
        "--format", choices=["auto", "unicorn", "breadth", "cboe", "ohlc", "fred", "events"],
        default="auto",
        help="file format (default: detected from the contents)",
    )
    imp.add_argument("--symbol", help="series for price files: SPX, VIX, VIX3M, VIX6M")
    imp.add_argument("--source", help="source label stored on the rows (default from the file)")
    st = dsub.add_parser("status", help="per series: range, rows, sources, gaps")
    st.add_argument("--source", choices=["live", "snapshot"], help="default: ALVH_SOURCE")
    dsub.add_parser("backfill", help="seed the live store from the shipped snapshot and fetch "
                    "every series to the last closed session")
    chk = dsub.add_parser("check", help="is the data complete and fresh for a session?")
    chk.add_argument("--date", type=date_arg, help="session (default: the last closed session)")
    chk.add_argument("--source", choices=["live", "snapshot"], help="default: ALVH_SOURCE")


def run(args: argparse.Namespace, root: Root, out: TextIO) -> int:
    if args.data_command == "import":
        return _import(args, root, out)
    if args.data_command == "status":
        return _status(args, root, out)
    if args.data_command == "backfill":
        with root.market_store("live") as store:
            return backfill(root, store, out)
    return _check(args, root, out)


def backfill(root: Root, store: Store, out: TextIO) -> int:
    """Run the back-fill on ``store`` and print its table; 0 when the last closed
    session can be evaluated, 1 when something it needs is still missing."""
    import asyncio

    from bot.market.backfill import BackfillReport
    from bot.market.backfill import backfill as run_backfill
    from bot.market.sources.base import SourceContext

    async def go() -> BackfillReport:
        async with root.http_client() as client:
            ctx = SourceContext(client, root.calendar)
            return await run_backfill(ctx, root.chains(root.endpoints()), store)

    report = asyncio.run(go())
    out.write(f"store: {root.settings.store_url_shown}\n")
    for line in report.lines():
        out.write(line + "\n")
    return 0 if report.complete else 1


def _status(args: argparse.Namespace, root: Root, out: TextIO) -> int:
    from bot.market.history import status_report

    source = root.source(args.source)
    with root.market_store(source) as store:
        lines = status_report(store, root.calendar)
    shown = root.settings.store_url_shown if source == "live" else "the shipped snapshot"
    out.write(f"store: {shown}\n")
    for line in lines:
        out.write(line.line() + "\n")
    if any(r.rows == 0 for r in lines):
        out.write("series with no data: `alvh data backfill` seeds the store from the shipped "
                  "snapshot and fetches the rest (or `alvh data import FILE…`)\n")
    return 0


def _check(args: argparse.Namespace, root: Root, out: TextIO) -> int:
    from bot.app.commands._session import source_session
    from bot.market.freshness import check_freshness

    source = root.source(args.source)
    with root.market_store(source) as store:
        session = source_session(root.calendar, args.date, source, store)
        result = check_freshness(store, root.calendar, session)
    for c in result.checks:
        out.write(c.describe(session) + "\n")
    out.write(("complete" if result.complete else "NOT complete") + f" for {session}\n")
    return 0 if result.complete else 1


def _import(args: argparse.Namespace, root: Root, out: TextIO) -> int:
    from bot.app.commands._session import session_arg
    from bot.market.importer import check_readable, import_files

    check_readable(args.files)
    with root.market_store("live") as store:
        report = import_files(
            store, root.calendar, args.files, fmt=args.format, symbol=args.symbol,
            source=args.source, last_closed=session_arg(root.calendar, None),
        )
    for line in report:
        out.write(line + "\n")
    return 0
