"""The delivery worker with the real Telegram channel against the fake Bot API."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from _delivery import (
    FAST_LIMITS,
    TOKEN,
    FastTelegram,
    fast_worker,
    make_alert,
    store_at,
    telegram_setup,
)
from fake_telegram import FakeTelegram
from pydantic import SecretStr

from bot.app.root import Root
from bot.app.settings import Settings
from bot.delivery.channels.telegram import TelegramChannel
from bot.delivery.outbox import Outbox, Subscribers
from bot.kernel.alerts import Topic
from bot.kernel.redact import RedactingFilter

ADMIN = 900
SECRET = TOKEN.split(":")[1]


pytestmark = pytest.mark.usefixtures("store_lane")  # a SQLite file, then PostgreSQL


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(limits=FAST_LIMITS) as server:
        yield server


def _subscribe(subs: Subscribers, chats: range | list[int], *topics: Topic) -> None:
    for chat in chats:
        subs.subscribe("telegram", str(chat), topics or (Topic.HEDGE,))


def _statuses(outbox: Outbox) -> dict[str, str]:
    return {d.recipient: d.status for d in outbox.queue.rows()}


async def test_every_subscriber_gets_the_alert_once(fake: FakeTelegram, tmp_path: Path) -> None:
    async with telegram_setup(fake, tmp_path / "a.sqlite") as (_store, outbox, subs, channel):
        _subscribe(subs, range(1, 21))
        outbox.enqueue([make_alert()])
        worker = fast_worker(outbox, [channel])
        async with asyncio.timeout(10):
            await worker.drain()
    for chat in range(1, 21):
        (sent,) = fake.sent_to(chat)
        assert sent.raw.startswith("<b>Layer 1 added</b>")  # no late banner
    assert set(_statuses(outbox).values()) == {"sent"}
    assert worker.stats.sent == 20 and worker.stats.late == 0


async def test_flood_control_retry_after_is_honoured(fake: FakeTelegram, tmp_path: Path) -> None:
    fake.flood(retry_after=1, chat_id=7)
    async with telegram_setup(fake, tmp_path / "a.sqlite") as (_store, outbox, subs, channel):
        _subscribe(subs, [7])
        outbox.enqueue([make_alert()])
        worker = fast_worker(outbox, [channel])
        async with asyncio.timeout(10):
            await worker.drain()
    refused, accepted = fake.calls_to("sendMessage", 7)
    assert refused.status == 429 and accepted.status == 200
    assert accepted.at - refused.at >= 0.95  # the 1 s Telegram asked for (clock granularity)
    (delivery,) = outbox.queue.rows()
    assert (delivery.status, delivery.attempts, delivery.failures) == ("sent", 2, 0)
    assert worker.stats.rate_limited == 1


async def test_a_blocked_user_is_deactivated_and_never_retried(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    fake.block(8)
    async with telegram_setup(fake, tmp_path / "a.sqlite") as (_store, outbox, subs, channel):
        _subscribe(subs, [8, 9], Topic.HEDGE, Topic.CONDOR)
        outbox.enqueue([make_alert(), make_alert(Topic.CONDOR, "condor_go", "")])
        worker = fast_worker(outbox, [channel])
        async with asyncio.timeout(10):
            await worker.drain()
        # A later alert creates nothing for the deactivated user.
        outbox.enqueue([make_alert(layer="L2")])
        async with asyncio.timeout(10):
            await worker.drain()
        blocked = subs.get("telegram", "8")
    assert len(fake.calls_to("sendMessage", 8)) == 1
    assert len(fake.sent_to(9)) == 3
    assert blocked is not None and not blocked.active
    assert "blocked" in (blocked.deactivated_reason or "")
    mine = [d.status for d in outbox.queue.rows() if d.recipient == "8"]
    assert mine == ["failed", "skipped"]
    assert worker.stats.deactivated == 1


async def test_server_errors_and_timeouts_are_retried(fake: FakeTelegram, tmp_path: Path) -> None:
    fake.server_error(chat_id=10, times=2)
    fake.time_out(2.0, chat_id=11)
    async with telegram_setup(fake, tmp_path / "a.sqlite") as (_store, outbox, subs, channel):
        _subscribe(subs, [10, 11])
        outbox.enqueue([make_alert()])
        worker = fast_worker(outbox, [channel])
        async with asyncio.timeout(10):
            await worker.drain()
    assert [c.status for c in fake.calls_to("sendMessage", 10)] == [500, 500, 200]
    assert len(fake.calls_to("sendMessage", 11)) == 2
    assert len(fake.sent_to(10)) == len(fake.sent_to(11)) == 1
    rows = {d.recipient: d for d in outbox.queue.rows()}
    assert (rows["10"].status, rows["10"].failures) == ("sent", 2)
    assert (rows["11"].status, rows["11"].failures) == ("sent", 1)
    assert "TimedOut" in (rows["11"].last_error or "")


async def test_a_refused_message_tells_the_admins_once(
    fake: FakeTelegram, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("", "httpx", "telegram"):  # other tests may have quietened these
        caplog.set_level(logging.DEBUG, logger=name)
    # As the entry point must: PTB logs its API URL (token included) at DEBUG.
    caplog.handler.addFilter(RedactingFilter([TOKEN]))
    fake.fail(400, "Bad Request: wrong file identifier", chat_id=12, times=None)
    fake.fail(400, "Bad Request: wrong file identifier", chat_id=13, times=None)
    async with telegram_setup(fake, tmp_path / "a.sqlite", admins=(ADMIN,)) as (
        _store,
        outbox,
        subs,
        channel,
    ):
        _subscribe(subs, [12, 13])
        alert = make_alert()
        outbox.enqueue([alert])
        worker = fast_worker(outbox, [channel])
        async with asyncio.timeout(10):
            await worker.drain()
    assert len(fake.calls_to("sendMessage", 12)) == 1  # permanent: never retried
    rows = {d.recipient: d for d in outbox.queue.rows()}
    assert rows["12"].status == rows["13"].status == "failed"
    (ops,) = fake.sent_to(ADMIN)  # one report for the alert, not one per recipient
    assert "Delivery failed" in ops.text
    assert "wrong file identifier" in ops.text.lower()
    assert alert.key in ops.text
    # The bot token is never in the database, the ops message or the logs.
    assert all(SECRET not in (d.last_error or "") for d in rows.values())
    assert SECRET not in ops.raw
    assert any("Set Bot API URL" in r.getMessage() for r in caplog.records)
    assert any(r.name == "httpx" for r in caplog.records)
    assert SECRET not in caplog.text


async def test_transient_failures_never_end_a_delivery_before_it_expires(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    """500 forever for two chats: retried with backoff, never "failed"; once the alert
    is older than max_age, expired, and the admins told once (their chat works)."""
    fake.server_error(chat_id=12, times=None)
    fake.server_error(chat_id=13, times=None)
    async with telegram_setup(fake, tmp_path / "a.sqlite", admins=(ADMIN,)) as (
        _store, outbox, subs, channel,
    ):
        _subscribe(subs, [12, 13, 14])
        alert = make_alert()
        outbox.enqueue([alert])
        worker = fast_worker(outbox, [channel], max_age=dt.timedelta(seconds=1.5))
        async with asyncio.timeout(15):
            await worker.drain()
    attempts = len(fake.calls_to("sendMessage", 12))
    assert attempts >= 5  # kept trying for the alert's whole useful life
    rows = {d.recipient: d for d in outbox.queue.rows() if d.alert_key == alert.key}
    assert rows["12"].status == rows["13"].status == "expired"
    assert rows["14"].status == "sent"
    assert rows["12"].failures == attempts
    (ops,) = fake.sent_to(ADMIN)  # one report for the alert and channel
    assert "Delivery expired" in ops.text and "2 recipient(s)" in ops.text
    assert "Internal Server Error" in ops.text
    assert worker.stats.expired == 2


async def test_failures_of_ops_alerts_do_not_loop(fake: FakeTelegram, tmp_path: Path) -> None:
    fake.server_error(times=None)
    async with telegram_setup(fake, tmp_path / "a.sqlite", admins=(ADMIN,)) as (
        _store,
        outbox,
        subs,
        channel,
    ):
        _subscribe(subs, [14])
        outbox.enqueue([make_alert()])
        worker = fast_worker(outbox, [channel], max_age=dt.timedelta(seconds=1))
        async with asyncio.timeout(15):
            await worker.drain()
        keys = {d.alert_key for d in outbox.queue.rows()}
    assert len(keys) == 2  # the alert and one ops alert about it, nothing more
    assert set(_statuses(outbox).values()) == {"expired"}


async def test_refused_html_reaches_the_user_as_plain_text_and_the_admins_hear_of_it(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    async with telegram_setup(fake, tmp_path / "a.sqlite", admins=(ADMIN,)) as (
        _store,
        outbox,
        subs,
        channel,
    ):
        _subscribe(subs, [15, 16])
        outbox.enqueue([make_alert(html="<b>unclosed", text="Layer 1 added (plain)")])
        worker = fast_worker(outbox, [channel])
        async with asyncio.timeout(10):
            await worker.drain()
    assert [s.text for s in fake.sent_to(15)] == ["Layer 1 added (plain)"]
    assert [s.text for s in fake.sent_to(16)] == ["Layer 1 added (plain)"]
    (ops,) = fake.sent_to(ADMIN)
    assert "Channel problem" in ops.text
    assert "can't parse entities" in ops.text.lower()


async def test_a_restart_resumes_pending_and_in_flight_deliveries(
    fake: FakeTelegram, tmp_path: Path, store_lane: str
) -> None:
    """SQLite (one instance by the lock): a restart adopts everything left unfinished and
    says it is late. PostgreSQL (instances may share the database): the part in flight is
    taken back once its sender's lease has run out, and sent again, late; rows that were
    only pending are anyone's to send, on time."""
    path = tmp_path / "a.sqlite"
    first = store_at(path)
    _subscribe(Subscribers(first.engine), [21, 22, 23])
    lease = dt.timedelta(seconds=0.3)
    outbox = Outbox(first.engine, channels=("telegram",), lease=lease)
    outbox.enqueue([make_alert()])
    in_flight = outbox.queue.rows()[0]
    outbox.queue.claim(in_flight.id, late=False)  # the process died during this send
    first.close()
    await asyncio.sleep(lease.total_seconds() * 2)

    async with telegram_setup(fake, path) as (_store, again, _subs, channel):
        worker = fast_worker(again, [channel])
        async with asyncio.timeout(10):
            await worker.drain()
        rows = again.queue.rows()
    shared = store_lane == "postgresql"
    assert worker.stats.resumed == (1 if shared else 3)
    late = {d.recipient: d.late_delivery for d in rows}
    for chat in (21, 22, 23):
        (sent,) = fake.sent_to(chat)
        was_in_flight = str(chat) == in_flight.recipient
        assert sent.text.startswith("⏱ delivered late") == (was_in_flight or not shared)
        assert late[str(chat)] == (was_in_flight or not shared)
    assert all(d.status == "sent" for d in rows)
    assert {d.id: d.attempts for d in rows}[in_flight.id] == 2


