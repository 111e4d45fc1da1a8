"""Is the store fit to evaluate session D? (pipeline stage "validate")

The answer is never a bare yes/no: it lists, per series, what is missing or
stale and which source wrote the last row, because "no signal today" must
come with a reason the user can check.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.models import BREADTH, Symbol
from bot.sessions import SessionCalendar
from bot.store import Store

DEFAULT_LOOKBACK: Mapping[str, int] = {
    Symbol.SPX: 300,
    Symbol.VIX: 30,
    Symbol.VIX3M: 30,
    BREADTH: 130,
}
"""Sessions that must be present, ending at D. SPX needs MACD warm-up (≥ 250);
breadth needs two divergence windows (2 × 63) so a divergence run can be measured."""


@dataclass(frozen=True, slots=True)
class SeriesCheck:
    series: str
    last: dt.date | None
    last_source: str | None
    missing: tuple[dt.date, ...]
    stale: bool

    @property
    def ok(self) -> bool:
        return not self.missing and not self.stale

    def describe(self, session: dt.date) -> str:
        if self.last is None:
            return f"{self.series}: no data at all"
        parts = []
        if self.stale:
            parts.append(f"stale: newest row {self.last} from {self.last_source}, need {session}")
        if self.missing:
            shown = ", ".join(str(d) for d in self.missing[:5])
            more = f" and {len(self.missing) - 5} more" if len(self.missing) > 5 else ""
            parts.append(f"{len(self.missing)} session(s) missing in the look-back: {shown}{more}")
        if not parts:
            return f"{self.series}: ok (through {self.last}, {self.last_source})"
        return f"{self.series}: " + "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Freshness:
    session: dt.date
    checks: tuple[SeriesCheck, ...] = field(default_factory=tuple)

    @property
    def complete(self) -> bool:
        return all(c.ok for c in self.checks)

    def problems(self) -> list[str]:
        return [c.describe(self.session) for c in self.checks if not c.ok]


def check_freshness(
    store: Store,
    calendar: SessionCalendar,
    session: dt.date,
    lookback: Mapping[str, int] = DEFAULT_LOOKBACK,
) -> Freshness:
    """Check every required series has a row on ``session`` and no gap before it."""
    if not calendar.is_session(session):
        raise ValueError(f"{session} is not an NYSE session")
    checks = []
    for series, n in lookback.items():
        start = calendar.offset(session, -(n - 1))
        wanted = calendar.sessions_between(start, session)
        if series == BREADTH:
            frame = store.breadth(start, session)
        else:
            frame = store.bars(series, start, session)
        have = {ts.date() for ts in frame.index}
        last, last_source = store.latest(series, on_or_before=session)
        missing = tuple(d for d in wanted if d not in have and d != session)
        checks.append(
            SeriesCheck(str(series), last, last_source, missing, stale=session not in have)
        )
    return Freshness(session, tuple(checks))
