"""The Telegram channel: one alert to one chat, in HTML parse mode, part by part.

An alert becomes a short plan of messages (its *parts*): the chart as a photo
with the whole alert as its caption when it fits Telegram's 1,024 characters
(one message instead of two: half the time against the limits), otherwise the
chart with its title, then the HTML text split into parts Telegram accepts.
The plan depends only on the alert (and on where a fallback began), so the
delivery worker can record each part as sent and, after a crash or a retry,
resume at the next one: no part is sent twice, none is skipped.

If Telegram refuses the HTML ("can't parse entities": a compose bug), that
part and the rest go out as plain text, so the user is not left without the
alert, and the part's result carries a note the worker reports to ``ops``.

Every request goes through the bot's pacer and reachability observer
(:mod:`bot.delivery.channels.telegram_requests`) when the channel is built by
:meth:`TelegramChannel.connect`: the command UI shares that bot, so replies
and alerts are paced together.

python-telegram-bot's errors are translated here into the channel errors of
``bot.delivery.channels.base``; nothing outside this module knows about them.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import SecretStr
from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from bot.delivery.channels.base import (
    BaseChannel,
    ChannelEnv,
    ChannelSetup,
    DeliveryRejected,
    DeliveryUnavailable,
    InvalidAddress,
    PartSent,
    Progress,
    Rate,
    RecipientGone,
    RetryLater,
    late_banner,
)
from bot.delivery.channels.ratelimit import BROADCAST, LocalPacer, Pacer
from bot.delivery.channels.telegram_html import (
    MAX_CAPTION,
    MAX_MESSAGE,
    escape,
    split_html,
    split_plain,
    to_plain,
    truncate_html,
    u16len,
)
from bot.delivery.channels.telegram_requests import (
    ObservedRequest,
    PacedRequests,
    retry_after_seconds,
)
from bot.kernel.alerts import Alert
from bot.kernel.redact import redact

if TYPE_CHECKING:
    from bot.delivery.health import ChannelHealth

log = logging.getLogger(__name__)

_GONE = (
    "chat not found",
    "user not found",
    "user is deactivated",
    "bot was kicked",
    "bot was blocked",
    "not enough rights to send",
    "have no rights to send",
    "peer_id_invalid",
)


_CHAT_ID = re.compile(r"^-?\d{1,20}$")


class TelegramSettings(Protocol):
    """The settings the Telegram channel is built from."""

    telegram_token: SecretStr | None
    telegram_base_url: str
    admin_chat_ids: list[int]
    telegram_paid_broadcast: bool


@dataclass(frozen=True)
class _Message:
    html: str | None
    """Telegram HTML, or None for plain text."""
    plain: str
    photo: bytes | None = None

    def as_plain(self) -> _Message:
        return _Message(None, self.plain, self.photo)


class TelegramChannel(BaseChannel):
    """Sends alerts through a python-telegram-bot ``Bot`` (usually ``Application.bot``)."""

    name: ClassVar[str] = "telegram"
    plugin: ClassVar[bool] = True
    address_hint: ClassVar[str] = "a numeric Telegram chat id (negative for groups)"
    MAX_MESSAGE_LENGTH: ClassVar[int] = MAX_MESSAGE
    MAX_CAPTION_LENGTH: ClassVar[int] = MAX_CAPTION
    MESSAGES_PER_SECOND: ClassVar[float] = 30.0
    """Bot-wide: "avoid sending more than 30 messages per second"."""
    PAID_MESSAGES_PER_SECOND: ClassVar[float] = 1000.0
    """With ``allow_paid_broadcast`` (Bot API 7.11): "up to 1000 messages per second,
    ignoring broadcasting limits for a fee of 0.1 Telegram Stars per message"."""
    STARS_PER_PAID_MESSAGE: ClassVar[float] = 0.1
    CHAT_MESSAGES_PER_SECOND: ClassVar[float] = 1.0
    """Per private chat: "avoid sending more than one message per second"."""
    GROUP_MESSAGES_PER_MINUTE: ClassVar[float] = 20.0
    """Per group: "bots are not able to send more than 20 messages per minute"."""
    MAX_REMEMBERED_PLANS: ClassVar[int] = 256

    def __init__(
        self, bot: Bot, *, pacer: Pacer | None = None, paid_broadcast: bool = False
    ) -> None:
        self._bot = bot
        self.paid_broadcast = paid_broadcast
        """Alerts go out with ``allow_paid_broadcast`` (paid in Stars, up to 1,000/s)."""
        self.paid_messages = 0
        """Messages sent with ``allow_paid_broadcast`` since start (0.1 Star each)."""
        self._pacer = pacer or LocalPacer()
        limiter = getattr(bot, "rate_limiter", None)
        self._paced_bot = isinstance(limiter, PacedRequests)
        """Does the bot pace requests itself (then the worker's pacing is flagged)?"""
        self._plans: OrderedDict[tuple[str, bool, int | None], list[_Message]] = OrderedDict()

    @property
    def bot(self) -> Bot:
        """The bot this channel sends through (the command UI polls with the same one)."""
        return self._bot

    # ------------------------------------------------------------------ plugin
    @classmethod
    def connect(
        cls, token: str, *, base_url: str = "https://api.telegram.org/bot",
        pacer: Pacer | None = None, health: ChannelHealth | None = None,
        paid_broadcast: bool = False, **request: Any,
    ) -> TelegramChannel:
        """A channel on an ``ExtBot`` whose every request is paced by ``pacer`` and
        reported to ``health`` (a :class:`bot.delivery.health.ChannelHealth`).

        ``request``: ``HTTPXRequest`` options (timeouts, pool size).
        """
        from telegram.ext import ExtBot

        pacer = pacer or LocalPacer()
        base = base_url.rstrip("/")
        file_base = base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base

        def observe(reachable: bool, error: str | None) -> None:
            if health is None:
                return
            if reachable:
                health.succeeded(cls.name)
            else:
                health.failed(cls.name, f"{host_of(base)}: {error}")

        options = {"connection_pool_size": 64} | request
        # Long polling waits up to its timeout for an answer: its own read timeout.
        poll = {k: v for k, v in options.items() if k != "connection_pool_size"}
        limiter = PacedRequests(pacer)
        bot: Bot = ExtBot(
            token, base_url=base, base_file_url=file_base,
            request=ObservedRequest(observe, **options),
            get_updates_request=ObservedRequest(observe, **poll),
            rate_limiter=limiter,
        )
        channel = cls(bot, pacer=pacer, paid_broadcast=paid_broadcast)
        limiter.limits = channel
        channel.reports_health = health is not None
        return channel

    @classmethod
    def from_settings(cls, settings: TelegramSettings, env: ChannelEnv) -> ChannelSetup | str:
        """On with ``ALVH_TELEGRAM_TOKEN``; admins (``ALVH_ADMIN_CHAT_IDS``) get ``ops``."""
        if settings.telegram_token is None:
            return "Telegram: off (ALVH_TELEGRAM_TOKEN not set)"
        paid = settings.telegram_paid_broadcast
        channel = cls.connect(settings.telegram_token.get_secret_value(),
                              base_url=settings.telegram_base_url, pacer=env.pacer,
                              health=env.health, paid_broadcast=paid)
        admins = tuple(str(int(chat)) for chat in dict.fromkeys(settings.admin_chat_ids))
        how = (f"; paid broadcasts up to {cls.PAID_MESSAGES_PER_SECOND:g} messages/s at "
               f"{cls.STARS_PER_PAID_MESSAGE:g} Star each" if paid else "")
        return ChannelSetup(channel, f"Telegram: on via {host_of(settings.telegram_base_url)}"
                            + how, admins)

    @classmethod
    def owns_address(cls, address: str) -> bool:
        return bool(_CHAT_ID.match(address.strip()))

    @classmethod
    def normalize_address(cls, address: str) -> str:
        if not _CHAT_ID.match(address.strip()):
            raise InvalidAddress(f"a Telegram address is {cls.address_hint}")
        return str(int(address))

    # ------------------------------------------------------------------ limits
    def overall_rate(self) -> Rate:
        return Rate(self.PAID_MESSAGES_PER_SECOND if self.paid_broadcast
                    else self.MESSAGES_PER_SECOND)

    def paid_cost(self, messages: int) -> float:
        """Stars that ``messages`` paid-broadcast messages cost (0 when paid broadcast is off)."""
        return messages * self.STARS_PER_PAID_MESSAGE if self.paid_broadcast else 0.0

    def recipient_rate(self, recipient: str) -> Rate:
        if recipient.startswith("-"):
            return Rate.per_minute(self.GROUP_MESSAGES_PER_MINUTE)
        return Rate(self.CHAT_MESSAGES_PER_SECOND)

    def parts(self, alert: Alert) -> int:
        """How many messages this alert takes (before any fallback)."""
        return len(self.plan(alert))

    # ------------------------------------------------------------------ sending
    async def send_part(self, recipient: str, alert: Alert, progress: Progress) -> PartSent:
        try:
            chat_id = int(recipient)
        except ValueError:
            raise RecipientGone(f"not a Telegram chat id: {recipient[:40]!r}") from None
        plan = self.plan(alert, progress.fallback_at)
        index = progress.sent
        if index >= len(plan):  # pragma: no cover - the worker stops at done
            return PartSent(progress, done=True)
        fallback, note = progress.fallback_at, None
        try:
            try:
                await self._send_one(chat_id, plan[index])
            except BadRequest as exc:
                if plan[index].html is None or "can't parse entities" not in exc.message.lower():
                    raise
                fallback = index
                plan = self.plan(alert, fallback)
                refused = self._redact(exc.message)
                note = f"Telegram refused the HTML ({refused}); sent as plain text"
                log.warning("telegram: %s for alert %s to chat %s", note, alert.key, chat_id)
                await self._send_one(chat_id, plan[index])
        except TelegramError as exc:
            raise self._translate(exc) from None
        done = index + 1 >= len(plan)
        return PartSent(Progress(index + 1, fallback), done=done, note=note)

    async def send(self, recipient: str, alert: Alert) -> None:
        """Every part in order, paced (for callers without a delivery worker)."""
        progress = Progress()
        while True:
            await self._pacer.acquire(self, recipient, priority=BROADCAST)
            result = await self.send_part(recipient, alert, progress)
            if result.done:
                return
            progress = result.progress

    async def _send_one(self, chat_id: int, message: _Message) -> None:
        mode = ParseMode.HTML if message.html is not None else None
        body = message.html if message.html is not None else message.plain
        extra: dict[str, Any] = {}
        if self._paced_bot:  # the worker (or send()) has paced it already
            extra["rate_limit_args"] = {"paced": True, "priority": BROADCAST}
        if self.paid_broadcast:
            extra["allow_paid_broadcast"] = True
        if message.photo is not None:
            await self._bot.send_photo(chat_id, photo=message.photo, caption=body,
                                       parse_mode=mode, **extra)
        else:
            await self._bot.send_message(
                chat_id, body, parse_mode=mode,
                link_preview_options=LinkPreviewOptions(is_disabled=True), **extra,
            )
        if self.paid_broadcast:
            self.paid_messages += 1

    # ------------------------------------------------------------------ planning
    def plan(self, alert: Alert, fallback_at: int | None = None) -> list[_Message]:
        """The messages of ``alert``, plain text from part ``fallback_at`` on.

        Deterministic: the same alert (late flag included) always gives the same
        parts, which is what lets the worker resume at a recorded part.
        """
        key = (alert.key, alert.late, fallback_at)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._html_plan(alert)
            if fallback_at is not None:
                plan = plan[:fallback_at] + self._plain_rest(alert, plan, fallback_at)
            self._plans[key] = plan
            while len(self._plans) > self.MAX_REMEMBERED_PLANS:
                self._plans.popitem(last=False)
        return plan

    def _html_plan(self, alert: Alert) -> list[_Message]:
        body = alert.html
        if alert.late:
            body = f"<i>{escape(late_banner(alert))}</i>\n\n{body}"
        if alert.chart_png and u16len(to_plain(body)) <= self.MAX_CAPTION_LENGTH:
            return [_Message(body, to_plain(body), alert.chart_png)]
        messages: list[_Message] = []
        if alert.chart_png:
            caption = f"<b>{escape(alert.title)}</b>"
            if alert.late:
                caption = f"{escape(late_banner(alert))}\n{caption}"
            caption = truncate_html(caption, self.MAX_CAPTION_LENGTH)
            messages.append(_Message(caption, to_plain(caption), alert.chart_png))
            body = alert.html
        for part in split_html(body, self.MAX_MESSAGE_LENGTH):
            messages.append(_Message(part, to_plain(part)))
        return messages

    def _plain_rest(self, alert: Alert, plan: list[_Message], start: int) -> list[_Message]:
        """The parts from ``start`` on, as plain text.

        While no text part has gone out, that is the alert's own plain version
        (composed for email and the console, better laid out than HTML with its
        tags dropped); after, the visible text of the HTML parts still to send.
        """
        banner = late_banner(alert) + "\n\n" if alert.late else ""
        whole = banner + alert.text
        rest = plan[start:]
        if rest and rest[0].photo is not None:
            photo = rest[0]
            if len(plan) == 1:  # the whole alert was the caption
                caption = whole if u16len(whole) <= self.MAX_CAPTION_LENGTH else photo.plain
                return [_Message(None, caption, photo.photo)]
            rest = rest[1:]
            head = [photo.as_plain()]
        else:
            head = []
        if any(m.photo is None for m in plan[:start]):  # some text already went out
            return head + [m.as_plain() for m in rest]
        return head + [_Message(None, part) for part in split_plain(whole, self.MAX_MESSAGE_LENGTH)]

    # ------------------------------------------------------------------ errors
    def _redact(self, text: str) -> str:
        return redact(text, self._bot.token)

    def _translate(self, exc: TelegramError) -> Exception:
        text = self._redact(exc.message).split(". Parsing the server response")[0]
        if isinstance(exc, RetryAfter):
            seconds = retry_after_seconds(exc)
            return RetryLater(seconds, f"telegram flood control: retry after {seconds:g} s")
        if isinstance(exc, Forbidden):
            return RecipientGone(f"telegram: {text}")
        if isinstance(exc, ChatMigrated):
            return RecipientGone(f"telegram: group moved to supergroup {exc.new_chat_id}")
        if isinstance(exc, BadRequest):
            if any(marker in text.lower() for marker in _GONE):
                return RecipientGone(f"telegram: {text}")
            return DeliveryRejected(f"telegram: {text}")
        if isinstance(exc, InvalidToken):
            # The token was revoked while running: nothing can be sent until an admin
            # fixes it, so the deliveries wait (and expire) rather than fail one by one.
            return DeliveryUnavailable("telegram: the bot token was rejected (401 Unauthorized)")
        if isinstance(exc, NetworkError):  # includes TimedOut and 5xx
            return DeliveryUnavailable(f"telegram: {type(exc).__name__}: {text}")
        return DeliveryUnavailable(f"telegram: {type(exc).__name__}: {text}")


def host_of(base_url: str) -> str:
    """``host:port`` of the Bot API server, for logs (never the token in the path)."""
    parts = urllib.parse.urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"
