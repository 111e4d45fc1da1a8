"""The sanity rule every NYSE breadth row passes before it counts (DESIGN §4).

A breadth row is *rejected* when it fails basic checks (a negative count;
0 advancers and 0 decliners, a source's placeholder; more than 10,000 issues) or when advancers +
decliners < 80 % of the median of advancers + decliners over the previous 21
*accepted* sessions. The second rule catches partial-day snapshots passed off
as final counts: a feed that stopped updating at 11:00 still shows a plausible
split, but far fewer issues than the ~2,800 that trade every day (real
examples: TradingView's 2025-03-04 bar, 218 + 287; Unicorn's 1988-08-22 row,
385 + 466 with 1,107 unchanged). Unchanged issues are left out of the sum
because not every source reports them.

One rule for every way in (``alvh data import``, the snapshot build, each live
breadth source): the store applies it on write, so a rejected row is kept
visible but never returned as accepted breadth, and a live chain applies it
before storing so it can ask the next source instead.

Pure: no I/O, no pandas; the store and the market wing feed it totals.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable

REJECT_FRACTION = 0.8
"""A total below this fraction of the recent median is a partial-day count."""
MEDIAN_SESSIONS = 21
"""Accepted sessions in the reference median (about one trading month)."""
PLACEHOLDER = "placeholder row: 0 advancers and 0 decliners"
"""Unicorn and WSJ fill a day they have no figures for with zeros."""
MAX_ISSUES = 10_000
"""More advancers + decliners than this is no NYSE count: the exchange has never listed
more than about 3,600 issues (a typo, an extra digit or a unit mix-up; 999,999,999 would
swamp the A/D line and the McClellan oscillator for months)."""


def basic_problem(advancers: int, decliners: int) -> str | None:
    """Why a row cannot be a day's count at all, or None."""
    if advancers < 0 or decliners < 0:
        return f"negative count ({advancers} advancers, {decliners} decliners)"
    if advancers == 0 and decliners == 0:
        return PLACEHOLDER
    if advancers + decliners > MAX_ISSUES:
        return (f"impossible count: advancers + decliners {advancers + decliners:,} > "
                f"{MAX_ISSUES:,} (the NYSE has never listed that many issues)")
    return None


class BreadthScreen:
    """The running reference: advancers + decliners of the last 21 accepted sessions.

    Feed rows oldest first through :meth:`screen`. With fewer than 21
    accepted sessions behind a row (the start of a history) the median of
    those there are is used; with none, only the basic checks apply.
    """

    def __init__(self, prior_totals: Iterable[int] = ()) -> None:
        self._window: deque[int] = deque(prior_totals, maxlen=MEDIAN_SESSIONS)

    @property
    def median(self) -> float | None:
        """The reference median, or None before any accepted session."""
        return statistics.median(self._window) if self._window else None

    def check(self, advancers: int, decliners: int) -> str | None:
        """Why the row would be rejected now, or None; the reference does not move."""
        problem = basic_problem(advancers, decliners)
        if problem is not None:
            return problem
        median = self.median
        total = advancers + decliners
        if median is not None and total < REJECT_FRACTION * median:
            return (
                f"partial-day count: advancers + decliners {total:,} < "
                f"{REJECT_FRACTION:.0%} of the {len(self._window)}-session median "
                f"{median:,.0f}"
            )
        return None

    def accept(self, advancers: int, decliners: int) -> None:
        """Count an accepted row into the reference."""
        self._window.append(advancers + decliners)

    def screen(self, advancers: int, decliners: int) -> str | None:
        """:meth:`check`, and :meth:`accept` the row when it passes."""
        reason = self.check(advancers, decliners)
        if reason is None:
            self.accept(advancers, decliners)
        return reason
