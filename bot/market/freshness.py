"""Is the store fit to evaluate session D? (pipeline stage "validate")

The answer is never a bare yes/no: it lists, per series, what is missing or
stale and which source wrote the last row, because "no signal today" must
come with a reason the user can check.

One rule, one implementation, for one session or for decades of them: a
:class:`FreshnessIndex` reads the store once for a range of sessions and
answers for each; :func:`check_freshness` (the daily job, ``run-once``,
``alvh data check``) is the index of a single session. A backtest asks the
same index for every session it replays, so it refuses exactly the sessions
``run-once`` would refuse, with the same words.

The rule (docs/methodology.md), per series with look-back n:

- the series must have a row on D (else *stale*: the session is refused) and
  on each of the n − 1 sessions before it (else those are *missing*: refused);
- NYSE breadth has its own rule (missing and rejected breadth): D's own
  accepted row is required (it is never imputed), while a session missing
  earlier in the look-back (no row, or a row rejected as a partial-day count,
  which the store never returns as accepted) is imputed: the A/D line carries
  flat over it. The indicators then evaluate each divergence window on the
  bridged line when it holds at most the rules' ``max_imputed_sessions``
  imputed sessions, and call it not evaluable (saying which sessions) when it
  holds more: reported here, never a refusal of the whole session, whose other
  decisions do not depend on breadth;
- not evaluable is not stale: a series other than SPX and breadth whose stored
  history starts *after* D (VIX3M before 2009-09-18) makes its values not
  evaluable for D, which the evaluation says; it does not refuse D. A series
  with no row at all, or none up to D and none after, is missing data and
  refuses D.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections.abc import Mapping

import numpy as np
import pandas as pd

from bot.engine.indicators.frame import WEEKLY_WARMUP_SESSIONS
from bot.kernel.models import BREADTH, Freshness, SeriesCheck, Symbol
from bot.kernel.sessions import SessionCalendar
from bot.store import Store

DEFAULT_LOOKBACK: Mapping[str, int] = {
    Symbol.SPX: 300,
    Symbol.VIX: 30,
    Symbol.VIX3M: 30,
    BREADTH: 130,
}
"""Sessions checked, ending at D. SPX needs MACD warm-up (≥ 250); for breadth, D's own
row is required and the sessions missing in two divergence windows (2 × 63) are reported
as imputed."""

GAPS_IMPUTED: frozenset[str] = frozenset({BREADTH})
"""Series whose look-back gaps are imputed and reported, not refused (docs/methodology.md)."""
STRICT_HISTORY: frozenset[str] = frozenset({Symbol.SPX, BREADTH})
"""Series D cannot do without even before their history starts: every other one whose
history starts after D is not evaluable for D, not a refusal (docs/methodology.md: VIX3M before
2009-09-18)."""


class _Series:
    """One series' rows over the index's sessions, as arrays for O(1) questions."""

    def __init__(self, days: list[dt.date], rows: Mapping[dt.date, str],
                 before: tuple[dt.date | None, str | None], first: dt.date | None) -> None:
        self.rows = rows
        self.before = before
        """The newest row before the first indexed session (for a series stale for long)."""
        self.first = first
        """The series' first row ever (None: no row at all)."""
        present = np.fromiter((d in rows for d in days), dtype=bool, count=len(days))
        self.present = present
        self.count = np.concatenate([[0], np.cumsum(present)])
        """``count[i]``: rows among the first ``i`` sessions."""
        idx = np.where(present, np.arange(len(days)), -1)
        self.last = np.maximum.accumulate(idx) if len(idx) else idx
        """Position of the newest row at or before each session (-1: none indexed)."""


