"""Freshness checks every live fetcher applies before its rows are believed.

A live fetch for session D exists to get D's data. A source that answers
with data ending the day before (not yet updated, a stale CDN copy) has
failed, even though every row in it is correct: the fallback chain should
move on and the run should say "stale", never signal on old data.

Some providers also serve yesterday's bar again under today's date (public
bots have been bitten by Yahoo doing this around holidays); an OHLC bar
identical to the previous session's in all four prices is treated as that.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol, TypeVar

from bot.kernel.errors import SourceDataError
from bot.kernel.models import Bar, Breadth, Parsed
from bot.kernel.sessions import SessionCalendar
from bot.market.sources.http import RetryPolicy

DEFAULT_POLICY = RetryPolicy()
"""The retry policy every fetcher uses unless told otherwise."""


class _Dated(Protocol):
    @property
    def session(self) -> dt.date: ...


R = TypeVar("R", bound=_Dated)


def trim(parsed: Parsed[R], start: dt.date | None, end: dt.date | None) -> Parsed[R]:
    """Keep rows (and drop reports) inside ``start..end`` (inclusive; None = open).

    Whole-history files (Cboe) and APIs that round their range outward
    (Yahoo) return more than was asked; rows outside the request are not
    "dropped", they were never requested, so they leave the report too.
    """

    def inside(day: dt.date) -> bool:
        return (start is None or day >= start) and (end is None or day <= end)

    return Parsed(
        parsed.source,
        tuple(r for r in parsed.rows if inside(r.session)),
        tuple(d for d in parsed.dropped if inside(d.date)),
    )


def require_newest(source: str, rows: Sequence[_Dated], expect: dt.date) -> None:
    """The newest row must be dated ``expect``."""
    if not rows:
        raise SourceDataError(source, f"stale: no rows, expected {expect}")
    newest = max(r.session for r in rows)
    if newest < expect:
        raise SourceDataError(source, f"stale: newest row {newest}, expected {expect}")
    if newest > expect:
        raise SourceDataError(source, f"newest row {newest} is after the expected session {expect}")


def require_not_dropped(source: str, parsed: Parsed[R], expect: dt.date) -> None:
    """A row for ``expect`` that the parser dropped says why the data is not there."""
    for drop in parsed.dropped:
        if drop.date == expect:
            raise SourceDataError(
                source, f"stale: the row for {expect} was dropped ({drop.reason})"
            )


def check_fresh_bars(
    source: str,
    parsed: Parsed[Bar],
    expect: dt.date,
    calendar: SessionCalendar,
    *,
    previous: Bar | None = None,
) -> None:
    """Newest bar dated ``expect`` and not a copy of the previous session's.

    ``previous`` is the stored bar for the session before ``expect``, for
    fetches too short to contain it. Close-only bars (FRED) are not compared:
    two equal closes in a row happen, four equal prices do not.
    """
    rows = parsed.rows
    require_not_dropped(source, parsed, expect)
    require_newest(source, rows, expect)
    last = max(rows, key=lambda b: b.session)
    prev_day = calendar.previous_session(expect)
    prev = next((b for b in rows if b.session == prev_day), None)
    if prev is None and previous is not None and previous.session == prev_day:
        prev = previous
    if prev is None or not _has_ohlc(last) or not _has_ohlc(prev):
        return
    if (last.open, last.high, last.low, last.close) == (prev.open, prev.high, prev.low, prev.close):
        raise SourceDataError(
            source,
            f"yesterday's bar presented as today's: {expect} repeats {prev_day} "
            f"(O {last.open} H {last.high} L {last.low} C {last.close})",
        )


def check_fresh_breadth(source: str, parsed: Parsed[Breadth], expect: dt.date) -> None:
    """Newest breadth row dated ``expect``."""
    require_not_dropped(source, parsed, expect)
    require_newest(source, parsed.rows, expect)


def _has_ohlc(bar: Bar) -> bool:
    return None not in (bar.open, bar.high, bar.low)
