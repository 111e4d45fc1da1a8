"""The entry point (``alvh`` and ``python -m bot``).

It parses the command line, reads the settings once, builds the composition
root (:class:`bot.app.root.Root`) and hands both to the command's module.
Errors the user can act on are one line on stderr and a non-zero exit code,
never a traceback. Nothing heavy is imported before a command needs it, so
``alvh --help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, TypeGuard

from bot import __version__
from bot.app.commands import (
    backtest,
    calendar,
    data,
    indicators,
    rules,
    run,
    run_once,
    subscribers,
)
from bot.kernel.errors import AlvhError, ConfigError

if TYPE_CHECKING:
    from sqlalchemy.exc import OperationalError

EXIT_ERROR = 1
"""It ran and failed: a source, the data, the database, a rules file ``rules check`` refused."""
EXIT_USAGE = 2
"""Refused before running: a setting, a combination of settings or an argument (as argparse)."""

COMMANDS: dict[str, ModuleType] = {
    "data": data,
    "rules": rules,
    "run-once": run_once,
    "indicators": indicators,
    "calendar": calendar,
    "backtest": backtest,
    "run": run,
    "subscribers": subscribers,
}
"""Command name → its module (``add_parser`` and ``run``), in ``--help`` order."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="alvh", description="ALVH signal bot: SPX iron-condor and layered VIX-hedge alerts"
    )
    p.add_argument("--version", action="version", version=f"alvh {__version__}")
    p.add_argument("--secrets-dir", type=_directory_name, metavar="DIR",
                   help="directory of secret files (default: /run/secrets when it exists)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        module.add_parser(sub)
    return p


def _directory_name(value: str) -> Path:
    """An empty name (``--secrets-dir "$CREDENTIALS_DIRECTORY"`` with the variable unset)
    would be the working directory: refused instead."""
    if not value.strip():
        raise argparse.ArgumentTypeError("empty: name the directory of secret files")
    return Path(value)


def _warn_unknown_variables() -> None:
    import logging
    import os

    from bot.app.settings import ENV_FILE, unknown_variables

    for line in unknown_variables(os.environ, ENV_FILE):
        logging.getLogger("bot.app.cli").warning("%s", line)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from bot.app.logs import setup_logging
    from bot.app.root import Root
    from bot.app.settings import load_settings

    try:
        settings = load_settings(secrets_dir=args.secrets_dir)
    except ConfigError as exc:
        print(f"alvh: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(settings.log_level, settings.log_format, settings.secret_values())
    _warn_unknown_variables()
    try:
        return int(COMMANDS[args.command].run(args, Root(settings), sys.stdout))
    except ConfigError as exc:  # refused before it could run: the same code as a bad variable
        print(f"alvh: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except AlvhError as exc:
        print(f"alvh: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        import logging

        from bot.kernel.redact import redact

        secrets = settings.secret_values()
        if _database_gone(exc):  # an outage, not a bug: exit and let the supervisor restart
            logging.getLogger("bot.app.cli").debug("database error", exc_info=True)
            print(f"alvh: the database stopped answering ({settings.store_url_shown}): "
                  f"{redact(one_line(exc.orig or exc), *secrets)}; exiting", file=sys.stderr)
            return EXIT_ERROR
        # A bug, not a user error: still one line; the traceback is in the debug log.
        logging.getLogger("bot.app.cli").debug("unexpected error", exc_info=True)
        print(f"alvh: unexpected error: {type(exc).__name__}: {redact(one_line(exc), *secrets)} "
              "(a bug: please report it; ALVH_LOG_LEVEL=DEBUG shows the traceback)",
              file=sys.stderr)
        return EXIT_ERROR


def _database_gone(exc: BaseException) -> TypeGuard[OperationalError]:
    """SQLAlchemy's OperationalError (connection lost, server shut down), without importing
    SQLAlchemy for commands that never loaded it."""
    module = sys.modules.get("sqlalchemy.exc")
    return module is not None and isinstance(exc, module.OperationalError)


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (rules errors list one problem per line)."""
    text = str(exc).strip()
    first, _, rest = text.partition("\n")
    more = rest.count("\n") + 1 if rest.strip() else 0
    return first + (f" (and {more} more line{'s' if more != 1 else ''})" if more else "")
