"""One module per ``alvh`` command.

Each module has ``add_parser(sub)`` (argparse only: no heavy import, so
``alvh --help`` stays fast) and ``run(args, root, out) -> int``, which builds
what it needs from the composition root (:class:`bot.app.root.Root`) and
writes its human output to ``out``. Errors a person can fix are raised as
``ConfigError`` and become one line on stderr in :mod:`bot.app.cli`.
"""

from __future__ import annotations

import argparse
import datetime as dt


def date_arg(text: str) -> dt.date:
    """An ISO date argument (``YYYY-MM-DD``), or an argparse usage error."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None
