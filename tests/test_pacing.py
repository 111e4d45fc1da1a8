"""Pacing that never trips Telegram's limits, replies before broadcasts, 429s that
hold back only who they are about.

Against the fake Bot API with Telegram's real limits (1 message/s per chat, 30/s
overall, answered 429 beyond them): the real ``ExtBot`` built by
``TelegramChannel.connect`` (the pacer inside it), the delivery worker on a
SQLite outbox, and for replies the real python-telegram-bot ``Application``.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from _delivery import store_at, telegram_fan_out, two_part_alert
from fake_telegram import FakeTelegram, FakeTelegramProcess
from test_telegram_bot import StubQueries

from bot.app.telegram import Access, build_application, start_bot, stop_bot
from bot.delivery.channels.base import Rate
from bot.delivery.channels.ratelimit import BROADCAST, GRID_TOLERANCE, REPLY, LocalPacer
from bot.delivery.outbox import Subscribers

log = logging.getLogger(__name__)

def peak_per_second(times: list[float]) -> int:
    window: collections.deque[float] = collections.deque()
    peak = 0
    for at in sorted(times):
        window.append(at)
        while window[0] <= at - 1.0:
            window.popleft()
        peak = max(peak, len(window))
    return peak


def fan_out(fake: FakeTelegram, path: Path, chats: range, *, concurrency: int = 16) -> Any:
    return telegram_fan_out(fake, path, chats, concurrency=concurrency)


async def test_200_chats_photo_and_text_without_a_single_429(tmp_path: Path) -> None:
    """The fake in a process of its own (as Telegram is), so what it measures is what
    left the bot, not when two processes' threads got the interpreter lock."""
    chats = range(1, 201)
    with FakeTelegramProcess() as fake:
        async with fan_out(fake, tmp_path / "a.sqlite", chats) as (worker, outbox, _, _):
            outbox.enqueue([two_part_alert()])
            started = time.monotonic()
            async with asyncio.timeout(60):
                await worker.drain()
            elapsed = time.monotonic() - started
        report = fake.report()
    sends = [c for c in report.calls if c[0] in ("sendPhoto", "sendMessage")]
    per_part = collections.Counter((chat, method) for chat, method, _, _ in report.sent)
    assert report.limited == {} and {c[2] for c in sends} == {200}, report.limited  # no 429
    assert set(per_part.values()) == {1} and len(per_part) == 400
    assert peak_per_second([c[3] for c in sends]) <= 30
    for chat in chats:
        photo, text = [(m, at) for c, m, _, at in report.sent if c == chat]
        assert (photo[0], text[0]) == ("sendPhoto", "sendMessage") and text[1] - photo[1] >= 1.0
    assert worker.stats.rate_limited == 0
    log.info("200 chats x (photo + text): 400 messages in %.1f s (%.3f of the 400/30 s "
             "bound), 0 429s", elapsed, elapsed / (400 / 30))


async def test_replies_go_before_a_fan_out_and_all_arrive(tmp_path: Path) -> None:
    """Five users send /status during a fan-out to 200 chats: each is answered ahead of
    the broadcast messages already waiting (64 of them: the worker's concurrency)."""
    users = range(1001, 1006)
    with FakeTelegram() as fake:
        async with fan_out(fake, tmp_path / "a.sqlite", range(1, 201),
                           concurrency=64) as (worker, outbox, channel, _):
            store = store_at(tmp_path / "a.sqlite")
            app = build_application(channel.bot, subscribers=Subscribers(store.engine),
                                    queries=StubQueries(), access=Access())
            await start_bot(app, poll_timeout=1.0)
            try:
                outbox.enqueue([two_part_alert()])
                delivering = asyncio.create_task(worker.drain())
                await fake.wait_until(lambda: len(fake.sent) >= 100, within=30)
                asked = {}
                for user in users:
                    asked[user] = time.monotonic()
                    fake.user_says(user, "/status")
                for user in users:
                    await fake.wait_sent(user, 1, within=10)
                async with asyncio.timeout(60):
                    await delivering
            finally:
                await stop_bot(app)
                store.close()
        broadcast = sorted(s.at for s in fake.sent if s.chat_id <= 200)
    assert not fake.limited
    for user in users:
        (reply,) = fake.sent_to(user)
        assert "Status" in reply.text
        overtaken_by = sum(1 for at in broadcast if asked[user] < at < reply.at)
        assert overtaken_by < 10, (user, overtaken_by)  # not behind the 64 waiting


async def test_a_429_for_one_chat_delays_that_chat_only(tmp_path: Path) -> None:
    with FakeTelegram() as fake:
        fake.flood(retry_after=3, chat_id=7)
        async with fan_out(fake, tmp_path / "a.sqlite", range(1, 41)) as (worker, outbox, _, _):
            outbox.enqueue([two_part_alert()])
            async with asyncio.timeout(60):
                await worker.drain()
        refused = fake.calls_to("sendPhoto", 7)[0]
        others = [s.at for s in fake.sent if s.chat_id != 7]
        seven = fake.sent_to(7)
    assert refused.status == 429
    assert seven[0].at - refused.at >= 3.0  # chat 7 waited its retry_after...
    during = [at for at in others if refused.at < at < refused.at + 3.0]
    assert len(during) >= 30  # ...while the others went on
    assert worker.stats.rate_limited == 1
    assert len(fake.sent) == 80


