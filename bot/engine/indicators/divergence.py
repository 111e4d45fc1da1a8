"""Bearish divergence of an indicator against SPX: its length and its streak.

Definition (DESIGN.md §4), for session t over the window of the last
``window`` sessions ending at t, using nothing after t:

1. P_t >= (1 − tolerance) · max P (SPX at or near its high);
2. X_t < max X (X does not confirm);
3. iP − iX >= min_separation, iP and iX being the positions of the *most
   recent* maxima of P and X in the window.

A window that is not yet full, holds a NaN in P or X, or spans more than one
``segments`` label gives False: an unknown value or a switch from NYSE to
synthetic breadth makes the comparison meaningless, and False is the answer
that never adds a hedge layer on bad data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from bot.engine.indicators._util import BoolArray, FloatArray, IntArray, as_float, bool_series


def _window_count(flags: BoolArray, window: int) -> IntArray:
    """How many flags are set in each full window (one entry per window end)."""
    done = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
    return done[window:] - done[:-window]


def _last_argmax(windows: FloatArray) -> IntArray:
    """Position (0 = oldest) of the most recent maximum in each window row."""
    width = windows.shape[1]
    latest_first = np.argmax(windows[:, ::-1], axis=1).astype(np.int64)
    return np.asarray(width - 1 - latest_first, dtype=np.int64)


def _segment_changes(segments: pd.Series[Any], index: pd.Index[Any]) -> BoolArray:
    """True where the label differs from the previous row's (missing is a label too)."""
    codes, _ = pd.factorize(segments.reindex(index), use_na_sentinel=True)
    changed = np.zeros(len(codes), dtype=bool)
    changed[1:] = codes[1:] != codes[:-1]
    return changed


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
    segments: pd.Series[Any] | None,
) -> tuple[BoolArray, IntArray]:
    """D_t, and iP − iX where it holds (0 where it does not), one entry per row."""
    _check(window, tolerance, min_separation)
    index = price.index
    p = as_float(price)
    xv = as_float(x.reindex(index))
    n = len(p)
    held = np.zeros(n, dtype=bool)
    out = np.zeros(n, dtype=np.int64)
    if n < window:
        return held, out

    has_nan = _window_count(np.isnan(p) | np.isnan(xv), window) > 0
    p_win = sliding_window_view(p, window)
    x_win = sliding_window_view(xv, window)
    p_now, x_now = p[window - 1 :], xv[window - 1 :]
    with np.errstate(invalid="ignore"):
        near_high = p_now >= (1.0 - tolerance) * p_win.max(axis=1)
        unconfirmed = x_now < x_win.max(axis=1)
    span = _last_argmax(p_win) - _last_argmax(x_win)
    ok = near_high & unconfirmed & (span >= min_separation) & ~has_nan
    if segments is not None:
        changes = _segment_changes(segments, index)
        # A change on the window's first row is a boundary *before* the window.
        inner = _window_count(changes, window) - changes[: n - window + 1]
        ok &= inner == 0
    held[window - 1 :] = ok
    out[window - 1 :] = np.where(ok, span, 0)
    return held, out


def bearish_divergence(
    price: pd.Series[float],
    x: pd.Series[float],
    window: int = 63,
    tolerance: float = 0.01,
    min_separation: int = 5,
    segments: pd.Series[Any] | None = None,
) -> pd.Series[bool]:
    """D_t for every row of ``price`` (``x`` and ``segments`` are aligned to it)."""
    held, _ = _span(price, x, window, tolerance, min_separation, segments)
    return bool_series(held, price.index)


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
    segments: pd.Series[Any] | None = None,
) -> pd.DataFrame:
    """Columns ``divergence`` (D_t), ``days`` and ``streak``, one row per session.

    ``days`` is the divergence's length: iP − iX on a session where D_t holds,
    else 0: how many sessions price has kept making highs while X has not,
    what a chartist means by "a divergence lasting more than 10 trading days"
    (DESIGN.md §4, ``ad_divergence_days``); at least ``min_separation`` while
    D holds. ``streak`` is :func:`divergence_streak` of D.
    """
    held, span = _span(price, x, window, tolerance, min_separation, segments)
    flags = bool_series(held, price.index)
    return pd.DataFrame(
        {
            "divergence": flags,
            "days": pd.Series(span, index=price.index, dtype=np.int64),
            "streak": divergence_streak(flags),
        }
    )
