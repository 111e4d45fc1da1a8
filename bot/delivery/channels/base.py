"""What every channel is, and the errors a channel may raise.

The delivery worker knows nothing about Telegram or SMTP: it sees one async
``send(recipient, alert)`` and four outcomes, each of which dictates one
action. Channels translate their library's errors into these, so a new
channel cannot invent a fifth behaviour by accident.

==========================  ===========================================
error                       what the worker does
==========================  ===========================================
``RetryLater(seconds)``     hold that recipient (or the whole channel) that long
``DeliveryUnavailable``     retry with backoff until the alert is too old
``RecipientGone``           deactivate that subscriber, never retry
``DeliveryRejected``        fail this delivery, tell the admins
==========================  ===========================================

Transient is never terminal: a delivery that keeps meeting
``DeliveryUnavailable`` stays pending until the alert is older than the
worker's ``max_age``; only the two permanent errors end a delivery early.

An alert may take several *parts* on a channel (Telegram: the chart as a
photo, then the text). The worker asks for one part at a time
(:meth:`Channel.send_part`) and records each one before asking for the next,
so a crash or a retry never repeats a part already sent nor skips one.

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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TextIO

from bot.kernel.alerts import Alert
from bot.kernel.errors import ConfigError, PermanentError, TemporaryError

if TYPE_CHECKING:
    from bot.delivery.channels.ratelimit import Pacer
    from bot.delivery.health import ChannelHealth


class RetryLater(TemporaryError):
    """Flood control: the service said when to try again.

    ``recipient_only``: the refusal is about this recipient (Telegram's
    per-chat limit), so only they wait; otherwise the whole channel does.
    """

    def __init__(self, seconds: float, message: str = "", *, recipient_only: bool = True) -> None:
        super().__init__(message or f"rate limited: retry after {seconds:g} s")
        self.seconds = float(seconds)
        self.recipient_only = recipient_only


class DeliveryUnavailable(TemporaryError):
    """Timeouts, connection errors, 5xx, SMTP 4xx: the same send may work later.

    ``unreachable``: the service itself did not answer (connection refused,
    timeout, 5xx), as opposed to a temporary refusal of one recipient (an
    SMTP 450 for one mailbox): only the former counts against the channel's
    health and puts it in probing mode.
    """

    def __init__(self, message: str = "", *, unreachable: bool = True) -> None:
        super().__init__(message)
        self.unreachable = unreachable


class RecipientGone(PermanentError):
    """The recipient cannot receive anything (blocked the bot, no such mailbox)."""


class DeliveryRejected(PermanentError):
    """This message was refused for what it is; resending it would fail again."""


class InvalidAddress(ConfigError):
    """Not an address this channel can deliver to; the message says what is expected."""


@dataclass(frozen=True, slots=True)
class Progress:
    """How far one delivery has got: durable, recorded after every part."""

    sent: int = 0
    """Parts already delivered."""
    fallback_at: int | None = None
    """The part from which on the channel sends its fallback form (Telegram:
    plain text after the HTML was refused), or None."""


@dataclass(frozen=True, slots=True)
class PartSent:
    """What one successful :meth:`Channel.send_part` achieved."""

    progress: Progress
    done: bool
    """True when this was the last part."""
    note: str | None = None
    """A degraded delivery the admins should hear of (e.g. "Telegram refused the
    HTML (…); sent as plain text"); reported once per alert and channel."""


ONE_PART = PartSent(Progress(1), done=True)


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
    pacer: Pacer | None = None
    """The pacer every send goes through (the Telegram channel puts its command
    replies through it as well)."""
    health: ChannelHealth | None = None
    """Where a channel reports its service's reachability (the Telegram channel:
    every Bot API request, long polling included)."""
    unsubscribe: Callable[[str, str], str | None] | None = None
    """``(channel, address) -> one-click unsubscribe URL`` (email), or None."""


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
    reports_health: bool
    """Does the channel report every request to the channel health itself?"""

    def overall_rate(self) -> Rate | None:
        """Limit across all recipients, or None."""

    def recipient_rate(self, recipient: str) -> Rate | None:
        """Limit for one recipient, or None."""

    async def send_part(self, recipient: str, alert: Alert, progress: Progress) -> PartSent:
        """Deliver the next part (``progress.sent``) or raise one of the errors above."""

    @classmethod
    def shown_address(cls, address: str) -> str:
        """The address as logs and messages may show it."""


class BaseChannel:
    """Defaults: no limits, one part per alert, addresses taken as written.

    A one-part channel implements :meth:`send`; a channel whose alerts take
    several messages overrides :meth:`send_part`.
    """

    name: ClassVar[str] = "base"
    plugin: ClassVar[bool] = False
    """True for channels the registry offers (subscribable, built from settings)."""
    address_hint: ClassVar[str] = "an address"
    """What an address looks like, for error messages and ``--help``."""
    reports_health: bool = False
    """True when the channel tells the channel health about every request itself
    (Telegram built by ``connect``): the worker then does not count its sends twice."""

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

    async def send(self, recipient: str, alert: Alert) -> None:
        """Deliver a whole alert (one-part channels implement this)."""
        raise NotImplementedError

    async def send_part(self, recipient: str, alert: Alert, progress: Progress) -> PartSent:
        await self.send(recipient, alert)
        return replace(ONE_PART, progress=Progress(1, progress.fallback_at))


def late_banner(alert: Alert) -> str:
    """The first line of an alert that reaches the user after its intended time."""
    return f"⏱ delivered late — for the session of {alert.session.isoformat()}"
