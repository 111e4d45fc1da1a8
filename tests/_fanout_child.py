"""Child process of the crash test: one alert (a chart and a text: two parts) fanned out
to N subscribers, then delivered.

Usage: python tests/_fanout_child.py DB_PATH BASE_URL N CONCURRENCY

Everything it does is idempotent, so the test can SIGKILL it mid fan-out and
start it again: the subscribers and the alert are already there the second
time, and the worker resumes what the first run left unfinished, part by part.
"""

from __future__ import annotations

import asyncio
import sys

from _delivery import TOKEN, FastTelegram, two_part_alert

from bot.delivery.channels.ratelimit import LocalPacer
from bot.delivery.dispatch import Backoff, DeliveryWorker
from bot.delivery.health import ChannelHealth
from bot.delivery.outbox import Outbox, Subscribers
from bot.kernel.alerts import Topic
from bot.store import open_store


async def main(db: str, base_url: str, n: int, concurrency: int) -> None:
    store = open_store(f"sqlite:///{db}")
    subscribers = Subscribers(store.engine)
    for chat in range(1, n + 1):
        subscribers.subscribe("telegram", str(chat), [Topic.SUMMARY])
    outbox = Outbox(store.engine, channels=("telegram",))
    outbox.enqueue([two_part_alert()])
    pacer, health = LocalPacer(), ChannelHealth()
    channel = FastTelegram.connect(TOKEN, base_url=base_url, pacer=pacer, health=health,
                                   read_timeout=5.0)
    async with channel.bot:
        worker = DeliveryWorker(outbox, [channel], concurrency=concurrency, poll_interval=0.05,
                                pacer=pacer, health=health, backoff=Backoff(0.05, 2.0, 0.2))
        await worker.drain()
    store.close()
    sys.stdout.write(f"done sent={worker.stats.sent} parts={worker.stats.parts} "
                     f"resumed={worker.stats.resumed}\n")


if __name__ == "__main__":
    db_path, url, count, parallel = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    asyncio.run(main(db_path, url, count, parallel))
