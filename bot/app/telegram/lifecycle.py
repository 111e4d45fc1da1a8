"""The python-telegram-bot ``Application``: built on the channel's bot, connected,
polled, stopped.

Telegram being unreachable at start is not a reason to stay down: the bot's
scheduler, email and health run without it, so :func:`polling` connects in
the background and keeps trying with backoff, saying which server it cannot
reach (never the token, which is part of the Bot API URL). Only a rejected
token (401) is fatal: no retry will fix it, so ``on_fatal`` gets one clear
line and the runtime stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections.abc import AsyncIterator, Callable

from telegram import Bot, BotCommand
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import ApplicationBuilder

from bot.app.telegram.access import Access
from bot.app.telegram.handlers import PUBLIC_COMMANDS, App, BotCommands, BotQueries
from bot.delivery.channels.telegram import host_of
from bot.delivery.outbox.subscribers import Subscribers
from bot.kernel.errors import ConfigError
from bot.kernel.redact import redact

log = logging.getLogger(__name__)

RETRY_FIRST = 2.0
RETRY_MAX = 60.0
REJECTED = ("ALVH_TELEGRAM_TOKEN: Telegram rejected the bot token (401 Unauthorized); "
            "copy it again from @BotFather")


def build_application(
    bot: Bot,
    *,
    subscribers: Subscribers,
    queries: BotQueries,
    access: Access,
) -> App:
    """An ``Application`` on ``bot`` with the handlers registered; not yet polling.

    ``bot`` is the Telegram channel's (a ``telegram.ext.ExtBot``): the command
    replies and the alerts share one bot, one connection pool and one pacer.
    """
    app: App = ApplicationBuilder().bot(bot).job_queue(None).build()
    BotCommands(subscribers, queries, access).register(app)
    return app


async def start_bot(app: App, *, poll_timeout: float = 10.0) -> None:
    """Initialize (getMe), publish the command menu, and start long polling.

    A rejected token is ``ConfigError`` (PTB words it "The token `…` was
    rejected": the token never reaches the message); a network failure is
    raised as the ``TelegramError`` it is, for :func:`connect` to retry.
    Safe to call again after a failure part-way.
    """
    try:
        await app.initialize()
        if not _knows_itself(app.bot):
            # PTB 22.2 (our floor) marks the bot initialized *before* its getMe; after a
            # network failure there, initialize() returns early and start() fails on the
            # missing bot user. Later versions retry getMe themselves.
            await app.bot.get_me()
        await app.bot.set_my_commands([BotCommand(name, what) for name, what in PUBLIC_COMMANDS])
        if not app.running:
            await app.start()
        if app.updater is None:  # pragma: no cover - ApplicationBuilder always makes one
            raise ConfigError("telegram: the application has no updater")
        if not app.updater.running:
            await app.updater.start_polling(
                timeout=dt.timedelta(seconds=poll_timeout), drop_pending_updates=False,
                error_callback=_polling_error,
            )
    except InvalidToken:
        raise ConfigError(REJECTED) from None


def _knows_itself(bot: Bot) -> bool:
    """Whether ``bot`` has cached its getMe answer (``bot.bot`` raises until it has)."""
    try:
        bot.bot  # noqa: B018 - the property raises RuntimeError when getMe never answered
    except RuntimeError:
        return False
    return True


def _polling_error(exc: TelegramError) -> None:
    """PTB retries polling by itself; the channel health already records outages
    (with one log line when Telegram goes down and when it is back)."""
    if isinstance(exc, NetworkError):
        log.debug("telegram: polling: %s", exc.message)
    else:  # e.g. 409 Conflict: another process polls with the same token
        log.warning("telegram: polling refused: %s", exc.message)


async def connect(app: App, *, on_fatal: Callable[[ConfigError], None],
                  rng: random.Random | None = None) -> None:
    """:func:`start_bot` until it succeeds, with capped exponential backoff and jitter."""
    where = host_of(app.bot.base_url)
    rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
    delay = RETRY_FIRST
    while True:
        try:
            await start_bot(app)
        except ConfigError as exc:
            log.error("%s", exc)
            on_fatal(exc)
            return
        except TelegramError as exc:
            wait = delay * (0.5 + 0.5 * rng.random())
            text = redact(exc.message, app.bot.token)
            log.warning("telegram: cannot reach the Bot API at %s (%s: %s); polling retries "
                        "in %.0f s, alerts wait in the outbox", where, type(exc).__name__,
                        text, wait)
            await asyncio.sleep(wait)
            delay = min(RETRY_MAX, delay * 2)
            continue
        me = app.bot.username
        log.info("telegram: connected to %s as @%s; long polling", where, me)
        return


async def stop_bot(app: App) -> None:
    """Stop polling and the application; safe to call when only partly started."""
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    with contextlib.suppress(TelegramError, RuntimeError):
        await app.shutdown()


@contextlib.asynccontextmanager
async def polling(
    app: App, *, on_fatal: Callable[[ConfigError], None] | None = None
) -> AsyncIterator[App]:
    """Connect and long-poll in the background for the ``async with`` block.

    Without ``on_fatal`` the first attempt is made here and a rejected token
    raises ``ConfigError`` at once; with it, everything happens in the
    background and ``on_fatal`` is told.
    """
    if on_fatal is None:
        try:
            await start_bot(app)
        except BaseException:
            await stop_bot(app)
            raise
        task = None
    else:
        task = asyncio.create_task(connect(app, on_fatal=on_fatal), name="telegram-connect")
    try:
        yield app
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await stop_bot(app)
