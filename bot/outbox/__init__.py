"""The durable outbox: alerts, their deliveries, and the subscribers they fan out to."""

from bot.outbox.ops import OpsReporter
from bot.outbox.outbox import CONSOLE_RECIPIENT, Outbox
from bot.outbox.queue import Delivery, DeliveryQueue
from bot.outbox.subscribers import (
    SUBSCRIBABLE,
    InvalidSubscription,
    Subscriber,
    Subscribers,
    normalize_address,
    parse_topics,
)

__all__ = [
    "CONSOLE_RECIPIENT",
    "SUBSCRIBABLE",
    "Delivery",
    "DeliveryQueue",
    "InvalidSubscription",
    "OpsReporter",
    "Outbox",
    "Subscriber",
    "Subscribers",
    "normalize_address",
    "parse_topics",
]
