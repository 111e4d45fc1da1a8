"""compute_frame on the real 1999–2018 history: names, agreement, no look-ahead, speed."""

from __future__ import annotations

import functools
import math
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _indicator_data import (
    cboe_close,
    event_dates,
    full_calendar,
    nyse_breadth,
    sessions,
    spx_closes,
    synthetic_breadth,
    ts,
)

from bot.engine.indicators import FRAME_COLUMNS, IndicatorParams, compute_frame
from bot.kernel.errors import ConfigError

# The rules language's vocabulary, spelled out independently of the module.
EXPECTED_COLUMNS = [
    "close", "macd", "macd_signal", "macd_hist", "macd_cross_down", "macd_cross_up",
    "hist_compression", "weekly_macd", "weekly_macd_signal", "weekly_macd_hist",
    "weekly_macd_cross_down", "weekly_macd_cross_up", "weekly_hist_compression", "rsi",
    "advancers", "decliners", "ad_line", "ad_divergence", "ad_divergence_days",
    "ad_divergence_streak", "macd_divergence", "macd_divergence_days",
    "macd_divergence_streak", "vix", "vix3m", "vix6m", "vix_term_ratio",
    "sessions_to_fomc", "sessions_to_cpi", "sessions_to_ppi", "sessions_to_event",
    "breadth_source",
]  # fmt: skip

SWITCH = ts("2015-11-11")  # last Unicorn NYSE row; synthetic breadth after it
NYSE, SYNTHETIC = "unicorn-nyse", "synthetic-universe"


@functools.cache
def _inputs() -> dict[str, Any]:
    nyse_adv, nyse_dec = nyse_breadth()
    syn_adv, syn_dec = synthetic_breadth()
    adv = pd.concat([nyse_adv[:SWITCH], syn_adv[syn_adv.index > SWITCH]])
    dec = pd.concat([nyse_dec[:SWITCH], syn_dec[syn_dec.index > SWITCH]])
    labels = pd.Series(np.where(adv.index <= SWITCH, NYSE, SYNTHETIC), index=adv.index)
    return {
        "spx_close": spx_closes(),
        "advancers": adv,
        "decliners": dec,
        "breadth_source": labels,
        "vix": cboe_close("VIX"),
        "vix3m": cboe_close("VIX3M"),
        "vix6m": cboe_close("VIX6M"),
        "events_by_kind": {
            "FOMC": event_dates("fomc_decisions.csv"),
            "CPI": event_dates("cpi_releases.csv"),
        },
        "sessions": sessions("1999-01-04", "2018-12-31"),
        "calendar_sessions": full_calendar(),
    }


def _frame(**overrides: Any) -> pd.DataFrame:
    return compute_frame(**{**_inputs(), **overrides})


@functools.cache
def _full() -> pd.DataFrame:
    return _frame()


def test_columns_are_the_rules_vocabulary() -> None:
    frame = _full()
    assert list(FRAME_COLUMNS) == EXPECTED_COLUMNS
    assert list(frame.columns) == EXPECTED_COLUMNS
    assert frame.index.equals(_inputs()["sessions"])
    assert len(frame) == 5031


def test_column_types() -> None:
    frame = _full()
    for name in ("macd_cross_down", "ad_divergence", "weekly_hist_compression"):
        assert frame[name].dtype == bool, name
    assert frame["ad_divergence_days"].dtype == np.int64
    assert frame["rsi"].dtype == np.float64
    assert set(frame["breadth_source"]) == {NYSE, SYNTHETIC, ""}  # "" on the two NYSE gaps


@pytest.mark.parametrize(
    ("day", "line", "signal", "hist", "rsi14"),
    [
        ("2008-10-10", -76.993441, -50.343915, -26.649526, 22.982436),
        ("2018-12-24", -77.496788, -49.393225, -28.103563, 19.206673),
        ("2018-12-31", -65.634829, -61.918988, -3.715841, 41.709268),
    ],
)
def test_pinned_values_through_the_frame(
    day: str, line: float, signal: float, hist: float, rsi14: float
) -> None:
    row = _full().loc[day]
    assert row["macd"] == pytest.approx(line, abs=1e-6)
    assert row["macd_signal"] == pytest.approx(signal, abs=1e-6)
    assert row["macd_hist"] == pytest.approx(hist, abs=1e-6)
    assert row["rsi"] == pytest.approx(rsi14, abs=1e-6)


