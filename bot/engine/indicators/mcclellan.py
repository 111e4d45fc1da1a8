"""The McClellan Oscillator and Summation Index of NYSE net advances.

Definitions (Sherman and Marian McClellan, 1969; as McClellan Financial
Publications state them, mcoscillator.com "Calculating the McClellan
Oscillator"):

- the **10 % Trend** and the **5 % Trend** are exponential moving averages of
  daily net advances (advancers − decliners) with smoothing constants 0.10
  and 0.05: ``T_t = T_{t−1} + a · (x_t − T_{t−1})``;
- the **McClellan Oscillator** is 10 % Trend − 5 % Trend;
- the **Summation Index** is the running total of the oscillator, "neutral
  at +1000 when calculated and calibrated properly".

The running total's level would depend on where the history starts. It does
not here, because the total has a closed form in the two trends: from the
recursions, x_t = T10_{t−1} + 10·ΔT10_t = T05_{t−1} + 20·ΔT05_t, so
Osc_{t−1} = 20·ΔT05_t − 10·ΔT10_t and summing gives
``Summation_t = 1000 + 19·T05_t − 9·T10_t``, whose day-to-day change is
exactly Osc_t. This is the calibration McClellan publishes (checked against
their breadth-data pages: SUMM Index − (19·5 % Trend − 9·10 % Trend) = 1000.00
on every snapshot), so the level is comparable with theirs.

Seeding and warm-up: both trends start at 0 (the long-run mean of net
advances) on the first session of breadth of one segment, and are not
evaluable (NaN) for their first :data:`WARMUP_SESSIONS` sessions, by which
time the seed's weight in the 5 % Trend is 0.95**250 ≈ 3e-6. An imputed
session (no accepted row) counts as net 0, as on the A/D line. A change
between NYSE and synthetic breadth restarts both trends, with a new warm-up.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from bot.engine.indicators._util import FloatArray, as_float, float_series

TREND_FAST: Final = 0.10
"""Smoothing constant of the 10 % Trend (about a 19-session EMA)."""
TREND_SLOW: Final = 0.05
"""Smoothing constant of the 5 % Trend (about a 39-session EMA)."""
SUMMATION_BASE: Final = 1000.0
"""The Summation Index's neutral level (McClellan's calibration)."""
WARMUP_SESSIONS: Final = 250
"""Sessions of breadth before the trends are evaluable (the seed has washed out)."""

COLUMNS: Final = ("trend_10", "trend_05", "oscillator", "summation")


def _trend(x: FloatArray, a: float) -> FloatArray:
    """``T_t = (1 − a)·T_{t−1} + a·x_t`` from ``T_{−1} = 0`` (pandas' compiled loop)."""
    seeded = np.concatenate(([0.0], x))
    out = pd.Series(seeded).ewm(alpha=a, adjust=False).mean().to_numpy(dtype=np.float64)
    return np.asarray(out[1:], dtype=np.float64)


def mcclellan(
    net: pd.Series[float], segments: pd.Series[Any] | None = None
) -> pd.DataFrame:
    """Columns ``trend_10``, ``trend_05``, ``oscillator``, ``summation`` on ``net``'s index.

    ``net`` is daily net advances, NaN where breadth is imputed or before it
    starts; ``segments`` labels each session's segment (e.g. "nyse" /
    "synthetic"; "" or NaN on sessions without a row of their own, which
    belong to the segment around them). NaN before the first row and during
    each segment's warm-up.
    """
    index = net.index
    x = as_float(net)
    n = len(x)
    out = {c: np.full(n, np.nan) for c in COLUMNS}
    has_row = ~np.isnan(x)
    raw = pd.Series("one", index=index) if segments is None else segments.reindex(index)
    labels = raw.astype(object).where(raw.notna() & (raw != "") & has_row)
    # A session without a row carries the previous row's segment.
    filled = labels.ffill().tolist()
    starts = [i for i in range(n)
              if filled[i] is not None and filled[i] == filled[i]  # not None / NaN
              and (i == 0 or filled[i] != filled[i - 1])]
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else n
        values = np.nan_to_num(x[start:stop], nan=0.0)
        t10 = _trend(values, TREND_FAST)
        t05 = _trend(values, TREND_SLOW)
        settled = slice(start + WARMUP_SESSIONS - 1, stop)
        first = WARMUP_SESSIONS - 1
        out["trend_10"][settled] = t10[first:]
        out["trend_05"][settled] = t05[first:]
        out["oscillator"][settled] = (t10 - t05)[first:]
        out["summation"][settled] = (SUMMATION_BASE + 19.0 * t05 - 9.0 * t10)[first:]
    return pd.DataFrame({c: float_series(v, index) for c, v in out.items()})
