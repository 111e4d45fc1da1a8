"""EMA, MACD, RSI and the MACD events the rules look at.

Warm-up convention (shared by every function here): an EMA(n) recursion is
seeded with the first value of its input and its first ``n - 1`` outputs are
NaN, because they are dominated by that arbitrary seed. A MACD line is thus
NaN for its first ``slow - 1`` sessions and its signal/histogram for a further
``signal - 1``; RSI(n) is NaN for its first ``n`` sessions. Warm-up is NaN and
never 0, so a zero-line test cannot fire on it.

Gaps: a NaN inside the input is *not* bridged (that would be forward-filling
by another name). The output is NaN on the gap and the recursion restarts
after it with a fresh warm-up, as if history began there. Validation rejects
gapped required series anyway; this only guarantees no value is ever silently
computed across one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from bot.engine.indicators._util import FloatArray, as_float, bool_series, float_series


def _require_period(n: int, name: str = "period") -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")


def _per_run(
    x: pd.Series[float], func: Callable[[pd.Series[float]], pd.Series[float]]
) -> pd.Series[float]:
    """Apply ``func`` to each maximal run of non-NaN values; NaN elsewhere.

    Runs are few (one, unless the input has gaps), so the loop is per gap,
    not per row.
    """
    values = as_float(x)
    valid = ~np.isnan(values)
    if valid.all():
        return func(float_series(values, x.index))
    out = np.full(len(values), np.nan)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], valid.astype(np.int8), [0]))))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        run = float_series(values[start:stop], x.index[start:stop])
        out[start:stop] = as_float(func(run))
    return float_series(out, x.index)


def ema(x: pd.Series[float], n: int) -> pd.Series[float]:
    """EMA with alpha = 2/(n+1), seeded with the first value, NaN for n-1 sessions.

    ``ewm(span=n, adjust=False)`` is the recursion TA-Lib converges to; after a
    few hundred sessions the seed no longer matters (DESIGN.md §4).
    """
    _require_period(n, "n")

    def run_ema(run: pd.Series[float]) -> pd.Series[float]:
        return run.ewm(span=n, adjust=False, min_periods=n).mean()

    return _per_run(x, run_ema)


def macd(close: pd.Series[float], fast: int = 12, slow: int = 26, signal: int = 9) -> pd.DataFrame:
    """MACD line, signal and histogram (columns ``macd``, ``macd_signal``, ``macd_hist``)."""
    _require_period(fast, "fast")
    _require_period(slow, "slow")
    _require_period(signal, "signal")
    if fast >= slow:
        raise ValueError(f"fast ({fast}) must be shorter than slow ({slow})")
    line = ema(close, fast) - ema(close, slow)
    sig = ema(line, signal)
    return pd.DataFrame(
        {"macd": line, "macd_signal": sig, "macd_hist": line - sig}, index=close.index
    )


def _wilder_rsi(close: pd.Series[float], n: int) -> pd.Series[float]:
    values = as_float(close)
    out = np.full(len(values), np.nan)
    if len(values) <= n:
        return float_series(out, close.index)
    change = np.diff(values)
    gain = np.clip(change, 0.0, None)
    loss = np.clip(-change, 0.0, None)
    avg_gain = _wilder_average(gain, n)
    avg_loss = _wilder_average(loss, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        rsi_values = 100.0 * avg_gain / (avg_gain + avg_loss)
    rsi_values = np.where(avg_loss == 0.0, np.where(avg_gain > 0.0, 100.0, 50.0), rsi_values)
    rsi_values[: n - 1] = np.nan
    out[1:] = rsi_values
    return float_series(out, close.index)


def _wilder_average(x: FloatArray, n: int) -> FloatArray:
    """Mean of the first n values, then avg = ((n-1)·avg + x)/n.

    Written as an ``ewm(alpha=1/n)`` seeded with that mean, so the recursion
    runs in pandas' compiled loop rather than a Python one.
    """
    seeded = np.full(len(x), np.nan)
    seeded[n - 1] = x[:n].mean()
    seeded[n:] = x[n:]
    return as_float(pd.Series(seeded).ewm(alpha=1.0 / n, adjust=False).mean())


def rsi(close: pd.Series[float], period: int = 14) -> pd.Series[float]:
    """Wilder RSI; 100 when the average loss is 0 and the average gain is not, 50 if both are."""
    _require_period(period)

    def run_rsi(run: pd.Series[float]) -> pd.Series[float]:
        return _wilder_rsi(run, period)

    return _per_run(close, run_rsi)


def zero_cross_down(line: pd.Series[float]) -> pd.Series[bool]:
    """True at t when line_{t-1} >= 0 > line_t; a NaN on either side gives False."""
    values = as_float(line)
    out = np.zeros(len(values), dtype=bool)
    out[1:] = (values[:-1] >= 0.0) & (values[1:] < 0.0)
    return bool_series(out, line.index)


def zero_cross_up(line: pd.Series[float]) -> pd.Series[bool]:
    """True at t when line_{t-1} <= 0 < line_t; a NaN on either side gives False."""
    values = as_float(line)
    out = np.zeros(len(values), dtype=bool)
    out[1:] = (values[:-1] <= 0.0) & (values[1:] > 0.0)
    return bool_series(out, line.index)


def histogram_compression(hist: pd.Series[float], k: int = 3) -> pd.Series[bool]:
    """True at t when |hist| fell on each of the last k sessions without changing sign.

    Precisely: |h_{t-k}| > |h_{t-k+1}| > ... > |h_t| (k strict falls, so k+1
    values) and all k+1 values are non-zero with the same sign. A zero or NaN
    anywhere in those values gives False: a histogram at 0 has no side, and
    "shrinking towards a cross" is the early warning this stands for.
    """
    _require_period(k, "k")
    values = as_float(hist)
    n = len(values)
    step = np.zeros(n, dtype=bool)
    if n > 1:
        prev, cur = values[:-1], values[1:]
        with np.errstate(invalid="ignore"):
            same_side = ((prev > 0.0) & (cur > 0.0)) | ((prev < 0.0) & (cur < 0.0))
            step[1:] = same_side & (np.abs(cur) < np.abs(prev))
    done = np.concatenate(([0], np.cumsum(step)))
    out = np.zeros(n, dtype=bool)
    if n > k:
        out[k:] = (done[k + 1 :] - done[1 : n - k + 1]) == k
    return bool_series(out, hist.index)