def test_breadth_gaps_and_vix_columns() -> None:
    frame = _full()
    for gap in ("1999-11-26", "2002-06-20"):  # real holes in the Unicorn NYSE file
        assert math.isnan(frame.loc[gap, "ad_line"])
        assert frame.loc[gap, "breadth_source"] == ""
        window = frame.loc[gap:].iloc[:63]
        assert not window["ad_divergence"].any()
    # 2018-02-05: VIX 37.32 over VIX3M 28.13, the term structure inverted.
    assert frame.loc["2018-02-05", "vix_term_ratio"] == pytest.approx(37.32 / 28.13, abs=1e-9)
    assert frame.loc["2018-02-05", "vix_term_ratio"] > 1
    assert (frame.loc["2017-06-01":"2017-06-30", "vix_term_ratio"] < 1).all()
    # VIX3M starts 2009-09-18: no ratio before, though VIX6M exists from 2008.
    assert frame.loc[:"2009-09-17", "vix_term_ratio"].isna().all()
    assert frame.loc["2008-10-10", "vix6m"] == pytest.approx(45.22)


def test_event_columns() -> None:
    frame = _full()
    nearest = frame[["sessions_to_fomc", "sessions_to_cpi", "sessions_to_ppi"]].min(axis=1)
    pd.testing.assert_series_equal(frame["sessions_to_event"], nearest, check_names=False)
    assert frame["sessions_to_ppi"].isna().all()  # no PPI calendar offline
    assert frame.loc["2018-12-31", "sessions_to_cpi"] == 8  # CPI 2019-01-11
    assert frame.loc["2018-12-18", "sessions_to_fomc"] == 1  # FOMC 2018-12-19
    assert frame.loc["2018-12-19", "sessions_to_fomc"] > 1


def test_no_divergence_in_windows_spanning_the_breadth_switch() -> None:
    inputs = _inputs()
    one_source = pd.Series(NYSE, index=inputs["advancers"].index)
    uniform = _frame(breadth_source=one_source)
    # Put the switch 10 sessions before the end of the longest real A/D divergence.
    end = int(uniform["ad_divergence_days"].to_numpy().argmax())
    switch = uniform.index[end - 10]
    labels = pd.Series(np.where(one_source.index < switch, NYSE, SYNTHETIC), index=one_source.index)
    mixed = _frame(breadth_source=labels)
    spanning = slice(end - 10, end - 10 + 62)  # windows holding the first synthetic day
    assert uniform["ad_divergence"].iloc[spanning].any()
    assert not mixed["ad_divergence"].iloc[spanning].any()
    assert mixed["ad_divergence_days"].iloc[spanning].max() == 0
    # Outside those windows nothing changes.
    before = slice(0, end - 10)
    assert mixed["ad_divergence"].iloc[before].equals(uniform["ad_divergence"].iloc[before])


@pytest.mark.parametrize("cut", ["2018-03-28", "2018-03-29", "2008-10-10", "2015-11-12"])
def test_no_look_ahead(cut: str) -> None:
    inputs = _inputs()
    truncated = _frame(
        spx_close=inputs["spx_close"].loc[:cut],
        advancers=inputs["advancers"].loc[:cut],
        decliners=inputs["decliners"].loc[:cut],
        breadth_source=inputs["breadth_source"].loc[:cut],
        vix=inputs["vix"].loc[:cut],
        vix3m=inputs["vix3m"].loc[:cut],
        vix6m=inputs["vix6m"].loc[:cut],
        sessions=sessions("1999-01-04", cut),
    )
    pd.testing.assert_frame_equal(truncated, _full().loc[:cut])


def test_full_history_is_fast() -> None:
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        _frame()
        best = min(best, time.perf_counter() - start)
    assert best < 0.5


def test_params_reach_the_indicators() -> None:
    short = _frame(params=IndicatorParams(divergence_window=21, rsi_period=7))
    full = _full()
    assert not short["ad_divergence"].equals(full["ad_divergence"])
    assert short["rsi"].iloc[:7].isna().all() and not math.isnan(short["rsi"].iloc[7])
    pd.testing.assert_series_equal(short["macd"], full["macd"])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"macd_fast": 26, "macd_slow": 12},
        {"rsi_period": 0},
        {"divergence_tolerance": 1.5},
        {"divergence_min_separation": 63},
        {"weekly_compression_k": 2.5},
    ],
)
def test_bad_params_are_config_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        IndicatorParams(**kwargs)


def test_rows_must_be_every_session_of_their_range() -> None:
    rows = sessions("2010-01-04", "2010-12-31").delete(100)
    with pytest.raises(ValueError, match="every calendar session"):
        _frame(sessions=rows)


def test_unknown_event_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="NFP"):
        _frame(events_by_kind={"NFP": [ts("2018-01-05")]})


def test_tz_aware_input_is_refused_not_silently_empty() -> None:
    spx = spx_closes()
    spx.index = spx.index.tz_localize("America/New_York")
    with pytest.raises(ValueError, match="naive"):
        _frame(spx_close=spx)
