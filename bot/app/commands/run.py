"""``alvh run``: the bot (scheduler, Telegram, delivery, health) until SIGTERM."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from bot.app.root import Root



def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    run_p = sub.add_parser("run", help="the bot: scheduler, Telegram, delivery, health")
    run_p.add_argument("--source", choices=["live", "snapshot"], help="default: ALVH_SOURCE")


def run(args: argparse.Namespace, root: Root, out: TextIO) -> int:
    from bot.app.root import Root
    from bot.app.runtime import run_blocking

    if args.source:
        root = Root(root.settings.model_copy(update={"source": args.source}))
    rules = root.load_rules()
    with root.market_store(root.source()) as store:
        if root.source() == "live" and store.latest("SPX") == (None, None):
            # A first live run: history first, or no session could be evaluated for months.
            from bot.app.commands.data import backfill

            out.write("alvh run: the live store is empty; back-filling it first\n")
            backfill(root, store, out)
        return run_blocking(root, store, rules, out)