async def test_a_bot_wide_429_pauses_everyone(tmp_path: Path) -> None:
    with FakeTelegram() as fake:
        async with fan_out(fake, tmp_path / "a.sqlite", range(1, 61)) as (worker, outbox, _, _):
            outbox.enqueue([two_part_alert()])
            delivering = asyncio.create_task(worker.drain())
            await fake.wait_until(lambda: len(fake.sent) >= 20, within=30)
            fake.flood_all(retry_after=2, seconds=0.3)
            flooded = time.monotonic()
            async with asyncio.timeout(60):
                await delivering
        refusals = [c.at for c in fake.calls if c.status == 429]
        per_part = collections.Counter((s.chat_id, s.method) for s in fake.sent)
    assert refusals and fake.limited["flood"] == len(refusals)
    first_refusal = min(refusals)
    # After the bot as a whole was refused, nothing was sent until its retry_after passed.
    after = [s.at for s in fake.sent if s.at > first_refusal]
    assert after and min(after) - first_refusal >= 2.0 - 0.1
    assert len(refusals) <= LocalPacer.CHANNEL_HOLD_AFTER + 16  # not hammered meanwhile
    assert set(per_part.values()) == {1} and len(per_part) == 120
    assert flooded <= first_refusal + 0.5


# ---------------------------------------------------------------------------- the pacer


class Limits:
    name: ClassVar[str] = "test"

    def overall_rate(self) -> Rate:
        return Rate(50.0)

    def recipient_rate(self, recipient: str) -> Rate:
        return Rate(5.0)


async def _granted(pacer: LocalPacer, who: str, priority: int, log: list[str]) -> None:
    await pacer.acquire(Limits(), who, priority=priority)
    log.append(f"{who}/{priority}")


async def test_the_pacer_spaces_each_recipient_and_the_whole_channel() -> None:
    pacer = LocalPacer(margin=0.0)
    times: dict[str, list[float]] = collections.defaultdict(list)

    async def send(who: str) -> None:
        await pacer.acquire(Limits(), who)
        times[who].append(time.monotonic())

    await asyncio.gather(*(send(who) for who in ["a", "b", "c"] * 3))
    everything = sorted(itertools.chain.from_iterable(times.values()))
    # Slots on a grid: a message may follow a late one by a little less than the spacing
    # (never less than GRID_TOLERANCE of it), never more than the rate in a second.
    least = 1.0 - GRID_TOLERANCE
    assert all(b - a >= 0.02 * least - 0.002 for a, b in itertools.pairwise(everything))
    late = GRID_TOLERANCE * 0.02  # the first may have left this late on its slot
    assert everything[-1] - everything[0] >= 8 * 0.02 - late - 0.002  # 9 messages at 50/s
    for mine in times.values():
        assert all(b - a >= 0.2 * least - 0.002 for a, b in itertools.pairwise(mine))  # 5/s
        assert mine[-1] - mine[0] >= 2 * 0.2 - GRID_TOLERANCE * 0.2 - 0.002


async def test_replies_are_granted_before_waiting_broadcasts() -> None:
    pacer, order = LocalPacer(), []
    await pacer.acquire(Limits(), "x")  # the channel's next slot is now taken
    waiting = [asyncio.create_task(_granted(pacer, f"b{i}", BROADCAST, order)) for i in range(5)]
    await asyncio.sleep(0)
    reply = asyncio.create_task(_granted(pacer, "r", REPLY, order))
    await asyncio.gather(reply, *waiting)
    assert order[0] == "r/0"


async def test_a_hold_for_one_recipient_does_not_hold_the_others() -> None:
    pacer, order = LocalPacer(), []
    pacer.hold(Limits(), "slow", 0.5)
    started = time.monotonic()
    await asyncio.gather(_granted(pacer, "slow", BROADCAST, order),
                         _granted(pacer, "fast", BROADCAST, order))
    assert order == ["fast/1", "slow/1"]
    assert time.monotonic() - started >= 0.5
    assert pacer.wait_for(Limits(), "other") < 0.1


async def test_refusals_for_several_recipients_hold_the_whole_channel() -> None:
    pacer = LocalPacer()
    for who in ("a", "b"):
        pacer.hold(Limits(), who, 0.4)
    assert pacer.wait_for(Limits(), "c") < 0.1  # two chats: still their own problem
    pacer.hold(Limits(), "c", 0.4)
    assert pacer.wait_for(Limits(), "d") == pytest.approx(0.4, abs=0.05)  # three: the bot's


async def test_a_few_flood_limited_chats_among_many_sends_hold_only_themselves() -> None:
    pacer = LocalPacer(margin=0.0)
    for i in range(40):  # 40 messages to 40 chats at 50/s: 0.8 s of fan-out
        await pacer.acquire(Limits(), f"r{i}")
    for who in ("r1", "r2", "r3"):  # three chats refused: under a quarter of what went
        pacer.hold(Limits(), who, 0.5)
    assert pacer.wait_for(Limits(), "other") < 0.1
    assert pacer.wait_for(Limits(), "r2") == pytest.approx(0.5, abs=0.05)
