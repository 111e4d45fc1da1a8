"""What ``/healthz`` says about delivery: the outbox's backlog and each channel.

Delivery is *failing* (503) when an alert has waited longer than
``ALVH_DELIVERY_PENDING_ALERT_MINUTES`` or a delivery expired undelivered in
the last day: either means someone did not get an alert they were promised.
A channel that is down shows as ``down`` with its error; by itself it is not
a failure until deliveries wait too long (a 2-minute Telegram blip is not an
incident, a 40-minute one is).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from bot.app.health import Health
from bot.delivery.health import ChannelHealth
from bot.delivery.outbox import DeliveryQueue

EXPIRED_WINDOW = dt.timedelta(days=1)


def delivery_health(
    queue: DeliveryQueue, channels: ChannelHealth, names: list[str], *,
    pending_alert: dt.timedelta, clock: Callable[[], dt.datetime] | None = None,
) -> Callable[[], Health]:
    def health() -> Health:
        now = clock() if clock is not None else queue.now()
        stats = queue.stats(since=now - EXPIRED_WINDOW)
        age = (now - stats.oldest_pending).total_seconds() if stats.oldest_pending else None
        problems = []
        if age is not None and age > pending_alert.total_seconds():
            problems.append(f"a delivery has been pending for {age / 60:.0f} min "
                            f"(limit {pending_alert.total_seconds() / 60:.0f} min)")
        if stats.expired_since:
            problems.append(f"{stats.expired_since} deliveries expired undelivered in the last day")
        body = {
            "deliveries": {
                "status": "failing" if problems else "ok",
                "pending": stats.pending,
                "retrying": stats.retrying,
                "expired_last_day": stats.expired_since,
                "oldest_pending_seconds": round(age, 1) if age is not None else None,
                "problems": problems,
            },
            "channels": channels.as_json(names),
        }
        return Health(not problems, body)

    return health
