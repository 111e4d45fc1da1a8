"""compute_frame on the real 1999–2018 history: names, agreement, no look-ahead, and every
value that cannot be computed is not evaluable, with its reason (DESIGN.md §4)."""

from __future__ import annotations

import functools
import math
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

from bot.engine.indicators import FRAME_COLUMNS, NOT_EVALUABLE, IndicatorParams, compute_frame
from bot.engine.indicators.frame import INFO_COLUMNS
from bot.kernel.errors import ConfigError

# The rules language's vocabulary, spelled out independently of the module.
EXPECTED_COLUMNS = [
    "close", "macd", "macd_signal", "macd_hist", "macd_cross_down", "macd_cross_up",
    "hist_compression", "weekly_macd", "weekly_macd_signal", "weekly_macd_hist",
    "weekly_macd_cross_down", "weekly_macd_cross_up", "weekly_hist_compression", "rsi",
    "advancers", "decliners", "ad_line", "ad_imputed_sessions", "ad_divergence",
    "ad_divergence_days", "ad_divergence_streak", "macd_divergence", "macd_divergence_days",
    "macd_divergence_streak", "mcclellan_oscillator", "summation_index",
    "vix", "vix3m", "vix6m", "vix_term_ratio",
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
    assert list(frame.columns) == EXPECTED_COLUMNS + list(INFO_COLUMNS)
    assert frame.index.equals(_inputs()["sessions"])
    assert len(frame) == 5031


def test_column_types() -> None:
    frame = _full()
    # True/false columns are nullable: NA where not evaluable, never a false False.
    for name in ("macd_cross_down", "ad_divergence", "weekly_hist_compression"):
        assert isinstance(frame[name].dtype, pd.BooleanDtype), name
    for name in ("ad_divergence_days", "ad_divergence_streak", "rsi", "summation_index"):
        assert frame[name].dtype == np.float64, name
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


def test_breadth_gaps_are_imputed_and_named() -> None:
    frame = _full()
    for gap in ("1999-11-26", "2002-06-20"):  # real holes in the Unicorn NYSE file
        day = pd.Timestamp(gap)
        before = frame.index[frame.index.get_loc(day) - 1]
        assert frame.loc[gap, "ad_line"] == frame.loc[before, "ad_line"]  # flat, net 0
        assert bool(frame.loc[gap, "ad_imputed"])
        assert frame.loc[gap, "breadth_source"] == ""
        assert "imputed" in frame.loc[gap, NOT_EVALUABLE]["advancers"]
        # Each window holding it holds one imputed session: evaluated on the bridged
        # line (max_imputed_sessions = 1), and it says which.
        window = frame.loc[gap:].iloc[:63]
        assert (window["ad_imputed_sessions"] == 1).all()
        assert (window["breadth_window_imputed"] == gap).all()
        assert window["ad_divergence_days"].notna().all()
    assert frame.loc["2002-06-20":].iloc[63]["ad_imputed_sessions"] == 0


def test_too_many_imputed_sessions_are_not_evaluable_and_say_which() -> None:
    inputs = _inputs()
    adv, dec = inputs["advancers"].copy(), inputs["decliners"].copy()
    dropped = [pd.Timestamp("2007-06-04"), pd.Timestamp("2007-06-12")]
    frame = _frame(advancers=adv.drop(dropped), decliners=dec.drop(dropped))
    both = frame.loc["2007-06-12":].iloc[:57]  # windows holding both dropped sessions
    assert (both["ad_imputed_sessions"] == 2).all()
    assert both["ad_divergence_days"].isna().all() and both["ad_divergence"].isna().all()
    why = both.iloc[0][NOT_EVALUABLE]["ad_divergence_days"]
    assert why == ("2 imputed breadth sessions in the 63-session divergence window, at most 1 "
                   "allowed: 2007-06-04, 2007-06-12")
    one = frame.loc["2007-06-04":"2007-06-11"]
    assert one["ad_divergence_days"].notna().all()
    # With the rules allowing two, the same windows are evaluated on the bridged line.
    lax = _frame(advancers=adv.drop(dropped), decliners=dec.drop(dropped),
                 params=IndicatorParams(max_imputed_sessions=2))
    assert lax.loc[both.index, "ad_divergence_days"].notna().all()


def test_vix_columns_and_vix3m_before_its_history() -> None:
    frame = _full()
    # 2018-02-05: VIX 37.32 over VIX3M 28.13, the term structure inverted.
    assert frame.loc["2018-02-05", "vix_term_ratio"] == pytest.approx(37.32 / 28.13, abs=1e-9)
    assert frame.loc["2018-02-05", "vix_term_ratio"] > 1
    assert (frame.loc["2017-06-01":"2017-06-30", "vix_term_ratio"] < 1).all()
    # VIX3M starts 2009-09-18: not evaluable before, and said so, though VIX6M exists from 2008.
    early = frame.loc[:"2009-09-17"]
    assert early["vix_term_ratio"].isna().all() and early["vix3m"].isna().all()
    for why in early[NOT_EVALUABLE]:
        assert why["vix3m"] == why["vix_term_ratio"] == "no VIX3M history up to this session"
    assert "vix3m" not in frame.loc["2009-09-18", NOT_EVALUABLE]
    assert frame.loc["2008-10-10", "vix6m"] == pytest.approx(45.22)


def test_every_missing_value_has_a_reason_and_no_present_one_does() -> None:
    frame = _full()
    numeric = [c for c in FRAME_COLUMNS if c != "breadth_source"]
    for day, row in frame.iterrows():
        why = row[NOT_EVALUABLE]
        missing = {c for c in numeric if pd.isna(row[c])}
        assert missing <= set(why), (day, missing - set(why))
        assert all(pd.isna(row[c]) for c in why if c in numeric), day


def test_weekly_values_need_five_years_of_spx() -> None:
    frame = _full()
    first_ok = frame.index[1259]  # the 1,260th session of SPX in the frame
    assert frame.loc[: frame.index[1258], "weekly_macd_hist"].isna().all()
    assert frame.loc[: frame.index[1258], "weekly_macd_cross_down"].isna().all()
    assert frame.loc[first_ok:, "weekly_macd_hist"].notna().all()
    assert "5 years" in frame.iloc[100][NOT_EVALUABLE]["weekly_macd_hist"]


def test_mcclellan_columns() -> None:
    frame = _full()
    osc, summ = frame["mcclellan_oscillator"], frame["summation_index"]
    settled = osc.notna() & osc.shift(1).notna()
    # The oscillator is exactly the day-to-day change in the Summation Index.
    assert np.allclose(summ.diff()[settled], osc[settled], atol=1e-9, rtol=0)
    pd.testing.assert_series_equal(
        osc, frame["mcclellan_trend_10"] - frame["mcclellan_trend_05"], check_names=False)
    # Warm-up (250 sessions) is not evaluable, and so is the restart on synthetic breadth.
    assert osc.iloc[:249].isna().all() and osc.iloc[249:].loc[:"2015-11-11"].notna().all()
    after = osc.loc["2015-11-12":]
    assert after.iloc[:249].isna().all() and after.iloc[249:].notna().all()


def test_event_columns() -> None:
    frame = _full()
    assert frame["sessions_to_ppi"].isna().all()  # no PPI calendar offline
    assert {w["sessions_to_ppi"] for w in frame[NOT_EVALUABLE]} == {"no PPI calendar"}
    # The nearest event is not evaluable while any kind is (the unknown one could be nearer).
    assert frame["sessions_to_event"].isna().all()
    assert frame.iloc[-1][NOT_EVALUABLE]["sessions_to_event"] == "no PPI calendar"
    with_ppi = _frame(events_by_kind={**_inputs()["events_by_kind"],
                                      "PPI": [ts("2018-12-13"), ts("2019-01-15")]})
    late = with_ppi.loc["2018-12-13":"2018-12-31"]
    nearest = late[["sessions_to_fomc", "sessions_to_cpi", "sessions_to_ppi"]].min(axis=1)
    pd.testing.assert_series_equal(late["sessions_to_event"], nearest, check_names=False)
    assert with_ppi.loc["2018-12-12", NOT_EVALUABLE]["sessions_to_ppi"] == (
        "the PPI calendar starts 2018-12-13")
    assert frame.loc["2015-01-15", NOT_EVALUABLE]["sessions_to_cpi"] == (
        "the CPI calendar starts 2015-01-16")
    assert frame.loc["2018-12-31", "sessions_to_cpi"] == 8  # CPI 2019-01-11
    assert frame.loc["2018-12-18", "sessions_to_fomc"] == 1  # FOMC 2018-12-19
    assert frame.loc["2018-12-19", "sessions_to_fomc"] > 1


def test_no_divergence_in_windows_spanning_the_breadth_switch() -> None:
    inputs = _inputs()
    one_source = pd.Series(NYSE, index=inputs["advancers"].index)
    uniform = _frame(breadth_source=one_source)
    # Put the switch 10 sessions before the end of the longest real A/D divergence streak.
    end = int(np.nanargmax(uniform["ad_divergence_streak"].to_numpy()))
    switch = uniform.index[end - 10]
    labels = pd.Series(np.where(one_source.index < switch, NYSE, SYNTHETIC), index=one_source.index)
    mixed = _frame(breadth_source=labels)
    spanning = slice(end - 10, end - 10 + 62)  # windows holding the first synthetic day
    assert uniform["ad_divergence"].iloc[spanning].any()
    # Not evaluable (never "no divergence"), and said so.
    assert mixed["ad_divergence"].iloc[spanning].isna().all()
    assert mixed["ad_divergence_days"].iloc[spanning].isna().all()
    assert "mixes NYSE and synthetic" in mixed.iloc[end][NOT_EVALUABLE]["ad_divergence_days"]
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
    full = _full().loc[:cut]
    pd.testing.assert_frame_equal(truncated.drop(columns=NOT_EVALUABLE),
                                  full.drop(columns=NOT_EVALUABLE))
    # The reasons too: nothing after the cut shows through them.
    assert [dict(w) for w in truncated[NOT_EVALUABLE]] == [dict(w) for w in full[NOT_EVALUABLE]]


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
