"""A/D line and imputed breadth per DESIGN.md §4: flat over a missing session, marked imputed;
what each divergence window holds (imputed sessions, sources, NYSE mixed with synthetic)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from _indicator_data import nyse_breadth, sessions, ts

from bot.engine.indicators import (
    ad_line,
    breadth_window,
    imputed_sessions,
    missing_sessions,
    net_advances,
)


def test_a_missing_session_is_imputed_flat() -> None:
    days = sessions("2024-03-04", "2024-03-08")
    adv = pd.Series([110.0, 95.0, 120.0, 97.0], index=days.delete(2))
    dec = pd.Series([100.0, 100.0, 100.0, 100.0], index=days.delete(2))
    line = ad_line(adv, dec, days)
    assert line.index.equals(days)
    # net 0 on the missing session: the line carries flat over it.
    assert line.tolist() == [10.0, 5.0, 5.0, 25.0, 22.0]
    imputed = imputed_sessions(net_advances(adv, dec, days))
    assert imputed.tolist() == [False, False, True, False, False]


def test_before_the_first_row_is_no_history_not_imputed() -> None:
    days = sessions("2024-03-04", "2024-03-08")
    adv = pd.Series([110.0, 95.0], index=days[3:])
    dec = pd.Series([100.0, 100.0], index=days[3:])
    line = ad_line(adv, dec, days)
    assert line.iloc[:3].isna().all()  # NaN, never 0
    assert line.iloc[3:].tolist() == [10.0, 5.0]
    assert not imputed_sessions(net_advances(adv, dec, days)).any()


def test_rows_off_the_session_list_do_not_count() -> None:
    days = sessions("2024-03-28", "2024-04-02")  # Good Friday 2024-03-29 is closed
    index = pd.DatetimeIndex(["2024-03-28", "2024-03-29", "2024-04-01", "2024-04-02"])
    adv = pd.Series([10.0, 999.0, 10.0, 10.0], index=index)
    dec = pd.Series([0.0, 0.0, 0.0, 0.0], index=index)
    assert ad_line(adv, dec, days).tolist() == [10.0, 20.0, 30.0]


def test_real_nyse_gap_on_1999_11_26() -> None:
    adv, dec = nyse_breadth()
    days = sessions("1999-11-01", "1999-12-31")
    line = ad_line(adv, dec, days)
    assert line["1999-11-26"] == line["1999-11-24"]  # imputed: flat
    net_monday = adv["1999-11-29"] - dec["1999-11-29"]
    assert line["1999-11-29"] - line["1999-11-26"] == net_monday
    imputed = imputed_sessions(net_advances(adv, dec, days))
    assert list(imputed[imputed].index) == [ts("1999-11-26")]


def test_nan_value_is_missing_too() -> None:
    days = sessions("2024-03-04", "2024-03-08")
    values = pd.Series([1.0, 2.0, np.nan, 4.0, 5.0], index=days)
    assert list(missing_sessions(values, days)) == [ts("2024-03-06")]


def test_window_counts_and_names_its_imputed_sessions() -> None:
    days = sessions("2024-01-02", "2024-03-28")
    imputed = pd.Series(False, index=days)
    imputed.iloc[[10, 12]] = True
    sources = pd.Series("tradingview", index=days).where(~imputed, "")
    held = breadth_window(imputed, sources, window=5)
    # A 5-session window ending at t holds t-4..t.
    assert held["imputed_count"].iloc[[9, 10, 12, 14, 15, 16, 17]].tolist() == [0, 1, 2, 2, 1, 1, 0]
    assert held["imputed_dates"].iloc[12] == f"{days[10].date()}, {days[12].date()}"
    assert held["imputed_dates"].iloc[16] == str(days[12].date())
    assert held["imputed_dates"].iloc[17] == ""
    assert set(held["sources"]) == {"tradingview"}
    assert not held["mixed"].any()


def test_nyse_sources_are_one_segment_and_synthetic_is_another() -> None:
    days = sessions("2024-01-02", "2024-03-28")
    labels = ["unicorn"] * 20 + ["tradingview"] * 20 + ["wsj"] * 5 + ["synthetic-x"] * 14
    sources = pd.Series(labels, index=days[: len(labels)])
    imputed = pd.Series(False, index=days[: len(labels)])
    held = breadth_window(imputed, sources, window=10)
    # Windows spanning Unicorn, TradingView and WSJ (all NYSE counts) are not mixed ...
    assert not held["mixed"].iloc[:45].any()
    assert held["sources"].iloc[25] == "unicorn, tradingview"
    # ... a window holding synthetic and NYSE rows is, until it holds synthetic only.
    assert held["mixed"].iloc[45:54].all()
    assert not held["mixed"].iloc[54:].any()
    assert held["sources"].iloc[-1] == "synthetic-x"


def test_imputed_session_keeps_the_segment_around_it() -> None:
    days = sessions("2024-01-02", "2024-02-28")
    sources = pd.Series("unicorn", index=days)
    sources.iloc[5] = ""
    imputed = sources == ""
    held = breadth_window(imputed, sources, window=10)
    assert not held["mixed"].any()
    assert held["imputed_count"].max() == 1
    assert math.isnan(ad_line(pd.Series(dtype=float), pd.Series(dtype=float), days).iloc[0])
