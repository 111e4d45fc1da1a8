"""The outbox: alerts are stored, and fanned out to deliveries, before anything is sent.

``enqueue`` is the only way an alert reaches a user. In one transaction it
stores each new alert under its key and creates one delivery row per active
subscriber of the alert's topic (``ops``: one per admin address). Re-running
a session enqueues the same keys again, which is a no-op: no second alert,
no second delivery. The delivery worker then only ever reads this table, so
a restart resumes exactly what is unfinished.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bot.delivery.outbox.queue import LEASE, DeliveryQueue, alert_from_row
from bot.kernel.alerts import Alert, Topic
from bot.store import schema as t
from bot.store.timestamps import Clock, parse, stamp, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recipient:
    channel: str
    address: str


@dataclass(frozen=True, slots=True)
class Standing:
    """A recipient by configuration rather than subscription: an admin who gets
    ``ops`` through some channel, or the console printing every alert."""

    channel: str
    address: str
    topics: frozenset[Topic]


class Outbox:
    """Durable alerts and their fan-out.

    Which channels exist is the caller's business (the composition root asks
    the channel registry): the outbox only ever sees names. ``channels`` are
    the channels that are configured: subscribers of other channels get no
    delivery rows (a channel that is not configured would leave them pending
    forever). ``standing`` recipients get the topics they are configured for
    (admins: ``ops``); ``ops`` never reaches a subscriber.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        channels: Iterable[str],
        standing: Iterable[Standing] = (),
        clock: Clock = utcnow,
        lease: dt.timedelta = LEASE,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._channels = frozenset(channels)
        self._standing = tuple(dict.fromkeys(standing))
        unknown = {r.channel for r in self._standing} - self._channels
        if unknown:
            raise ValueError(f"standing recipients on channels that are not configured: "
                             f"{', '.join(sorted(unknown))}")
        self.boot = secrets.token_hex(8)
        """This process incarnation: rows from another one were left by a restart."""
        self.queue = DeliveryQueue(engine, boot=self.boot, clock=clock, lease=lease)

    @property
    def channels(self) -> frozenset[str]:
        return self._channels

    def enqueue(self, alerts: Iterable[Alert]) -> list[str]:
        """Store new alerts and their deliveries atomically; return the keys that were new."""
        batch = list({alert.key: alert for alert in alerts}.values())
        if not batch:
            return []
        try:
            return self._enqueue(batch)
        except sa.exc.IntegrityError:
            # Another process stored some of these keys between our read and write:
            # the transaction was rolled back whole, and a second pass sees them.
            return self._enqueue(batch)

    def _enqueue(self, batch: list[Alert]) -> list[str]:
        now = stamp(self._clock())
        new: list[str] = []
        with self._engine.begin() as conn:
            keys = [alert.key for alert in batch]
            existing = set(
                conn.execute(sa.select(t.alerts.c.key).where(t.alerts.c.key.in_(keys))).scalars()
            )
            subscribers = self._active_subscribers(conn)
            for alert in batch:
                if alert.key in existing:
                    continue
                conn.execute(t.alerts.insert().values(**_alert_row(alert, now)))
                rows = [
                    {
                        "alert_key": alert.key,
                        "channel": r.channel,
                        "recipient": r.address,
                        "status": "pending",
                        "attempts": 0,
                        "failures": 0,
                        "next_attempt_at": now,
                        "updated_at": now,
                        "late_delivery": False,
                        "boot": self.boot,
                        "resumed": False,
                    }
                    for r in self._recipients(alert.topic, subscribers)
                ]
                if rows:
                    conn.execute(t.deliveries.insert(), rows)
                new.append(alert.key)
                if rows:
                    log.info("outbox: stored %s for %d recipient(s)", alert.key, len(rows))
                else:  # stored (it shows in /history), but nobody is told: say so loudly
                    log.warning("outbox: %s reaches nobody: no active subscriber of topic %r "
                                "on any channel (/start in Telegram, or alvh subscribers add)",
                                alert.key, alert.topic.value)
        return new

    def _active_subscribers(self, conn: sa.Connection) -> list[tuple[str, str, set[str]]]:
        q = sa.select(
            t.subscribers.c.channel, t.subscribers.c.address, t.subscribers.c.topics
        ).where(t.subscribers.c.active.is_(True))
        return [
            (row.channel, row.address, set(row.topics.split(",")))
            for row in conn.execute(q.order_by(t.subscribers.c.id))
        ]

    def _recipients(
        self, topic: Topic, subscribers: list[tuple[str, str, set[str]]]
    ) -> list[Recipient]:
        out = [Recipient(r.channel, r.address) for r in self._standing if topic in r.topics]
        if topic is not Topic.OPS:
            out += [
                Recipient(channel, address)
                for channel, address, topics in subscribers
                if channel in self._channels and topic.value in topics
            ]
        return list(dict.fromkeys(out))

    # ------------------------------------------------------------------ reads
    def alert(self, key: str) -> Alert | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(t.alerts).where(t.alerts.c.key == key)).first()
        return alert_from_row(row) if row is not None else None

    def created_at(self, key: str) -> dt.datetime | None:
        with self._engine.connect() as conn:
            value = conn.execute(
                sa.select(t.alerts.c.created_at).where(t.alerts.c.key == key)
            ).scalar()
        return parse(value) if value is not None else None

    def counts(self) -> dict[str, int]:
        """Deliveries by status, for health and metrics."""
        q = sa.select(t.deliveries.c.status, sa.func.count()).group_by(t.deliveries.c.status)
        with self._engine.connect() as conn:
            return {status: int(n) for status, n in conn.execute(q)}


def _alert_row(alert: Alert, now: str) -> dict[str, Any]:
    if len(alert.key) > 200:
        raise ValueError(f"alert key longer than 200 characters: {alert.key[:60]}…")
    return {
        "key": alert.key,
        "session": alert.session,
        "topic": alert.topic.value,
        "kind": alert.kind,
        "layer": alert.layer,
        "title": alert.title,
        "text": alert.text,
        "html": alert.html,
        "chart": alert.chart_png,
        "late": alert.late,
        "created_at": now,
    }
