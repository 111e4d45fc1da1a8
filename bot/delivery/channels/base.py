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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

from bot.kernel.alerts import Alert
from bot.kernel.errors import PermanentError, TemporaryError


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


class BaseChannel:
    """Defaults: no limits, one message per alert."""

    name: ClassVar[str] = "base"

    def overall_rate(self) -> Rate | None:
        return None

    def recipient_rate(self, recipient: str) -> Rate | None:
        return None

    def cost(self, alert: Alert) -> int:
        return 1


def late_banner(alert: Alert) -> str:
    """The first line of an alert that reaches the user after its intended time."""
    return f"⏱ delivered late — for the session of {alert.session.isoformat()}"
