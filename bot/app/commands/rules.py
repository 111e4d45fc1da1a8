"""``alvh rules check | diff``: validate a rules file; replay two and compare."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bot.app.commands import date_arg
from bot.app.commands.backtest import add_source_args, backtest_source, full_range
from bot.kernel.errors import ConfigError

if TYPE_CHECKING:
    from bot.app.root import Root


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    rules = sub.add_parser("rules", help="check the rules file")
    rsub = rules.add_subparsers(dest="rules_command", required=True, metavar="SUBCOMMAND")
    rchk = rsub.add_parser("check", help="validate a rules file and summarise it")
    rchk.add_argument("file", nargs="?", type=Path, help="default: the configured rules file")
    init = rsub.add_parser(
        "init", help="write the packaged default rules to PATH for editing "
        "(default: ./rules/alvh.yaml, which the bot then uses)")
    init.add_argument("path", nargs="?", type=Path, metavar="PATH",
                      help="where to write (default: ./rules/alvh.yaml)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    d = rsub.add_parser(
        "diff", help="replay two rules files and list the sessions whose decisions differ")
    d.add_argument("old", type=Path, metavar="OLD")
    d.add_argument("new", type=Path, metavar="NEW")
    d.add_argument("--from", dest="start", type=date_arg, metavar="D1",
                   help="default: the first session with warmed-up indicators")
    d.add_argument("--to", dest="end", type=date_arg, metavar="D2",
                   help="default: the last session with SPX data")
    add_source_args(d)


def run(args: argparse.Namespace, root: Root, out: TextIO) -> int:
    if args.rules_command == "diff":
        return diff(args, root, out)
    if args.rules_command == "init":
        return init(args, root, out)
    from bot.engine.rules.check import check_command

    choice = root.rules_choice(args.file)
    code, text = check_command(choice.path)
    if code == 2:  # no file to check: a bad argument, one line on stderr
        raise ConfigError(f"{text} (rules file: {choice.describe()})")
    out.write(f"rules file: {choice.describe()}\n")
    if args.file is not None:
        in_force = root.rules_choice()
        if not _same(in_force.path, choice.path):
            out.write(f"(the bot uses {in_force.describe()})\n")
    out.write(text.rstrip("\n") + "\n")
    return code


def init(args: argparse.Namespace, root: Root, out: TextIO) -> int:
    """Write the packaged default rules where a user can edit them, and say who reads them."""
    import hashlib

    from bot.app.root import LOCAL_RULES
    from bot.engine.rules import default_rules_path

    path: Path = args.path or LOCAL_RULES
    if path.exists() and not args.force:
        raise ConfigError(f"{path} already exists; edit it, or add --force to replace it with "
                          "the packaged default")
    raw = default_rules_path().read_bytes()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write ({exc.strerror or exc})") from None
    digest = hashlib.sha256(raw).hexdigest()[:12]
    out.write(f"wrote {path}: the packaged default rules (sha256 {digest}), ready to edit; "
              f"check an edit with `alvh rules check {path}`\n")
    in_force = root.rules_choice()
    if _same(in_force.path, path):
        out.write(f"the bot uses it: {in_force.describe()}\n")
    else:
        out.write(f"note: the bot uses {in_force.describe()}, not this file; to use it, set "
                  f"ALVH_RULES_FILE={path.resolve()}\n")
    return 0


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def diff(args: argparse.Namespace, root: Root, out: TextIO, err: TextIO | None = None) -> int:
    from bot.backtest.diff import preview_diff

    err = err if err is not None else sys.stderr
    old = root.load_rules(args.old)
    new = root.load_rules(args.new)
    capital = args.capital if args.capital is not None else root.settings.capital
    with root.market_store(backtest_source(args, root)) as store:
        first, last = full_range(store, root.calendar)
        start = args.start or first
        end = args.end or last
        if end < start:
            raise ConfigError(f"--to {end} is before --from {start}")
        result = preview_diff(store, root.calendar, old, new, start, end, capital=capital,
                              progress=err)
    out.write(result.text() + "\n")
    return 0
