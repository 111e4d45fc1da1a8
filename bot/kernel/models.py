"""Plain value types shared by every pipeline stage.

They are frozen dataclasses rather than pydantic models: they are created by
the hundred thousand when history is imported and need no validation beyond
what the parsers already did.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

ET_NAME = "America/New_York"

MIN_CLOSE_GAP_MINUTES = 21 * 60
"""The shortest time from one NYSE close to the next: a regular 16:00 close followed by
a 13:00 early close (e.g. 2026-12-23 -> 2026-12-24). A session's evaluation (run delay
plus data deadline after its close) must end within it, or one day's wait for data
would overlap the next session's (tests/test_scheduling.py checks the figure against
exchange_calendars)."""


class Symbol(enum.StrEnum):
    """Daily price series the bot stores. Values are the store's keys."""

    SPX = "SPX"
    VIX = "VIX"
    VIX3M = "VIX3M"
    VIX6M = "VIX6M"


BREADTH = "BREADTH"
"""Series name used for NYSE advancers/decliners in status and freshness reports."""


class EventKind(enum.StrEnum):
    FOMC = "FOMC"
    CPI = "CPI"
    PPI = "PPI"


@dataclass(frozen=True, slots=True)
class Bar:
    """One daily bar. ``open``/``high``/``low`` are ``None`` where a source has only closes."""

    symbol: str
    session: dt.date
    close: float
    source: str
    open: float | None = None
    high: float | None = None
    low: float | None = None
    volume: float | None = None


@dataclass(frozen=True, slots=True)
class Breadth:
    """NYSE issues advancing/declining on one session (unchanged and volumes optional)."""

    session: dt.date
    advancers: int
    decliners: int
    source: str
    unchanged: int | None = None
    adv_volume: float | None = None
    dec_volume: float | None = None

    @property
    def synthetic(self) -> bool:
        return is_synthetic(self.source)


def is_synthetic(source: str) -> bool:
    """Synthetic breadth is never NYSE data; it must never pass for it."""
    return "synthetic" in source


@dataclass(frozen=True, slots=True)
class Event:
    """An FOMC decision or a CPI/PPI release. ``time_et`` is ``None`` when the source does
    not say.

    ``scheduled`` is False for an unscheduled action (an emergency FOMC cut): it
    was not known in advance, so it counts only from the day it happened and
    never blacks out the sessions before it (DESIGN §4, point in time).
    """

    kind: EventKind
    date: dt.date
    source: str
    time_et: dt.time | None = None
    scheduled: bool = True


@dataclass(frozen=True, slots=True)
class Dropped:
    """A row a parser refused to keep, and why (reported, never silently lost)."""

    date: dt.date
    reason: str


@dataclass(frozen=True, slots=True)
class Parsed(Generic[T]):
    """What a parser kept, plus what it dropped.

    Non-session rows (holidays in real files) and placeholder rows are not
    errors: real files contain them. They are dropped *and reported* so
    ``alvh data import`` can say what it skipped.
    """

    source: str
    rows: tuple[T, ...]
    dropped: tuple[Dropped, ...] = ()


# -- is the data fit for a session? (the answer of the freshness check) -----------


@dataclass(frozen=True, slots=True)
class SeriesCheck:
    series: str
    last: dt.date | None
    last_source: str | None
    missing: tuple[dt.date, ...]
    stale: bool
    imputed: tuple[dt.date, ...] = ()
    """Sessions without a row that the series' own rule imputes (NYSE breadth, DESIGN.md §4):
    reported, not a refusal."""
    starts: dt.date | None = None
    """Set when the series' history starts after the session (VIX3M before 2009-09-18): its
    values are not evaluable for it, which is said, not a refusal (DESIGN.md §4)."""
    notes: tuple[str, ...] = ()
    """What the series lacks for some values only (SPX short of the weekly warm-up):
    reported, not a refusal; those values are not evaluable."""
    first: dt.date | None = None
    """The series' first row: look-back sessions before it are missing because the history
    starts there, which is said so (not as a list of dates)."""

    @property
    def ok(self) -> bool:
        return not self.missing and not self.stale

    def describe(self, session: dt.date) -> str:
        if self.starts is not None:
            return (f"{self.series}: not evaluable for {session} (its history starts "
                    f"{self.starts})")
        if self.last is None:
            return f"{self.series}: no data at all"
        parts = []
        if self.stale:
            parts.append(f"stale: newest row {self.last} from {self.last_source}, need {session}")
        early = tuple(d for d in self.missing if self.first is not None and d < self.first)
        if early:
            parts.append(f"its history starts {self.first}: the look-back needs "
                         f"{len(early)} session(s) before that, from {early[0]}")
        if later := self.missing[len(early):]:
            parts.append(f"{len(later)} session(s) missing in the look-back: " + _listed(later))
        imputed = (f"{len(self.imputed)} session(s) imputed in the look-back (no accepted row): "
                   + _listed(self.imputed)) if self.imputed else ""
        extra = [imputed, *self.notes] if imputed else list(self.notes)
        if not parts:
            ok = f"{self.series}: ok (through {self.last}, {self.last_source})"
            return "; ".join([ok, *extra])
        return f"{self.series}: " + "; ".join([*parts, *extra])


def _listed(days: tuple[dt.date, ...], limit: int = 5) -> str:
    more = f" and {len(days) - limit} more" if len(days) > limit else ""
    return ", ".join(str(d) for d in days[:limit]) + more


@dataclass(frozen=True, slots=True)
class Freshness:
    session: dt.date
    checks: tuple[SeriesCheck, ...] = field(default_factory=tuple)

    @property
    def complete(self) -> bool:
        return all(c.ok for c in self.checks)

    def problems(self) -> list[str]:
        return [c.describe(self.session) for c in self.checks if not c.ok]
