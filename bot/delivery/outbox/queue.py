"""Delivery state transitions: the only writes the delivery worker makes.

A delivery moves ``pending → sending → sent``, or back to ``pending`` with a
later ``next_attempt_at`` (a retry, or the next part of a several-part alert,
with ``parts_sent`` one higher), or to ``failed`` / ``skipped`` / ``expired``.
Each transition is its own committed transaction, and ``sending`` is committed
*before* the channel is called for one part: after a crash, ``sending`` rows
are exactly the parts that may or may not have gone out, so re-sending them
repeats at most what was in flight and loses nothing.

The claim (:meth:`DeliveryQueue.claim`) is one conditional ``UPDATE``: two
workers on one database can never both send the same part.

Several instances on one PostgreSQL database (``shared``) share the fan-out:
:meth:`DeliveryQueue.due` picks rows with ``SELECT … FOR UPDATE SKIP LOCKED``
and marks them with this instance and a *lease*, so two instances never pick
the same row; the worker renews the leases of the rows it holds. When an
instance dies its leases run out and another instance takes its rows over:
the parts it was sending go out again (marked late), at most once each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bot.delivery.outbox.subscribers import deactivate
from bot.kernel.alerts import Alert, Topic
from bot.store import schema as t
from bot.store.timestamps import Clock, parse, stamp, utcnow

UNFINISHED = ("pending", "sending")
_MAX_ERROR = 500
LEASE = dt.timedelta(seconds=30)
"""How long an instance holds a row it picked or is sending without renewing it."""


@dataclass(frozen=True, slots=True)
class Expired:
    """Deliveries of one alert on one channel closed as too old."""

    alert_key: str
    channel: str
    count: int
    partial: int
    """How many of them had received some parts but not all."""
    last_error: str | None


@dataclass(frozen=True, slots=True)
class QueueStats:
    """What ``/healthz`` says about delivery."""

    pending: int
    """Unfinished deliveries (waiting, retrying or being sent)."""
    retrying: int
    """Unfinished deliveries that were refused or failed at least once."""
    expired_since: int
    """Deliveries closed as expired since the ``since`` asked for."""
    oldest_pending: dt.datetime | None
    """When the oldest unfinished delivery's alert was stored."""


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    alert_key: str
    channel: str
    recipient: str
    status: str
    attempts: int
    failures: int
    last_error: str | None
    next_attempt_at: dt.datetime
    sent_at: dt.datetime | None
    late_delivery: bool
    resumed: bool
    alert_created_at: dt.datetime
    parts_sent: int = 0
    fallback_at: int | None = None


def alert_from_row(row: Any) -> Alert:
    return Alert(
        session=row.session,
        topic=Topic(row.topic),
        kind=row.kind,
        layer=row.layer,
        title=row.title,
        text=row.text,
        html=row.html,
        chart_png=row.chart,
        late=bool(row.late),
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        alert_key=row.alert_key,
        channel=row.channel,
        recipient=row.recipient,
        status=row.status,
        attempts=row.attempts,
        failures=row.failures,
        last_error=row.last_error,
        next_attempt_at=parse(row.next_attempt_at),
        sent_at=parse(row.sent_at) if row.sent_at else None,
        late_delivery=bool(row.late_delivery),
        resumed=bool(row.resumed),
        alert_created_at=parse(row.alert_created_at),
        parts_sent=int(row.parts_sent or 0),
        fallback_at=row.fallback_at,
    )


_SELECT = sa.select(t.deliveries, t.alerts.c.created_at.label("alert_created_at")).join(
    t.alerts, t.alerts.c.key == t.deliveries.c.alert_key
)


