"""History management: what is in the store, and where it has holes.

``alvh data status`` answers "can I trust the look-back window?" by comparing
each series with the session calendar, not with weekdays. For breadth it
separates the two kinds of hole: a *missing* session (no source had a row) and
a *rejected* one (a row was stored but failed the breadth screen, DESIGN §4);
the indicators treat both as imputed sessions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bot.kernel.models import BREADTH, EventKind, Symbol
from bot.kernel.sessions import SessionCalendar
from bot.store import Store
from bot.store.breadth import RejectedBreadth

EVENT_SERIES = {k.value for k in EventKind}
SHOWN = 8
"""Dates a status line spells out before summarising."""


def _dates(days: tuple[dt.date, ...]) -> str:
    shown = ", ".join(str(d) for d in days[:SHOWN])
    more = f", ... ({len(days) - SHOWN} more)" if len(days) > SHOWN else ""
    return f"{len(days)} session(s): {shown}{more}"


@dataclass(frozen=True, slots=True)
class SeriesReport:
    series: str
    first: dt.date | None
    last: dt.date | None
    rows: int
    sources: tuple[str, ...]
    gaps: tuple[dt.date, ...]
    """Sessions between first and last with no (accepted) row; not meaningful for events."""
    segments: tuple[tuple[str, dt.date, dt.date], ...] = ()
    """Runs of one source, oldest first: where one breadth source hands over to another."""
    rejected: tuple[RejectedBreadth, ...] = ()
    """Breadth rows stored but refused by the screen (their sessions are in ``gaps``)."""

    @property
    def missing(self) -> tuple[dt.date, ...]:
        """Gaps no source filled at all (``gaps`` less the rejected sessions)."""
        refused = {r.session for r in self.rejected}
        return tuple(d for d in self.gaps if d not in refused)

    def line(self) -> str:
        if self.rows == 0 and not self.rejected:
            return f"{self.series:<8} no data"
        head = (
            f"{self.series:<8} {self.first} .. {self.last}  {self.rows:>6} rows  "
            f"sources: {', '.join(self.sources)}"
        )
        if self.series in EVENT_SERIES:
            return head
        if self.series != BREADTH:
            return head + (f"  gaps: {_dates(self.gaps)}" if self.gaps else "  gaps: none")
        out = [head, f"{'':<8}   missing: {_dates(self.missing) if self.missing else 'none'}"]
        if self.rejected:
            out.append(f"{'':<8}   rejected (stored, never used; imputed like a missing "
                       f"session): {len(self.rejected)} session(s)")
            out += [f"{'':<8}     {r.session}  {r.source}: {r.advancers} adv, {r.decliners} dec: "
                    f"{r.reason}" for r in self.rejected]
        if len(self.segments) > 1:
            out.append(f"{'':<8}   sources by period:")
            out += [f"{'':<8}     {a} .. {b}  {src}" for src, a, b in self.segments]
        return "\n".join(out)


def status_report(store: Store, calendar: SessionCalendar) -> list[SeriesReport]:
    out = []
    for st in store.status():
        gaps: tuple[dt.date, ...] = ()
        segments: list[tuple[str, dt.date, dt.date]] = []
        rejected: tuple[RejectedBreadth, ...] = ()
        if st.series == BREADTH:
            rejected = tuple(store.breadth_rejected())
        if st.series not in EVENT_SERIES and st.first and st.last:
            present = store.sessions_present(st.series, with_source=True)
            have = {d for d, _ in present}
            gaps = tuple(
                d for d in calendar.sessions_between(st.first, st.last) if d not in have
            )
            for day, src in present:
                if segments and segments[-1][0] == src:
                    segments[-1] = (src, segments[-1][1], day)
                else:
                    segments.append((src, day, day))
        out.append(SeriesReport(
            st.series, st.first, st.last, st.rows, st.sources, gaps, tuple(segments), rejected
        ))
    # Every series the bot needs is listed, an empty one as "no data": a new store
    # must show what it lacks, not only what it has.
    order = [*[s.value for s in Symbol], BREADTH, *[k.value for k in EventKind]]
    listed = {r.series for r in out}
    out += [SeriesReport(name, None, None, 0, (), (), (), ()) for name in order
            if name not in listed]
    return sorted(out, key=lambda r: order.index(r.series) if r.series in order else len(order))
