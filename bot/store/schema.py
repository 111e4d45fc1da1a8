"""Table definitions and the numbered migrations that create them.

Migrations are a plain ordered list of functions recorded in ``schema_version``,
applied at open time, each in its own transaction. Why not Alembic: the bot
must migrate itself on start-up inside a Docker volume with no ``alembic.ini``
or script directory to ship, the schema is a handful of tables, and the same
Core DDL runs on SQLite and PostgreSQL. If the schema ever needs branching or
autogeneration, Alembic can adopt these tables as its baseline.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.String(40), nullable=False),
    sa.Column("description", sa.String(200), nullable=False),
)

bars = sa.Table(
    "bars",
    metadata,
    sa.Column("symbol", sa.String(16), primary_key=True),
    sa.Column("session", sa.Date, primary_key=True),
    sa.Column("open", sa.Float, nullable=True),
    sa.Column("high", sa.Float, nullable=True),
    sa.Column("low", sa.Float, nullable=True),
    sa.Column("close", sa.Float, nullable=False),
    sa.Column("volume", sa.Float, nullable=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("fetched_at", sa.String(40), nullable=False),
)

breadth = sa.Table(
    "breadth",
    metadata,
    sa.Column("session", sa.Date, primary_key=True),
    sa.Column("advancers", sa.Integer, nullable=False),
    sa.Column("decliners", sa.Integer, nullable=False),
    sa.Column("unchanged", sa.Integer, nullable=True),
    sa.Column("adv_volume", sa.Float, nullable=True),
    sa.Column("dec_volume", sa.Float, nullable=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("fetched_at", sa.String(40), nullable=False),
    sa.Column("rejected", sa.Text, nullable=True),
    # Why the row failed the breadth screen (bot.engine.breadth_screen), NULL when
    # accepted. Rejected rows stay visible to ``alvh data status`` but are never
    # returned as breadth: the session counts as missing (imputed).
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("kind", sa.String(8), primary_key=True),
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("time_et", sa.String(5), nullable=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("fetched_at", sa.String(40), nullable=False),
    sa.Column("scheduled", sa.Boolean, nullable=False, server_default=sa.true()),
    # False for an unscheduled action: known only from its own date (point in time).
)

MARKET_TABLES = (bars, breadth, events)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("session", sa.Date, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("rules_sha256", sa.String(64), nullable=False),
    sa.Column("evaluated_at", sa.String(40), nullable=False),
    sa.Column("late", sa.Boolean, nullable=False, default=False),
    sa.Column("inputs_json", sa.Text, nullable=False),
    sa.Column("decisions_json", sa.Text, nullable=False),
    sa.Column("state_json", sa.Text, nullable=False),
)
"""One row per evaluated session: what went in, what was decided, the layer
state after it, and the hash of the rules used. The layer state machine reads
the previous session's row, so it survives restarts."""


# -- the outbox -------------------------------------------------------------------
# Tables of the durable outbox: alerts, their deliveries, and subscribers.
#
# Why three tables in the same database as the market data: an alert must be
# committed *before* any message leaves, and the fan-out to subscribers must be
# part of that same commit, so a crash can never leave an alert stored with
# only some of its deliveries (or deliveries without their alert).
#
# Timestamps are ISO-8601 UTC strings of fixed width (microseconds, ``+00:00``)
# like the rest of the store, so string comparison is time comparison on every
# backend.

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
    # pending | sending | sent | failed | skipped | expired
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    # Calls to the channel (one per part), rate-limited ones included.
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    # Temporary failures in a row (flood control excluded): the backoff counter.
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("next_attempt_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Column("sent_at", sa.String(40), nullable=True),
    sa.Column("late_delivery", sa.Boolean, nullable=False, default=False),
    sa.Column("boot", sa.String(32), nullable=False),
    # Which process incarnation enqueued or last resumed the row.
    sa.Column("resumed", sa.Boolean, nullable=False, default=False),
    # Left unfinished by an earlier process and picked up after a restart.
    sa.Column("parts_sent", sa.Integer, nullable=False, server_default="0"),
    # Parts of the alert already delivered (Telegram: photo, then text), each
    # recorded before the next is sent, so a retry resumes at the next part.
    sa.Column("fallback_at", sa.Integer, nullable=True),
    # The part from which the channel sends its fallback form (plain text after
    # Telegram refused the HTML), or NULL.
    sa.Column("lease_until", sa.String(40), nullable=True),
    # Until when the instance in ``boot`` holds this row (claimed for sending, or
    # picked to send soon); an expired lease lets another instance take it over.
    sa.UniqueConstraint("alert_key", "channel", "recipient", name="uq_delivery"),
    sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_deliveries_recipient", "channel", "recipient", "status"),
)

