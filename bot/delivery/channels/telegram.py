"""The Telegram channel: one alert to one chat, in HTML parse mode.

An alert becomes a short plan of messages: the chart as a photo with a short
caption (if there is one), then the HTML text split into parts that Telegram
accepts. The plan is remembered per (chat, alert) until it completes, so a
retry after a failure on part 3 resumes at part 3 instead of repeating parts
1 and 2.

If Telegram still refuses the HTML ("can't parse entities": a compose bug),
the alert goes out as plain text so the user is not left without it, and the
admins are told through the ``report`` hook.

python-telegram-bot's errors are translated here into the channel errors of
``bot.delivery.channels.base``; nothing outside this module knows about them.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

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
from telegram.warnings import PTBDeprecationWarning

from bot.delivery.channels.base import (
    BaseChannel,
    ChannelEnv,
    ChannelSetup,
    DeliveryRejected,
    DeliveryUnavailable,
    InvalidAddress,
    ProblemReport,
    Rate,
    RecipientGone,
    RetryLater,
    late_banner,
)
from bot.delivery.channels.telegram_html import (
    MAX_CAPTION,
    MAX_MESSAGE,
    escape,
    split_html,
    split_plain,
    to_plain,
    truncate_html,
)
from bot.kernel.alerts import Alert
from bot.kernel.redact import redact

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


@dataclass
class _Message:
    html: str | None
    """Telegram HTML, or None for plain text."""
    plain: str
    photo: bytes | None = None


@dataclass
class _Plan:
    messages: list[_Message]
    done: int = 0
    text_started: bool = False
    fallback: bool = False
    notes: list[str] = field(default_factory=list)


class TelegramChannel(BaseChannel):
    """Sends alerts through a python-telegram-bot ``Bot`` (usually ``Application.bot``)."""

    name: ClassVar[str] = "telegram"
    plugin: ClassVar[bool] = True
    address_hint: ClassVar[str] = "a numeric Telegram chat id (negative for groups)"
    MAX_MESSAGE_LENGTH: ClassVar[int] = MAX_MESSAGE
    MAX_CAPTION_LENGTH: ClassVar[int] = MAX_CAPTION
    MESSAGES_PER_SECOND: ClassVar[float] = 30.0
    """Bot-wide: "avoid sending more than 30 messages per second"."""
    CHAT_MESSAGES_PER_SECOND: ClassVar[float] = 1.0
    """Per private chat: "avoid sending more than one message per second"."""
    GROUP_MESSAGES_PER_MINUTE: ClassVar[float] = 20.0
    """Per group: "bots are not able to send more than 20 messages per minute"."""
    MAX_REMEMBERED_PLANS: ClassVar[int] = 10_000

    def __init__(self, bot: Bot, *, report: ProblemReport | None = None) -> None:
        self._bot = bot
        self._report = report
        self._plans: OrderedDict[tuple[str, str], _Plan] = OrderedDict()
        self._costs: OrderedDict[str, int] = OrderedDict()

    @property
    def bot(self) -> Bot:
        """The bot this channel sends through (the command UI polls with the same one)."""
        return self._bot

    # ------------------------------------------------------------------ plugin
    @classmethod
    def from_settings(cls, settings: TelegramSettings, env: ChannelEnv) -> ChannelSetup | str:
        """On with ``ALVH_TELEGRAM_TOKEN``; admins (``ALVH_ADMIN_CHAT_IDS``) get ``ops``."""
        if settings.telegram_token is None:
            return "Telegram: off (ALVH_TELEGRAM_TOKEN not set)"
        from telegram.ext import ExtBot

        base = settings.telegram_base_url.rstrip("/")
        file_base = base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base
        bot: Bot = ExtBot(settings.telegram_token.get_secret_value(), base_url=base,
                          base_file_url=file_base)
        admins = tuple(str(int(chat)) for chat in dict.fromkeys(settings.admin_chat_ids))
        return ChannelSetup(cls(bot, report=env.report), "Telegram: on", admins)

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
        return Rate(self.MESSAGES_PER_SECOND)

    def recipient_rate(self, recipient: str) -> Rate:
        if recipient.startswith("-"):
            return Rate.per_minute(self.GROUP_MESSAGES_PER_MINUTE)
        return Rate(self.CHAT_MESSAGES_PER_SECOND)

    def cost(self, alert: Alert) -> int:
        cached = self._costs.get(alert.key)
        if cached is None:
            cached = len(self._plan(alert).messages)
            self._costs[alert.key] = cached
            if len(self._costs) > 256:
                self._costs.popitem(last=False)
        return cached

    # ------------------------------------------------------------------ sending
    async def send(self, recipient: str, alert: Alert) -> None:
        try:
            chat_id = int(recipient)
        except ValueError:
            raise RecipientGone(f"not a Telegram chat id: {recipient[:40]!r}") from None
        key = (recipient, alert.key)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._plan(alert)
            while len(self._plans) > self.MAX_REMEMBERED_PLANS:
                self._plans.popitem(last=False)
        try:
            await self._run(chat_id, alert, plan)
        except TelegramError as exc:
            error = self._translate(exc)
            if not isinstance(error, RetryLater | DeliveryUnavailable):
                self._plans.pop(key, None)
            raise error from None
        self._plans.pop(key, None)
        if plan.fallback and self._report is not None:
            self._report(alert, self.name, recipient, "; ".join(plan.notes))

    async def _run(self, chat_id: int, alert: Alert, plan: _Plan) -> None:
        while plan.done < len(plan.messages):
            message = plan.messages[plan.done]
            try:
                await self._send_one(chat_id, message)
            except BadRequest as exc:
                if message.html is None or "can't parse entities" not in exc.message.lower():
                    raise
                self._fall_back(alert, plan, self._redact(exc.message))
                continue
            if message.photo is None:
                plan.text_started = True
            plan.done += 1

    async def _send_one(self, chat_id: int, message: _Message) -> None:
        mode = ParseMode.HTML if message.html is not None else None
        body = message.html if message.html is not None else message.plain
        if message.photo is not None:
            await self._bot.send_photo(chat_id, photo=message.photo, caption=body, parse_mode=mode)
        else:
            await self._bot.send_message(
                chat_id,
                body,
                parse_mode=mode,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )

    def _fall_back(self, alert: Alert, plan: _Plan, reason: str) -> None:
        """Replace what is left of the plan by plain text."""
        current = plan.messages[plan.done]
        note = f"Telegram refused the HTML ({reason}); sent as plain text"
        plan.fallback = True
        plan.notes.append(note)
        log.warning("telegram: %s for alert %s", note, alert.key)
        if current.photo is not None:
            plan.messages[plan.done] = _Message(None, current.plain, current.photo)
            return
        if plan.text_started:
            rest = "".join(to_plain(m.html or m.plain) for m in plan.messages[plan.done :])
        else:
            rest = (late_banner(alert) + "\n\n" if alert.late else "") + alert.text
        plan.messages[plan.done :] = [_Message(None, part) for part in split_plain(rest)]

    # ------------------------------------------------------------------ planning
    def _plan(self, alert: Alert) -> _Plan:
        messages: list[_Message] = []
        if alert.chart_png:
            caption = f"<b>{escape(alert.title)}</b>"
            caption_plain = alert.title
            if alert.late:
                caption = f"{escape(late_banner(alert))}\n{caption}"
                caption_plain = f"{late_banner(alert)}\n{caption_plain}"
            messages.append(
                _Message(
                    truncate_html(caption, self.MAX_CAPTION_LENGTH),
                    caption_plain[: self.MAX_CAPTION_LENGTH],
                    alert.chart_png,
                )
            )
        body = alert.html
        if alert.late and not alert.chart_png:
            body = f"<i>{escape(late_banner(alert))}</i>\n\n{body}"
        for part in split_html(body, self.MAX_MESSAGE_LENGTH):
            messages.append(_Message(part, to_plain(part)))
        return _Plan(messages)

    # ------------------------------------------------------------------ errors
    def _redact(self, text: str) -> str:
        return redact(text, self._bot.token)

    def _translate(self, exc: TelegramError) -> Exception:
        text = self._redact(exc.message)
        if isinstance(exc, RetryAfter):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PTBDeprecationWarning)
                after = exc.retry_after
            seconds = after.total_seconds() if isinstance(after, dt.timedelta) else float(after)
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
            return DeliveryRejected("telegram: the bot token was rejected")
        if isinstance(exc, NetworkError):  # includes TimedOut
            return DeliveryUnavailable(f"telegram: {type(exc).__name__}: {text}")
        return DeliveryUnavailable(f"telegram: {type(exc).__name__}: {text}")
