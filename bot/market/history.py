"""History management: what is in the store, and where it has holes.

``alvh data status`` answers "can I trust the look-back window?" by comparing
each series with the session calendar, not with weekdays.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bot.kernel.models import EventKind
from bot.kernel.sessions import SessionCalendar
from bot.store import Store

EVENT_SERIES = {k.value for k in EventKind}


@dataclass(frozen=True, slots=True)
class SeriesReport:
    series: str
    first: dt.date | None
    last: dt.date | None
    rows: int
    sources: tuple[str, ...]
    gaps: tuple[dt.date, ...]
    """Sessions between first and last with no row (not meaningful for events)."""
    segments: tuple[tuple[str, dt.date, dt.date], ...] = ()
    """Runs of one source, oldest first: where real and synthetic breadth meet."""

    def line(self) -> str:
        if self.rows == 0:
            return f"{self.series:<8} no data"
        head = (
            f"{self.series:<8} {self.first} .. {self.last}  {self.rows:>6} rows  "
            f"sources: {', '.join(self.sources)}"
        )
        if self.series in EVENT_SERIES:
            return head
        if not self.gaps:
            out = head + "  gaps: none"
        else:
            shown = ", ".join(str(d) for d in self.gaps[:8])
            more = f", ... ({len(self.gaps) - 8} more)" if len(self.gaps) > 8 else ""
            out = head + f"  gaps: {len(self.gaps)} session(s): {shown}{more}"
        if len(self.segments) > 1:
            out += "\n" + "\n".join(
                f"{'':<8}   {a} .. {b}  {src}" for src, a, b in self.segments
            )
        return out


def status_report(store: Store, calendar: SessionCalendar) -> list[SeriesReport]:
    out = []
    for st in store.status():
        gaps: tuple[dt.date, ...] = ()
        segments: list[tuple[str, dt.date, dt.date]] = []
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
            st.series, st.first, st.last, st.rows, st.sources, gaps, tuple(segments)
        ))
    return out
