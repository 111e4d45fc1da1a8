"""Delivery channels: Telegram, email, console. Each is a class with one async ``send``."""

from bot.channels.base import (
    BaseChannel,
    Channel,
    DeliveryRejected,
    DeliveryUnavailable,
    ProblemReport,
    Rate,
    RecipientGone,
    RedactingFilter,
    RetryLater,
)

__all__ = [
    "BaseChannel",
    "Channel",
    "DeliveryRejected",
    "DeliveryUnavailable",
    "ProblemReport",
    "Rate",
    "RecipientGone",
    "RedactingFilter",
    "RetryLater",
]
