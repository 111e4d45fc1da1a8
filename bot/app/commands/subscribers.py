"""``alvh subscribers add | remove | list``: subscribers of any channel and their topics.

The channel of an address is recognised by the channels themselves
(``trader@example.com`` is email, ``ntfy://…`` an Apprise URL, ``123456`` a
Telegram chat id), or given with ``--channel``; nothing here names one.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

from bot.kernel.errors import ConfigError

if TYPE_CHECKING:
    from bot.app.root import Root


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    subs = sub.add_parser("subscribers", help="manage subscribers (email, Apprise URLs, …)")
    ssub = subs.add_subparsers(dest="subscribers_command", required=True, metavar="SUBCOMMAND")
    sadd = ssub.add_parser("add", help="subscribe an address to topics (default: summary)")
    srm = ssub.add_parser("remove", help="unsubscribe an address from topics, or entirely")
    for p in (sadd, srm):
        p.add_argument("address", help="an email address, an Apprise URL (ntfy://…, "
                       "discord://…, json://…) or a Telegram chat id")
        p.add_argument("topics", nargs="*", metavar="TOPIC",
                       help="condor, hedge, warning, summary, or all")
        p.add_argument("--channel", help="the address's channel, when it is ambiguous")
    slist = ssub.add_parser("list", help="every subscriber with topics and status")
    slist.add_argument("--channel", help="only this channel's subscribers")


def run(args: argparse.Namespace, root: Root, out: TextIO) -> int:
    from bot.delivery.channels.registry import channel_class, channel_for, shown_address
    from bot.delivery.outbox import Subscribers
    from bot.delivery.outbox.subscribers import normalize_address, parse_topics
    from bot.kernel.alerts import Topic

    if args.channel:
        channel_class(args.channel)  # an unknown channel is one line naming the known ones
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
                address = shown_address(r.channel, r.address)
                out.write(f"{r.channel:<8} {address:<40} {shown:<40} {state}\n")
            return 0
        channel = args.channel or channel_for(args.address)
        address = shown_address(channel, normalize_address(channel, args.address))
        topics = parse_topics(args.topics) if args.topics else frozenset({Topic.SUMMARY})
        if cmd == "add":
            r = subs.subscribe(channel, args.address, topics)
            out.write(f"{channel} {address}: "
                      + ",".join(sorted(t.value for t in r.topics)) + "\n")
            return 0
        if not args.topics:
            if not subs.remove(channel, args.address):
                raise ConfigError(f"{channel} {address}: not a subscriber")
            out.write(f"{channel} {address}: removed\n")
            return 0
        if subs.get(channel, args.address) is None:
            # Removing topics from no one must not make someone (an active row, no topics).
            raise ConfigError(f"{channel} {address}: not a subscriber")
        r = subs.unsubscribe(channel, args.address, topics)
        out.write(f"{channel} {address}: "
                  + (",".join(sorted(t.value for t in r.topics)) or "-") + "\n")
        return 0
    finally:
        store.close()
