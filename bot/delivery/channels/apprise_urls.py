"""The Apprise channel: one channel for Discord, Slack, ntfy, Pushover, Matrix, webhooks…

Apprise (https://github.com/caronc/apprise) turns a URL into a notification
service: ``ntfy://ntfy.sh/my-topic``, ``discord://webhook_id/webhook_token``,
``slack://…``, ``pover://user@token``, ``json://host/path`` for a generic
webhook. A subscriber's address *is* such a URL, so one channel serves every
service Apprise knows without a line of ours per service.

Those URLs carry credentials (a webhook token is the key to post as the
subscriber), so an address is only ever shown through Apprise's privacy
rendering (``discord://1...7/…``) and error texts are scrubbed of its
parts. Apprise reports a failure in its result's logs, not as an exception:
``error=404`` (the webhook was deleted) means the recipient is gone, other
4xx refuse this message, and 5xx, timeouts and connection errors are
temporary.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from typing import ClassVar, Protocol

import apprise
from apprise.attachment.memory import AttachMemory
from pydantic import SecretStr

from bot.delivery.channels.base import (
    BaseChannel,
    ChannelEnv,
    ChannelSetup,
    DeliveryRejected,
    DeliveryUnavailable,
    InvalidAddress,
    Rate,
    RecipientGone,
    RetryLater,
    late_banner,
)
from bot.kernel.alerts import Alert
from bot.kernel.errors import ConfigError
from bot.kernel.redact import redact

# Apprise logs each failure itself, sometimes with a host or path in it; the
# worker logs the same failure once, scrubbed. So Apprise's records stay with
# Apprise (its per-call capture, read below) and never reach our handlers.
logging.getLogger("apprise").propagate = False

_STATUS = re.compile(r"error=(\d{3})")
GONE_STATUSES = frozenset({404, 410})
"""A webhook or topic that no longer exists: the subscriber is deactivated."""
RATE_LIMITED_SECONDS = 60.0
"""How long to hold back after a 429: Apprise does not pass ``Retry-After`` on."""


class AppriseSettings(Protocol):
    """The settings the Apprise channel is built from."""

    apprise_admin_urls: list[SecretStr]


class AppriseChannel(BaseChannel):
    """Delivers an alert to one Apprise URL: title, plain text, the chart attached."""

    name: ClassVar[str] = "apprise"
    plugin: ClassVar[bool] = True
    address_hint: ClassVar[str] = (
        "an Apprise URL such as ntfy://ntfy.sh/my-topic, discord://id/token or "
        "json://host/path"
    )
    MESSAGES_PER_MINUTE: ClassVar[float] = 20.0
    """Per URL. Discord webhooks allow 30/min, ntfy a burst then 1 per 5 s: 20/min
    fits the strictest common one while a day's alerts still go out at once."""

    def __init__(self, *, timeout: float = 30.0) -> None:
        self._timeout = timeout

    # ------------------------------------------------------------------ plugin
    @classmethod
    def from_settings(cls, settings: AppriseSettings, env: ChannelEnv) -> ChannelSetup:
        """Always on (each subscriber's URL carries what it needs); the URLs in
        ``ALVH_APPRISE_ADMIN_URLS`` receive ``ops``."""
        admins = tuple(_admin_url(url.get_secret_value(), i, len(settings.apprise_admin_urls))
                       for i, url in enumerate(settings.apprise_admin_urls, start=1))
        extra = f"; {len(admins)} admin URL(s) get ops" if admins else ""
        return ChannelSetup(cls(), f"apprise: on (subscribers' Apprise URLs{extra})", admins,
                            configured=bool(admins))

    @classmethod
    def owns_address(cls, address: str) -> bool:
        return "://" in address and apprise.Apprise.instantiate(address.strip()) is not None

    @classmethod
    def normalize_address(cls, address: str) -> str:
        address = address.strip()
        if "://" not in address:  # nothing of it is echoed: it may hold a token
            raise InvalidAddress(f"not a URL (no “://”); expected {cls.address_hint}")
        if apprise.Apprise.instantiate(address) is None:
            scheme = address.split("://", 1)[0]
            shown = (f"scheme “{scheme}”" if _SCHEME.fullmatch(scheme)
                     else "no scheme before “://”")
            raise InvalidAddress(f"not a URL Apprise understands ({shown}); "
                                 f"expected {cls.address_hint}")
        return address

    @classmethod
    def shown_address(cls, address: str) -> str:
        """Scheme and host only (user and password masked by Apprise), path dropped.

        The path is where webhook tokens and ntfy topics live, and Apprise's
        own privacy rendering keeps it for generic webhooks (``json://``).
        """
        plugin = apprise.Apprise.instantiate(address)
        rendered = address
        if plugin is not None:
            rendered = str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]
        parts = urllib.parse.urlsplit(rendered)
        netloc = parts.netloc if plugin is not None else "…"
        return f"{parts.scheme}://{netloc}/…"

    # ------------------------------------------------------------------ limits
    def recipient_rate(self, recipient: str) -> Rate:
        return Rate.per_minute(self.MESSAGES_PER_MINUTE)

    # ------------------------------------------------------------------ sending
    async def send(self, recipient: str, alert: Alert) -> None:
        notifier = apprise.Apprise()
        if not notifier.add(recipient):
            raise RecipientGone(f"apprise: {self.shown_address(recipient)} is not a usable URL")
        attach = None
        if alert.chart_png:
            attach = apprise.AppriseAttachment()
            png = AttachMemory(  # type: ignore[no-untyped-call]
                content=alert.chart_png, name="alvh-chart.png", mimetype="image/png")
            attach.add(png)
        body = (late_banner(alert) + "\n\n" if alert.late else "") + alert.text
        result = await notifier.async_notify(
            body=body, title=alert.title, body_format=apprise.NotifyFormat.TEXT,
            attach=attach, timeout=self._timeout,
        )
        if result:
            return
        raise self._error(recipient, _failure_text(result))

    def _error(self, recipient: str, text: str) -> Exception:
        shown = self.shown_address(recipient)
        text = redact(text, *_secret_parts(recipient)) or "no reason given"
        message = f"apprise: {shown}: {text}"
        match = _STATUS.search(text)
        status = int(match[1]) if match else None
        if status == 429:
            return RetryLater(RATE_LIMITED_SECONDS, message)
        if status in GONE_STATUSES:
            return RecipientGone(message)
        if status is not None and 400 <= status < 500 and status != 408:
            return DeliveryRejected(message)
        # Each URL is a service of its own (a Discord webhook, an ntfy server…): one that
        # fails says nothing about the others, so it never puts the channel in probing mode.
        return DeliveryUnavailable(message, unreachable=False)


