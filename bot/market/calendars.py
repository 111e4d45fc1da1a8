"""How far each event calendar reaches, and the warning before one runs out.

A blackout before FOMC, CPI or PPI can only be applied while the calendar of
that kind lists a future event. Calendars end (the shipped FOMC list at the
Fed's tentative schedule, CPI and PPI at the BLS schedule of the year), and a
bot that silently stops applying a blackout is worse than one that says so:
so each kind's *coverage* (its last known event) is known here, ``ops`` is
told :data:`WARN_SESSIONS` sessions before it runs out, and ``alvh calendar``
lists the events and each kind's coverage. (That the blackout of a kind
cannot be applied once its calendar ends is the indicators' "not evaluable".)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape

from bot.kernel.alerts import Alert, Topic
from bot.kernel.models import Event, EventKind
from bot.kernel.sessions import SessionCalendar
from bot.store import Store

WARN_SESSIONS = 20
"""Sessions before a calendar's last known event at which ``ops`` is told."""
WHERE: dict[EventKind, str] = {
    EventKind.FOMC: "the Fed's calendar (federalreserve.gov/monetarypolicy/fomccalendars.htm)",
    EventKind.CPI: "BLS's CPI schedule (bls.gov/schedule/news_release/cpi.htm)",
    EventKind.PPI: "BLS's PPI schedule (bls.gov/schedule/news_release/ppi.htm)",
}
"""Where the next dates of each kind are published, for the warning."""


@dataclass(frozen=True, slots=True)
class Coverage:
    """How far one kind's calendar reaches, seen from ``today``."""

    kind: EventKind
    last: dt.date | None
    """The last known event of this kind (None: no calendar at all)."""
    sessions_left: int | None
    """Sessions from ``today`` to ``last`` (0 or less: it has run out)."""
    sources: tuple[str, ...]

    @property
    def ended(self) -> bool:
        return self.sessions_left is None or self.sessions_left <= 0

    def line(self) -> str:
        if self.last is None:
            return f"{self.kind:<5} no calendar: its blackout cannot be applied"
        where = f" (from {', '.join(self.sources)})" if self.sources else ""
        if self.ended:
            return (f"{self.kind:<5} covered to {self.last}{where}: RUN OUT, its blackout "
                    "cannot be applied")
        return (f"{self.kind:<5} covered to {self.last}{where}: {self.sessions_left} "
                "session(s) left")


def coverage(store: Store, calendar: SessionCalendar, today: dt.date) -> list[Coverage]:
    """Each watched kind's coverage as the store holds it."""
    out = []
    for kind in EventKind:
        events = store.events([kind])
        last = max((e.date for e in events), default=None)
        left = None
        if last is not None:
            start, end = sorted((today, min(last, calendar.last)))
            span = len(calendar.sessions_between(calendar.session_on_or_after(start),
                                                 calendar.session_on_or_after(end))) - 1
            left = span if last >= today else -span
        sources = tuple(sorted({e.source for e in events if e.date > today}))
        out.append(Coverage(kind, last, left, sources))
    return out


def running_out(store: Store, calendar: SessionCalendar, session: dt.date) -> list[Alert]:
    """An ``ops`` alert per kind whose calendar ends within :data:`WARN_SESSIONS` sessions.

    Keyed by the kind and its last known event, so the outbox sends it once per
    coverage end, not every day; a calendar extended later gives a new key.
    """
    alerts = []
    for cov in coverage(store, calendar, session):
        if cov.sessions_left is not None and cov.sessions_left > WARN_SESSIONS:
            continue
        if cov.last is None:
            title = f"📅 No {cov.kind} calendar"
            text = (f"{title}\nThe store holds no {cov.kind} events: blackouts before "
                    f"{cov.kind} cannot be applied. Dates: {WHERE[cov.kind]}; import them "
                    f"with `alvh data import FILE` (date,kind,time_et).")
        else:
            state = ("has run out" if cov.ended else
                     f"runs out in {cov.sessions_left} session(s)")
            title = f"📅 {cov.kind} calendar {state}"
            text = (f"{title}\nThe last known {cov.kind} is on {cov.last}. After it, blackouts "
                    f"before {cov.kind} cannot be applied, and every alert will say so. Next "
                    f"dates: {WHERE[cov.kind]}; the bot reads them from its live sources "
                    "(FRED release dates need ALVH_FRED_API_KEY), or import them with "
                    "`alvh data import FILE` (date,kind,time_et).")
        alerts.append(Alert(cov.last or session, Topic.OPS, "calendar_running_out",
                            cov.kind.value, title, text,
                            f"<b>{escape(title)}</b>\n{escape(text.split(chr(10), 1)[1])}"))
    return alerts


def listing(events: list[Event], covered: list[Coverage]) -> list[str]:
    """``alvh calendar``: one line per event, then each kind's coverage."""
    lines = [f"{'date':<10}  {'time':<5}  {'kind':<4}  source"]
    for e in events:
        when = e.time_et.strftime("%H:%M") if e.time_et else "-"
        flag = "" if e.scheduled else "  (unscheduled)"
        lines.append(f"{e.date}  {when:<5}  {e.kind.value:<4}  {e.source}{flag}")
    if not events:
        lines.append("(no events in this range)")
    lines += ["", "coverage:"] + [f"  {c.line()}" for c in covered]
    return lines
