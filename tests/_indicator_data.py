"""Real market data for the indicator tests, read straight from the shipped snapshot.

Deliberately independent of the production parsers: the indicator tests should
fail only when an indicator is wrong, not when a CSV parser changes.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import numpy as np
import pandas as pd

from bot.kernel.sessions import get_calendar

SNAPSHOT = Path(__file__).resolve().parent.parent / "bot" / "data" / "snapshot"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@functools.cache
def _spx() -> pd.Series[float]:
    raw = pd.read_csv(SNAPSHOT / "spx" / "spx_daily_1999_2018.csv")
    index = pd.DatetimeIndex(pd.to_datetime(raw["Date"], format="%m/%d/%Y"))
    return pd.Series(raw["Close"].to_numpy(dtype=np.float64), index=index, name="close")


def spx_closes() -> pd.Series[float]:
    """S&P 500 closes 1999-01-04..2018-12-31 (a fresh copy: tests may mutate it)."""
    return _spx().copy()


@functools.cache
def _unicorn(kind: str, folder: str, prefix: str) -> pd.Series[float]:
    root = FIXTURES if prefix == "synthetic" else SNAPSHOT
    raw = pd.read_csv(
        root / "breadth" / folder / f"{prefix}_{kind}.csv",
        header=None,
        names=["date", "value"],
        skipinitialspace=True,
        dtype={"date": str},
    )
    index = pd.DatetimeIndex(pd.to_datetime(raw["date"], format="%Y%m%d"))
    series = pd.Series(raw["value"].to_numpy(dtype=np.float64), index=index)
    # Keep only sessions (the importer's job in production; the raw files hold
    # holiday rows), so tests see what the store would hand the indicators.
    sessions = full_calendar()
    return series[series.index.isin(sessions)]


def nyse_breadth() -> tuple[pd.Series[float], pd.Series[float]]:
    """Real NYSE advancers/decliners (Unicorn), 1965..2015-11-11, non-sessions dropped."""
    folder = "nyse-unicorn-1965-2015"
    return _unicorn("advn", folder, "NYSE").copy(), _unicorn("decln", folder, "NYSE").copy()


def synthetic_breadth() -> tuple[pd.Series[float], pd.Series[float]]:
    """Synthetic advancers/decliners 1998..2026 (not NYSE figures; a test fixture only)."""
    folder = "synthetic-1998-2026"
    adv = _unicorn("advn", folder, "synthetic").copy()
    dec = _unicorn("decln", folder, "synthetic").copy()
    return adv, dec


@functools.cache
def _cboe(name: str) -> pd.Series[float]:
    raw = pd.read_csv(SNAPSHOT / "vix" / f"{name}_History.csv")
    index = pd.DatetimeIndex(pd.to_datetime(raw["DATE"], format="%m/%d/%Y"))
    series = pd.Series(raw["CLOSE"].to_numpy(dtype=np.float64), index=index)
    return series[series.index.isin(full_calendar())]


def cboe_close(name: str) -> pd.Series[float]:
    """Cboe VIX / VIX3M / VIX6M closes on sessions."""
    return _cboe(name).copy()


def event_dates(file: str) -> pd.DatetimeIndex:
    raw = pd.read_csv(SNAPSHOT / "calendar" / file)
    return pd.DatetimeIndex(pd.to_datetime(raw["date"], format="%Y-%m-%d"))


@functools.cache
def full_calendar() -> pd.DatetimeIndex:
    """Every XNYS session the shared calendar knows, future ones included."""
    cal = get_calendar()
    return cal.session_index(cal.first, cal.last)


def sessions(start: str, end: str) -> pd.DatetimeIndex:
    return get_calendar().session_index(dt.date.fromisoformat(start), dt.date.fromisoformat(end))


def ts(day: str) -> pd.Timestamp:
    return pd.Timestamp(day)
