"""Telegram going away in the middle of a fan-out loses nothing and repeats nothing.

The real parts: the outbox on a SQLite file, the delivery worker, the Telegram
channel on python-telegram-bot's ``ExtBot`` (paced and observed, as ``alvh run``
builds it), against the fake Bot API with Telegram's real limits, which goes
down (connection refused, open connections dropped) mid fan-out.

Time is compressed: an outage of ``outage`` seconds lasts ``outage / scale``
real seconds and every delivery time constant (backoff, its cap) is divided by
``scale`` too, so the bot sees the same outage relative to its policy. Telegram's
own limits (1 message/s per chat, 30/s) are not compressed.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import io
import logging
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from _delivery import TOKEN, store_at, telegram_fan_out, two_part_alert
from fake_telegram import FakeTelegram

from bot.delivery.channels.console import ConsoleChannel
from bot.delivery.channels.ratelimit import LocalPacer
from bot.delivery.channels.telegram import TelegramChannel
from bot.delivery.dispatch import Backoff, DeliveryWorker
from bot.delivery.health import ChannelHealth
from bot.delivery.outbox import Outbox, Standing, Subscribers
from bot.kernel.alerts import Topic

log = logging.getLogger(__name__)

CHATS = range(1, 21)


def _parts(fake: FakeTelegram) -> collections.Counter[tuple[int, str]]:
    return collections.Counter((s.chat_id, s.method) for s in fake.sent)


async def _fan_out(
    fake: FakeTelegram, path: Path, *, scale: float,
    during: Callable[[DeliveryWorker], Awaitable[None]], within: float,
) -> tuple[DeliveryWorker, Outbox, list[tuple[float, bool]]]:
    changes: list[tuple[float, bool]] = []
    async with telegram_fan_out(fake, path, CHATS, backoff=Backoff(2 / scale, 2.0, 300 / scale),
                                request={"read_timeout": 2.0, "connect_timeout": 1.0}) as (
            worker, outbox, channel, health):
        health.listen(lambda channel, up: changes.append((time.monotonic(), up)))
        outbox.enqueue([two_part_alert()])
        assert channel.parts(two_part_alert()) == 2
        async with asyncio.timeout(within):
            await asyncio.gather(worker.drain(), during(worker))
    return worker, outbox, changes


@pytest.mark.parametrize(("outage", "scale"), [(40, 10), (600, 100)],
                         ids=["40 s outage", "10 min outage"])
async def test_every_chat_gets_every_part_exactly_once_after_an_outage(
    tmp_path: Path, outage: float, scale: float
) -> None:
    down_for = outage / scale
    marks: dict[str, float] = {}

    async def outage_mid_fan_out(worker: DeliveryWorker) -> None:
        await fake.wait_until(lambda: len(fake.sent) >= 6, within=20)
        marks["sent before"] = len(fake.sent)
        fake.down(seconds=down_for)
        marks["down"] = time.monotonic()
        await asyncio.sleep(down_for)
        marks["up"] = time.monotonic()

    with FakeTelegram() as fake:
        worker, outbox, changes = await _fan_out(fake, tmp_path / "a.sqlite", scale=scale,
                                                 during=outage_mid_fan_out,
                                                 within=down_for + 60)
        done = time.monotonic()
        parts = _parts(fake)

    assert 0 < marks["sent before"] < 2 * len(CHATS)  # the outage came mid fan-out
    expected = {(chat, method): 1 for chat in CHATS for method in ("sendPhoto", "sendMessage")}
    assert dict(parts) == expected  # every part to every chat, exactly once
    for chat in CHATS:
        photo, text = fake.sent_to(chat)
        assert (photo.method, text.method) == ("sendPhoto", "sendMessage")
        assert text.at - photo.at >= 1.0
    assert {d.status for d in outbox.queue.rows()} == {"sent"}
    # The channel was seen down during the outage and back after it; while down the
    # worker probed one delivery at a time instead of retrying the whole fan-out.
    assert [up for _, up in changes] == [False, True]
    assert marks["down"] <= changes[0][0] <= marks["up"] <= changes[1][0]
    assert worker.stats.probes >= 1
    assert worker.stats.retried <= 16 + worker.stats.probes  # in flight when it went + probes
    assert not fake.limited  # no 429: pacing held through the restart of the flow
    log.info("outage %.0f s (compressed to %.1f s): %d parts before it, %d parts delivered "
             "to %d chats, duplicates 0, lost 0, %d probes, %d retries, all delivered %.1f s "
             "after Telegram came back", outage, down_for, marks["sent before"],
             sum(parts.values()), len(CHATS), worker.stats.probes, worker.stats.retried,
             done - marks["up"])


async def test_a_502_on_every_third_request_loses_no_part(tmp_path: Path) -> None:
    async def nothing(worker: DeliveryWorker) -> None:
        return None

    with FakeTelegram() as fake:
        fake.bad_gateway(every=3, methods=("sendMessage", "sendPhoto"))
        worker, outbox, _ = await _fan_out(fake, tmp_path / "a.sqlite", scale=100,
                                           during=nothing, within=60)
        parts = _parts(fake)
        gateways = fake.bad_gateways
    assert dict(parts) == {(chat, method): 1 for chat in CHATS
                           for method in ("sendPhoto", "sendMessage")}
    assert gateways >= 2 * len(CHATS) // 3
    assert worker.stats.retried == gateways
    assert {d.status for d in outbox.queue.rows()} == {"sent"}


def test_backoff_is_capped_exponential_with_jitter() -> None:
    import random

    backoff = Backoff(initial=2.0, factor=2.0, maximum=300.0, jitter=0.5)
    rng = random.Random(7)
    assert [backoff.ceiling(n) for n in (1, 2, 3, 9, 10, 100)] == [2, 4, 8, 300, 300, 300]
    delays = [backoff.delay(4, rng) for _ in range(200)]
    assert all(8.0 <= d <= 16.0 for d in delays)  # within [ceiling / 2, ceiling]
    assert max(delays) - min(delays) > 4.0  # spread, not one instant for the whole fan-out
    assert dt.timedelta(seconds=backoff.delay(10_000, rng)) <= dt.timedelta(minutes=5)


async def test_a_long_outage_reaches_the_admins_by_the_channels_still_working(
    tmp_path: Path,
) -> None:
    """Telegram down longer than ``stalled_after``: ops hears of it once, by email here
    (the console stands in for any other working channel); it gets Telegram's copy too
    once Telegram is back, and when the alert finally expires, ops hears of that."""
    stream = io.StringIO()
    store = store_at(tmp_path / "a.sqlite")
    subs = Subscribers(store.engine)
    for chat in CHATS:
        subs.subscribe("telegram", str(chat), [Topic.SUMMARY])
    ops = frozenset({Topic.OPS})
    outbox = Outbox(store.engine, channels=("telegram", "console"),
                    standing=[Standing("telegram", "900", ops),
                              Standing("console", "console", ops)])
    with FakeTelegram() as fake:
        pacer, health = LocalPacer(), ChannelHealth()
        channel = TelegramChannel.connect(TOKEN, base_url=fake.base_url, pacer=pacer,
                                          health=health, read_timeout=1.0, connect_timeout=1.0)
        worker = DeliveryWorker(outbox, [channel, ConsoleChannel(stream)], pacer=pacer,
                                health=health, poll_interval=0.05,
                                backoff=Backoff(0.05, 2.0, 0.2),
                                stalled_after=dt.timedelta(seconds=1),
                                max_age=dt.timedelta(seconds=4))
        fake.down()
        outbox.enqueue([two_part_alert()])
        try:
            async with asyncio.timeout(30):  # no getMe first: Telegram is down
                await worker.drain()
        finally:
            await channel.bot.shutdown()
            store.close()
    printed = stream.getvalue()
    assert printed.count("telegram has been unreachable since") == 1
    assert re.search(r"; 2[01] deliveries are waiting", printed)
    # One report for the alert: the deliveries in flight at that moment expire a round
    # later and are logged, not reported again.
    assert len(re.findall(r"was not delivered by telegram to \d+ recipient\(s\) within 4 s",
                          printed)) == 1
    summary = [d for d in outbox.queue.rows() if d.alert_key == two_part_alert().key]
    assert len(summary) == 20 and {d.status for d in summary} == {"expired"}
    assert fake.sent == []
