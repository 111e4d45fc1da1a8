"""Helpers shared by the delivery tests: alerts, an outbox on a real SQLite file, a PTB bot."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import escape
from pathlib import Path
from typing import Any, ClassVar

from fake_telegram import FakeTelegram
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.delivery.channels.telegram import TelegramChannel
from bot.delivery.dispatch import Backoff, DeliveryWorker
from bot.delivery.outbox import OpsReporter, Outbox, Standing, Subscribers
from bot.kernel.alerts import Alert, Topic
from bot.store import Store, open_store

TOKEN = "123456789:AAE-test-SECRET-token-value"
SESSION = dt.date(2026, 3, 2)


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


def store_at(path: Path) -> Store:
    return open_store(f"sqlite:///{path}")


class FastTelegram(TelegramChannel):
    """Telegram's limits scaled up so tests that are not about limits do not wait."""

    MESSAGES_PER_SECOND: ClassVar[float] = 1000.0
    CHAT_MESSAGES_PER_SECOND: ClassVar[float] = 1000.0
    GROUP_MESSAGES_PER_MINUTE: ClassVar[float] = 60_000.0


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
        "max_attempts": 3,
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
        channel = channel_class(bot, report=OpsReporter(outbox))
        try:
            yield store, outbox, subscribers, channel
        finally:
            store.close()
