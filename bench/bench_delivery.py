"""Benchmark: one chart-and-text alert fanned out to 2,000 Telegram chats.

The real delivery path: the outbox on a SQLite file, the delivery worker, the
Telegram channel on python-telegram-bot's ``ExtBot`` built as ``alvh run``
builds it (pacer and reachability observer inside), against the strict fake Bot
API (tests/fake_telegram.py) enforcing Telegram's limits: 1 message/s per chat
and 30 messages/s overall, each answered 429 with ``retry_after`` beyond them.

The fake server runs in a process of its own, as Telegram runs on machines of its
own: the bot's event loop does not share an interpreter lock with it.

Every chat gets two messages (the chart as a photo, then the text, which is too
long for a caption), so the fan-out is 4,000 messages, and Telegram's limit puts
a lower bound of 4,000 / 30 s = 133.3 s on it. Two runs:

* ``clean``: no injected fault. Target: elapsed ≤ 1.05 × the bound, no 429.
* ``faults``: 429s injected for ``--floods`` random chats (retry_after 1–5 s)
  and nginx's 502 page on every ``--bad-gateway-every``-th send. Target ≤ 1.15.

For each: delivered (distinct chat × part), duplicates, lost, 429s received
(injected and from the limits), 502s, elapsed and its ratio to the bound.

Run: .venv/bin/python bench/bench_delivery.py [--chats 2000] [--runs clean,faults]
(about 2 × 140 s; it is a script, not a test).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import logging
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_telegram import FakeTelegramProcess

from bot.delivery.channels.ratelimit import LocalPacer
from bot.delivery.channels.telegram import TelegramChannel
from bot.delivery.dispatch import DeliveryWorker
from bot.delivery.health import ChannelHealth
from bot.delivery.outbox import Outbox
from bot.kernel.alerts import Alert, Topic
from bot.store import open_store
from bot.store import schema as t

TOKEN = "123456789:bench-token"  # noqa: S105 - a fake server's token
BODY = "\n".join(f"<b>line {i}</b> NYSE A/D line divergence &amp; MACD " + "x" * 32
                 for i in range(40))
CHART = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 160  # a 40 KB image


def alert() -> Alert:
    return Alert(session=dt.date(2026, 3, 2), topic=Topic.SUMMARY, kind="daily_summary",
                 layer="", title="ALVH daily · 2026-03-02", text="(plain)", html=BODY,
                 chart_png=CHART)


def subscribe(store_engine: object, chats: int) -> None:
    now = "2026-03-02T21:20:00.000000+00:00"
    with store_engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(t.subscribers.insert(), [
            {"channel": "telegram", "address": str(chat), "topics": "summary", "active": True,
             "created_at": now, "updated_at": now}
            for chat in range(1, chats + 1)])


async def deliver(base_url: str, chats: int, concurrency: int) -> tuple[float, Any, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'bench.sqlite'}")
        subscribe(store.engine, chats)
        outbox = Outbox(store.engine, channels=("telegram",))
        pacer, health = LocalPacer(), ChannelHealth()
        channel = TelegramChannel.connect(TOKEN, base_url=base_url, pacer=pacer, health=health)
        async with channel.bot:
            worker = DeliveryWorker(outbox, [channel], concurrency=concurrency, pacer=pacer,
                                    health=health)
            assert channel.parts(alert()) == 2
            started = time.monotonic()
            outbox.enqueue([alert()])
            await worker.drain()
            elapsed = time.monotonic() - started
        counts = outbox.counts()
        store.close()
    return elapsed, worker.stats, counts


def run(name: str, chats: int, floods: int, gateway_every: int, concurrency: int,
        seed: int) -> dict[str, float]:
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    rng = random.Random(seed)
    faults: list[tuple[str, dict[str, Any]]] = [
        ("flood", {"retry_after": rng.randint(1, 5), "chat_id": chat})
        for chat in rng.sample(range(1, chats + 1), floods)]
    if gateway_every:
        faults.append(("bad_gateway", {"every": gateway_every,
                                       "methods": ("sendMessage", "sendPhoto")}))
    with FakeTelegramProcess(faults=faults) as fake:
        elapsed, stats, counts = asyncio.run(deliver(fake.base_url, chats, concurrency))
        report = fake.report()
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    per_part = collections.Counter((chat, method) for chat, method, _, _ in report.sent)
    sends = [c for c in report.calls if c[0] in ("sendPhoto", "sendMessage")]
    refused = sum(1 for c in sends if c[2] == 429)
    limited = sum(report.limited.values())
    expected = 2 * chats
    bound = expected / TelegramChannel.MESSAGES_PER_SECOND
    delivered = len(per_part)
    figures = {
        "delivered": delivered, "duplicates": sum(n - 1 for n in per_part.values()),
        "lost": expected - delivered, "elapsed": elapsed, "ratio": elapsed / bound,
    }
    print(f"\n== {name}: {chats} chats x (photo + text) = {expected} messages ==")
    print(f"delivered            {delivered} (distinct chat x part)")
    print(f"duplicates           {figures['duplicates']}")
    print(f"lost                 {figures['lost']}")
    print(f"429s received        {refused} ({refused - limited} injected, {limited} from the "
          f"limits {report.limited})")
    print(f"502s received        {report.bad_gateways}")
    print(f"send calls           {len(sends)}")
    print(f"elapsed              {elapsed:.1f} s")
    print(f"bound ({expected}/30 s)   {bound:.1f} s")
    print(f"ratio                {elapsed / bound:.3f}")
    print(f"worker               parts {stats.parts}, retried {stats.retried}, "
          f"rate_limited {stats.rate_limited}")
    print(f"delivery rows        {dict(sorted(counts.items()))}")
    print(f"bot process CPU      {cpu:.1f} s ({cpu / elapsed:.0%} of one core); machine load "
          f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--chats", type=int, default=2000)
    parser.add_argument("--runs", default="clean,faults", help="clean, faults or both")
    parser.add_argument("--floods", type=int, default=40, help="chats answered one 429")
    parser.add_argument("--bad-gateway-every", type=int, default=40,
                        help="every n-th send answered 502 in the faults run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("telegram.request").setLevel(logging.CRITICAL)  # each 502's HTML page
    for name in args.runs.split(","):
        faults = name == "faults"
        run(name, args.chats, args.floods if faults else 0,
            args.bad_gateway_every if faults else 0, args.concurrency, args.seed)


if __name__ == "__main__":
    main()