instances = sa.Table(
    "instances",
    metadata,
    sa.Column("boot", sa.String(32), primary_key=True),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("started_at", sa.String(40), nullable=False),
    sa.Column("last_seen", sa.String(40), nullable=False),
)
"""The running ``alvh run`` instances sharing this database, by heartbeat: who is the
leader, and how many share the fan-out (each takes its part of the channel rates)."""

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

OUTBOX_TABLES = (alerts, deliveries, subscribers)


def _m1_market_data(conn: sa.Connection) -> None:
    for table in MARKET_TABLES:
        table.create(conn)


def _m2_runs(conn: sa.Connection) -> None:
    runs.create(conn)


def _m3_outbox(conn: sa.Connection) -> None:
    for table in OUTBOX_TABLES:
        table.create(conn)


def _m4_event_scheduled(conn: sa.Connection) -> None:
    # A store made by migration 1 today already has the column (it creates the
    # current tables); one made before this migration existed gets it here.
    if "scheduled" not in {c["name"] for c in sa.inspect(conn).get_columns("events")}:
        conn.execute(sa.text(
            "ALTER TABLE events ADD COLUMN scheduled BOOLEAN NOT NULL DEFAULT TRUE"))


def _m5_breadth_rejected(conn: sa.Connection) -> None:
    # As in migration 4: a store created after this change already has the column.
    # The rows stored before it are screened by Store.migrate right after.
    if "rejected" not in {c["name"] for c in sa.inspect(conn).get_columns("breadth")}:
        conn.execute(sa.text("ALTER TABLE breadth ADD COLUMN rejected TEXT"))


def _m6_delivery_parts(conn: sa.Connection) -> None:
    # As in migration 4: a store created after this change already has the columns.
    have = {c["name"] for c in sa.inspect(conn).get_columns("deliveries")}
    if "parts_sent" not in have:
        conn.execute(sa.text(
            "ALTER TABLE deliveries ADD COLUMN parts_sent INTEGER NOT NULL DEFAULT 0"))
    if "fallback_at" not in have:
        conn.execute(sa.text("ALTER TABLE deliveries ADD COLUMN fallback_at INTEGER"))


def _m7_instances_and_leases(conn: sa.Connection) -> None:
    have = {c["name"] for c in sa.inspect(conn).get_columns("deliveries")}
    if "lease_until" not in have:
        conn.execute(sa.text("ALTER TABLE deliveries ADD COLUMN lease_until VARCHAR(40)"))
    instances.create(conn, checkfirst=True)


Migration = tuple[int, str, Callable[[sa.Connection], None]]

MIGRATIONS: list[Migration] = [
    (1, "market data: bars, breadth, events", _m1_market_data),
    (2, "evaluation runs and layer state", _m2_runs),
    (3, "outbox, deliveries, subscribers", _m3_outbox),
    (4, "events: scheduled flag (point in time)", _m4_event_scheduled),
    (5, "breadth: rejected rows kept with their reason", _m5_breadth_rejected),
    (6, "deliveries: parts sent and fallback, delivered part by part", _m6_delivery_parts),
    (7, "instances and delivery leases: replicas sharing one database", _m7_instances_and_leases),
]