async def test_late_after_marks_slow_deliveries(fake: FakeTelegram, tmp_path: Path) -> None:
    async with telegram_setup(fake, tmp_path / "a.sqlite") as (_store, outbox, subs, channel):
        _subscribe(subs, [24])
        outbox.enqueue([make_alert()])
        worker = fast_worker(outbox, [channel], late_after=dt.timedelta(0))
        async with asyncio.timeout(10):
            await worker.drain()
    (sent,) = fake.sent_to(24)
    assert sent.text.startswith("⏱ delivered late — for the session of 2026-03-02")
    assert outbox.queue.rows()[0].late_delivery


async def test_one_recipients_alerts_arrive_in_order(fake: FakeTelegram, tmp_path: Path) -> None:
    fake.server_error(chat_id=25, times=1)
    alerts = [make_alert(layer=f"L{i}", title=f"Layer {i} added") for i in (1, 2, 3)]
    async with telegram_setup(fake, tmp_path / "a.sqlite") as (_store, outbox, subs, channel):
        _subscribe(subs, [25])
        outbox.enqueue(alerts)
        worker = fast_worker(outbox, [channel])
        async with asyncio.timeout(10):
            await worker.drain()
    assert [s.text.split(":")[0] for s in fake.sent_to(25)] == [a.title for a in alerts]


