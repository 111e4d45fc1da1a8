"""The durable outbox: alerts, their deliveries, and the subscribers they fan out to."""

from bot.delivery.outbox.ops import OpsReporter
from bot.delivery.outbox.outbox import CONSOLE_RECIPIENT, Outbox
from bot.delivery.outbox.queue import Delivery, DeliveryQueue
from bot.delivery.outbox.subscribers import (
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
