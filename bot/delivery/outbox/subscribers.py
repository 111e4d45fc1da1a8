"""Who receives which topics: the subscriber list behind fan-out.

One row per (channel, address); topics are a set. Unsubscribing or being
blocked *deactivates* the row (with a reason) rather than deleting it, so
``alvh subscribers list`` can say why someone stopped receiving alerts, and
a user who comes back with /start is reactivated, not duplicated.

``ops`` is never a subscription: admins receive it by configuration
(their chat ids), so a user cannot subscribe themselves to internal alerts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa

from bot.kernel.alerts import Topic
from bot.kernel.errors import ConfigError
from bot.store import schema as t
from bot.store.timestamps import Clock, parse, stamp, utcnow

SUBSCRIBABLE: Final = tuple(topic for topic in Topic if topic is not Topic.OPS)
REMOVED: Final = "removed"
"""Deactivation reason of an explicit removal (``alvh subscribers remove``)."""


class InvalidSubscription(ConfigError):
    """A topic, channel or address that cannot be subscribed; the message says which."""


@dataclass(frozen=True, slots=True)
class Subscriber:
    channel: str
    address: str
    topics: frozenset[Topic]
    active: bool
    created_at: dt.datetime
    deactivated_reason: str | None
    id: int = 0
    """The row id: stable, never reused (rows are deactivated, not deleted)."""


def parse_topics(words: Iterable[str]) -> frozenset[Topic]:
    """Topics from words people type (``hedge``, ``Condor,warning``, ``all``).

    Raises ``InvalidSubscription`` with a one-line message naming the bad word.
    """
    found: set[Topic] = set()
    for word in words:
        for part in word.replace(",", " ").split():
            name = part.strip().lower()
            if name == "all":
                found.update(SUBSCRIBABLE)
                continue
            if name == Topic.OPS.value:
                raise InvalidSubscription(
                    "“ops” is not a subscribable topic (admins receive it automatically)"
                )
            try:
                found.add(Topic(name))
            except ValueError:
                shown = part if len(part) <= 40 else part[:39] + "…"
                names = ", ".join(topic.value for topic in SUBSCRIBABLE)
                raise InvalidSubscription(f"unknown topic “{shown}”; topics: {names}") from None
    return frozenset(found)


def normalize_address(channel: str, address: str) -> str:
    """Validate and canonicalize an address so the same person is one row.

    The channel's own class knows what its addresses look like (see
    :mod:`bot.delivery.channels.registry`); a bad one is one line naming the form.
    """
    from bot.delivery.channels.base import InvalidAddress
    from bot.delivery.channels.registry import normalize_address as normalize

    try:
        return normalize(channel, address)
    except InvalidAddress as exc:
        raise InvalidSubscription(str(exc)) from None


def _encode(topics: Iterable[Topic]) -> str:
    return ",".join(sorted(topic.value for topic in topics))


def _decode(text: str) -> frozenset[Topic]:
    return frozenset(Topic(name) for name in text.split(",") if name)


def _row(row: Any) -> Subscriber:
    return Subscriber(
        channel=row.channel,
        address=row.address,
        topics=_decode(row.topics),
        active=bool(row.active),
        created_at=parse(row.created_at),
        deactivated_reason=row.deactivated_reason,
        id=int(row.id),
    )


class Subscribers:
    """Subscriber management for the CLI (email) and the Telegram commands."""

    def __init__(self, engine: sa.Engine, *, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._clock = clock

    def get(self, channel: str, address: str) -> Subscriber | None:
        address = normalize_address(channel, address)
        with self._engine.connect() as conn:
            return self._get(conn, channel, address)

    def by_id(self, subscriber_id: int) -> Subscriber | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(t.subscribers).where(t.subscribers.c.id == subscriber_id)
            ).first()
        return _row(row) if row is not None else None

    def subscribe(self, channel: str, address: str, topics: Iterable[Topic]) -> Subscriber:
        """Add topics (creating or reactivating the subscriber); returns the new state."""
        wanted = self._check(topics)
        return self._change(channel, address, lambda old: old | wanted, reactivate=True)

    def unsubscribe(self, channel: str, address: str, topics: Iterable[Topic]) -> Subscriber:
        """Remove topics; the subscriber stays active (with possibly no topics)."""
        gone = frozenset(topics)
        return self._change(channel, address, lambda old: old - gone, reactivate=False)

    def set_topics(self, channel: str, address: str, topics: Iterable[Topic]) -> Subscriber:
        wanted = self._check(topics)
        return self._change(channel, address, lambda _old: wanted, reactivate=True)

    def toggle(self, channel: str, address: str, topic: Topic) -> Subscriber:
        self._check([topic])
        return self._change(channel, address, lambda old: old ^ {topic}, reactivate=True)

    def remove(self, channel: str, address: str, reason: str = REMOVED) -> bool:
        """Stop all delivery to an address (``alvh subscribers remove``); False if unknown."""
        return self.deactivate(channel, normalize_address(channel, address), reason)

    def deactivate(self, channel: str, address: str, reason: str) -> bool:
        """Mark inactive and skip its pending deliveries, in one transaction."""
        with self._engine.begin() as conn:
            return deactivate(conn, channel, address, reason, stamp(self._clock()))

    def all(self, channel: str | None = None, *, include_inactive: bool = True) -> list[Subscriber]:
        q = sa.select(t.subscribers).order_by(t.subscribers.c.channel, t.subscribers.c.address)
        if channel is not None:
            q = q.where(t.subscribers.c.channel == channel)
        if not include_inactive:
            q = q.where(t.subscribers.c.active.is_(True))
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(q)]

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _check(topics: Iterable[Topic]) -> frozenset[Topic]:
        out = frozenset(topics)
        if Topic.OPS in out:
            raise InvalidSubscription(
                "“ops” is not a subscribable topic (admins receive it automatically)"
            )
        return out

    @staticmethod
    def _get(conn: sa.Connection, channel: str, address: str) -> Subscriber | None:
        row = conn.execute(
            sa.select(t.subscribers).where(
                t.subscribers.c.channel == channel, t.subscribers.c.address == address
            )
        ).first()
        return _row(row) if row is not None else None

    def _change(
        self,
        channel: str,
        address: str,
        update: Callable[[frozenset[Topic]], frozenset[Topic]],
        *,
        reactivate: bool,
    ) -> Subscriber:
        address = normalize_address(channel, address)
        now = stamp(self._clock())
        with self._engine.begin() as conn:
            old = self._get(conn, channel, address)
            if old is None:
                topics = update(frozenset())
                conn.execute(
                    t.subscribers.insert().values(
                        channel=channel,
                        address=address,
                        topics=_encode(topics),
                        active=True,
                        created_at=now,
                        updated_at=now,
                        deactivated_reason=None,
                    )
                )
            else:
                values: dict[str, Any] = {"topics": _encode(update(old.topics)), "updated_at": now}
                if reactivate:
                    values |= {"active": True, "deactivated_reason": None}
                conn.execute(
                    t.subscribers.update()
                    .where(t.subscribers.c.channel == channel, t.subscribers.c.address == address)
                    .values(**values)
                )
            new = self._get(conn, channel, address)
        assert new is not None  # noqa: S101 - just written in this transaction
        return new


def deactivate(conn: sa.Connection, channel: str, address: str, reason: str, now: str) -> bool:
    """Deactivate a subscriber and skip what is still queued for it (shared with the queue)."""
    result = conn.execute(
        t.subscribers.update()
        .where(t.subscribers.c.channel == channel, t.subscribers.c.address == address)
        .values(active=False, deactivated_reason=reason[:500], updated_at=now)
    )
    conn.execute(
        t.deliveries.update()
        .where(
            t.deliveries.c.channel == channel,
            t.deliveries.c.recipient == address,
            t.deliveries.c.status == "pending",
        )
        .values(status="skipped", last_error=f"subscriber inactive: {reason}"[:500], updated_at=now)
    )
    return result.rowcount > 0
