"""The durable outbox: alerts, their deliveries, and the subscribers they fan out to."""

from bot.delivery.outbox.ops import OpsReporter
from bot.delivery.outbox.outbox import Outbox, Standing
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
    "SUBSCRIBABLE",
    "Delivery",
    "DeliveryQueue",
    "InvalidSubscription",
    "OpsReporter",
    "Outbox",
    "Standing",
    "Subscriber",
    "Subscribers",
    "normalize_address",
    "parse_topics",
]
