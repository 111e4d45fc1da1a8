"""When to evaluate, derived from the exchange calendar and the store, never chained.

Each NYSE session D is evaluated at its *fire time*, ``close_time(D) + delay``
in America/New_York (13:00 early closes honoured, no run on a holiday,
DST-proof; not a weekday cron, which would fire on Thanksgiving and three
hours after an early close). Which sessions to run is never remembered from
job to job: :func:`plan` recomputes it from the calendar, the clock and the
runs already stored, at start, after every evaluation and on the service's
watchdog tick. A process paused across a fire time (a suspended VM, a laptop
asleep, a stop-the-world pause) therefore cannot lose a session: the next
tick finds it due and not evaluated, and runs it, late.

The catch-up bound (``ALVH_CATCHUP_SESSIONS``) is the only way a session is
not evaluated, and then :class:`Plan` lists it under ``skipped`` so the
operator is told which sessions and why. A new install (no run in the
store) starts with the latest due session only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from bot.kernel.models import MIN_CLOSE_GAP_MINUTES
from bot.kernel.sessions import ET, SessionCalendar

MIN_CLOSE_GAP = dt.timedelta(minutes=MIN_CLOSE_GAP_MINUTES)
"""The shortest close-to-close time (see :data:`bot.kernel.models.MIN_CLOSE_GAP_MINUTES`)."""


def fire_time(calendar: SessionCalendar, session: dt.date, delay: dt.timedelta) -> dt.datetime:
    """When session D is evaluated: its close (16:00 or 13:00 ET) plus the delay."""
    return calendar.close_time(session) + delay


def next_fire(
    calendar: SessionCalendar, now: dt.datetime, delay: dt.timedelta
) -> tuple[dt.date, dt.datetime]:
    """The first session whose fire time is strictly after ``now`` (aware).

    A delay can carry a fire time past midnight (a 540-minute delay fires at
    01:00 the next day), so the search starts one session before today's.
    Raises ValueError when the calendar has no such session.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    day = calendar.session_on_or_before(now.astimezone(ET).date())
    while True:
        try:
            before = calendar.previous_session(day)
        except ValueError:
            break
        if fire_time(calendar, before, delay) <= now:
            break
        day = before
    while fire_time(calendar, day, delay) <= now:
        day = calendar.next_session(day)
    return day, fire_time(calendar, day, delay)


def latest_due(calendar: SessionCalendar, now: dt.datetime, delay: dt.timedelta) -> dt.date:
    """The last session whose fire time is at or before ``now``."""
    nxt, _ = next_fire(calendar, now, delay)
    return calendar.previous_session(nxt)


def due_sessions(
    calendar: SessionCalendar, now: dt.datetime, delay: dt.timedelta, limit: int
) -> list[dt.date]:
    """The latest ``limit`` sessions whose fire time has passed, oldest first."""
    if limit <= 0:
        return []
    return _ending_at(calendar, latest_due(calendar, now, delay), limit)


def _ending_at(calendar: SessionCalendar, last: dt.date, limit: int) -> list[dt.date]:
    """The ``limit`` sessions ending with ``last``, oldest first (fewer at the calendar's start)."""
    out: list[dt.date] = []
    day = last
    while len(out) < limit:
        out.append(day)
        if day <= calendar.first:
            break
        day = calendar.previous_session(day)
    return sorted(out)


@dataclass(frozen=True, slots=True)
class Timing:
    """The scheduling settings that decide what is due."""

    delay: dt.timedelta
    deadline: dt.timedelta
    """How long after its fire time a session may wait for complete data."""
    catchup_sessions: int


@dataclass(frozen=True, slots=True)
class Plan:
    """What the service must do at ``now``: derived, never remembered."""

    now: dt.datetime
    due: tuple[dt.date, ...]
    """Sessions to evaluate now, oldest first: fire time passed, not in the store."""
    skipped: tuple[dt.date, ...]
    """Sessions not evaluated and beyond the catch-up bound: they will never run."""
    next_run: tuple[dt.date, dt.datetime] | None
    """The next fire time after ``now`` (None: the calendar ends)."""

    def overdue(self, calendar: SessionCalendar, timing: Timing) -> list[dt.date]:
        """Due sessions whose data deadline has passed as well."""
        return [d for d in self.due
                if fire_time(calendar, d, timing.delay) + timing.deadline <= self.now]


def plan(
    calendar: SessionCalendar,
    now: dt.datetime,
    timing: Timing,
    *,
    recorded: Collection[dt.date],
    first_run: dt.date | None,
    last_run: dt.date | None,
    horizon: dt.date | None = None,
) -> Plan:
    """Which sessions are due at ``now`` and not evaluated, and which are lost.

    - A session inside its data deadline is always due.
    - Past the deadline, the latest ``catchup_sessions`` sessions are due
      (a catch-up, their alerts marked late); with no run in the store at all,
      only the latest due session (a new install does not send a week of history).
    - Nothing before the first run in the store is due.
    - ``horizon`` caps catch-ups (the snapshot source: no data after its end).
    - Not evaluated sessions after the last run and before that window are
      ``skipped``.
    """
    # The calendar's own ends, checked rather than caught: a calendar library that
    # raises for another reason must surface (health says scheduler_error), not be
    # taken for "no more sessions".
    next_run: tuple[dt.date, dt.datetime] | None = None
    if fire_time(calendar, calendar.last, timing.delay) > now:
        next_run = next_fire(calendar, now, timing.delay)
    if fire_time(calendar, calendar.first, timing.delay) > now:
        return Plan(now, (), (), next_run)
    latest = (calendar.last if next_run is None
              else calendar.previous_session(next_run[0]))
    current = (latest if fire_time(calendar, latest, timing.delay) + timing.deadline > now
               else None)
    newest = latest if horizon is None else min(latest, horizon)
    if first_run is None:
        window = {newest}
    else:
        window = {d for d in _ending_at(calendar, newest, timing.catchup_sessions)
                  if d >= first_run}
    if current is not None:
        window.add(current)
    due = tuple(sorted(d for d in window if d not in recorded))
    skipped: tuple[dt.date, ...] = ()
    if last_run is not None and last_run < newest:
        first_in_window = min(window, default=None)
        skipped = tuple(
            d for d in calendar.sessions_between(calendar.next_session(last_run), newest)
            if d not in recorded and d not in window
            and (first_in_window is None or d < first_in_window))
    return Plan(now, due, skipped, next_run)


def ranges(calendar: SessionCalendar, sessions: Sequence[dt.date]) -> str:
    """``2026-02-02..2026-02-06, 2026-02-10`` (consecutive sessions joined), for messages."""
    parts: list[str] = []
    run: list[dt.date] = []
    for d in sorted(sessions):
        if run and calendar.next_session(run[-1]) != d:
            parts.append(_span(run))
            run = []
        run.append(d)
    if run:
        parts.append(_span(run))
    return ", ".join(parts)


def _span(run: list[dt.date]) -> str:
    return run[0].isoformat() if len(run) == 1 else f"{run[0]}..{run[-1]}"
