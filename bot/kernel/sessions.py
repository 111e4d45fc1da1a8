"""The NYSE session calendar, from ``exchange_calendars`` (XNYS).

Everything about *when* — which dates are sessions, when they close (16:00 or
13:00 ET), what the previous session was — goes through this one class, so no
weekday arithmetic or holiday list can creep in anywhere else.
"""

from __future__ import annotations

import datetime as dt
import functools
from bisect import bisect_left, bisect_right
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

from bot.kernel.errors import OutsideCalendar
from bot.kernel.models import ET_NAME

ET = ZoneInfo(ET_NAME)

# Bounds wide enough for the oldest history we ship (Unicorn breadth, 1965)
# and for scheduling well past today. exchange_calendars' rules cover the
# future, so the end only has to be far enough ahead.
CAL_START = dt.date(1965, 1, 1)
CAL_END_YEARS_AHEAD = 3


def _ts(day: dt.date) -> pd.Timestamp:
    return pd.Timestamp(day.year, day.month, day.day)


class SessionCalendar:
    """XNYS sessions with exchange-local times."""

    def __init__(self, start: dt.date = CAL_START, end: dt.date | None = None) -> None:
        if end is None:
            end = dt.date(dt.datetime.now(tz=ET).year + CAL_END_YEARS_AHEAD, 12, 31)
        self._cal = xcals.get_calendar("XNYS", start=_ts(start), end=_ts(end))
        self._sessions: pd.DatetimeIndex = self._cal.sessions
        self._days: list[dt.date] = [ts.date() for ts in self._sessions]
        self.first = self._days[0]
        self.last = self._days[-1]

    def _check(self, day: dt.date) -> None:
        if not self.first <= day <= self.last:
            raise OutsideCalendar(
                f"{day} is outside the session calendar ({self.first}..{self.last})"
            )

    def is_session(self, day: dt.date) -> bool:
        self._check(day)
        i = bisect_left(self._days, day)
        return i < len(self._days) and self._days[i] == day

    def sessions_between(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Sessions with ``start <= session <= end`` (both inclusive)."""
        if end < start:
            return []
        return self._days[bisect_left(self._days, start) : bisect_right(self._days, end)]

    def session_index(self, start: dt.date, end: dt.date) -> pd.DatetimeIndex:
        """Same as :meth:`sessions_between`, as a DatetimeIndex for pandas alignment."""
        return self._sessions[bisect_left(self._days, start) : bisect_right(self._days, end)]

    def previous_session(self, day: dt.date) -> dt.date:
        """The last session strictly before ``day`` (``day`` need not be a session)."""
        self._check(day)
        i = bisect_left(self._days, day)
        if i == 0:
            raise ValueError(f"no session before {day} in the calendar")
        return self._days[i - 1]

    def next_session(self, day: dt.date) -> dt.date:
        """The first session strictly after ``day``."""
        self._check(day)
        i = bisect_right(self._days, day)
        if i >= len(self._days):
            raise ValueError(f"no session after {day} in the calendar")
        return self._days[i]

    def session_on_or_before(self, day: dt.date) -> dt.date:
        return day if self.is_session(day) else self.previous_session(day)

    def session_on_or_after(self, day: dt.date) -> dt.date:
        return day if self.is_session(day) else self.next_session(day)

    def offset(self, session: dt.date, n: int) -> dt.date:
        """The session ``n`` sessions after (n > 0) or before (n < 0) ``session``."""
        j = bisect_left(self._days, session) + n
        if not 0 <= j < len(self._days):
            raise ValueError(f"{n:+d} sessions from {session} leaves the calendar")
        return self._days[j]

    def open_time(self, session: dt.date) -> dt.datetime:
        self._require_session(session)
        return self._cal.session_open(_ts(session)).to_pydatetime().astimezone(ET)  # type: ignore[no-any-return]

    def close_time(self, session: dt.date) -> dt.datetime:
        """The session's close in ET: 16:00, or 13:00 on early-close days."""
        self._require_session(session)
        return self._cal.session_close(_ts(session)).to_pydatetime().astimezone(ET)  # type: ignore[no-any-return]

    def is_early_close(self, session: dt.date) -> bool:
        return self.close_time(session).time() < dt.time(16, 0)

    def last_closed_session(self, now: dt.datetime) -> dt.date:
        """The most recent session whose close is at or before ``now`` (aware)."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        local = now.astimezone(ET)
        day = self.session_on_or_before(local.date())
        if self.close_time(day) > local:
            day = self.previous_session(day)
        return day

    def _require_session(self, day: dt.date) -> None:
        if not self.is_session(day):
            raise ValueError(f"{day} is not an NYSE session")


@functools.lru_cache(maxsize=4)
def get_calendar(end: dt.date | None = None) -> SessionCalendar:
    """A shared calendar: building one costs ~0.4 s, so build it once per process."""
    return SessionCalendar(end=end)
