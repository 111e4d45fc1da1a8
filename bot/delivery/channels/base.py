"""What every channel is, and the errors a channel may raise.

The delivery worker knows nothing about Telegram or SMTP: it sees one async
``send(recipient, alert)`` and four outcomes, each of which dictates one
action. Channels translate their library's errors into these, so a new
channel cannot invent a fifth behaviour by accident.

==========================  ===========================================
error                       what the worker does
==========================  ===========================================
``RetryLater(seconds)``     wait that long (and slow the whole channel)
``DeliveryUnavailable``     retry with backoff; give up after N tries
``RecipientGone``           deactivate that subscriber, never retry
``DeliveryRejected``        fail this delivery, tell the admins
==========================  ===========================================

A channel is also a *plugin*: its class says what it is called, what an
address looks like (and how to write it canonically, so one person is one
subscriber row), how to show an address without its secrets, and how it is
built from the settings (:meth:`BaseChannel.from_settings`, which also names
the admin addresses that receive ``ops`` through it). The composition root
asks :mod:`bot.delivery.channels.registry` for every channel class and
builds those that are configured; the outbox, the subscriber store and the
CLI only ever see names, so adding a channel touches its own module, its
settings and its tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TextIO

from bot.kernel.alerts import Alert
from bot.kernel.errors import ConfigError, PermanentError, TemporaryError


class RetryLater(TemporaryError):
    """Flood control: the service said when to try again."""

    def __init__(self, seconds: float, message: str = "") -> None:
        super().__init__(message or f"rate limited: retry after {seconds:g} s")
        self.seconds = float(seconds)


class DeliveryUnavailable(TemporaryError):
    """Timeouts, connection errors, 5xx, SMTP 4xx: the same send may work later."""


class RecipientGone(PermanentError):
    """The recipient cannot receive anything (blocked the bot, no such mailbox)."""


class DeliveryRejected(PermanentError):
    """This message was refused for what it is; resending it would fail again."""


class InvalidAddress(ConfigError):
    """Not an address this channel can deliver to; the message says what is expected."""


ProblemReport = Callable[[Alert, str, str, str], None]
"""``report(alert, channel, recipient, detail)``: a delivery succeeded in a
degraded way (e.g. HTML refused, sent as plain text) and the admins should
know. Wired to the outbox's ``ops`` topic by the entry point."""


@dataclass(frozen=True, slots=True)
class Rate:
    """``per_second`` sustained, at most ``burst`` at once (a token bucket)."""

    per_second: float
    burst: float = 1.0

    @classmethod
    def per_minute(cls, count: float, burst: float = 1.0) -> Rate:
        return cls(count / 60.0, burst)


@dataclass(frozen=True, slots=True)
class ChannelEnv:
    """What the composition root hands every channel it builds, besides the settings."""

    console: TextIO | None = None
    """Where the console channel prints (None: ``sys.stdout`` at the time of writing)."""
    report: ProblemReport | None = None
    """How a channel tells the admins that a delivery succeeded in a degraded way."""


@dataclass(frozen=True, slots=True)
class ChannelSetup:
    """A channel built from the settings, how to describe it, and who gets ``ops`` by it."""

    channel: Channel
    described: str
    """One line for the start-up log, e.g. ``email: on via smtp.example.com:587``."""
    admins: tuple[str, ...] = ()
    """Canonical addresses that receive ``ops`` alerts through this channel."""
    configured: bool = True
    """False for a channel that is on without any setting (Apprise: the URLs are the
    subscribers'): it does not stop the console from printing every alert."""


class Channel(Protocol):
    """The worker's view of a channel."""

    name: ClassVar[str]

    def overall_rate(self) -> Rate | None:
        """Limit across all recipients, or None."""

    def recipient_rate(self, recipient: str) -> Rate | None:
        """Limit for one recipient, or None."""

    def cost(self, alert: Alert) -> int:
        """Messages this alert will take (rate-limit tokens)."""

    async def send(self, recipient: str, alert: Alert) -> None:
        """Deliver or raise one of the errors above."""

    @classmethod
    def shown_address(cls, address: str) -> str:
        """The address as logs and messages may show it."""


class BaseChannel:
    """Defaults: no limits, one message per alert, addresses taken as written."""

    name: ClassVar[str] = "base"
    plugin: ClassVar[bool] = False
    """True for channels the registry offers (subscribable, built from settings)."""
    address_hint: ClassVar[str] = "an address"
    """What an address looks like, for error messages and ``--help``."""

    @classmethod
    def from_settings(cls, settings: Any, env: ChannelEnv) -> ChannelSetup | str:
        """Build the channel from the settings, or say in one line why it is off.

        ``settings`` is the application's settings object; each channel reads
        only the attributes it declares in a ``Protocol`` of its own (the
        settings model itself lives in the composition root).
        """
        return f"{cls.name}: not configurable"

    @classmethod
    def owns_address(cls, address: str) -> bool:
        """Does ``address`` look like one of this channel's (for ``subscribers add``)?"""
        return False

    @classmethod
    def normalize_address(cls, address: str) -> str:
        """The canonical form of an address, or :class:`InvalidAddress`."""
        address = address.strip()
        if not address:
            raise InvalidAddress(f"{cls.name}: empty address; expected {cls.address_hint}")
        return address

    @classmethod
    def shown_address(cls, address: str) -> str:
        """The address as logs and messages may show it (secrets in it masked)."""
        return address

    def overall_rate(self) -> Rate | None:
        return None

    def recipient_rate(self, recipient: str) -> Rate | None:
        return None

    def cost(self, alert: Alert) -> int:
        return 1


def late_banner(alert: Alert) -> str:
    """The first line of an alert that reaches the user after its intended time."""
    return f"⏱ delivered late — for the session of {alert.session.isoformat()}"
