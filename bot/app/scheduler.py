"""When to evaluate: each XNYS session's close plus a delay, from the exchange calendar.

Not a weekday cron: a cron at 16:20 would fire on Thanksgiving, fire three
hours after a 13:00 early close, and drift with DST if written in UTC. Each
fire time here is ``close_time(session) + delay`` in America/New_York, one
date-triggered job at a time.

APScheduler settings, chosen deliberately:

- ``misfire_grace_time`` = the data deadline. If the process was paused (a
  suspended VM, a long GC, a laptop asleep) past the fire time, APScheduler's
  default grace of 1 s would silently skip the session; with the deadline as
  grace, a late wake-up still evaluates the session (it waits for data no
  longer than the deadline anyway), and beyond that the start-up catch-up
  takes over and marks the alerts late.
- ``coalesce=True`` and ``max_instances=1``: one job per session; if two
  fire times were ever pending for the same job they run once, never twice.
"""

from __future__ import annotations

import datetime as dt

from bot.kernel.sessions import ET, SessionCalendar

MISFIRE_NOTE = "misfire_grace_time = data deadline; coalesce = True; max_instances = 1"


def fire_time(calendar: SessionCalendar, session: dt.date, delay: dt.timedelta) -> dt.datetime:
    """When session D is evaluated: its close (16:00 or 13:00 ET) plus the delay."""
    return calendar.close_time(session) + delay


def next_fire(
    calendar: SessionCalendar, now: dt.datetime, delay: dt.timedelta
) -> tuple[dt.date, dt.datetime]:
    """The first session whose fire time is strictly after ``now`` (aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    day = calendar.session_on_or_before(now.astimezone(ET).date())
    while fire_time(calendar, day, delay) <= now:
        day = calendar.next_session(day)
    return day, fire_time(calendar, day, delay)


def due_sessions(
    calendar: SessionCalendar, now: dt.datetime, delay: dt.timedelta, limit: int
) -> list[dt.date]:
    """The latest ``limit`` sessions whose fire time has passed, oldest first."""
    if limit <= 0:
        return []
    nxt, _ = next_fire(calendar, now, delay)
    out: list[dt.date] = []
    day = nxt
    while len(out) < limit:
        try:
            day = calendar.previous_session(day)
        except ValueError:
            break
        out.append(day)
    return sorted(out)
