"""Helpers shared by the delivery tests: alerts, an outbox on a real SQLite file, a PTB bot."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from html import escape
from pathlib import Path
from typing import Any, ClassVar

from fake_telegram import FakeTelegram, Limits
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.delivery.channels.ratelimit import LocalPacer
from bot.delivery.channels.telegram import TelegramChannel
from bot.delivery.dispatch import Backoff, DeliveryWorker
from bot.delivery.health import ChannelHealth
from bot.delivery.outbox import Outbox, Standing, Subscribers
from bot.kernel.alerts import Alert, Topic
from bot.store import Store, open_store

TOKEN = "123456789:AAE-test-SECRET-token-value"
SESSION = dt.date(2026, 3, 2)
T0 = dt.datetime(2026, 3, 2, 21, 20, tzinfo=dt.UTC)
"""The delivery tests' "now": SESSION's evaluation time (16:20 ET)."""


class Clock:
    """A clock the test moves by hand (``clock.now = …``)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def make_alert(
    topic: Topic = Topic.HEDGE,
    kind: str = "layer_added",
    layer: str = "L1",
    *,
    html: str | None = None,
    text: str | None = None,
    chart: bytes | None = None,
    title: str = "Layer 1 added",
    session: dt.date = SESSION,
    late: bool = False,
) -> Alert:
    return Alert(
        session=session,
        topic=topic,
        kind=kind,
        layer=layer,
        title=title,
        text=text if text is not None else f"{title}: buy 2 VX futures (plain)",
        html=html if html is not None else f"<b>{escape(title)}</b>: buy 2 VX futures",
        chart_png=chart,
        late=late,
    )


LANE: Callable[[Path], str] | None = None
"""Set by the ``store_lane`` fixture in its PostgreSQL lane: the database of a path."""


def store_at(path: Path) -> Store:
    """The store a test names by ``path``: a SQLite file, or in the PostgreSQL lane a
    database of its own (the same one each time the same path is opened again)."""
    return open_store(LANE(path) if LANE is not None else f"sqlite:///{path}")


class FastTelegram(TelegramChannel):
    """Telegram's limits scaled up 40× so tests that are not about limits do not wait;
    serve them with ``FakeTelegram(limits=FAST_LIMITS)``, the fake's limits scaled
    the same way (still enforced: a test that trips them fails)."""

    MESSAGES_PER_SECOND: ClassVar[float] = 800.0
    CHAT_MESSAGES_PER_SECOND: ClassVar[float] = 40.0
    GROUP_MESSAGES_PER_MINUTE: ClassVar[float] = 800.0


FAST_LIMITS = Limits(chat_interval=1 / 80, group_per_minute=20, group_window=0.75,
                     per_second=1600)
"""Telegram's limits as ``FastTelegram`` keeps them, with a wide margin below: tests
that are not about limits must not depend on a loaded machine's timing."""


def make_bot(fake: FakeTelegram, *, read_timeout: float = 0.5) -> Bot:
    return Bot(
        TOKEN,
        base_url=fake.base_url,
        base_file_url=fake.base_file_url,
        request=HTTPXRequest(read_timeout=read_timeout, connect_timeout=1.0, pool_timeout=2.0),
    )


def fast_worker(outbox: Outbox, channels: list[Any], **kwargs: Any) -> DeliveryWorker:
    """A worker with millisecond backoff and polling."""
    options: dict[str, Any] = {
        "backoff": Backoff(initial=0.02, factor=2.0, maximum=0.1),
        "poll_interval": 0.05,
        "pacer": LocalPacer(),
    }
    options.update(kwargs)
    return DeliveryWorker(outbox, channels, **options)


@asynccontextmanager
async def telegram_setup(
    fake: FakeTelegram,
    path: Path,
    *,
    admins: tuple[int, ...] = (),
    channel_class: type[TelegramChannel] = FastTelegram,
) -> AsyncIterator[tuple[Store, Outbox, Subscribers, TelegramChannel]]:
    store = store_at(path)
    outbox = Outbox(store.engine, channels=("telegram",),
                    standing=[Standing("telegram", str(a), frozenset({Topic.OPS})) for a in admins])
    subscribers = Subscribers(store.engine)
    bot = make_bot(fake)
    async with bot:
        channel = channel_class(bot)
        try:
            yield store, outbox, subscribers, channel
        finally:
            store.close()


LONG_BODY = "\n".join(f"<b>line {i}</b> breadth &amp; divergence " + "x" * 40 for i in range(40))
"""An alert body longer than Telegram's 1,024-character caption."""
CHART = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def two_part_alert() -> Alert:
    """A chart and a text too long for its caption: a photo and a message to every chat."""
    return make_alert(Topic.SUMMARY, "daily_summary", "", title="ALVH daily", html=LONG_BODY,
                      chart=CHART)


@asynccontextmanager
async def telegram_fan_out(
    fake: FakeTelegram, path: Path, chats: range, *, channel_class: type[TelegramChannel] =
    TelegramChannel, request: dict[str, Any] | None = None, **worker: Any,
) -> AsyncIterator[tuple[DeliveryWorker, Outbox, TelegramChannel, ChannelHealth]]:
    """``chats`` subscribed to ``summary`` in an outbox on ``path``, and a worker on the
    channel ``alvh run`` builds (``connect``: pacer and health inside the bot)."""
    store = store_at(path)
    subs = Subscribers(store.engine)
    for chat in chats:
        subs.subscribe("telegram", str(chat), [Topic.SUMMARY])
    outbox = Outbox(store.engine, channels=("telegram",))
    pacer, health = LocalPacer(), ChannelHealth()
    channel = channel_class.connect(TOKEN, base_url=fake.base_url, pacer=pacer, health=health,
                                    **(request or {"read_timeout": 3.0}))
    options: dict[str, Any] = {"poll_interval": 0.05, "backoff": Backoff(0.05, 2.0, 0.5)}
    delivery = DeliveryWorker(outbox, [channel], pacer=pacer, health=health,
                              **(options | worker))
    try:
        async with channel.bot:
            yield delivery, outbox, channel, health
    finally:
        store.close()