async def test_stop_finishes_in_flight_sends_and_parks_the_rest(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    fake.time_out(0.4, times=2, deliver=True)  # the first two sends are slow but succeed
    path = tmp_path / "a.sqlite"
    async with telegram_setup(fake, path) as (_store, outbox, subs, channel):
        _subscribe(subs, range(31, 37))
        outbox.enqueue([make_alert()])
        worker = fast_worker(outbox, [channel], concurrency=2)
        task = asyncio.create_task(worker.run())
        async with asyncio.timeout(5):
            await fake.wait_until(lambda: worker.in_flight >= 2)
            await worker.stop()
            await task
        statuses = sorted(_statuses(outbox).values())
    assert statuses == ["pending"] * 4 + ["sent"] * 2
    assert len(fake.sent) == 2

    async with telegram_setup(fake, path) as (_store, outbox, _subs, channel):
        async with asyncio.timeout(10):
            await fast_worker(outbox, [channel]).drain()
    assert sorted(s.chat_id for s in fake.sent) == list(range(31, 37))  # no repeats


class SlowTelegram(TelegramChannel):
    """Telegram's limit mechanism with small numbers, to measure it quickly."""

    MESSAGES_PER_SECOND: ClassVar[float] = 20.0
    CHAT_MESSAGES_PER_SECOND: ClassVar[float] = 4.0


async def test_rate_limits_are_kept(fake: FakeTelegram, tmp_path: Path) -> None:
    async with telegram_setup(fake, tmp_path / "a.sqlite", channel_class=SlowTelegram) as (
        _store,
        outbox,
        subs,
        channel,
    ):
        _subscribe(subs, range(41, 61))  # 20 chats
        outbox.enqueue([make_alert()])
        _subscribe(subs, [41], Topic.CONDOR, Topic.WARNING)
        outbox.enqueue([make_alert(Topic.CONDOR, "c", ""), make_alert(Topic.WARNING, "w", "")])
        worker = fast_worker(outbox, [channel], concurrency=8)
        async with asyncio.timeout(10):
            await worker.drain()
    arrivals = sorted(c.at for c in fake.calls_to("sendMessage"))
    assert len(arrivals) == 22
    # 22 messages at 20/s overall: at least 21/20 s from first to last.
    assert arrivals[-1] - arrivals[0] >= 21 / 20 * 0.9
    mine = [c.at for c in fake.calls_to("sendMessage", 41)]
    assert all(b - a >= 0.25 * 0.9 for a, b in itertools.pairwise(mine))


async def test_telegram_limits_are_class_attributes() -> None:
    assert TelegramChannel.MESSAGES_PER_SECOND == 30
    assert TelegramChannel.CHAT_MESSAGES_PER_SECOND == 1
    assert TelegramChannel.GROUP_MESSAGES_PER_MINUTE == 20
    assert TelegramChannel.MAX_MESSAGE_LENGTH == 4096
    assert TelegramChannel.MAX_CAPTION_LENGTH == 1024
    assert FastTelegram.MESSAGES_PER_SECOND > TelegramChannel.MESSAGES_PER_SECOND


async def test_the_bot_as_built_tells_the_admins_of_a_plain_text_fallback(
    tmp_path: Path, no_alvh_env: pytest.MonkeyPatch
) -> None:
    """The composition root's wiring, not a test's: the channel's note about refused HTML
    becomes one ops alert that reaches the admin chat (Telegram's real limits)."""
    with FakeTelegram() as fake:
        settings = Settings(_env_file=None, data_dir=tmp_path, telegram_token=SecretStr(TOKEN),
                            telegram_base_url=fake.base_url, admin_chat_ids=[ADMIN])
        store = store_at(Path(settings.store_url.removeprefix("sqlite:///")))
        try:
            _subscribe(Subscribers(store.engine), [15, 16])
            delivery = Root(settings).delivery(store)
            (telegram,) = [c for c in delivery.channels if c.name == "telegram"]
            delivery.outbox.enqueue([make_alert(html="<b>unclosed", text="Layer 1 (plain)")])
            async with telegram.bot:  # type: ignore[attr-defined]
                async with asyncio.timeout(20):
                    await delivery.worker.drain()
        finally:
            store.close()
    assert [s.text for s in fake.sent_to(15)] == ["Layer 1 (plain)"]
    assert [s.text for s in fake.sent_to(16)] == ["Layer 1 (plain)"]
    (ops,) = fake.sent_to(ADMIN)  # once for the alert, not once per chat
    assert ops.text.startswith("Channel problem (telegram)")
    assert "can't parse entities" in ops.text.lower() and "plain text" in ops.text
    assert make_alert().key in ops.text
