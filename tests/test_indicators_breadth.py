"""A/D line: running sum, NaN on a missing session, and the gap check that refuses to signal."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from _indicator_data import nyse_breadth, sessions, ts

from bot.engine.indicators import ad_line, missing_sessions, require_no_gaps
from bot.kernel.errors import DataIncomplete


def test_running_sum_with_a_missing_session() -> None:
    days = sessions("2024-03-04", "2024-03-08")
    adv = pd.Series([110.0, 95.0, 120.0, 97.0], index=days.delete(2))
    dec = pd.Series([100.0, 100.0, 100.0, 100.0], index=days.delete(2))
    line = ad_line(adv, dec, days)
    assert line.index.equals(days)
    assert line.iloc[0] == 10.0
    assert line.iloc[1] == 5.0
    assert math.isnan(line.iloc[2])
    # The sum carries on after the gap (the missing day adds nothing).
    assert line.iloc[3] == 25.0
    assert line.iloc[4] == 22.0


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
    assert math.isnan(line["1999-11-26"])
    assert line.drop(ts("1999-11-26")).notna().all()
    net_monday = adv["1999-11-29"] - dec["1999-11-29"]
    assert line["1999-11-29"] - line["1999-11-24"] == net_monday


def test_require_no_gaps_names_series_and_session() -> None:
    adv, _ = nyse_breadth()
    window = sessions("1999-09-01", "1999-12-31")
    with pytest.raises(DataIncomplete) as caught:
        require_no_gaps(adv, window, "NYSE advancers")
    message = str(caught.value)
    assert "NYSE advancers" in message
    assert "1999-11-26" in message
    assert "1 session" in message
    require_no_gaps(adv, sessions("1999-12-01", "2000-03-31"), "NYSE advancers")


def test_nan_value_is_a_gap_too() -> None:
    days = sessions("2024-03-04", "2024-03-08")
    values = pd.Series([1.0, 2.0, np.nan, 4.0, 5.0], index=days)
    assert list(missing_sessions(values, days)) == [ts("2024-03-06")]
    with pytest.raises(DataIncomplete, match="2024-03-06"):
        require_no_gaps(values, days, "decliners")


def test_many_gaps_are_summarised() -> None:
    days = sessions("2024-01-02", "2024-03-28")
    sparse = pd.Series([1.0], index=days[:1])
    with pytest.raises(DataIncomplete) as caught:
        require_no_gaps(sparse, days, "advancers")
    message = str(caught.value)
    assert f"{len(days) - 1} session(s)" in message
    assert f"and {len(days) - 11} more" in message
    assert str(days[1].date()) in message