class FreshnessIndex:
    """The freshness rule (module doc) for every session of ``start..end``, from one read.

    :meth:`check` gives the full answer; :meth:`complete` the yes/no without
    building it (the backtest's hot path). Both give what
    :func:`check_freshness` gives for the same session.
    """

    def __init__(
        self, calendar: SessionCalendar, first: dt.date, start: dt.date, end: dt.date,
        lookback: Mapping[str, int], series: Mapping[str, _Series],
    ) -> None:
        self.calendar, self.lookback = calendar, dict(lookback)
        self.days = calendar.sessions_between(first, end)
        """Consecutive sessions: the look-back windows of ``start..end``, then the range."""
        self.start = start
        self.series = series
        self._ok: np.ndarray | None = None
        self._refused: dict[tuple[dt.date, dt.date], dict[dt.date, tuple[str, ...]]] = {}

    @classmethod
    def from_store(
        cls, store: Store, calendar: SessionCalendar, start: dt.date, end: dt.date,
        lookback: Mapping[str, int] = DEFAULT_LOOKBACK,
        frames: Mapping[str, pd.DataFrame] | None = None,
    ) -> FreshnessIndex:
        """Read what the checks of sessions ``start..end`` need (windows included).

        ``frames`` ({series: rows with a ``source`` column}) saves reading a
        series again when the caller holds it from :func:`window_start` to ``end``.
        """
        first = window_start(calendar, start, lookback)
        days = calendar.sessions_between(first, end)
        # (SPX is read from the weekly warm-up's start; the others need no more than
        # their own look-back, but one window keeps the positions common.)
        series: dict[str, _Series] = {}
        for name in lookback:
            frame = frames.get(name) if frames is not None else None
            if frame is None:
                frame = (store.breadth(first, end) if name == BREADTH
                         else store.bars(name, first, end))
            frame = frame.loc[pd.Timestamp(first) : pd.Timestamp(end)]
            rows = dict(zip(pd.DatetimeIndex(frame.index).date.tolist(),
                            frame["source"].astype(str).tolist(), strict=True))
            before = store.latest(name, on_or_before=first - dt.timedelta(days=1))
            series[name] = _Series(days, rows, before, store.first(name))
        return cls(calendar, first, start, end, lookback, series)

    def _pos(self, session: dt.date) -> int:
        if not self.calendar.is_session(session):
            raise ValueError(f"{session} is not an NYSE session")
        i = bisect_left(self.days, session)
        if session < self.start or i >= len(self.days) or self.days[i] != session:
            raise ValueError(f"{session} is outside this freshness index "
                             f"({self.start}..{self.days[-1] if self.days else '-'})")
        return i

    def _window(self, name: str, i: int, n: int) -> tuple[int, bool]:
        """(first position of the look-back, whether the series' history starts after ``i``)."""
        lo = max(0, i - (n - 1))  # the days are consecutive sessions
        first = self.series[name].first
        return lo, name not in STRICT_HISTORY and first is not None and first > self.days[i]

    def complete(self, session: dt.date) -> bool:
        """Whether the session may be evaluated (every check ``ok``)."""
        return bool(self._complete()[self._pos(session)])

    def _complete(self) -> np.ndarray:
        """:meth:`complete` for every indexed session at once (computed on first use)."""
        if self._ok is None:
            n_days = len(self.days)
            pos = np.arange(n_days)
            ok = np.ones(n_days, dtype=bool)
            day_ord = np.array([d.toordinal() for d in self.days], dtype=np.int64)
            for name, n in self.lookback.items():
                s = self.series[name]
                lo = np.maximum(0, pos - (n - 1))
                fine = s.present.copy()
                if name not in GAPS_IMPUTED:
                    fine &= (s.count[pos] - s.count[lo]) == (pos - lo)
                if name not in STRICT_HISTORY and s.first is not None:
                    fine |= day_ord < s.first.toordinal()  # history starts later: not evaluable
                ok &= fine
            self._ok = ok
        return self._ok

    def refused(self, start: dt.date, end: dt.date) -> dict[dt.date, tuple[str, ...]]:
        """``{session: reasons}`` for the refused sessions of ``start..end``."""
        key = (start, end)
        if key not in self._refused:
            self._refused[key] = {
                d: tuple(self.check(d).problems())
                for d in self.calendar.sessions_between(start, end) if not self.complete(d)}
        return self._refused[key]

    def check(self, session: dt.date) -> Freshness:
        """The full answer for ``session``: per series, its newest row, source, gaps, staleness."""
        i = self._pos(session)
        checks = []
        for name, n in self.lookback.items():
            s = self.series[name]
            lo, later = self._window(name, i, n)
            gaps: tuple[dt.date, ...] = ()
            if s.count[i] - s.count[lo] != i - lo:
                gaps = tuple(d for d in self.days[lo:i] if d not in s.rows)
            missing, imputed = ((), gaps) if name in GAPS_IMPUTED else (gaps, ())
            j = int(s.last[i])
            if later:
                checks.append(SeriesCheck(str(name), None, None, (), False, starts=s.first))
                continue
            last, source = (self.days[j], s.rows[self.days[j]]) if j >= 0 else s.before
            notes = (self._weekly(i, len(missing) + (not s.present[i]))
                     if name == Symbol.SPX else ())
            checks.append(SeriesCheck(str(name), last, source, missing, stale=not s.present[i],
                                      imputed=imputed, notes=notes, first=s.first))
        return Freshness(session, tuple(checks))


    def _weekly(self, i: int, reported: int) -> tuple[str, ...]:
        """:func:`weekly_warmup` from the index: SPX rows in the 1,260 sessions ending at ``i``.
        A shortfall of no more than the ``reported`` missing rows (the session's own, the
        look-back's gaps) is said by them already: a note would only add noise."""
        s = self.series[Symbol.SPX]
        have = int(s.count[i + 1] - s.count[max(0, i - (WEEKLY_WARMUP_SESSIONS - 1))])
        return _weekly_note(have) if have + reported < WEEKLY_WARMUP_SESSIONS else ()


