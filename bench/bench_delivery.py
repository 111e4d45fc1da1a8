"""Benchmark: one alert to 2,000 Telegram subscribers through the real delivery path.

The outbox on a SQLite file, the delivery worker, the Telegram channel and
python-telegram-bot, against the fake Bot API server (tests/fake_telegram.py)
enforcing Telegram's 30 messages/second (429 beyond it) and answering a few
extra 429s with retry_after on purpose. Prints what arrived and how long it
took, against the 2,000 / 30 s ≈ 66.7 s lower bound.

Run: .venv/bin/python bench/bench_delivery.py [--subscribers 2000] [--floods 5]
(about 70 s; it is a script, not a test).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_telegram import FakeTelegram
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.delivery.channels.telegram import TelegramChannel
from bot.delivery.dispatch import DeliveryWorker
from bot.delivery.outbox import OpsReporter, Outbox
from bot.delivery.outbox import tables as t
from bot.kernel.alerts import Alert, Topic
from bot.store import open_store

TOKEN = "123456789:bench-token"  # noqa: S105 - a fake server's token


async def run(subscribers: int, floods: int, concurrency: int, seed: int) -> None:
    alert = Alert(
        session=dt.date(2026, 3, 2),
        topic=Topic.HEDGE,
        kind="layer_added",
        layer="L1",
        title="Layer 1 added",
        text="Layer 1 added: buy 2 VX futures, June",
        html="<b>Layer 1 added</b>: buy 2 VX futures, <i>June</i>",
    )
    with tempfile.TemporaryDirectory() as tmp, FakeTelegram() as fake:
        store = open_store(f"sqlite:///{Path(tmp) / 'bench.sqlite'}")
        now = "2026-03-02T21:20:00.000000+00:00"
        with store.engine.begin() as conn:  # 2,000 subscribers in one statement
            conn.execute(
                t.subscribers.insert(),
                [
                    {
                        "channel": "telegram",
                        "address": str(chat),
                        "topics": "hedge",
                        "active": True,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for chat in range(1, subscribers + 1)
                ],
            )
        fake.rate_limit(30)
        rng = random.Random(seed)
        for chat in rng.sample(range(1, subscribers + 1), floods):
            fake.flood(retry_after=1, chat_id=chat)

        outbox = Outbox(store.engine, channels=("telegram",))
        bot = Bot(TOKEN, base_url=fake.base_url, request=HTTPXRequest(connection_pool_size=64))
        async with bot:
            channel = TelegramChannel(bot, report=OpsReporter(outbox))
            worker = DeliveryWorker(outbox, [channel], concurrency=concurrency)
            started = time.monotonic()
            outbox.enqueue([alert])
            await worker.drain()
            elapsed = time.monotonic() - started
        counts = outbox.counts()
        store.close()

        per_chat = collections.Counter(s.chat_id for s in fake.sent)
        delivered = len(per_chat)
        duplicates = sum(n - 1 for n in per_chat.values())
        lost = subscribers - delivered
        bound = subscribers / TelegramChannel.MESSAGES_PER_SECOND
        calls = fake.calls_to("sendMessage")
        arrivals = sorted(c.at for c in calls if c.status == 200)
        window = collections.deque[float]()
        peak = 0
        for at in arrivals:
            window.append(at)
            while window[0] <= at - 1.0:
                window.popleft()
            peak = max(peak, len(window))

    print(f"subscribers         {subscribers}")
    print(f"delivered           {delivered}")
    print(f"duplicates          {duplicates}")
    print(f"lost                {lost}")
    print(f"elapsed             {elapsed:.1f} s")
    print(f"bound (N/30 msg/s)  {bound:.1f} s")
    print(f"ratio               {elapsed / bound:.3f}")
    print(f"sendMessage calls   {len(calls)}")
    print(f"429 injected        {floods} (retry_after=1)")
    print(f"429 over 30/s       {fake.rate_limited}")
    print(f"worker rate_limited {worker.stats.rate_limited}")
    print(f"peak msgs in any 1s {peak}")
    print(f"delivery rows       {dict(sorted(counts.items()))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--floods", type=int, default=5, help="429s injected on purpose")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(run(args.subscribers, args.floods, args.concurrency, args.seed))


if __name__ == "__main__":
    main()
