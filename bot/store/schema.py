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
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("kind", sa.String(8), primary_key=True),
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("time_et", sa.String(5), nullable=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("fetched_at", sa.String(40), nullable=False),
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


def _m1_market_data(conn: sa.Connection) -> None:
    for table in MARKET_TABLES:
        table.create(conn)


def _m2_runs(conn: sa.Connection) -> None:
    runs.create(conn)


def _m3_outbox(conn: sa.Connection) -> None:
    # Imported here: the outbox tables live with the outbox and import this module.
    from bot.outbox.tables import create_outbox_tables

    create_outbox_tables(conn)


Migration = tuple[int, str, Callable[[sa.Connection], None]]

MIGRATIONS: list[Migration] = [
    (1, "market data: bars, breadth, events", _m1_market_data),
    (2, "evaluation runs and layer state", _m2_runs),
    (3, "outbox, deliveries, subscribers", _m3_outbox),
]
