"""Two instances on one PostgreSQL database share the fan-out (issue 14).

Each instance's worker picks rows with ``SELECT … FOR UPDATE SKIP LOCKED`` and a
lease: no row is sent by both, and together they pace within Telegram's rate (each
takes its share). Runs against the real PostgreSQL server of the lane and the
strict fake Bot API.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterator

import pytest
from _delivery import TOKEN, two_part_alert
from fake_telegram import FakeTelegram

from bot.delivery.channels.ratelimit import LocalPacer
from bot.delivery.channels.telegram import TelegramChannel
from bot.delivery.dispatch import Backoff, DeliveryWorker
from bot.delivery.health import ChannelHealth
from bot.delivery.outbox import Outbox, Subscribers
from bot.kernel.alerts import Topic
from bot.store import open_store

CHATS = range(7000, 7080)


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(token=TOKEN) as server:
        yield server


def _worker(store_url: str, fake: FakeTelegram) -> tuple[DeliveryWorker, Outbox, LocalPacer]:
    store = open_store(store_url)
    outbox = Outbox(store.engine, channels=("telegram",))
    pacer, health = LocalPacer(), ChannelHealth()
    pacer.set_share(2)  # two instances share the bot's 30 messages/s
    channel = TelegramChannel.connect(TOKEN, base_url=fake.base_url, pacer=pacer,
                                      health=health, read_timeout=3.0)
    worker = DeliveryWorker(outbox, [channel], pacer=pacer, health=health, poll_interval=0.05,
                            backoff=Backoff(0.05, 2.0, 0.5))
    return worker, outbox, pacer


async def test_two_instances_deliver_every_part_once_between_them(postgres_url, fake):
    first, outbox_a, _ = _worker(postgres_url, fake)
    second, outbox_b, _ = _worker(postgres_url, fake)
    assert outbox_a.queue.shared and outbox_a.boot != outbox_b.boot
    subs = Subscribers(outbox_a.queue._engine)
    for chat in CHATS:
        subs.subscribe("telegram", str(chat), [Topic.SUMMARY])
    outbox_a.enqueue([two_part_alert()])  # enqueued by one instance, sent by both
    async with asyncio.timeout(60):
        await asyncio.gather(first.drain(), second.drain())
    parts = collections.Counter((s.chat_id, s.method) for s in fake.sent)
    assert set(parts) == {(c, m) for c in CHATS for m in ("sendPhoto", "sendMessage")}
    assert max(parts.values()) == 1  # no part twice
    assert first.stats.parts > 10 and second.stats.parts > 10  # both took a share
    assert first.stats.parts + second.stats.parts == 2 * len(CHATS)
    assert fake.limited["overall"] == 0 and fake.limited["chat"] == 0


async def test_a_dead_instances_in_flight_part_is_taken_over_after_its_lease(
        postgres_url, fake):
    import datetime as dt

    store = open_store(postgres_url)
    Subscribers(store.engine).subscribe("telegram", "7100", [Topic.SUMMARY])
    lease = dt.timedelta(seconds=0.5)
    dead = Outbox(store.engine, channels=("telegram",), lease=lease)
    dead.enqueue([two_part_alert()])
    (row,) = dead.queue.due(["telegram"], 10, ())
    assert dead.queue.claim(row.id, late=False)  # dies while sending the photo
    alive, outbox, _ = _worker(postgres_url, fake)
    assert outbox.queue.due(["telegram"], 10, ()) == []  # held by the other's lease
    await asyncio.sleep(lease.total_seconds() * 2)
    async with asyncio.timeout(20):
        await alive.drain()
    (final,) = outbox.queue.rows()
    assert final.status == "sent" and final.resumed and final.late_delivery
    assert [s.method for s in fake.sent_to(7100)] == ["sendPhoto", "sendMessage"]
    store.close()


async def test_paid_broadcasts_go_past_30_a_second_and_are_counted(tmp_path):
    """allow_paid_broadcast on every fan-out message; the pacer lets 1,000/s through and the
    fake (like Telegram) counts them apart from the free 30/s; each costs 0.1 Star."""
    from _delivery import store_at

    with FakeTelegram(token=TOKEN) as fake:
        store = store_at(tmp_path / "a.sqlite")
        subs = Subscribers(store.engine)
        chats = range(7200, 7320)
        for chat in chats:
            subs.subscribe("telegram", str(chat), [Topic.SUMMARY])
        outbox = Outbox(store.engine, channels=("telegram",))
        pacer, health = LocalPacer(), ChannelHealth()
        channel = TelegramChannel.connect(TOKEN, base_url=fake.base_url, pacer=pacer,
                                          health=health, paid_broadcast=True, read_timeout=3.0)
        worker = DeliveryWorker(outbox, [channel], pacer=pacer, health=health,
                                poll_interval=0.05, concurrency=64)
        outbox.enqueue([two_part_alert()])
        started = asyncio.get_running_loop().time()
        async with channel.bot:
            async with asyncio.timeout(60):
                await worker.drain()
        elapsed = asyncio.get_running_loop().time() - started
        store.close()
    assert fake.paid_messages == channel.paid_messages == 2 * len(chats)
    assert channel.paid_cost(channel.paid_messages) == pytest.approx(0.1 * 2 * len(chats))
    assert fake.limited["overall"] == 0 and fake.limited["paid"] == 0
    # 240 messages at the free 30/s would take 8 s; each chat still gets 1/s (2 parts).
    assert elapsed < 240 / 30
