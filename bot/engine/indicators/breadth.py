"""NYSE Advance/Decline line, and the gap check that guards it.

The line's level depends on where the history starts, so it is only ever
compared with its own earlier values. That is what makes a missing session
tolerable in the stored line (NaN that day, the sum carries on) but not in a
live evaluation: a window containing the gap cannot be judged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bot.engine.indicators._util import as_float, float_series, require_session_index
from bot.kernel.errors import DataIncomplete

MAX_LISTED = 10
"""How many missing sessions an error message spells out before summarising."""


def ad_line(
    advancers: pd.Series[Any], decliners: pd.Series[Any], sessions: pd.DatetimeIndex
) -> pd.Series[float]:
    """Running sum of (advancers − decliners) on ``sessions``; NaN on a missing session.

    Rows off ``sessions`` are ignored (the importer drops and reports
    non-session rows). The sum starts at the first session with data.
    """
    require_session_index(sessions, "sessions")
    adv = as_float(advancers.reindex(sessions))
    dec = as_float(decliners.reindex(sessions))
    net = adv - dec
    missing = np.isnan(net)
    line = np.cumsum(np.where(missing, 0.0, net))
    line[missing] = np.nan
    return float_series(line, sessions)


def missing_sessions(series: pd.Series[Any], sessions: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Sessions on which ``series`` has no row or a NaN value."""
    require_session_index(sessions, "sessions")
    values = as_float(series.reindex(sessions))
    return sessions[np.isnan(values)]


def require_no_gaps(series: pd.Series[Any], sessions: pd.DatetimeIndex, name: str) -> None:
    """Raise :class:`DataIncomplete` naming ``name`` and its missing sessions, if any."""
    missing = missing_sessions(series, sessions)
    if len(missing) == 0:
        return
    listed = ", ".join(str(day.date()) for day in missing[:MAX_LISTED])
    more = len(missing) - MAX_LISTED
    suffix = f" and {more} more" if more > 0 else ""
    raise DataIncomplete(
        f"{name}: no data for {len(missing)} session(s) between "
        f"{sessions[0].date()} and {sessions[-1].date()}: {listed}{suffix}"
    )
