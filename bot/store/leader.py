"""Who may evaluate sessions: one leader among instances sharing a database.

With PostgreSQL, several ``alvh run`` instances can share one database (a
standby takes over when the active one dies). Exactly one of them, the
*leader*, runs the scheduler and evaluates sessions; every instance may
deliver. Leadership is a PostgreSQL session-level advisory lock held on a
dedicated connection: when the leader's process dies, even by SIGKILL, its
connection closes and PostgreSQL releases the lock at once, so a standby that
keeps trying takes over within one polling interval.

A leader that loses its connection (a network cut, the server restarting)
loses the lock with it; :meth:`LeaderLock.held` notices on the next check and
the caller must stop evaluating. Two leaders for a few seconds cannot send an
alert twice: alerts are stored under unique keys and a session's run is
recorded once, so the second evaluation of a session is a no-op.

With SQLite there is one file on one host, kept to one bot by the data
directory's lock: :class:`SingleInstance` is always the leader.
"""

from __future__ import annotations

import logging
from typing import Protocol

import sqlalchemy as sa

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = 0x616C7668_0002
"""The advisory-lock key of leadership ("alvh" + 2; migrations use + 1)."""


class Leadership(Protocol):
    """The two questions the runtime asks, each answered without blocking for long."""

    def try_acquire(self) -> bool:
        """Become the leader if no one is; True if this instance is the leader now."""

    def held(self) -> bool:
        """Is this instance still the leader? (False once the lock's connection is gone.)"""

    def release(self) -> None:
        """Step down (a clean stop), letting a standby take over at once."""


class SingleInstance:
    """SQLite: the data-directory lock already makes this the only instance."""

    def try_acquire(self) -> bool:
        return True

    def held(self) -> bool:
        return True

    def release(self) -> None:
        return None


class LeaderLock:
    """A PostgreSQL advisory lock held on a connection of its own (see the module doc).

    Blocking calls (a few milliseconds each on a healthy server): run them in a
    thread from async code.
    """

    def __init__(self, engine: sa.Engine, key: int = LEADER_LOCK_KEY) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("LeaderLock needs PostgreSQL; use SingleInstance for SQLite")
        self._engine = engine
        self._key = key
        self._conn: sa.Connection | None = None

    def try_acquire(self) -> bool:
        if self._conn is not None:
            return self.held()
        conn = self._engine.connect()
        try:
            got = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"),
                                    {"k": self._key}).scalar())
            conn.commit()
        except sa.exc.DBAPIError:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        log.info("leader: this instance holds the leadership lock")
        return True

    def held(self) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            mine = conn.execute(
                sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND pid = pg_backend_pid() AND granted "
                        "AND ((classid::bigint << 32) | objid::bigint) = :k"),
                {"k": self._key},
            ).scalar()
            conn.commit()
        except sa.exc.DBAPIError as exc:
            log.error("leader: lost the connection that holds the leadership lock: %s",
                      exc.orig)
            self._drop()
            return False
        if not mine:
            log.error("leader: the leadership lock is no longer held by this instance")
            self._drop()
            return False
        return True

    def release(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            conn.commit()
        except sa.exc.DBAPIError:
            pass  # the connection is gone, and the lock with it
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except sa.exc.DBAPIError:
                pass
            self._conn = None


def leadership_for(engine: sa.Engine) -> Leadership:
    """A :class:`LeaderLock` on PostgreSQL, :class:`SingleInstance` otherwise."""
    if engine.dialect.name == "postgresql":
        return LeaderLock(engine)
    return SingleInstance()
