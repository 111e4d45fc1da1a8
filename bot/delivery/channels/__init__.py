"""Delivery channels: Telegram, email, console. Each is a class with one async ``send``."""

from bot.delivery.channels.base import (
    BaseChannel,
    Channel,
    DeliveryRejected,
    DeliveryUnavailable,
    ProblemReport,
    Rate,
    RecipientGone,
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
    "RetryLater",
]
