"""Weekly bars end on the week's last session; weekly MACD is used only once the week is over."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import talib
from _indicator_data import full_calendar, sessions, spx_closes, ts

from bot.engine.indicators import completed_weekly_closes, macd, weekly_bars, weekly_macd_asof
from bot.engine.indicators.weekly import WEEKLY_COLUMNS


def test_good_friday_week_ends_on_thursday() -> None:
    spx = spx_closes()
    bars = weekly_bars(spx.loc["2018-03-01":"2018-04-13"])
    dates = [str(d.date()) for d in bars.index]
    assert dates == ["2018-03-02", "2018-03-09", "2018-03-16", "2018-03-23", "2018-03-29",
                     "2018-04-06", "2018-04-13"]  # fmt: skip
    assert bars["2018-03-29"] == spx["2018-03-29"]
    assert bars["2018-03-29"] == pytest.approx(2640.87, abs=0.005)


def test_thursday_before_good_friday_completes_its_week() -> None:
    spx = spx_closes()
    upto_thu = completed_weekly_closes(spx.loc[:"2018-03-29"], full_calendar())
    upto_wed = completed_weekly_closes(spx.loc[:"2018-03-28"], full_calendar())
    assert upto_thu.index[-1] == ts("2018-03-29")
    assert upto_wed.index[-1] == ts("2018-03-23")  # the partial week is not a bar


def test_completed_weeks_agree_with_plain_grouping_when_nothing_is_missing() -> None:
    spx = spx_closes()  # ends Monday 2018-12-31: its week is unfinished
    complete = completed_weekly_closes(spx, full_calendar())
    grouped = weekly_bars(spx)
    assert grouped.index[-1] == ts("2018-12-31")
    pd.testing.assert_series_equal(complete, grouped.iloc[:-1], check_names=False)


def test_weekly_macd_matches_talib_on_weekly_closes() -> None:
    spx = spx_closes()
    weekly = completed_weekly_closes(spx, full_calendar())
    line, signal, hist = talib.MACD(weekly.to_numpy(), 12, 26, 9)
    asof = weekly_macd_asof(spx, full_calendar()).loc[weekly.index]
    for column, ref in (
        ("weekly_macd", line),
        ("weekly_macd_signal", signal),
        ("weekly_macd_hist", hist),
    ):
        assert np.max(np.abs(asof[column].to_numpy()[249:] - ref[249:])) < 1e-6, column
    # Crosses, from TA-Lib's independent line, land on the week-ending session.
    ref_down = (line[:-1] >= 0) & (line[1:] < 0)
    ref_up = (line[:-1] <= 0) & (line[1:] > 0)
    got_down = asof["weekly_macd_cross_down"].to_numpy()[1:]
    got_up = asof["weekly_macd_cross_up"].to_numpy()[1:]
    assert (got_down[249:] == ref_down[249:]).all()
    assert (got_up[249:] == ref_up[249:]).all()
    assert ref_down[249:].any() and ref_up[249:].any()


@pytest.mark.parametrize(
    ("day", "week_of"),
    [
        ("2018-03-28", "2018-03-23"),  # Wednesday: last week's values
        ("2018-03-29", "2018-03-29"),  # Thursday before Good Friday: its own week
        ("2018-04-02", "2018-03-29"),  # Monday after
        ("2018-12-18", "2018-12-14"),
        ("2018-12-21", "2018-12-21"),  # Friday, after the close
        ("2018-12-31", "2018-12-28"),  # last row, unfinished week
    ],
)
def test_asof_uses_the_last_completed_week(day: str, week_of: str) -> None:
    spx = spx_closes()
    weekly = macd(completed_weekly_closes(spx, full_calendar()))
    asof = weekly_macd_asof(spx, full_calendar())
    assert asof.loc[day, "weekly_macd"] == weekly.loc[week_of, "macd"]
    assert asof.loc[day, "weekly_macd_signal"] == weekly.loc[week_of, "macd_signal"]
    assert asof.loc[day, "weekly_macd_hist"] == weekly.loc[week_of, "macd_hist"]


def test_events_fire_only_on_the_week_ending_session() -> None:
    spx = spx_closes()
    asof = weekly_macd_asof(spx, full_calendar())
    week_ends = set(completed_weekly_closes(spx, full_calendar()).index)
    for column in ("weekly_macd_cross_down", "weekly_macd_cross_up", "weekly_hist_compression"):
        fired = asof.index[asof[column]]
        assert len(fired) > 0, column
        assert set(fired) <= week_ends, column


@pytest.mark.parametrize("cut", ["2018-03-28", "2018-03-29", "2008-10-10", "2018-12-26"])
def test_no_look_ahead(cut: str) -> None:
    spx = spx_closes()
    full = weekly_macd_asof(spx, full_calendar())
    truncated = weekly_macd_asof(spx.loc[:cut], full_calendar())
    assert list(truncated.columns) == list(WEEKLY_COLUMNS)
    pd.testing.assert_frame_equal(truncated, full.loc[:cut])


def test_calendar_must_reach_past_the_last_week() -> None:
    spx = spx_closes().loc[:"2018-03-29"]
    short = sessions("1998-01-02", "2018-03-29")
    with pytest.raises(ValueError, match="reach past the week"):
        weekly_macd_asof(spx, short)
    # One session into the next week is enough to know the week is over.
    assert len(weekly_macd_asof(spx, sessions("1998-01-02", "2018-04-02"))) == len(spx)


def test_missing_week_end_close_is_a_gap_not_bridged() -> None:
    spx = spx_closes()
    gapped = spx.drop(ts("2018-03-23"))
    weekly = completed_weekly_closes(gapped, full_calendar())
    assert math.isnan(weekly["2018-03-23"])
    asof = weekly_macd_asof(gapped, full_calendar())
    # The weekly EMA restarts after the gap: a fresh 25-week warm-up of NaN,
    # not a value bridged across the missing week.
    restart = weekly.loc["2018-03-29":]
    first_valid = restart.index[25]
    after = asof.loc["2018-03-23":]
    assert after.loc[: first_valid - pd.Timedelta(days=1), "weekly_macd"].isna().all()
    assert not math.isnan(after.loc[first_valid, "weekly_macd"])
    assert after.loc[:first_valid, "weekly_macd_cross_down"].sum() == 0


def test_rows_on_non_sessions_are_refused() -> None:
    spx = spx_closes().loc["2018-03-01":"2018-03-29"]
    bad = pd.concat([spx, pd.Series([1.0], index=pd.DatetimeIndex(["2018-03-30"]))])
    with pytest.raises(ValueError, match="non-sessions"):
        completed_weekly_closes(bad, full_calendar())