def _failure_text(result: apprise.AppriseResult) -> str:
    """The messages Apprise logged for the failed attempts, most recent last."""
    lines: list[str] = []
    for service in result:
        for attempt in service.attempts:
            lines += [entry.message for entry in attempt.logs]
    if not lines:
        lines.append(f"status {result.status.name.lower()}")
    return "; ".join(dict.fromkeys(lines))


def _secret_parts(url: str) -> list[str]:
    """Pieces of a URL that may be credentials (user, password, path segments, values)."""
    parts = urllib.parse.urlsplit(url)
    pieces = [parts.username, parts.password, *parts.path.split("/")]
    pieces += [value for _, value in urllib.parse.parse_qsl(parts.query)]
    return [p for p in pieces if p and len(p) >= 6]


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,15}")
"""What an Apprise scheme looks like; anything else before ``://`` is not echoed."""


def _admin_url(url: str, number: int, count: int) -> str:
    """A URL of ``ALVH_APPRISE_ADMIN_URLS``, or ConfigError naming the variable (a secret:
    the value is never shown, only which one of the list it is)."""
    try:
        return AppriseChannel.normalize_address(url)
    except InvalidAddress as exc:
        raise ConfigError(f"ALVH_APPRISE_ADMIN_URLS (URL {number} of {count}): {exc}") from None
