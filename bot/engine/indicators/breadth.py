"""NYSE Advance/Decline line, imputed sessions, and what each divergence window holds.

DESIGN.md §4, missing and rejected breadth: a session with no accepted
breadth row (missing, or rejected as a partial-day count by the store) is
*imputed*: the A/D line carries flat over it (net 0) and the session is
marked imputed. The line's level depends on where the history starts, so it
is only ever compared with its own earlier values; before the first row it
is NaN (no history), never 0.

Breadth sources are one segment or not: NYSE counts from Unicorn,
TradingView, WSJ, the McClellan page or a user's import are one segment;
a series labelled synthetic (not NYSE counts) never shares a window with
NYSE figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import pandas as pd

from bot.engine.indicators._util import (
    BoolArray,
    IntArray,
    as_float,
    bool_series,
    float_series,
    require_session_index,
)
from bot.kernel.models import is_synthetic

MAX_LISTED: Final = 10
"""How many imputed sessions a description spells out before summarising."""

WINDOW_COLUMNS: Final = ("imputed_count", "imputed_dates", "sources", "mixed")
EMPTY: Final[Mapping[pd.Timestamp, str]] = MappingProxyType({})


def window_count(flags: BoolArray, window: int) -> IntArray:
    """How many flags are set in the ``window`` rows ending at each row (fewer at the start)."""
    done = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
    ends = np.arange(1, len(flags) + 1)
    return np.asarray(done[ends] - done[np.maximum(ends - window, 0)], dtype=np.int64)


def net_advances(
    advancers: pd.Series[Any], decliners: pd.Series[Any], sessions: pd.DatetimeIndex
) -> pd.Series[float]:
    """Advancers − decliners on ``sessions``; NaN on a session with no row.

    Rows off ``sessions`` are ignored (the importer drops and reports
    non-session rows).
    """
    require_session_index(sessions, "sessions")
    adv = as_float(advancers.reindex(sessions))
    dec = as_float(decliners.reindex(sessions))
    return float_series(adv - dec, sessions)


def imputed_sessions(net: pd.Series[float]) -> pd.Series[bool]:
    """Sessions after the first breadth row that have no row of their own."""
    missing = np.isnan(as_float(net))
    started = np.cumsum(~missing) > 0
    return bool_series(missing & started, net.index)


def ad_line(
    advancers: pd.Series[Any], decliners: pd.Series[Any], sessions: pd.DatetimeIndex
) -> pd.Series[float]:
    """Running sum of (advancers − decliners) on ``sessions``, bridged over imputed sessions.

    An imputed session adds 0 (the line carries flat over it); sessions
    before the first row are NaN. The sum starts at the first session with
    data.
    """
    net = as_float(net_advances(advancers, decliners, sessions))
    missing = np.isnan(net)
    line = np.cumsum(np.where(missing, 0.0, net))
    line[np.cumsum(~missing) == 0] = np.nan
    return float_series(line, sessions)


def missing_sessions(series: pd.Series[Any], sessions: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Sessions on which ``series`` has no row or a NaN value."""
    require_session_index(sessions, "sessions")
    values = as_float(series.reindex(sessions))
    return sessions[np.isnan(values)]


def listed(
    days: pd.DatetimeIndex, limit: int = MAX_LISTED, notes: Mapping[pd.Timestamp, str] = EMPTY
) -> str:
    """``2024-06-17, 2025-03-04 (rejected)`` (at most ``limit`` dates, then "and N more")."""
    shown = ", ".join(str(d.date()) + (f" ({notes[d]})" if d in notes else "")
                      for d in days[:limit])
    more = len(days) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def breadth_window(
    imputed: pd.Series[bool], sources: pd.Series[Any], window: int,
    notes: Mapping[pd.Timestamp, str] = EMPTY,
) -> pd.DataFrame:
    """What the ``window`` sessions ending at each t hold (one row per session).

    Columns: ``imputed_count`` (imputed sessions in the window),
    ``imputed_dates`` (them, spelled out; "" when none), ``sources`` (the
    distinct breadth sources of the window's own rows, in order of first use,
    ", "-joined) and ``mixed`` (the window holds both NYSE and synthetic
    rows, so it cannot be judged). ``sources`` is aligned to ``imputed``'s
    index; "" or NaN marks a session without a row of its own.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    index = require_session_index(imputed.index, "imputed")
    flags = imputed.to_numpy(dtype=bool)
    aligned = sources.reindex(index)
    text = aligned.astype(object).where(aligned.notna(), "").astype(str)
    codes, uniques = pd.factorize(text.where(text != ""), use_na_sentinel=True)
    names = [str(u) for u in uniques]
    present = np.zeros((len(index), len(names)), dtype=bool)
    for c in range(len(names)):
        present[:, c] = window_count(codes == c, window) > 0
    synthetic = np.array([is_synthetic(n) for n in names], dtype=bool)
    mixed = present[:, synthetic].any(axis=1) & present[:, ~synthetic].any(axis=1)

    cache: dict[bytes, str] = {}
    joined = np.empty(len(index), dtype=object)
    for i, row in enumerate(present):
        key = row.tobytes()
        if key not in cache:
            cache[key] = ", ".join(names[c] for c in np.flatnonzero(row))
        joined[i] = cache[key]

    count = window_count(flags, window)
    dates = np.full(len(index), "", dtype=object)
    positions = np.flatnonzero(flags)
    for i in np.flatnonzero(count).tolist():
        inside = positions[(positions > i - window) & (positions <= i)]
        dates[i] = listed(pd.DatetimeIndex(index[inside]), notes=notes)
    return pd.DataFrame(
        {"imputed_count": count, "imputed_dates": dates, "sources": joined, "mixed": mixed},
        index=index,
    )
