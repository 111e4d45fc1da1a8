"""Bearish divergence of an indicator against SPX, and how long it has lasted.

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


def bearish_divergence(
    price: pd.Series[float],
    x: pd.Series[float],
    window: int = 63,
    tolerance: float = 0.01,
    min_separation: int = 5,
    segments: pd.Series[Any] | None = None,
) -> pd.Series[bool]:
    """D_t for every row of ``price`` (``x`` and ``segments`` are aligned to it)."""
    if window < 2:
        raise ValueError(f"window must be at least 2, got {window}")
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")
    if not 0 <= min_separation < window:
        raise ValueError(f"min_separation must be in [0, window), got {min_separation}")
    index = price.index
    p = as_float(price)
    xv = as_float(x.reindex(index))
    n = len(p)
    out = np.zeros(n, dtype=bool)
    if n < window:
        return bool_series(out, index)

    has_nan = _window_count(np.isnan(p) | np.isnan(xv), window) > 0
    p_win = sliding_window_view(p, window)
    x_win = sliding_window_view(xv, window)
    p_now, x_now = p[window - 1 :], xv[window - 1 :]
    with np.errstate(invalid="ignore"):
        near_high = p_now >= (1.0 - tolerance) * p_win.max(axis=1)
        unconfirmed = x_now < x_win.max(axis=1)
    separated = _last_argmax(p_win) - _last_argmax(x_win) >= min_separation
    ok = near_high & unconfirmed & separated & ~has_nan
    if segments is not None:
        changes = _segment_changes(segments, index)
        # A change on the window's first row is a boundary *before* the window.
        inner = _window_count(changes, window) - changes[: n - window + 1]
        ok &= inner == 0
    out[window - 1 :] = ok
    return bool_series(out, index)


def divergence_length(flags: pd.Series[Any]) -> pd.Series[int]:
    """Consecutive sessions ending at t on which the flag held; 0 when it does not.

    NaN / missing counts as "did not hold", so an unknown day breaks the run
    rather than being assumed to continue it.
    """
    held = flags.eq(True).fillna(False).to_numpy(dtype=bool)
    positions = np.arange(len(held), dtype=np.int64)
    last_break = np.maximum.accumulate(np.where(held, -1, positions))
    return pd.Series(positions - last_break, index=flags.index, dtype=np.int64)