def window_start(
    calendar: SessionCalendar, start: dt.date, lookback: Mapping[str, int] = DEFAULT_LOOKBACK
) -> dt.date:
    """The first session the freshness checks of ``start`` onwards look at."""
    longest = max(lookback.values(), default=1)
    if Symbol.SPX in lookback:  # the weekly MACD's warm-up is counted too (a note, not a gap)
        longest = max(longest, WEEKLY_WARMUP_SESSIONS)
    return _offset(calendar, calendar.session_on_or_after(start), -(longest - 1))


def _offset(calendar: SessionCalendar, session: dt.date, n: int) -> dt.date:
    """``calendar.offset``, clamped to the calendar's first session."""
    try:
        return calendar.offset(session, n)
    except ValueError:
        return calendar.first


def weekly_warmup(store: Store, calendar: SessionCalendar, session: dt.date) -> tuple[str, ...]:
    """Whether SPX reaches the weekly MACD's warm-up before ``session`` (docs/methodology.md).

    Five years of sessions: with only the daily look-back the weekly histogram is
    off by up to ~2 points and its sign can flip. Short history is not a refusal
    (the daily decisions do not depend on it): the weekly values are not
    evaluable, and this says so and how to fix it.
    """
    try:
        start = calendar.offset(session, -(WEEKLY_WARMUP_SESSIONS - 1))
    except ValueError:
        start = calendar.first
    return _weekly_note(len(store.bars(Symbol.SPX, start, session)))


def _weekly_note(have: int) -> tuple[str, ...]:
    if have >= WEEKLY_WARMUP_SESSIONS:
        return ()
    # No "run backfill" here: it does not apply to the shipped snapshot (whose history
    # simply starts in 1999), and this check does not know which store it reads.
    return (f"only {have:,} of the {WEEKLY_WARMUP_SESSIONS:,} sessions (5 years) the weekly "
            "MACD warms up on: weekly values not evaluable",)


def check_freshness(
    store: Store,
    calendar: SessionCalendar,
    session: dt.date,
    lookback: Mapping[str, int] = DEFAULT_LOOKBACK,
) -> Freshness:
    """Check every required series has a row on ``session`` and no gap before it (module doc)."""
    if not calendar.is_session(session):
        raise ValueError(f"{session} is not an NYSE session")
    return FreshnessIndex.from_store(store, calendar, session, session, lookback).check(session)
