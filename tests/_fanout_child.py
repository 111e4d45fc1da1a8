"""Child process of the crash test: one alert fanned out to N subscribers, then delivered.

Usage: python tests/_fanout_child.py DB_PATH BASE_URL N CONCURRENCY

Everything it does is idempotent, so the test can SIGKILL it mid fan-out and
start it again: the subscribers and the alert are already there the second
time, and the worker resumes what the first run left unfinished.
"""

from __future__ import annotations

import asyncio
import sys

from _delivery import TOKEN, FastTelegram, make_alert
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.delivery.dispatch import Backoff, DeliveryWorker
from bot.delivery.outbox import Outbox, Subscribers
from bot.kernel.alerts import Topic
from bot.store import open_store


async def main(db: str, base_url: str, n: int, concurrency: int) -> None:
    store = open_store(f"sqlite:///{db}")
    subscribers = Subscribers(store.engine)
    for chat in range(1, n + 1):
        subscribers.subscribe("telegram", str(chat), [Topic.HEDGE])
    outbox = Outbox(store.engine, channels=("telegram",))
    outbox.enqueue([make_alert()])
    bot = Bot(TOKEN, base_url=base_url, request=HTTPXRequest(read_timeout=5.0))
    async with bot:
        worker = DeliveryWorker(
            outbox,
            [FastTelegram(bot)],
            concurrency=concurrency,
            poll_interval=0.05,
            backoff=Backoff(0.05, 2.0, 0.2),
        )
        await worker.drain()
    store.close()
    sys.stdout.write(f"done sent={worker.stats.sent} resumed={worker.stats.resumed}\n")


if __name__ == "__main__":
    db_path, url, count, parallel = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    asyncio.run(main(db_path, url, count, parallel))
