"""One evaluation of one session, the same for the scheduler, ``run-once`` and ``/rundate``.

fetch (what the store lacks) → freshness → indicators → decisions → alerts →
the sink (the outbox: stored before anything is sent) → the run record. The
order of the last two is what makes a crash safe: the outbox is idempotent by
alert key, and a session without a run record is evaluated again and finds
the same keys. Nothing here schedules, retries or reads settings: the service
decides when, and the composition root decides with what.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from bot.engine.record import RunRecord
from bot.engine.rules import Rules
from bot.kernel.alerts import Alert
from bot.kernel.sessions import SessionCalendar
from bot.market.extras import Extras, Fetcher
from bot.pipeline.checkpoint import StateCache
from bot.pipeline.evaluation import DayResult, day_alerts, evaluate_day
from bot.store import Store, StoredRun

log = logging.getLogger(__name__)

Outcome = Literal["evaluated", "already", "incomplete"]


class AlertSink(Protocol):
    """Where alerts go: the outbox (stored, then delivered)."""

    async def publish(self, alerts: Sequence[Alert]) -> None: ...

    def pending(self) -> int: ...


@dataclass(slots=True)
class SessionRun:
    """What one evaluation did, for the caller to log, count or print."""

    session: dt.date
    outcome: Outcome
    result: DayResult | None = None
    alerts: list[Alert] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    """The fetch report's lines (what came from where, what failed)."""
    extras: Extras = field(default_factory=Extras)
    previous: StoredRun | None = None
    """The earlier run of this session, when ``outcome`` is ``already``."""
    recorded: bool = False

    @property
    def problems(self) -> list[str]:
        """Why the data was not complete (empty unless ``incomplete``)."""
        if self.result is None or self.result.evaluation is not None:
            return []
        return self.result.freshness.problems()


class SessionEvaluator:
    """Evaluates sessions against one store with the rules in force at each call."""

    def __init__(
        self,
        store: Store,
        calendar: SessionCalendar,
        *,
        rules: Callable[[], Rules],
        fetch: Fetcher,
        capital: float,
        cache: StateCache | None = None,
    ) -> None:
        self.store, self.calendar = store, calendar
        self.rules, self.fetch, self.capital = rules, fetch, capital
        self.cache = cache
        """Where a layer state rebuilt from history is kept (see :mod:`bot.pipeline.checkpoint`)."""

    async def evaluate(
        self, session: dt.date, *, late: bool, sink: AlertSink | None, chart: bool = True
    ) -> SessionRun:
        """Evaluate ``session`` once. Idempotent: an evaluated session is ``already``.

        ``sink=None`` is a dry run: the alerts are built and returned, nothing
        is stored, recorded or sent, and an earlier run does not stop it.
        """
        if sink is not None:
            previous = self.store.runs.get(session)
            if previous is not None:
                return SessionRun(session, "already", previous=previous)
        fetched, extras = await self.fetch(session)
        for line in fetched:
            log.info("fetch %s: %s", session, line)
        rules = self.rules()
        result = await asyncio.to_thread(
            evaluate_day, self.store, self.calendar, rules, session,
            capital=self.capital, settlements=extras.settlements,
            chain=extras.chain.quotes if extras.chain else None,
            etp_price=extras.etp_price, cache=self.cache,
        )
        run = SessionRun(session, "incomplete", result, fetched=fetched, extras=extras)
        if result.evaluation is None:
            return run
        run.alerts = await asyncio.to_thread(
            day_alerts, self.store, result, rules.sha256, self.capital, late=late, chart=chart,
            rules_file=rules.label)
        run.outcome = "evaluated"
        if sink is None:
            return run
        # The outbox first (idempotent by key), then the run record: see the module doc.
        await sink.publish(run.alerts)
        run.recorded = await asyncio.to_thread(
            self.store.runs.record, RunRecord.of(result.evaluation), late=late)
        return run
