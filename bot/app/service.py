"""``alvh run``: the scheduler, the evaluation job, catch-up, reload, health.

One asyncio process. For each session the job fires at close + delay, fetches
what is missing, and re-polls until the data is complete or the deadline
passes; complete data gives alerts (stored by the sink before anything is
sent), a passed deadline gives an ``ops`` alert and no trading signal. At
start the sessions missed while the bot was down are evaluated first and
their alerts marked late. Everything with side effects is injected (fetcher,
sink, clock, sleep) so the tests drive the real job against a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.app.health import Health
from bot.app.metrics import Metrics
from bot.app.scheduler import due_sessions, fire_time, next_fire
from bot.engine.compose import Context, data_alert
from bot.engine.rules import Rules
from bot.kernel.alerts import Alert, Topic
from bot.kernel.sessions import ET, SessionCalendar
from bot.market.fetch import Fetcher
from bot.market.freshness import check_freshness
from bot.pipeline.reload import ReloadResult, RulesWatcher
from bot.pipeline.session import AlertSink, Outcome, SessionEvaluator
from bot.store import Store

log = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class ServiceConfig:
    run_delay: dt.timedelta
    deadline: dt.timedelta
    """How long after the fire time to keep waiting for complete data."""
    poll_interval: dt.timedelta
    catchup_sessions: int
    capital: float
    source: Literal["live", "snapshot"]
    rules_poll_seconds: float = 30.0
    final_breadth_time: dt.time | None = None
    """ET time of day of the re-fetch of each session's final breadth figures (live)."""


def _now() -> dt.datetime:
    return dt.datetime.now(tz=ET)


