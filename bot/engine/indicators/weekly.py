"""Weekly MACD, seen from each daily session without look-ahead.

A weekly bar is dated on the last *session* of its week (Thursday when Good
Friday closes the exchange) and exists only once that session has closed.
Whether a week is over comes from the session calendar, never from "is it
Friday": the calendar knows that 2018-03-29 ended its week, and that a
history cut on a Wednesday has not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bot.engine.indicators._util import as_float, bool_series, float_series, require_session_index
from bot.engine.indicators.momentum import (
    histogram_compression,
    macd,
    zero_cross_down,
    zero_cross_up,
)

WEEK = "W-FRI"

WEEKLY_COLUMNS = (
    "weekly_macd",
    "weekly_macd_signal",
    "weekly_macd_hist",
    "weekly_macd_cross_down",
    "weekly_macd_cross_up",
    "weekly_hist_compression",
)


def _last_of_each_week(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The last date of each ``W-FRI`` week present in a sorted index."""
    if len(index) == 0:
        return index
    weeks = index.to_period(WEEK)
    is_last = np.ones(len(index), dtype=bool)
    is_last[:-1] = weeks[1:] != weeks[:-1]
    return index[is_last]


def weekly_bars(close: pd.Series[float]) -> pd.Series[float]:
    """One bar per week of the data: date and close of the week's last row.

    This is the plain grouping, for charts and inspection. It cannot tell a
    finished week from an unfinished one; indicators use
    :func:`completed_weekly_closes`.
    """
    index = require_session_index(close.index, "close")
    last = _last_of_each_week(index)
    return close.reindex(last).astype(np.float64)


def completed_weekly_closes(
    close: pd.Series[float], calendar_sessions: pd.DatetimeIndex
) -> pd.Series[float]:
    """Closes of the weeks that have ended by the last row of ``close``.

    ``calendar_sessions`` is the XNYS session index covering the data and
    reaching past the end of the last week in it (future sessions included).
    A week ends on its last calendar session; if that session's close is
    missing the bar is NaN (so the weekly EMA restarts rather than bridging).
    """
    index = require_session_index(close.index, "close")
    calendar = require_session_index(calendar_sessions, "calendar_sessions")
    if len(index) == 0:
        return close.astype(np.float64)
    if not index.isin(calendar).all():
        stray = index[~index.isin(calendar)]
        raise ValueError(f"close has rows on non-sessions: {list(stray.date[:5])}")
    last_week_end = index[-1].to_period(WEEK).end_time.normalize()
    if calendar[-1] <= last_week_end:
        raise ValueError(
            "calendar_sessions must reach past the week of the last close "
            f"({index[-1].date()}); it ends {calendar[-1].date()}"
        )
    # Only calendar weeks whose final session is on or before the last row
    # are complete; the row itself may sit in the middle of its week.
    week_ends = _last_of_each_week(calendar[calendar >= index[0]])
    ended = week_ends[week_ends <= index[-1]].astype(index.dtype)
    return close.reindex(ended).astype(np.float64)


def weekly_macd_asof(
    close: pd.Series[float],
    calendar_sessions: pd.DatetimeIndex,
    fast: int = 12,
    slow: int = 26,
    signal: int = 9,
    compression_k: int = 3,
) -> pd.DataFrame:
    """Weekly MACD of the last completed week, on every daily row of ``close``.

    Evaluation runs after the close, so a week counts on its own last session;
    mid-week the values are the previous week's. Crosses and compression are
    True only on the session that completed the week in which they happened,
    so an alert fires once, not every day of the following week.
    """
    weekly = completed_weekly_closes(close, calendar_sessions)
    m = macd(weekly, fast, slow, signal)
    daily = close.index
    out = pd.DataFrame(index=daily)
    for src, dst in (
        ("macd", "weekly_macd"),
        ("macd_signal", "weekly_macd_signal"),
        ("macd_hist", "weekly_macd_hist"),
    ):
        asof = m[src].reindex(daily, method="ffill") if len(m) else m[src].reindex(daily)
        out[dst] = float_series(as_float(asof), daily)
    for name, flags in (
        ("weekly_macd_cross_down", zero_cross_down(m["macd"])),
        ("weekly_macd_cross_up", zero_cross_up(m["macd"])),
        ("weekly_hist_compression", histogram_compression(m["macd_hist"], compression_k)),
    ):
        on_day = flags.reindex(daily, fill_value=False).to_numpy(dtype=bool)
        out[name] = bool_series(on_day, daily)
    return out
