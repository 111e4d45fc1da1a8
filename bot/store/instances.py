"""The ``alvh run`` instances sharing one database, seen through their heartbeats.

Each instance writes its row every few seconds: its role (leader or standby),
host and pid. The rows say how many instances share the fan-out (each paces
its part of the channel rates, so together they keep Telegram's limit), and
``/healthz`` can show who leads. A row not refreshed for ``LIVE_WITHIN`` is an
instance that died; it is removed by the next one to look.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from bot.store import schema as s
from bot.store.timestamps import stamp

Role = Literal["leader", "standby"]
LIVE_WITHIN = dt.timedelta(seconds=30)
"""An instance whose heartbeat is older than this is taken for dead."""


@dataclass(frozen=True, slots=True)
class Instance:
    boot: str
    host: str
    pid: int
    role: str
    started_at: dt.datetime
    last_seen: dt.datetime


class Instances:
    """Heartbeats of the instances of one database; ``boot`` is this instance's id."""

    def __init__(self, engine: sa.Engine, boot: str) -> None:
        self._engine = engine
        self.boot = boot
        self._started = dt.datetime.now(tz=dt.UTC)

    def heartbeat(self, role: Role, now: dt.datetime | None = None) -> None:
        """Say this instance is alive, in ``role``."""
        now = now or dt.datetime.now(tz=dt.UTC)
        i = s.instances
        values = {"role": role, "last_seen": stamp(now)}
        with self._engine.begin() as conn:
            done = conn.execute(i.update().where(i.c.boot == self.boot).values(**values))
            if done.rowcount == 0:
                conn.execute(i.insert().values(
                    boot=self.boot, host=socket.gethostname()[:200], pid=os.getpid(),
                    started_at=stamp(self._started), **values))

    def live(self, now: dt.datetime | None = None) -> list[Instance]:
        """Instances seen within :data:`LIVE_WITHIN`, oldest first; the dead are removed."""
        now = now or dt.datetime.now(tz=dt.UTC)
        cutoff = stamp(now - LIVE_WITHIN)
        i = s.instances
        with self._engine.begin() as conn:
            conn.execute(i.delete().where(i.c.last_seen < cutoff))
            rows = conn.execute(sa.select(i).order_by(i.c.started_at)).all()
        return [Instance(r.boot, r.host, r.pid, r.role, dt.datetime.fromisoformat(r.started_at),
                         dt.datetime.fromisoformat(r.last_seen)) for r in rows]

    def leave(self) -> None:
        """A clean stop: this instance no longer counts (the others take its share now)."""
        i = s.instances
        with self._engine.begin() as conn:
            conn.execute(i.delete().where(i.c.boot == self.boot))
