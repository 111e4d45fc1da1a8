"""Is the store fit to evaluate session D? (pipeline stage "validate")

The answer is never a bare yes/no: it lists, per series, what is missing or
stale and which source wrote the last row, because "no signal today" must
come with a reason the user can check.

NYSE breadth has its own rule (DESIGN.md §4, missing and rejected breadth):
session D must have its own accepted row (it is never imputed), while a
session missing earlier in the look-back (no row, or a row rejected as a
partial-day count, which the store never returns as accepted) is imputed:
the A/D line carries flat over it. The indicators then evaluate each
divergence window on the bridged line when it holds at most the rules'
``max_imputed_sessions`` imputed sessions, and call it not evaluable (saying
which sessions) when it holds more: reported here, never a refusal of the
whole session, whose other decisions do not depend on breadth.

Not evaluable is not stale (DESIGN.md §4): a series other than SPX and breadth
whose stored history starts *after* D (VIX3M before 2009-09-18) makes its
values not evaluable for D, which the evaluation says; it does not refuse D.
A series with no row at all, or none up to D and none after, is missing data
and refuses D.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

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
        if series not in (Symbol.SPX, BREADTH):
            later = _starts_after(store, series, session)
            if later is not None:
                checks.append(SeriesCheck(str(series), None, None, (), False, starts=later))
                continue
        start = calendar.offset(session, -(n - 1))
        wanted = calendar.sessions_between(start, session)
        if series == BREADTH:
            frame = store.breadth(start, session)
        else:
            frame = store.bars(series, start, session)
        have = {ts.date() for ts in frame.index}
        last, last_source = store.latest(series, on_or_before=session)
        missing = tuple(d for d in wanted if d not in have and d != session)
        imputed: tuple[dt.date, ...] = ()
        if series == BREADTH:
            missing, imputed = (), missing
        checks.append(
            SeriesCheck(str(series), last, last_source, missing, stale=session not in have,
                        imputed=imputed)
        )
    return Freshness(session, tuple(checks))


def _starts_after(store: Store, series: str, session: dt.date) -> dt.date | None:
    """The first session of ``series`` when its whole history comes after ``session``."""
    if store.latest(series, on_or_before=session)[0] is not None:
        return None
    if store.latest(series)[0] is None:
        return None  # no data at all: missing, not "starts later"
    return min(store.sessions_present(series))
