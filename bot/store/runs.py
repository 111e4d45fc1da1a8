"""The runs table: one row per evaluated session, read back as typed records.

The layer state machine picks up where the previous session's row left it,
so this table is what makes the hedge state survive restarts; the Telegram
views and ``run-once`` read it too. Every SQL statement on the table is here.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bot.engine.record import RunRecord
from bot.engine.state import LayerState
from bot.store import schema as s


@dataclass(frozen=True, slots=True)
class StoredRun:
    """A row of the runs table: the record plus when and how it was made."""

    session: dt.date
    status: str
    rules_sha256: str
    evaluated_at: str
    """UTC, ISO 8601 (seconds)."""
    late: bool
    record: RunRecord

    @property
    def state(self) -> LayerState:
        """The layer state after the session (where the next session starts)."""
        return self.record.state_after


class Runs:
    """Reads and writes of the runs table (a repository over one SQLAlchemy engine)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def get(self, session: dt.date) -> StoredRun | None:
        """The run of ``session``, or None if it was never evaluated."""
        q = sa.select(s.runs).where(s.runs.c.session == session)
        with self._engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return _stored(row) if row else None

    def last(self, before: dt.date | None = None) -> StoredRun | None:
        """The newest evaluated run (strictly before ``before`` when given)."""
        q = sa.select(s.runs).where(s.runs.c.status == "evaluated")
        if before is not None:
            q = q.where(s.runs.c.session < before)
        q = q.order_by(s.runs.c.session.desc()).limit(1)
        with self._engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return _stored(row) if row else None

    def recent(self, n: int) -> list[StoredRun]:
        """The ``n`` newest runs, newest first."""
        q = sa.select(s.runs).order_by(s.runs.c.session.desc()).limit(n)
        with self._engine.connect() as conn:
            return [_stored(r) for r in conn.execute(q).mappings()]

    def sessions(self) -> set[dt.date]:
        """Every session that has a run row."""
        with self._engine.connect() as conn:
            return set(conn.execute(sa.select(s.runs.c.session)).scalars())

    def record(self, record: RunRecord, *, late: bool, status: str = "evaluated") -> bool:
        """Store the run of ``record.session``; False if it was already recorded.

        Idempotent by session: a second evaluation of the same session changes
        nothing, which is what makes a re-run after a crash safe.
        """
        data = record.to_json()
        row = {
            "session": record.session, "status": status, "rules_sha256": record.rules_sha256,
            "evaluated_at": dt.datetime.now(tz=dt.UTC).isoformat(timespec="seconds"),
            "late": late,
            "inputs_json": json.dumps(data["values"], allow_nan=False, default=str),
            "decisions_json": json.dumps(data, allow_nan=False, default=str),
            "state_json": json.dumps(record.state_after.to_json()),
        }
        with self._engine.begin() as conn:
            exists = conn.execute(
                sa.select(s.runs.c.session).where(s.runs.c.session == record.session)
            ).first()
            if exists:
                return False
            conn.execute(s.runs.insert().values(**row))
        return True


def _stored(row: Any) -> StoredRun:
    record = RunRecord.from_json(json.loads(row["decisions_json"]))
    state = LayerState.from_json(json.loads(row["state_json"]))
    if state != record.state_after:
        # The state column is what the state machine resumes from: it wins.
        from dataclasses import replace

        record = replace(record, state_after=state)
    return StoredRun(row["session"], row["status"], row["rules_sha256"], row["evaluated_at"],
                     bool(row["late"]), record)