class Service:
    def __init__(
        self,
        cfg: ServiceConfig,
        *,
        store: Store,
        calendar: SessionCalendar,
        watcher: RulesWatcher,
        fetch: Fetcher,
        sink: AlertSink,
        metrics: Metrics | None = None,
        clock: Callable[[], dt.datetime] = _now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        final_breadth: Callable[[dt.date], Awaitable[object]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.final_breadth = final_breadth
        """Re-fetches a session's final breadth figures (the live fetcher's), or None."""
        self.store, self.calendar, self.watcher = store, calendar, watcher
        self.fetch, self.sink = fetch, sink
        self.evaluator = SessionEvaluator(store, calendar, rules=lambda: watcher.rules,
                                          fetch=fetch, capital=cfg.capital)
        self.metrics = metrics or Metrics()
        self.clock, self.sleep = clock, sleep
        self.next_run: tuple[dt.date, dt.datetime] | None = None
        self.missed: dict[dt.date, str] = {}
        """Sessions whose deadline passed without complete data, and why (health: 503)."""
        self.missed_before: list[dt.date] = []
        """Missed sessions a later session has since stepped over (shown, not failing)."""
        self._scheduler: AsyncIOScheduler | None = None
        self._startup: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ evaluation
    def latest_session(self) -> dt.date:
        """The newest session due now: closed plus the run delay (snapshot: where it ends).

        Not merely closed: in the minutes after 16:00 providers still settle
        the day's figures, which is what the delay is for.
        """
        latest = self.calendar.last_closed_session(self.clock() - self.cfg.run_delay)
        if self.cfg.source == "snapshot":
            end, _ = self.store.latest("SPX")
            if end is not None and end < latest:
                return end
        return latest

    async def evaluate(self, session: dt.date, *, late: bool) -> tuple[Outcome, list[str]]:
        """Evaluate D once through the shared :class:`SessionEvaluator`; count and log it."""
        run = await self.evaluator.evaluate(session, late=late, sink=self.sink)
        for series in run.extras.failed:
            self.metrics.source_failures.labels(series).inc()
        if run.outcome == "already":
            return "already", []
        if run.outcome == "incomplete":
            self.metrics.runs.labels("incomplete").inc()
            return "incomplete", run.problems
        assert run.result is not None and run.result.evaluation is not None  # noqa: S101
        ev = run.result.evaluation
        for a in run.alerts:
            self.metrics.alerts.labels(a.topic.value).inc()
        self.metrics.runs.labels("late" if late else "evaluated").inc()
        self.metrics.last_session.set(self.calendar.close_time(session).timestamp())
        await self._calendar_warnings(session)
        self.metrics.pending.set(self.sink.pending())
        changes = [f"{a.decision.layer} {a.decision.action}" for a in ev.actions
                   if a.decision.action in ("add", "remove", "defer", "cancel_deferral")]
        log.info(
            "run %s%s: sources %s; condor %s; layers %s; changes %s; warnings %d; alerts %d",
            session, " (late)" if late else "",
            ", ".join(f"{k}={v}" for k, v in sorted(run.result.sources.items())),
            "go" if ev.condor and ev.condor.go else "skip",
            ",".join(a.name for a in ev.state_after.layers) or "none",
            "; ".join(changes) or "none", len(ev.warnings), len(run.alerts),
        )
        return "evaluated", []

    async def _calendar_warnings(self, session: dt.date) -> None:
        """``ops`` hears 20 sessions before an event calendar runs out (once per end)."""
        from bot.market.calendars import running_out

        alerts = await asyncio.to_thread(running_out, self.store, self.calendar, session)
        if alerts:
            await self.sink.publish(alerts)
            for a in alerts:
                self.metrics.alerts.labels(a.topic.value).inc()
                log.warning("%s", a.title)

    async def run_session(self, session: dt.date, *, late: bool = False) -> Outcome:
        """The scheduled job: retry until complete data or the deadline, then give up loudly.

        Sessions given up earlier are tried once more first (late), oldest
        first: otherwise this session's evaluation would step over them
        silently, and a layer change on a missed day would never be alerted.
        """
        if not late:
            await self._retry_missed(before=session)
        deadline = fire_time(self.calendar, session, self.cfg.run_delay) + self.cfg.deadline
        while True:
            outcome, problems = await self.evaluate(session, late=late)
            if outcome != "incomplete":
                self.missed.pop(session, None)
                return outcome
            now = self.clock()
            if now >= deadline or late:
                await self._give_up(session, problems, late)
                return "incomplete"
            wait = min(self.cfg.poll_interval, deadline - now).total_seconds()
            log.info("run %s: data incomplete (%s); polling again in %.0fs",
                     session, "; ".join(problems), wait)
            await self.sleep(wait)

    async def _retry_missed(self, before: dt.date) -> None:
        for day in sorted(d for d in self.missed if d < before):
            outcome, problems = await self.evaluate(day, late=True)
            if outcome != "incomplete":
                self.missed.pop(day, None)
                log.info("run %s: evaluated late, its data is complete now", day)
            else:
                log.warning("run %s: still incomplete (%s); the next session's layer state "
                            "steps over it", day, "; ".join(problems))
                # Reported once at its deadline; health keeps flagging only the latest.
                self.missed.pop(day, None)
                self.missed_before.append(day)

    async def _give_up(self, session: dt.date, problems: list[str], late: bool) -> None:
        self.missed[session] = "; ".join(problems)
        self.metrics.runs.labels("missed").inc()
        ctx = Context(session, self.watcher.rules.sha256, {}, None, self.cfg.capital, late=late)
        fresh = await asyncio.to_thread(check_freshness, self.store, self.calendar, session)
        await self.sink.publish([data_alert(ctx, fresh)])
        self.metrics.alerts.labels(Topic.OPS.value).inc()
        log.error("run %s: no signal, data incomplete at the deadline: %s", session,
                  "; ".join(problems))

    async def catch_up(self) -> list[tuple[dt.date, Outcome]]:
        """Evaluate the sessions missed while the bot was down, oldest first, marked late.

        Bounded by ``catchup_sessions``; with no earlier run at all only the
        latest session is evaluated (a new install should not send a week
        of history). A session still inside its data deadline is not late:
        it is left to the normal job.
        """
        latest = self.latest_session()
        now = self.clock()
        prev = self.store.runs.last()
        if prev is None:
            candidates = [latest]
        else:
            candidates = [d for d in due_sessions(self.calendar, now, self.cfg.run_delay,
                                                  self.cfg.catchup_sessions)
                          if prev.session < d <= latest]
        out: list[tuple[dt.date, Outcome]] = []
        for day in candidates:
            if self.store.runs.get(day) is not None:
                continue
            in_time = now < fire_time(self.calendar, day, self.cfg.run_delay) + self.cfg.deadline
            if in_time and day == self.calendar.last_closed_session(now):
                out.append((day, await self.run_session(day, late=False)))
            else:
                out.append((day, await self.run_session(day, late=True)))
        return out

    # ------------------------------------------------------------- reload
    def _accept_rules(self, new: Rules) -> str | None:
        """An edit may not delete or rename a layer that is on: nothing could take it off."""
        last = self.store.runs.last()
        if last is None:
            return None
        names = {layer.name for layer in new.hedge.layers}
        orphans = [a.name for a in last.state.layers if a.name not in names]
        if orphans:
            return (f"hedge.layers: {', '.join(orphans)} is on and would no longer be in the "
                    "rules; keep it until it comes off (or close it by hand first)")
        return None

    async def check_rules(self) -> ReloadResult | None:
        before = self.watcher.rules.sha256
        result = self.watcher.check(accept=self._accept_rules)
        if result is None:
            return None
        session = self.calendar.last_closed_session(self.clock())
        kind = "rules_reloaded" if result.ok else "rules_refused"
        title = ("🔁 Rules reloaded" if result.ok else "⛔ Rules edit refused")
        from html import escape

        # Keyed by the transition, so going back to earlier rules is announced too.
        alert = Alert(session, Topic.OPS, kind, f"{before[:8]}>{result.digest[:8]}", title,
                      f"{title}\n{result.message}",
                      f"<b>{escape(title)}</b>\n<pre>{escape(result.message)}</pre>")
        (log.info if result.ok else log.error)("%s", result.message)
        await self.sink.publish([alert])
        return result

    # ------------------------------------------------------------- health
    def health(self) -> Health:
        now = self.clock()
        last = self.store.runs.last()
        nxt = self.next_run
        overdue = None
        if nxt is None or nxt[1] > now:
            # Is a session that should be done by now not done?
            try:
                latest = self.latest_session()
            except ValueError:
                latest = None
            if latest is not None and (last is None or last.session < latest):
                due = fire_time(self.calendar, latest, self.cfg.run_delay) + self.cfg.deadline
                if due < now and self.cfg.source == "live":
                    overdue = latest
        ok = not self.missed and overdue is None
        body = {
            "status": "ok" if ok else "failing",
            "source": self.cfg.source,
            "rules_sha256": self.watcher.rules.sha256,
            "last_evaluated_session": last.session.isoformat() if last else None,
            "next_run": {"session": nxt[0].isoformat(), "at": nxt[1].isoformat()} if nxt else None,
            "pending_deliveries": self.sink.pending(),
            "missed_sessions": {d.isoformat(): why for d, why in sorted(self.missed.items())},
            "skipped_sessions": [d.isoformat() for d in self.missed_before[-10:]],
            "overdue_session": overdue.isoformat() if overdue else None,
        }
        return Health(ok, body)

    # ---------------------------------------------------------- scheduling
    def schedule_next(self) -> tuple[dt.date, dt.datetime]:
        session, when = next_fire(self.calendar, self.clock(), self.cfg.run_delay)
        self.next_run = (session, when)
        if self._scheduler is not None:
            self._scheduler.add_job(
                self._job, "date", run_date=when, args=[session], id="evaluate",
                replace_existing=True,
                misfire_grace_time=int(self.cfg.deadline.total_seconds()),
                coalesce=True, max_instances=1,
            )
        log.info("next evaluation: session %s at %s", session, when.isoformat())
        self._schedule_final_breadth(session)
        return session, when

    def _schedule_final_breadth(self, session: dt.date) -> None:
        """The evening re-fetch of ``session``'s breadth, whose figures WSJ revises."""
        at = self.cfg.final_breadth_time
        if self._scheduler is None or self.final_breadth is None or at is None:
            return
        when = dt.datetime.combine(session, at, tzinfo=ET)
        if when <= self.calendar.close_time(session) or when <= self.clock():
            return
        self._scheduler.add_job(self.final_breadth, "date", run_date=when, args=[session],
                                id="breadth-final", replace_existing=True,
                                misfire_grace_time=int(self.cfg.deadline.total_seconds()),
                                coalesce=True, max_instances=1)

    async def _job(self, session: dt.date) -> None:
        try:
            await self.run_session(session)
        except Exception:
            log.exception("run %s failed", session)
            self.missed[session] = "the evaluation raised an error (see the log)"
        finally:
            self.schedule_next()

    async def start(self) -> None:
        """Start the scheduler; catch up in the background, then schedule the next session.

        The catch-up runs as a task, not inline: waiting for a session's data
        can take hours, and SIGTERM must still stop the bot meanwhile.
        """
        self._scheduler = AsyncIOScheduler(timezone=ET)
        self._scheduler.start()
        self._scheduler.add_job(self.check_rules, "interval",
                                seconds=self.cfg.rules_poll_seconds, id="rules",
                                coalesce=True, max_instances=1)
        self._startup = asyncio.create_task(self._catch_up_then_schedule(), name="catch-up")

    async def _catch_up_then_schedule(self) -> None:
        try:
            for day, outcome in await self.catch_up():
                log.info("catch-up %s: %s", day, outcome)
        except Exception:
            log.exception("catch-up failed; the next session is scheduled anyway")
        self.schedule_next()

    async def stop(self) -> None:
        if self._startup is not None and not self._startup.done():
            self._startup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._startup
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Service]:
        """:meth:`start` for the ``async with`` block, :meth:`stop` on the way out."""
        await self.start()
        try:
            yield self
        finally:
            await self.stop()
