"""The python-telegram-bot ``Application``: built on the channel's bot, polled, stopped."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator

from telegram import Bot, BotCommand
from telegram.error import TelegramError
from telegram.ext import ApplicationBuilder

from bot.app.telegram.access import Access
from bot.app.telegram.handlers import PUBLIC_COMMANDS, App, BotCommands, BotQueries
from bot.delivery.outbox.subscribers import Subscribers
from bot.kernel.errors import ConfigError
from bot.kernel.redact import redact


def build_application(
    bot: Bot,
    *,
    subscribers: Subscribers,
    queries: BotQueries,
    access: Access,
) -> App:
    """An ``Application`` on ``bot`` with the handlers registered; not yet polling.

    ``bot`` is the Telegram channel's (a ``telegram.ext.ExtBot``): the command
    replies and the alerts share one bot, one connection pool and one limiter.
    """
    app: App = ApplicationBuilder().bot(bot).job_queue(None).build()
    BotCommands(subscribers, queries, access).register(app)
    return app


async def start_bot(app: App, *, poll_timeout: float = 10.0) -> None:
    """Initialize, publish the command menu, and start long polling.

    PTB words a rejected token as "The token `…` was rejected": the error is
    re-raised as ``ConfigError`` with the token removed.
    """
    token = app.bot.token
    try:
        await app.initialize()
        await app.bot.set_my_commands([BotCommand(name, what) for name, what in PUBLIC_COMMANDS])
        await app.start()
        if app.updater is None:  # pragma: no cover - ApplicationBuilder always makes one
            raise ConfigError("telegram: the application has no updater")
        await app.updater.start_polling(
            timeout=dt.timedelta(seconds=poll_timeout), drop_pending_updates=False
        )
    except TelegramError as exc:
        message = redact(exc.message, token)
        raise ConfigError(f"ALVH_TELEGRAM_TOKEN / Telegram: {message}") from None


async def stop_bot(app: App) -> None:
    """Stop polling and the application; safe to call when only partly started."""
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    await app.shutdown()


@contextlib.asynccontextmanager
async def polling(app: App) -> AsyncIterator[App]:
    """Long polling for the ``async with`` block (:func:`start_bot` / :func:`stop_bot`)."""
    try:
        await start_bot(app)
    except BaseException:
        await stop_bot(app)
        raise
    try:
        yield app
    finally:
        await stop_bot(app)
