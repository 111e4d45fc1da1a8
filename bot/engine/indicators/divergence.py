"""Bearish divergence of an indicator against SPX: its length and its streak.

Definition (DESIGN.md §4), for session t over the window of the last
``window`` sessions ending at t, using nothing after t:

1. P_t >= (1 − tolerance) · max P (SPX at or near its high);
2. X_t < max X (X does not confirm);
3. iP − iX >= min_separation, iP and iX being the positions of the *most
   recent* maxima of P and X in the window.

Not evaluable is not "no divergence": a window that is not yet full, holds a
NaN in P or X, or that the caller marks as not judgeable (too many imputed
breadth sessions, NYSE and synthetic breadth mixed) gives NaN / NA, never
0 or False. A rule that needs the value then does not hold, and says why.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from bot.engine.indicators._util import BoolArray, FloatArray, IntArray, as_float, float_series


def _full_window_count(flags: BoolArray, window: int) -> IntArray:
    """How many flags are set in each full window (one entry per window end)."""
    done = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
    return done[window:] - done[:-window]


def _last_argmax(windows: FloatArray) -> IntArray:
    """Position (0 = oldest) of the most recent maximum in each window row."""
    width = windows.shape[1]
    latest_first = np.argmax(windows[:, ::-1], axis=1).astype(np.int64)
    return np.asarray(width - 1 - latest_first, dtype=np.int64)


def _check(window: int, tolerance: float, min_separation: int) -> None:
    if window < 2:
        raise ValueError(f"window must be at least 2, got {window}")
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")
    if not 0 <= min_separation < window:
        raise ValueError(f"min_separation must be in [0, window), got {min_separation}")


def _span(
    price: pd.Series[float],
    x: pd.Series[float],
    window: int,
    tolerance: float,
    min_separation: int,
) -> tuple[BoolArray, BoolArray, IntArray]:
    """Per row: whether the window can be judged, D_t, and iP − iX where D_t holds."""
    _check(window, tolerance, min_separation)
    index = price.index
    p = as_float(price)
    xv = as_float(x.reindex(index))
    n = len(p)
    judged = np.zeros(n, dtype=bool)
    held = np.zeros(n, dtype=bool)
    span = np.zeros(n, dtype=np.int64)
    if n < window:
        return judged, held, span

    clean = _full_window_count(np.isnan(p) | np.isnan(xv), window) == 0
    p_win = sliding_window_view(p, window)
    x_win = sliding_window_view(xv, window)
    p_now, x_now = p[window - 1 :], xv[window - 1 :]
    with np.errstate(invalid="ignore"):
        near_high = p_now >= (1.0 - tolerance) * p_win.max(axis=1)
        unconfirmed = x_now < x_win.max(axis=1)
    distance = _last_argmax(p_win) - _last_argmax(x_win)
    ok = near_high & unconfirmed & (distance >= min_separation) & clean
    judged[window - 1 :] = clean
    held[window - 1 :] = ok
    span[window - 1 :] = np.where(ok, distance, 0)
    return judged, held, span


def divergence_streak(flags: pd.Series[Any]) -> pd.Series[int]:
    """Consecutive sessions ending at t on which the flag held; 0 when it does not.

    DESIGN.md §4 ``ad_divergence_streak``: how persistent the condition is.
    NaN / missing counts as "did not hold", so an unknown day breaks the run
    rather than being assumed to continue it.
    """
    held = flags.eq(True).fillna(False).to_numpy(dtype=bool)
    positions = np.arange(len(held), dtype=np.int64)
    last_break = np.maximum.accumulate(np.where(held, -1, positions))
    return pd.Series(positions - last_break, index=flags.index, dtype=np.int64)


def divergence_measures(
    price: pd.Series[float],
    x: pd.Series[float],
    window: int = 63,
    tolerance: float = 0.01,
    min_separation: int = 5,
    judgeable: pd.Series[bool] | None = None,
) -> pd.DataFrame:
    """Columns ``divergence`` (D_t), ``days`` and ``streak``, one row per session of ``price``.

    ``days`` is the divergence's length: iP − iX on a session where D_t
    holds, else 0: how many sessions price has kept making highs while X has
    not, what a chartist means by "a divergence lasting more than 10 trading
    days" (DESIGN.md §4, ``ad_divergence_days``); at least
    ``min_separation`` while D holds. ``streak`` is the number of consecutive
    sessions ending at t on which D held (a not-evaluable session ends a run).

    Where the window cannot be judged (not full, a NaN in it, or
    ``judgeable`` False at t) all three are not evaluable: ``divergence`` is
    NA (nullable ``boolean``), ``days`` and ``streak`` NaN (``float64``).
    """
    judged, held, span = _span(price, x, window, tolerance, min_separation)
    if judgeable is not None:
        judged &= judgeable.reindex(price.index).fillna(False).to_numpy(dtype=bool)
    held &= judged
    index = price.index
    streak = divergence_streak(pd.Series(held, index=index)).to_numpy(dtype=np.float64)
    flags = pd.array(held, dtype="boolean")
    flags[~judged] = pd.NA
    days = np.where(judged, span, np.nan)
    streak[~judged] = np.nan
    return pd.DataFrame(
        {"divergence": flags, "days": float_series(days, index), "streak": streak}, index=index
    )


def bearish_divergence(
    price: pd.Series[float],
    x: pd.Series[float],
    window: int = 63,
    tolerance: float = 0.01,
    min_separation: int = 5,
) -> pd.Series[bool]:
    """D_t for every row of ``price``; False where the window cannot be judged.

    For the not-evaluable distinction use :func:`divergence_measures`.
    """
    _, held, _ = _span(price, x, window, tolerance, min_separation)
    return pd.Series(held, index=price.index, dtype=bool)
