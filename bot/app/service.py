"""``alvh run``: the scheduler, the evaluation job, catch-up, reload, health.

One asyncio process. What to evaluate is never chained from job to job: at
start, after every evaluation and on a watchdog tick each minute, the service
asks :func:`bot.app.scheduler.plan` which sessions are due and not in the
store, and evaluates them, oldest first, one at a time. A session waits for
complete data until its deadline (or until the next session is due, whichever
comes first), then an ``ops`` alert says what is missing and no trading
signal is sent. A session found due after its fire time was missed (the bot
down or paused) is evaluated late, within the catch-up bound; beyond it,
``ops`` is told which sessions were skipped and why. A date job at the next
fire time makes the run punctual; the watchdog makes it certain.

Everything with side effects is injected (fetcher, sink, clock, sleep) so the
tests drive the real service against a controllable clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from html import escape
from typing import Literal

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.app.health import Health
from bot.app.metrics import Metrics
from bot.app.scheduler import Plan, Timing, fire_time, latest_due, plan, ranges
from bot.engine.compose import Context, data_alert
from bot.engine.rules import Rules
from bot.kernel.alerts import Alert, Topic
from bot.kernel.sessions import ET, SessionCalendar
from bot.market.extras import Fetcher
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
    tick_seconds: float = 60.0
    """The watchdog: how often the plan is recomputed."""
    late_after: dt.timedelta = dt.timedelta(minutes=5)
    """A session started this long after its fire time is late, and its alerts say so."""
    stalled_after: dt.timedelta = dt.timedelta(minutes=5)
    """/healthz fails when the watchdog has not ticked for this long."""

    @property
    def timing(self) -> Timing:
        return Timing(self.run_delay, self.deadline, self.catchup_sessions)


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
        self.missed_before: dict[dt.date, str] = {}
        """Missed sessions a later session has since stepped over, and why (shown, not
        failing)."""
        self.skipped: dict[dt.date, str] = {}
        """Sessions beyond the catch-up bound, reported to ops, never evaluated."""
        self.last_tick: dt.datetime | None = None
        self.running_session: dt.date | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._runner: asyncio.Task[list[tuple[dt.date, Outcome]]] | None = None
        self._evaluating = asyncio.Lock()
        self._final: asyncio.Task[None] | None = None
        self._final_done: set[dt.date] = set()
        """Sessions whose final breadth was re-fetched in this process."""

    # ------------------------------------------------------------ evaluation
    def horizon(self) -> dt.date | None:
        """The snapshot's last session: later sessions are never caught up (no data)."""
        if self.cfg.source != "snapshot":
            return None
        end, _ = self.store.latest("SPX")
        return end

    def latest_session(self) -> dt.date:
        """The newest session due now: closed plus the run delay (snapshot: where it ends).

        Not merely closed: in the minutes after 16:00 providers still settle
        the day's figures, which is what the delay is for.
        """
        latest = latest_due(self.calendar, self.clock(), self.cfg.run_delay)
        end = self.horizon()
        return latest if end is None else min(latest, end)

    def plan(self) -> Plan:
        """What is due now, from the calendar and the runs in the store."""
        recorded = self.store.runs.sessions()
        return plan(self.calendar, self.clock(), self.cfg.timing, recorded=recorded,
                    first_run=min(recorded, default=None), last_run=max(recorded, default=None),
                    horizon=self.horizon())

    async def evaluate(self, session: dt.date, *, late: bool) -> tuple[Outcome, list[str]]:
        """Evaluate D once through the shared :class:`SessionEvaluator`; count and log it."""
        async with self._evaluating:
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

    def is_late(self, session: dt.date) -> bool:
        """Started more than ``late_after`` after its fire time: the alerts say late."""
        fire = fire_time(self.calendar, session, self.cfg.run_delay)
        return self.clock() > fire + self.cfg.late_after

    def give_up_at(self, session: dt.date) -> tuple[dt.datetime, str]:
        """When to stop waiting for D's data, and why then.

        The data deadline, or the next session's fire time if that comes
        first: waiting for one day's data never holds up the next session.
        """
        deadline = fire_time(self.calendar, session, self.cfg.run_delay) + self.cfg.deadline
        try:
            nxt = self.calendar.next_session(session)
        except ValueError:
            return deadline, "data deadline"
        next_fire = fire_time(self.calendar, nxt, self.cfg.run_delay)
        if next_fire <= deadline:
            return next_fire, f"the next session ({nxt}) is due"
        return deadline, "data deadline"

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
        """Evaluate D: retry until complete data or the deadline, then give up loudly.

        Sessions given up earlier are tried once more first (late), oldest
        first: otherwise this session's evaluation would step over them
        silently, and a layer change on a missed day would never be alerted.
        """
        await self._retry_missed(before=session)
        give_up, why = self.give_up_at(session)
        self.running_session = session
        try:
            while True:
                outcome, problems = await self.evaluate(session, late=late)
                if outcome != "incomplete":
                    self.missed.pop(session, None)
                    return outcome
                now = self.clock()
                if now >= give_up:
                    await self._give_up(session, problems, late, why)
                    return "incomplete"
                wait = min(self.cfg.poll_interval, give_up - now).total_seconds()
                log.info("run %s: data incomplete (%s); polling again in %.0fs",
                         session, "; ".join(problems), wait)
                await self.sleep(wait)
        finally:
            self.running_session = None

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
                self.missed_before[day] = self.missed.pop(day)

    async def _give_up(self, session: dt.date, problems: list[str], late: bool,
                       why: str) -> None:
        self.missed[session] = f"{'; '.join(problems)} (gave up: {why})"
        self.metrics.runs.labels("missed").inc()
        rules = self.watcher.rules
        ctx = Context(session, rules.sha256, {}, None, self.cfg.capital, late=late,
                      rules_file=rules.label)
        fresh = await asyncio.to_thread(check_freshness, self.store, self.calendar, session)
        await self.sink.publish([data_alert(ctx, fresh)])
        self.metrics.alerts.labels(Topic.OPS.value).inc()
        log.error("run %s: no signal, data incomplete at the %s: %s", session, why,
                  "; ".join(problems))

    async def _report_skipped(self, skipped: tuple[dt.date, ...]) -> None:
        """Tell ``ops`` once which sessions fell beyond the catch-up bound."""
        new = [d for d in skipped if d not in self.skipped]
        if not new:
            return
        n = self.cfg.catchup_sessions
        why = (f"beyond the catch-up bound (ALVH_CATCHUP_SESSIONS={n}): the bot was down or "
               f"paused past their fire times and only the latest {n} missed session(s) are "
               "evaluated late")
        for d in new:
            self.skipped[d] = why
        listed = ranges(self.calendar, new)
        title = f"⏭ {len(new)} session(s) skipped, not evaluated"
        text = (f"{title}\n{listed}\nWhy: {why}.\nNo signal was computed for them; evaluate "
                "one with /rundate D or `alvh run-once --date D`.")
        html = (f"<b>{escape(title)}</b>\n<code>{escape(listed)}</code>\nWhy: {escape(why)}."
                "\nNo signal was computed for them; evaluate one with /rundate D or "
                "<code>alvh run-once --date D</code>.")
        key = f"{new[0]}..{new[-1]}"
        await self.sink.publish([Alert(new[-1], Topic.OPS, "sessions_skipped", key, title,
                                       text, html)])
        self.metrics.runs.labels("skipped").inc(len(new))
        self.metrics.alerts.labels(Topic.OPS.value).inc()
        log.error("sessions skipped: %s: %s", listed, why)

    async def catch_up(self) -> list[tuple[dt.date, Outcome]]:
        """Evaluate every due session, oldest first, until the plan has nothing left.

        The plan is recomputed after each evaluation (a session can fall due
        while an earlier one waits for data). Sessions given up or skipped in
        this process are not tried again here: a given-up one is retried once
        before the next session is evaluated.
        """
        out: list[tuple[dt.date, Outcome]] = []
        while True:
            p = await asyncio.to_thread(self.plan)
            self.next_run = p.next_run
            await self._report_skipped(p.skipped)
            done = {d for d, _ in out}
            todo = [d for d in p.due if d not in done and d not in self.missed
                    and d not in self.skipped and d not in self.missed_before]
            if not todo:
                return out
            day = todo[0]
            try:
                outcome = await self.run_session(day, late=self.is_late(day))
            except Exception:
                log.exception("run %s failed", day)
                self.missed[day] = "the evaluation raised an error (see the log)"
                outcome = "incomplete"
            out.append((day, outcome))

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
        # Keyed by the transition, so going back to earlier rules is announced too.
        alert = Alert(session, Topic.OPS, kind, f"{before[:8]}>{result.digest[:8]}", title,
                      f"{title}\n{result.message}",
                      f"<b>{escape(title)}</b>\n<pre>{escape(result.message)}</pre>")
        (log.info if result.ok else log.error)("%s", result.message)
        await self.sink.publish([alert])
        return result

    # ------------------------------------------------------------- health
    def health(self) -> Health:
        """``ok``, or ``failing`` with ``problems`` naming each check that failed.

        Failing: a session overdue (past its fire time plus the deadline, not
        evaluated and not reported), a session missed (reported: its data never
        completed), no next run scheduled, the watchdog silent for
        ``stalled_after`` (the event loop blocked or the scheduler dead), or the
        schedule itself failing to compute (``scheduler_error``: e.g. a calendar
        library that raises under this pandas).
        """
        now = self.clock()
        problems: dict[str, str] = {}
        try:
            p = self.plan()
        except Exception as exc:  # the calendar or the store failing: say so, do not crash
            log.exception("health: the schedule cannot be computed")
            problems["scheduler_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            p = Plan(now, (), (), None)
        last = self.store.runs.last()
        reported = self.missed.keys() | self.skipped.keys() | self.missed_before.keys()
        overdue = [d for d in p.overdue(self.calendar, self.cfg.timing)
                   if d not in reported and d != self.running_session]
        if overdue:
            problems["overdue_sessions"] = (
                f"{ranges(self.calendar, overdue)}: past fire time + deadline, not evaluated")
        if self.missed:
            problems["missed_sessions"] = "data incomplete at the deadline (ops was told)"
        busy = self._runner is not None and not self._runner.done()
        nxt = self._scheduled_run() or (p.next_run if busy else None)
        if p.next_run is None and "scheduler_error" not in problems:
            problems["no_next_run"] = "the session calendar has no later session"
        elif p.next_run is None:
            problems["no_next_run"] = "the schedule cannot be computed"
        elif nxt is None:
            problems["no_next_run"] = (f"no evaluation queued (session {p.next_run[0]} is due at "
                                       f"{p.next_run[1].isoformat()})")
        if self.last_tick is None or now - self.last_tick > self.cfg.stalled_after:
            since = self.last_tick.isoformat() if self.last_tick else "never"
            problems["watchdog_stalled"] = f"last tick {since}"
        ok = not problems
        body = {
            "status": "ok" if ok else "failing",
            "problems": problems,
            "source": self.cfg.source,
            "rules_sha256": self.watcher.rules.sha256,
            "rules_file": self.watcher.rules.origin,
            "last_evaluated_session": last.session.isoformat() if last else None,
            "evaluating": self.running_session.isoformat() if self.running_session else None,
            "next_run": {"session": nxt[0].isoformat(), "at": nxt[1].isoformat()} if nxt else None,
            "watchdog_last_tick": self.last_tick.isoformat() if self.last_tick else None,
            "pending_deliveries": self.sink.pending(),
            "missed_sessions": {d.isoformat(): why for d, why in sorted(self.missed.items())},
            "overdue_sessions": [d.isoformat() for d in overdue],
            "skipped_sessions": [d.isoformat() for d in sorted(
                {*self.missed_before, *self.skipped})][-20:],
        }
        return Health(ok, body)

    # ---------------------------------------------------------- scheduling
    def _scheduled_run(self) -> tuple[dt.date, dt.datetime] | None:
        """The next run, if a date job for it is queued in APScheduler."""
        if self._scheduler is None:
            return self.next_run
        job = self._scheduler.get_job("evaluate")
        if job is None or getattr(job, "next_run_time", None) is None:
            return None
        return self.next_run

    def schedule_next(self) -> tuple[dt.date, dt.datetime] | None:
        """Queue a date job at the next fire time (punctuality; the watchdog is the net)."""
        p = self.plan()
        self.next_run = p.next_run
        if p.next_run is None:
            log.error("no next evaluation: the session calendar has no later session")
            return None
        session, when = p.next_run
        if self._scheduler is not None:
            job = self._scheduler.get_job("evaluate")
            if job is not None and job.args and job.args[0] == session:
                return p.next_run
            # APScheduler keeps the system time; ``when`` is on the service's clock
            # (the same clock in production, a controllable one in tests).
            run_date = dt.datetime.now(tz=ET) + (when - self.clock())
            self._scheduler.add_job(
                self.tick, "date", run_date=run_date, args=[session], id="evaluate",
                replace_existing=True, misfire_grace_time=None, coalesce=True,
                max_instances=1,
            )
        log.info("next evaluation: session %s at %s", session, when.isoformat())
        self._schedule_final_breadth(session)
        return p.next_run

    def _schedule_final_breadth(self, session: dt.date) -> None:
        """The evening re-fetch of ``session``'s breadth, whose figures WSJ revises."""
        at = self.cfg.final_breadth_time
        if self._scheduler is None or self.final_breadth is None or at is None:
            return
        when = dt.datetime.combine(session, at, tzinfo=ET)
        if when <= self.calendar.close_time(session) or when <= self.clock():
            return
        self._scheduler.add_job(self.refetch_final_breadth, "date", run_date=when, args=[session],
                                id="breadth-final", replace_existing=True,
                                misfire_grace_time=int(self.cfg.deadline.total_seconds()),
                                coalesce=True, max_instances=1)

    def final_breadth_due(self) -> dt.date | None:
        """The session whose final-breadth re-fetch is due now and not done, if any.

        Derived like the evaluations, so a paused process or a missed date job
        still re-fetches: from the configured time (20:00 ET) on the session's
        day until the next session closes (after that the latest-session sources
        serve the next day's figures).
        """
        at = self.cfg.final_breadth_time
        if self.final_breadth is None or at is None:
            return None
        now = self.clock()
        session = self.calendar.last_closed_session(now)
        when = dt.datetime.combine(session, at, tzinfo=ET)
        if when <= self.calendar.close_time(session) or now < when:
            return None
        return None if session in self._final_done else session

    async def refetch_final_breadth(self, session: dt.date) -> None:
        """Fetch ``session``'s final breadth once (the date job and the watchdog both call)."""
        if self.final_breadth is None or session in self._final_done:
            return
        self._final_done.add(session)
        try:
            lines = await self.final_breadth(session)
            for line in lines if isinstance(lines, list) else []:
                log.info("%s", line)
        except Exception:
            log.exception("BREADTH final figures for %s: the re-fetch failed", session)

    async def tick(self, session: dt.date | None = None) -> None:
        """The watchdog (and the date job): make sure every due session is being run.

        Cheap and quick: it starts the runner when there is work and no
        runner, and re-queues the date job. ``session`` is the date job's
        session, for the log only: the plan decides what runs.
        """
        self.last_tick = self.clock()
        final = await asyncio.to_thread(self.final_breadth_due)
        if final is not None and (self._final is None or self._final.done()):
            self._final = asyncio.create_task(self.refetch_final_breadth(final),
                                              name="final-breadth")
        if self._runner is None or self._runner.done():
            due = await asyncio.to_thread(lambda: self.plan().due)
            todo = [d for d in due if d not in self.missed and d not in self.skipped
                    and d not in self.missed_before]
            # Checked again: another tick (the date job and the watchdog firing together
            # on wake-up) may have started the runner while this one read the plan.
            if todo and (self._runner is None or self._runner.done()):
                self._runner = asyncio.create_task(self._run_due(), name="evaluate")
                return
        self.schedule_next()

    async def _run_due(self) -> list[tuple[dt.date, Outcome]]:
        try:
            done = await self.catch_up()
            for day, outcome in done:
                log.info("session %s: %s", day, outcome)
            return done
        except Exception:
            log.exception("scheduling failed; the watchdog tries again in %.0fs",
                          self.cfg.tick_seconds)
            return []
        finally:
            try:
                self.schedule_next()
            except Exception:  # the same failure: /healthz says scheduler_error
                log.exception("the next evaluation cannot be scheduled")

    async def start(self) -> None:
        """Start the scheduler, the watchdog and the rules poll; run what is due now.

        The evaluations run as a task, not inline: waiting for a session's
        data can take hours, and SIGTERM must still stop the bot meanwhile.
        """
        self._scheduler = AsyncIOScheduler(timezone=ET)
        self._scheduler.start()
        self._scheduler.add_job(self.check_rules, "interval",
                                seconds=self.cfg.rules_poll_seconds, id="rules",
                                coalesce=True, max_instances=1)
        self._scheduler.add_job(self.tick, "interval", seconds=self.cfg.tick_seconds,
                                id="watchdog", coalesce=True, max_instances=1,
                                misfire_grace_time=None)
        # An edit made while this instance was not running the service (a standby
        # taking over, a restart) is in force before anything is evaluated.
        await self.check_rules()
        await self.tick()

    async def stop(self) -> None:
        for task in (self._runner, self._final):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
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
