"""Sessions to the next FOMC / CPI, counted after t's close and point in time, and blackouts
per kind (``blackout_kind`` lists every kind in blackout)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from _indicator_data import event_dates, full_calendar, sessions, ts

from bot.engine.indicators import blackout, event_sessions, sessions_to_next_event
from bot.kernel.sessions import get_calendar


def _proximity(kind_file: str, start: str, end: str) -> pd.Series[float]:
    on = event_sessions(event_dates(kind_file), full_calendar())
    return sessions_to_next_event(full_calendar(), on).loc[start:end]


def _sessions_until(after: str, event: str) -> int:
    """Independent count via the session calendar: sessions in (after, event]."""
    cal = get_calendar()
    first = cal.next_session(dt.date.fromisoformat(after))
    return len(cal.sessions_between(first, dt.date.fromisoformat(event)))


def test_sunday_fomc_falls_on_monday() -> None:
    on = event_sessions([dt.date(2020, 3, 15)], full_calendar())
    assert list(on) == [ts("2020-03-16")]


def test_event_dates_map_to_their_session_or_the_next() -> None:
    dates = [dt.date(2018, 3, 30), dt.date(2024, 1, 11), dt.date(2024, 1, 11)]
    on = event_sessions(dates, full_calendar())
    assert list(on) == [ts("2018-04-02"), ts("2024-01-11")]  # Good Friday -> Monday; deduped


def test_cpi_tomorrow_is_one() -> None:
    prox = _proximity("cpi_releases.csv", "2024-01-02", "2024-01-31")
    assert prox["2024-01-10"] == 1  # CPI 08:30 on Thursday 2024-01-11
    assert prox["2024-01-09"] == 2


def test_event_on_t_is_already_past() -> None:
    prox = _proximity("fomc_decisions.csv", "2024-01-02", "2024-03-29")
    assert prox["2024-01-30"] == 1
    # On the decision day itself, the next decision is the one that counts.
    assert prox["2024-01-31"] == _sessions_until("2024-01-31", "2024-03-20")
    assert prox["2024-03-19"] == 1


def test_sunday_fomc_proximity() -> None:
    prox = _proximity("fomc_decisions.csv", "2020-02-03", "2020-04-30")
    # Counted as if known in advance (the wrong way for unscheduled moves, see below):
    assert prox["2020-03-02"] == 1  # unscheduled cut, Tuesday 2020-03-03
    assert prox["2020-03-12"] == 2
    assert prox["2020-03-13"] == 1  # Sunday 2020-03-15 counts as Monday 2020-03-16
    assert prox["2020-03-16"] == _sessions_until("2020-03-16", "2020-04-29")


def test_an_unscheduled_event_counts_only_from_its_own_date() -> None:
    """Point in time (DESIGN.md §4): the 2020-03-03 and Sunday 2020-03-15 cuts were known
    only when they happened, so they never count for the sessions before them."""
    cal = full_calendar()
    scheduled = event_sessions([dt.date(2020, 1, 29), dt.date(2020, 4, 29)], cal)
    late = [(dt.date(2020, 3, 3), ts("2020-03-03")), (dt.date(2020, 3, 15), ts("2020-03-16"))]
    pit = sessions_to_next_event(cal, scheduled, late).loc["2020-02-03":"2020-04-30"]
    assert pit["2020-03-02"] == _sessions_until("2020-03-02", "2020-04-29")
    assert pit["2020-03-13"] == _sessions_until("2020-03-13", "2020-04-29")
    naive = sessions_to_next_event(cal, scheduled.append(pd.DatetimeIndex(
        [ts("2020-03-03"), ts("2020-03-16")])).sort_values()).loc["2020-02-03":"2020-04-30"]
    assert naive["2020-03-02"] == 1 and naive["2020-03-13"] == 1
    # An action announced before the session it falls on counts from its announcement.
    early = [(dt.date(2020, 3, 10), ts("2020-03-12"))]
    ahead = sessions_to_next_event(cal, scheduled, early)
    assert ahead["2020-03-09"] == _sessions_until("2020-03-09", "2020-04-29")
    assert ahead["2020-03-10"] == 2 and ahead["2020-03-11"] == 1


def test_counts_agree_with_the_calendar_everywhere() -> None:
    events = event_dates("cpi_releases.csv")
    prox = _proximity("cpi_releases.csv", "2019-01-02", "2019-12-31")
    on = event_sessions(events, full_calendar())
    for day, count in prox.items():
        nxt = on[on > day][0]
        assert count == _sessions_until(str(day.date()), str(nxt.date())), day


def test_no_later_event_is_nan() -> None:
    days = sessions("2024-01-02", "2024-02-29")
    prox = sessions_to_next_event(days, pd.DatetimeIndex([ts("2024-01-10")]))
    assert prox["2024-01-09"] == 1
    assert prox.loc["2024-01-10":].isna().all()


def test_events_outside_the_calendar_are_left_out() -> None:
    days = sessions("2024-01-02", "2024-01-31")
    on = event_sessions([dt.date(2023, 12, 1), dt.date(2024, 1, 12), dt.date(2025, 1, 1)], days)
    assert list(on) == [ts("2024-01-12")]


def _series(values: list[float]) -> pd.Series[float]:
    return pd.Series(values, index=sessions("2024-01-02", "2024-12-31")[: len(values)])


def test_blackout_widths_per_kind() -> None:
    fomc = _series([5, 4, 3, 2, 1, 0, math.nan, 3, 2])
    cpi = _series([1, 3, 2, 1, 9, 1, 1, math.nan, 2])
    flags, cause = blackout({"FOMC": fomc, "CPI": cpi}, {"FOMC": 2, "CPI": 1})
    assert flags.tolist() == [True, False, False, True, True, True, True, False, True]
    # Index 3: both kinds are inside their widths: both are named, the nearer (CPI) first.
    # Index 5: an event on t itself (0) is past; index 8: CPI 2 is outside its width 1.
    assert cause.tolist() == ["CPI", "", "", "CPI, FOMC", "FOMC", "CPI", "CPI", "", "FOMC"]


def test_blackout_kind_lists_every_kind_nearest_first() -> None:
    fomc = _series([2, 1, 1, 5])
    cpi = _series([1, 2, 1, 1])
    _, cause = blackout({"FOMC": fomc, "CPI": cpi}, {"FOMC": 3, "CPI": 3})
    assert cause.tolist() == ["CPI, FOMC", "FOMC, CPI", "FOMC, CPI", "CPI"]  # tie: listed order
    _, cause = blackout({"FOMC": fomc, "CPI": cpi}, {"CPI": 3, "FOMC": 3})
    assert cause.tolist() == ["CPI, FOMC", "FOMC, CPI", "CPI, FOMC", "CPI"]


def test_a_kind_without_a_calendar_blacks_nothing_out() -> None:
    fomc = _series([1, math.nan, 3])
    flags, cause = blackout({"FOMC": fomc}, {"FOMC": 2})
    assert flags.tolist() == [True, False, False]
    assert cause.tolist() == ["FOMC", "", ""]


def test_width_zero_means_not_watched() -> None:
    flags, cause = blackout({"PPI": _series([1, 1])}, {"PPI": 0})
    assert not flags.any()
    assert set(cause) == {""}


def test_watched_kind_without_data_is_refused() -> None:
    with pytest.raises(ValueError, match="PPI"):
        blackout({"FOMC": _series([1.0])}, {"FOMC": 1, "PPI": 2})


def test_blackout_on_real_calendar() -> None:
    fomc = _proximity("fomc_decisions.csv", "2024-01-02", "2024-12-31")
    cpi = _proximity("cpi_releases.csv", "2024-01-02", "2024-12-31")
    flags, cause = blackout({"FOMC": fomc, "CPI": cpi}, {"FOMC": 2, "CPI": 1})
    on = flags[flags].index
    # Days before each 2024 CPI plus the two sessions before each FOMC decision.
    assert ts("2024-01-10") in on and cause["2024-01-10"] == "CPI"
    assert ts("2024-01-29") in on and ts("2024-01-30") in on
    assert ts("2024-01-26") not in on and ts("2024-01-31") not in on
    expected = int(((fomc >= 1) & (fomc <= 2)).sum() + (cpi == 1).sum())
    overlap = int((((fomc >= 1) & (fomc <= 2)) & (cpi == 1)).sum())
    assert int(flags.sum()) == expected - overlap
    assert np.array_equal(flags.to_numpy(), (cause != "").to_numpy())
