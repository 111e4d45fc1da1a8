"""Small conversions between pandas and numpy shared by the indicator modules.

The indicators do their arithmetic on float/bool numpy arrays (fast, and NaN
semantics are explicit) and hand pandas Series back to callers; these helpers
keep that round trip typed in one place.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


def as_float(x: pd.Series[Any]) -> FloatArray:
    """Values as float64, missing values (None, pd.NA) as NaN."""
    return np.asarray(x.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def float_series(values: FloatArray, index: pd.Index[Any]) -> pd.Series[float]:
    return pd.Series(values, index=index, dtype=np.float64)


def bool_series(values: BoolArray, index: pd.Index[Any]) -> pd.Series[bool]:
    return pd.Series(values, index=index, dtype=bool)


def require_session_index(index: pd.Index[Any], name: str) -> pd.DatetimeIndex:
    """A naive, strictly increasing DatetimeIndex, or a ValueError naming ``name``.

    A tz-aware or unsorted index would align to nothing (all NaN) without a
    word; refusing it here turns that into an error someone can act on.
    """
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(f"{name}: index must be a DatetimeIndex of sessions")
    if index.tz is not None:
        raise ValueError(f"{name}: index must hold naive session dates, not {index.tz}")
    if not index.is_monotonic_increasing or not index.is_unique:
        raise ValueError(f"{name}: index must be strictly increasing")
    return index
