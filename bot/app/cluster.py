"""Leader and standby: which instance evaluates sessions when several share a database.

Every instance delivers (the outbox is shared: see :mod:`bot.delivery.outbox.queue`);
only the *leader* runs the service (scheduler, catch-up, rules reload) and the
Telegram command UI (Telegram lets one client poll a bot at a time). A standby
keeps trying to take the leadership lock (:mod:`bot.store.leader`) every
``interval`` seconds, so when the leader dies it takes over within one interval,
and its service catches up the sessions the dead leader did not finish.

A leader that loses the lock (its database connection dropped) stops at once
and exits with one line: it can no longer be sure it is the only one evaluating,
and a supervisor restarts it as a standby. Meanwhile every instance writes a
heartbeat, so each knows how many share the channels' rates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from bot.app.health import Health
from bot.kernel.errors import AlvhError
from bot.store.instances import Instances, Role
from bot.store.leader import Leadership

log = logging.getLogger(__name__)

ELECTION_SECONDS = 5.0
"""How often a standby tries to take the lead, and a leader checks it still holds it."""


class LeadershipLost(AlvhError):
    """This instance was the leader and no longer holds the lock."""


class Cluster:
    """Runs ``lead()`` while this instance holds the leadership (see the module doc).

    ``lead`` is entered once when the lock is taken; ``share`` is told how many
    instances are alive whenever that changes; ``on_lost`` ends the process.
    """

    def __init__(
        self,
        leadership: Leadership,
        instances: Instances | None,
        *,
        lead: Callable[[], AbstractAsyncContextManager[Any]],
        share: Callable[[int], None] = lambda n: None,
        on_lost: Callable[[LeadershipLost], None],
        interval: float = ELECTION_SECONDS,
        shared: bool = True,
    ) -> None:
        self.leadership, self.instances = leadership, instances
        self._lead, self._share, self._on_lost = lead, share, on_lost
        self.interval = interval
        self.shared = shared
        self.role: Role = "standby"
        self.live: list[dict[str, Any]] = []
        self._stop = asyncio.Event()
        self._count = 1

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Cluster]:
        task = asyncio.create_task(self._run(), name="cluster")
        try:
            yield self
        finally:
            self._stop.set()
            await task  # leaves the lead (the service stops) before the caller goes on
            if self.instances is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.instances.leave)
            await asyncio.to_thread(self.leadership.release)

    def health(self) -> Health:
        """``role`` (and the instances seen), always healthy: a standby is ready to lead."""
        body: dict[str, Any] = {"role": self.role if self.shared else "single"}
        if self.shared:
            body["instances"] = self.live
        return Health(True, body)

    async def _run(self) -> None:
        while not self._stop.is_set():
            if await asyncio.to_thread(self.leadership.try_acquire):
                break
            await self._beat()
            await self._sleep()
        if self._stop.is_set():
            return
        self.role = "leader"
        if self.shared:
            log.info("cluster: this instance leads (scheduler, evaluations, Telegram commands)")
        lost = False
        async with self._lead():
            while not self._stop.is_set():
                await self._beat()
                await self._sleep()
                if self._stop.is_set():
                    break
                if not await asyncio.to_thread(self.leadership.held):
                    lost = True
                    break
        if lost:
            self.role = "standby"
            self._on_lost(LeadershipLost(
                "lost the leadership lock (its database connection is gone): stopped "
                "evaluating; exiting so that one instance alone leads"))

    async def _beat(self) -> None:
        if self.instances is None:
            return
        try:
            await asyncio.to_thread(self.instances.heartbeat, self.role)
            live = await asyncio.to_thread(self.instances.live)
        except Exception as exc:  # the database is unreachable: the lock check will tell
            log.warning("cluster: heartbeat failed: %s", exc)
            return
        self.live = [{"host": i.host, "pid": i.pid, "role": i.role,
                      "last_seen": i.last_seen.isoformat(timespec="seconds")} for i in live]
        count = max(1, len(live))
        if count != self._count:
            self._count = count
            self._share(count)

    async def _sleep(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=self.interval)
