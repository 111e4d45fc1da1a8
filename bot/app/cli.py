"""The entry point: the only place that reads settings.

Every command builds what it needs (store, calendar, rules, HTTP client) from
the settings and hands them down as arguments. Errors the user can act on are
one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

from bot import __version__
from bot.app.backtest_args import add_backtest_parser, add_rules_diff_parser
from bot.kernel.errors import AlvhError, ConfigError

EXIT_ERROR = 1
EXIT_USAGE = 2


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="alvh", description="ALVH signal bot: SPX iron-condor and layered VIX-hedge alerts"
    )
    p.add_argument("--version", action="version", version=f"alvh {__version__}")
    p.add_argument("--secrets-dir", type=Path, metavar="DIR",
                   help="directory of secret files (default: /run/secrets when it exists)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="import and inspect market history")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    imp = dsub.add_parser("import", help="load history files into the store")
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.add_argument(
        "--format", choices=["auto", "unicorn", "cboe", "ohlc", "fred", "events"], default="auto",
        help="file format (default: detected from the contents)",
    )
    imp.add_argument("--symbol", help="series for price files: SPX, VIX, VIX3M, VIX6M")
    imp.add_argument("--source", help="source label stored on the rows (default from the file)")
    dsub.add_parser("status", help="per series: range, rows, sources, gaps")
    chk = dsub.add_parser("check", help="is the data complete and fresh for a session?")
    chk.add_argument("--date", type=_date, help="session (default: the last closed session)")

    rules = sub.add_parser("rules", help="check the rules file")
    rsub = rules.add_subparsers(dest="rules_command", required=True, metavar="SUBCOMMAND")
    rchk = rsub.add_parser("check", help="validate a rules file and summarise it")
    rchk.add_argument("file", nargs="?", type=Path, help="default: the configured rules file")
    add_rules_diff_parser(rsub, _date)

    once = sub.add_parser("run-once", help="evaluate one session exactly as the scheduler does")
    once.add_argument("--date", type=_date, help="session (default: the last closed session; "
                      "with --source snapshot, the last session the snapshot covers)")
    once.add_argument("--source", choices=["live", "snapshot"], help="default: ALVH_SOURCE")
    once.add_argument("--dry-run", action="store_true",
                      help="print the alerts; record nothing, send nothing")
    once.add_argument("--json", action="store_true",
                      help="print indicators, decisions with explanations and state changes")

    ind = sub.add_parser("indicators", help="print the indicator frame, one row per session")
    ind.add_argument("--from", dest="start", type=_date, required=True, metavar="D1")
    ind.add_argument("--to", dest="end", type=_date, required=True, metavar="D2")
    ind.add_argument("--csv", action="store_true", help="CSV instead of a table")
    ind.add_argument("--source", choices=["store", "snapshot"], default="store",
                     help="the data directory's store (default) or the shipped snapshot")
    add_backtest_parser(sub, _date)

    run = sub.add_parser("run", help="the bot: scheduler, Telegram, delivery, health")
    run.add_argument("--source", choices=["live", "snapshot"], help="default: ALVH_SOURCE")

    subs = sub.add_parser("subscribers", help="manage email subscribers")
    ssub = subs.add_subparsers(dest="subscribers_command", required=True, metavar="SUBCOMMAND")
    sadd = ssub.add_parser("add", help="subscribe an address to topics (default: summary)")
    sadd.add_argument("address")
    sadd.add_argument("topics", nargs="*", metavar="TOPIC")
    srm = ssub.add_parser("remove", help="unsubscribe an address from topics, or entirely")
    srm.add_argument("address")
    srm.add_argument("topics", nargs="*", metavar="TOPIC")
    slist = ssub.add_parser("list", help="every subscriber with topics and status")
    slist.add_argument("--channel", choices=["email", "telegram"])
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from bot.app.logs import setup_logging
    from bot.app.settings import load_settings

    try:
        settings = load_settings(secrets_dir=args.secrets_dir)
    except ConfigError as exc:
        print(f"alvh: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(settings.log_level, settings.log_format, settings.secret_values())
    try:
        from bot.app import commands

        return commands.dispatch(args, settings)
    except AlvhError as exc:
        print(f"alvh: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
