"""``alvh subscribers add | remove | list``: email subscribers and their topics."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from bot.app.root import Root
from bot.kernel.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
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


def run(args: argparse.Namespace, root: Root, out: TextIO) -> int:
    from bot.delivery.outbox import Subscribers
    from bot.delivery.outbox.subscribers import parse_topics
    from bot.kernel.alerts import Topic

    store = root.open_delivery_store()
    try:
        subs = Subscribers(store.engine)
        cmd = args.subscribers_command
        if cmd == "list":
            rows = subs.all(args.channel)
            if not rows:
                out.write("no subscribers\n")
            for r in rows:
                state = "active" if r.active else f"inactive ({r.deactivated_reason})"
                shown = ",".join(sorted(t.value for t in r.topics)) or "-"
                out.write(f"{r.channel:<8} {r.address:<32} {shown:<40} {state}\n")
            return 0
        topics = parse_topics(args.topics) if args.topics else frozenset({Topic.SUMMARY})
        if cmd == "add":
            r = subs.subscribe("email", args.address, topics)
            out.write(f"{r.address}: " + ",".join(sorted(t.value for t in r.topics)) + "\n")
            return 0
        if not args.topics:
            if not subs.remove("email", args.address):
                raise ConfigError(f"{args.address}: not a subscriber")
            out.write(f"{args.address}: removed\n")
            return 0
        r = subs.unsubscribe("email", args.address, topics)
        out.write(f"{r.address}: " + (",".join(sorted(t.value for t in r.topics)) or "-") + "\n")
        return 0
    finally:
        store.close()
