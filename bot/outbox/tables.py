"""Tables of the durable outbox: alerts, their deliveries, and subscribers.

Why three tables in the same database as the market data: an alert must be
committed *before* any message leaves, and the fan-out to subscribers must be
part of that same commit, so a crash can never leave an alert stored with
only some of its deliveries (or deliveries without their alert).

Timestamps are ISO-8601 UTC strings of fixed width (microseconds, ``+00:00``)
like the rest of the store, so string comparison is time comparison on every
backend.
"""

from __future__ import annotations

import sqlalchemy as sa

from bot.store.schema import metadata

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("session", sa.Date, nullable=False),
    sa.Column("topic", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("layer", sa.String(64), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=False),
    sa.Column("chart", sa.LargeBinary, nullable=True),
    sa.Column("late", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_key", sa.String(200), sa.ForeignKey("alerts.key"), nullable=False, index=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    # pending | sending | sent | failed | skipped
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    # Calls to the channel's ``send``, rate-limited ones included.
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    # Temporary failures other than flood control; the give-up counter.
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("next_attempt_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Column("sent_at", sa.String(40), nullable=True),
    sa.Column("late_delivery", sa.Boolean, nullable=False, default=False),
    sa.Column("boot", sa.String(32), nullable=False),
    # Which process incarnation enqueued or last resumed the row.
    sa.Column("resumed", sa.Boolean, nullable=False, default=False),
    # Left unfinished by an earlier process and picked up after a restart.
    sa.UniqueConstraint("alert_key", "channel", "recipient", name="uq_delivery"),
    sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_deliveries_recipient", "channel", "recipient", "status"),
)

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("address", sa.String(320), nullable=False),
    sa.Column("topics", sa.String(200), nullable=False),
    # Comma-separated topic names, sorted.
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Column("deactivated_reason", sa.Text, nullable=True),
    sa.UniqueConstraint("channel", "address", name="uq_subscriber"),
)


def create_outbox_tables(conn: sa.Connection) -> None:
    """Migration 3: the outbox tables (see ``bot.store.schema.MIGRATIONS``)."""
    for table in (alerts, deliveries, subscribers):
        table.create(conn)
