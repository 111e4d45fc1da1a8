"""VIX term structure: VIX / VIX3M, above 1 in backwardation (stress)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bot.engine.indicators._util import as_float, float_series


def vix_term_ratio(vix: pd.Series[float], vix3m: pd.Series[float]) -> pd.Series[float]:
    """VIX / VIX3M on ``vix``'s rows; NaN where either is missing or VIX3M is not positive.

    VIX3M only starts on 2009-09-18, so earlier rows are NaN rather than a
    ratio against a stand-in.
    """
    num = as_float(vix)
    den = as_float(vix3m.reindex(vix.index))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(den > 0.0, num / den, np.nan)
    return float_series(ratio, vix.index)