class DeliveryQueue:
    def __init__(
        self, engine: sa.Engine, *, boot: str, clock: Clock = utcnow, shared: bool | None = None,
        lease: dt.timedelta = LEASE,
    ) -> None:
        self._engine = engine
        self._boot = boot
        self._clock = clock
        self.lease = lease
        """How long this instance holds a row without renewing it (:data:`LEASE`)."""
        self.shared = engine.dialect.name == "postgresql" if shared is None else shared
        """Instances may share this database (PostgreSQL): rows are leased, not adopted."""

    def now(self) -> dt.datetime:
        return self._clock()

    # ------------------------------------------------------------------ reads
    def rows(self, alert_key: str | None = None) -> list[Delivery]:
        q = _SELECT.order_by(t.deliveries.c.id)
        if alert_key is not None:
            q = q.where(t.deliveries.c.alert_key == alert_key)
        with self._engine.connect() as conn:
            return [_delivery(row) for row in conn.execute(q)]

    def get(self, delivery_id: int) -> Delivery | None:
        with self._engine.connect() as conn:
            row = conn.execute(_SELECT.where(t.deliveries.c.id == delivery_id)).first()
        return _delivery(row) if row is not None else None

    def alert(self, key: str) -> Alert | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(t.alerts).where(t.alerts.c.key == key)).first()
        return alert_from_row(row) if row is not None else None

    def due(
        self, channels: Collection[str], limit: int, exclude: Collection[int]
    ) -> list[Delivery]:
        """Pending deliveries whose time has come, oldest first, one per recipient.

        A recipient's later delivery waits while an earlier one is unfinished,
        so one person's alerts arrive in the order they were enqueued.
        """
        if limit <= 0 or not channels:
            return []
        d = t.deliveries
        earlier = d.alias("earlier")
        blocked = (
            sa.select(earlier.c.id)
            .where(
                earlier.c.channel == d.c.channel,
                earlier.c.recipient == d.c.recipient,
                earlier.c.id < d.c.id,
                earlier.c.status.in_(UNFINISHED),
            )
            .exists()
        )
        q = (
            _SELECT.where(
                d.c.status == "pending",
                d.c.next_attempt_at <= stamp(self._clock()),
                d.c.channel.in_(list(channels)),
                ~blocked,
            )
            .order_by(d.c.id)
            .limit(limit)
        )
        if exclude:
            q = q.where(d.c.id.not_in(list(exclude)))
        if not self.shared:
            with self._engine.connect() as conn:
                return [_delivery(row) for row in conn.execute(q)]
        now = self._clock()
        free = sa.or_(d.c.boot == self._boot, d.c.lease_until.is_(None),
                      d.c.lease_until <= stamp(now))
        pick = (
            sa.select(d.c.id)
            .where(q.whereclause if q.whereclause is not None else sa.true(), free)
            .order_by(d.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self._engine.begin() as conn:
            self._reclaim(conn, now)
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return []
            conn.execute(d.update().where(d.c.id.in_(ids)).values(
                boot=self._boot, lease_until=stamp(now + self.lease)))
            rows = conn.execute(_SELECT.where(d.c.id.in_(ids)).order_by(d.c.id)).all()
        return [_delivery(row) for row in rows]

    def _reclaim(self, conn: sa.Connection, now: dt.datetime) -> int:
        """Parts another instance was sending when its lease ran out (it died, or lost
        the database): due again, marked resumed so they say they are late."""
        d = t.deliveries
        result = conn.execute(
            d.update()
            .where(d.c.status == "sending", d.c.boot != self._boot,
                   sa.or_(d.c.lease_until.is_(None), d.c.lease_until <= stamp(now)))
            .values(status="pending", resumed=True, lease_until=None,
                    updated_at=stamp(now))
        )
        return int(result.rowcount)

    def renew(self, delivery_ids: Collection[int]) -> int:
        """Extend the leases of the rows this instance holds; how many it still holds."""
        if not delivery_ids or not self.shared:
            return len(delivery_ids)
        d = t.deliveries
        until = stamp(self._clock() + self.lease)
        with self._engine.begin() as conn:
            result = conn.execute(
                d.update()
                .where(d.c.id.in_(list(delivery_ids)), d.c.boot == self._boot,
                       d.c.status.in_(UNFINISHED))
                .values(lease_until=until)
            )
        return int(result.rowcount)

    def next_due_at(
        self, channels: Collection[str], after: dt.datetime | None = None
    ) -> dt.datetime | None:
        """When the next retry falls due (only times later than ``after``, if given)."""
        q = sa.select(sa.func.min(t.deliveries.c.next_attempt_at)).where(
            t.deliveries.c.status == "pending", t.deliveries.c.channel.in_(list(channels))
        )
        if after is not None:
            q = q.where(t.deliveries.c.next_attempt_at > stamp(after))
        with self._engine.connect() as conn:
            value = conn.execute(q).scalar()
        return parse(value) if value else None

    def unfinished(self, channels: Collection[str] | None = None) -> int:
        q = sa.select(sa.func.count()).where(t.deliveries.c.status.in_(UNFINISHED))
        if channels is not None:
            q = q.where(t.deliveries.c.channel.in_(list(channels)))
        with self._engine.connect() as conn:
            return int(conn.execute(q).scalar() or 0)

    def stats(self, since: dt.datetime) -> QueueStats:
        """Counts for health: unfinished, retrying, expired since ``since``, oldest."""
        d = t.deliveries
        unfinished = d.c.status.in_(UNFINISHED)
        q = (
            sa.select(
                sa.func.count().filter(unfinished),
                sa.func.count().filter(unfinished, d.c.last_error.is_not(None)),
                sa.func.count().filter(d.c.status == "expired",
                                       d.c.updated_at >= stamp(since)),
                sa.func.min(t.alerts.c.created_at).filter(unfinished),
            )
            .select_from(d.join(t.alerts, t.alerts.c.key == d.c.alert_key))
        )
        with self._engine.connect() as conn:
            pending, retrying, expired, oldest = conn.execute(q).one()
        return QueueStats(int(pending), int(retrying), int(expired),
                          parse(oldest) if oldest else None)

    def oldest_unfinished(self, channel: str) -> tuple[dt.date, dt.datetime] | None:
        """(session, stored at) of the oldest alert with an unfinished delivery on ``channel``."""
        d = t.deliveries
        q = (
            sa.select(t.alerts.c.session, t.alerts.c.created_at)
            .select_from(d.join(t.alerts, t.alerts.c.key == d.c.alert_key))
            .where(d.c.channel == channel, d.c.status.in_(UNFINISHED))
            .order_by(t.alerts.c.created_at)
            .limit(1)
        )
        with self._engine.connect() as conn:
            row = conn.execute(q).first()
        return (row.session, parse(row.created_at)) if row is not None else None

    # ------------------------------------------------------------------ writes
    def recover(self) -> int:
        """Adopt what an earlier process left unfinished; return how many rows.

        ``sending`` rows go back to ``pending`` (they will be re-sent: the
        crash may have come before or after the message left). All adopted
        rows are flagged ``resumed`` so the user is told they arrive late.

        On a shared database other instances may be alive: only the parts whose
        sender's lease ran out are taken back (pending rows are shared anyway).
        """
        d = t.deliveries
        if self.shared:
            with self._engine.begin() as conn:
                return self._reclaim(conn, self._clock())
        with self._engine.begin() as conn:
            result = conn.execute(
                d.update()
                .where(d.c.status.in_(UNFINISHED), d.c.boot != self._boot)
                .values(
                    status="pending",
                    resumed=True,
                    boot=self._boot,
                    updated_at=stamp(self._clock()),
                )
            )
        return int(result.rowcount)

    def claim(self, delivery_id: int, *, late: bool) -> bool:
        """Claim a pending delivery of this process for its next part; False if it is
        no longer ours to send.

        One conditional UPDATE, so two workers on one database (which the
        data-directory lock is there to prevent) still cannot both send the same
        part. ``late`` is recorded with the first part, and kept for the others, so
        every part of an alert is planned the same way.
        """
        d = t.deliveries
        with self._engine.begin() as conn:
            result = conn.execute(
                d.update()
                .where(d.c.id == delivery_id, d.c.status == "pending", d.c.boot == self._boot)
                .values(
                    status="sending",
                    attempts=d.c.attempts + 1,
                    late_delivery=sa.case((d.c.parts_sent == 0, late),
                                          else_=d.c.late_delivery),
                    lease_until=stamp(self._clock() + self.lease),
                    updated_at=stamp(self._clock()),
                )
            )
        return result.rowcount == 1

    def postpone(self, delivery_id: int, *, delay: float) -> None:
        """Not now (the recipient must wait ``delay`` seconds): due again then, no failure."""
        when = self._clock() + dt.timedelta(seconds=max(0.0, delay))
        d = t.deliveries
        with self._engine.begin() as conn:
            conn.execute(
                d.update()
                .where(d.c.id == delivery_id, d.c.status == "pending")
                .values(next_attempt_at=stamp(when), lease_until=None)
            )

    def unclaim(self, delivery_id: int) -> None:
        """Give back a claim whose part was never sent (the worker stopped first)."""
        d = t.deliveries
        with self._engine.begin() as conn:
            conn.execute(
                d.update()
                .where(d.c.id == delivery_id, d.c.status == "sending", d.c.boot == self._boot)
                .values(status="pending", attempts=d.c.attempts - 1, lease_until=None,
                        updated_at=stamp(self._clock()))
            )

    def mark_part_sent(
        self, delivery_id: int, *, parts_sent: int, fallback_at: int | None, delay: float
    ) -> None:
        """One more part is out: record it; the next part falls due after ``delay``."""
        when = self._clock() + dt.timedelta(seconds=max(0.0, delay))
        # The next part stays with this instance (its pacer knows when the recipient
        # last got a message); if it dies, the lease runs out and another takes over.
        self._update(delivery_id, status="pending", parts_sent=parts_sent,
                     fallback_at=fallback_at, failures=0, last_error=None,
                     next_attempt_at=stamp(when), lease_until=stamp(when + self.lease))

    def mark_sent(
        self, delivery_id: int, *, parts_sent: int = 1, fallback_at: int | None = None
    ) -> None:
        now = stamp(self._clock())
        self._update(delivery_id, status="sent", sent_at=now, parts_sent=parts_sent,
                     fallback_at=fallback_at)

    def mark_retry(
        self, delivery_id: int, *, delay: float, error: str, count_failure: bool
    ) -> None:
        when = self._clock() + dt.timedelta(seconds=max(0.0, delay))
        values: dict[str, Any] = {
            "status": "pending",
            "next_attempt_at": stamp(when),
            "last_error": error[:_MAX_ERROR],
        }
        if count_failure:
            values["failures"] = t.deliveries.c.failures + 1
        self._update(delivery_id, **values)

    def mark_failed(self, delivery_id: int, *, error: str, count_failure: bool = False) -> None:
        values: dict[str, Any] = {"status": "failed", "last_error": error[:_MAX_ERROR]}
        if count_failure:
            values["failures"] = t.deliveries.c.failures + 1
        self._update(delivery_id, **values)

    def resume_now(self, channel: str) -> int:
        """Make every pending delivery of ``channel`` due now (the channel is back:
        the backoff of the outage is over); returns how many."""
        d = t.deliveries
        now = stamp(self._clock())
        with self._engine.begin() as conn:
            result = conn.execute(
                d.update()
                .where(d.c.channel == channel, d.c.status == "pending",
                       d.c.next_attempt_at > now)
                .values(next_attempt_at=now)
            )
        return int(result.rowcount)

    def expire(
        self, created_before: dt.datetime, *, in_flight: Collection[int] = ()
    ) -> list[Expired]:
        """Close as ``expired`` every unfinished delivery of an alert stored before
        ``created_before``; what was closed, by alert and channel.

        Rows this process has claimed but is not sending (``in_flight`` are the ones
        it is sending: left alone) are closed too: the worker checks an alert's age
        before it sends, so they would never go out anyway.
        """
        d = t.deliveries
        now = stamp(self._clock())
        old = sa.select(t.alerts.c.key).where(t.alerts.c.created_at < stamp(created_before))
        claimed_idle = sa.and_(d.c.status == "sending", d.c.boot == self._boot)
        if in_flight:
            claimed_idle = sa.and_(claimed_idle, d.c.id.not_in(list(in_flight)))
        closable = sa.or_(d.c.status == "pending", claimed_idle)
        with self._engine.begin() as conn:
            rows = conn.execute(
                sa.select(d.c.id, d.c.alert_key, d.c.channel, d.c.parts_sent, d.c.last_error)
                .where(closable, d.c.alert_key.in_(old))
                .order_by(d.c.id)
            ).all()
            if not rows:
                return []
            for chunk in range(0, len(rows), 500):
                ids = [row.id for row in rows[chunk:chunk + 500]]
                conn.execute(
                    d.update()
                    .where(d.c.id.in_(ids), closable)
                    .values(status="expired", updated_at=now)
                )
        groups: dict[tuple[str, str], list[Any]] = {}
        for row in rows:
            groups.setdefault((row.alert_key, row.channel), []).append(row)
        return [
            Expired(key, channel, len(group), sum(1 for r in group if r.parts_sent),
                    next((r.last_error for r in reversed(group) if r.last_error), None))
            for (key, channel), group in groups.items()
        ]

    def mark_recipient_gone(self, delivery_id: int, *, error: str) -> bool:
        """Fail this delivery and deactivate its subscriber (and skip their queue) atomically."""
        now = stamp(self._clock())
        d = t.deliveries
        with self._engine.begin() as conn:
            row = conn.execute(
                sa.select(d.c.channel, d.c.recipient).where(d.c.id == delivery_id)
            ).first()
            if row is None:
                return False
            conn.execute(
                d.update()
                .where(d.c.id == delivery_id)
                .values(status="failed", last_error=error[:_MAX_ERROR], updated_at=now)
            )
            return deactivate(conn, row.channel, row.recipient, error, now)

    def _update(self, delivery_id: int, **values: Any) -> None:
        values["updated_at"] = stamp(self._clock())
        values.setdefault("lease_until", None)  # a transition ends this instance's hold
        d = t.deliveries
        with self._engine.begin() as conn:
            # Only while this instance holds the row: one whose lease ran out may have been
            # taken over by another instance, whose record must not be overwritten.
            conn.execute(d.update().where(d.c.id == delivery_id, d.c.boot == self._boot)
                         .values(**values))
