"""How many sessions until the next FOMC / CPI / PPI, and the blackout that follows.

Counting is in sessions, not days, and happens after t's close: an event on
t itself (an FOMC statement at 14:00, a CPI at 08:30) is already known by
then, so the count at t is to the next event *after* t. An 08:30 release on
t+1 gives 1: it lands before the next chance to act.

Point in time (DESIGN.md §4): the count at t uses only the events known
after t's close. Scheduled FOMC meetings and BLS release dates are published
a year ahead, so they are known all along; an unscheduled FOMC action is known
only from the day it happened, so it never counts for a session before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from bot.engine.indicators._util import as_float, float_series, require_session_index

EventDates = Iterable[dt.date]
"""Event dates: `datetime.date`s, or Timestamps (a DatetimeIndex, a datetime Series)."""


def _as_dates(dates: EventDates) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(pd.to_datetime(list(dates)))
    if index.tz is not None:
        raise ValueError("event dates must be calendar dates, not tz-aware timestamps")
    return index.normalize()


def event_sessions(dates: EventDates, calendar_sessions: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The session each event falls on: its date, or the next session after it.

    An event on a non-session (the Sunday 2020-03-15 FOMC move) is first
    traded on the next session. Dates before the calendar's first session or
    after its last cannot be placed and are left out; pass a calendar that
    reaches well past the evaluated sessions.
    """
    calendar = require_session_index(calendar_sessions, "calendar_sessions")
    days = _as_dates(dates)
    if len(calendar) == 0 or len(days) == 0:
        return pd.DatetimeIndex([], dtype=calendar.dtype)
    days = days[(days >= calendar[0]) & (days <= calendar[-1])]
    positions = np.unique(calendar.searchsorted(days, side="left"))
    return calendar[positions]


def sessions_to_next_event(
    sessions: pd.DatetimeIndex,
    event_sessions: pd.DatetimeIndex,
    late: Iterable[tuple[dt.date, pd.Timestamp]] = (),
) -> pd.Series[float]:
    """Sessions from each t to the next event strictly after t; NaN when none is known.

    ``sessions`` must be every session of its range (positions are counted
    in it); events after its last session are unknown to it.
    ``event_sessions`` are known in advance (scheduled); ``late`` are
    (date it became known, session it falls on) pairs, e.g. an unscheduled
    FOMC action: it counts for t only when known by t's close (known <= t).
    """
    require_session_index(sessions, "sessions")
    events = pd.DatetimeIndex(event_sessions).unique().sort_values()
    events = events[(events >= sessions[0]) & (events <= sessions[-1])] if len(sessions) else events
    positions = sessions.get_indexer(events)
    if (positions < 0).any():
        stray = events[positions < 0]
        raise ValueError(f"events not on a session: {list(stray.date[:5])}")
    here = np.arange(len(sessions))
    nxt = np.searchsorted(positions, here, side="right")
    known = nxt < len(positions)
    counts = np.full(len(sessions), np.nan)
    counts[known] = positions[nxt[known]] - here[known]
    for known_on, on in late:
        at = sessions.get_indexer(pd.DatetimeIndex([on]))[0]
        if at < 0:
            continue
        first = int(sessions.searchsorted(pd.Timestamp(known_on), side="left"))
        if first < at:  # sessions t with known_on <= t < the event's session
            counts[first:at] = np.fmin(counts[first:at], at - here[first:at])
    return float_series(counts, sessions)


def blackout(
    proximity_by_kind: Mapping[str, pd.Series[float]], width_by_kind: Mapping[str, int]
) -> tuple[pd.Series[bool], pd.Series[str]]:
    """Blackout at t when an event of a watched kind is 1..width sessions ahead.

    Returns the flags and, per session, every kind in blackout ("" when
    none), nearest event first, ties in the order of ``width_by_kind``
    (DESIGN.md §4: ``blackout_kind`` lists every kind in blackout), joined by
    ", ". A kind with width 0 is not watched; a NaN proximity (no calendar
    for that kind at t) puts nothing in blackout: the caller says that the
    blackout for that kind cannot be applied.
    """
    missing = [kind for kind in width_by_kind if kind not in proximity_by_kind]
    if missing:
        raise ValueError(f"no event proximity for watched kind(s): {', '.join(missing)}")
    if not proximity_by_kind:
        raise ValueError("blackout needs at least one event proximity series")
    index = next(iter(proximity_by_kind.values())).index
    kinds = list(width_by_kind)
    ahead = np.full((len(index), max(1, len(kinds))), np.inf)
    for j, kind in enumerate(kinds):
        width = width_by_kind[kind]
        if width < 0:
            raise ValueError(f"blackout width for {kind} must be >= 0, got {width}")
        count = as_float(proximity_by_kind[kind].reindex(index))
        with np.errstate(invalid="ignore"):
            inside = (count >= 1) & (count <= width)
        ahead[inside, j] = count[inside]
    flags = np.isfinite(ahead).any(axis=1)
    cause = np.full(len(index), "", dtype=object)
    order = np.argsort(ahead, axis=1, kind="stable")  # nearest first, ties in listed order
    for i in np.flatnonzero(flags):
        cause[i] = ", ".join(kinds[j] for j in order[i] if np.isfinite(ahead[i, j]))
    return pd.Series(flags, index=index, dtype=bool), pd.Series(cause, index=index, dtype=object)
