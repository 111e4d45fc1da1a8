"""Every Bot API request of the bot, paced and observed, whoever makes it.

The command replies (python-telegram-bot's handlers) and the alerts (the
Telegram channel) share one ``ExtBot``; these two hooks sit inside it, so
there is one way for all sends:

* :class:`PacedRequests` is python-telegram-bot's ``BaseRateLimiter`` seam
  (the one its ``AIORateLimiter`` uses), backed by the bot's
  :class:`~bot.delivery.channels.ratelimit.Pacer`. A message the delivery
  worker has already paced is marked ``rate_limit_args={"paced": True}`` and
  passes straight through; anything else (a command reply) waits for its slot
  at :data:`~bot.delivery.channels.ratelimit.REPLY` priority, ahead of the
  fan-out, and after a 429 is sent again once ``retry_after`` has passed.
  ``AIORateLimiter`` itself does not fit: it has no per-private-chat limit,
  and any 429 pauses every chat.
* :class:`ObservedRequest` reports each request's outcome to the channel
  health: any HTTP answer below 500 means Telegram is reachable, a connection
  error, a timeout or a 5xx means it may not be. Long polling goes through
  it too, so an outage and its end are seen even when nothing is being sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import warnings
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from telegram.error import RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.delivery.channels.ratelimit import REPLY, Limits, Pacer

log = logging.getLogger(__name__)

MESSAGE_METHODS = frozenset({
    "sendMessage", "sendPhoto", "sendDocument", "sendMediaGroup", "sendAnimation",
    "sendVideo", "sendAudio", "sendVoice", "sendSticker", "forwardMessage", "copyMessage",
})
"""Requests that put a message into a chat: the ones Telegram's limits count."""

Observer = Callable[[bool, str | None], None]
"""``(reachable, what failed)``."""


def retry_after_seconds(exc: RetryAfter) -> float:
    """``retry_after`` in seconds, whichever type this PTB version gives."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        after = exc.retry_after
    return after.total_seconds() if isinstance(after, dt.timedelta) else float(after)


class PacedRequests(BaseRateLimiter[dict[str, Any]]):
    """See the module docstring."""

    MAX_REPLY_RETRIES: ClassVar[int] = 5
    MAX_REPLY_WAIT: ClassVar[float] = 120.0
    """A reply that would wait longer than this for flood control is dropped
    (logged): an answer minutes late is no answer to a command."""

    def __init__(self, pacer: Pacer, limits: Limits | None = None) -> None:
        self._pacer = pacer
        self.limits = limits
        """The channel whose rates apply (set once the channel exists)."""

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        limits = self.limits
        counted = endpoint in MESSAGE_METHODS and limits is not None
        paced = bool(rate_limit_args and rate_limit_args.get("paced"))
        priority = int((rate_limit_args or {}).get("priority", REPLY))
        chat = data.get("chat_id")
        recipient = str(chat) if chat is not None else None
        waited = 0.0
        for attempt in range(self.MAX_REPLY_RETRIES + 1):
            if counted and not paced:
                assert limits is not None  # noqa: S101 - counted implies it
                await self._pacer.acquire(limits, recipient, priority=priority)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                seconds = retry_after_seconds(exc)
                if limits is not None:
                    self._pacer.hold(limits, recipient if counted else None, seconds)
                waited += seconds
                if paced or attempt == self.MAX_REPLY_RETRIES or waited > self.MAX_REPLY_WAIT:
                    raise
                log.warning("telegram: %s to chat %s refused by flood control; sending it "
                            "again in %.0f s", endpoint, recipient, seconds)
                if not counted:
                    await asyncio.sleep(seconds)
                # A counted request waits out the hold in acquire().
        raise AssertionError("unreachable")  # pragma: no cover


class ObservedRequest(HTTPXRequest):
    """``HTTPXRequest`` that tells ``observe`` whether Telegram answered."""

    def __init__(self, observe: Observer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._observe = observe

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        try:
            code, payload = await super().do_request(*args, **kwargs)
        except TelegramError as exc:  # NetworkError, TimedOut: no answer at all
            self._observe(False, f"{type(exc).__name__}: {exc.message}")
            raise
        self._observe(code < 500, f"HTTP {code}" if code >= 500 else None)
        return code, payload
