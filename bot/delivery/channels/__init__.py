"""Delivery channels: Telegram, email, console, Apprise. Each is a class that sends one
part of an alert at a time (``send_part``; one-part channels just write ``send``)."""

from bot.delivery.channels.base import (
    BaseChannel,
    Channel,
    DeliveryRejected,
    DeliveryUnavailable,
    PartSent,
    Progress,
    Rate,
    RecipientGone,
    RetryLater,
)

__all__ = [
    "BaseChannel",
    "Channel",
    "DeliveryRejected",
    "DeliveryUnavailable",
    "PartSent",
    "Progress",
    "Rate",
    "RecipientGone",
    "RetryLater",
]
