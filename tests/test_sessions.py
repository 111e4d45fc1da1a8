"""The session calendar against facts about the NYSE (from exchange_calendars)."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.kernel.sessions import ET, get_calendar

D = dt.date


@pytest.fixture(scope="module")
def cal():
    return get_calendar()


def test_holidays_are_not_sessions(cal):
    assert not cal.is_session(D(2026, 11, 26))  # Thanksgiving
    assert not cal.is_session(D(2025, 4, 18))  # Good Friday
    assert not cal.is_session(D(2026, 6, 19))  # Juneteenth
    assert not cal.is_session(D(2007, 1, 2))  # national day of mourning (Ford)
    assert cal.is_session(D(2026, 11, 27))


def test_close_times_in_eastern_with_early_closes_and_dst(cal):
    normal_winter = cal.close_time(D(2026, 1, 5))
    normal_summer = cal.close_time(D(2026, 7, 6))
    early = cal.close_time(D(2026, 11, 27))  # day after Thanksgiving
    assert normal_winter == dt.datetime(2026, 1, 5, 16, tzinfo=ET)
    assert normal_winter.utcoffset() == dt.timedelta(hours=-5)
    assert normal_summer.utcoffset() == dt.timedelta(hours=-4)
    assert early.time() == dt.time(13, 0) and cal.is_early_close(D(2026, 11, 27))
    assert cal.is_early_close(D(2026, 12, 24)) and not cal.is_early_close(D(2026, 12, 23))
    assert cal.open_time(D(2026, 1, 5)).time() == dt.time(9, 30)


def test_previous_next_and_between(cal):
    assert cal.previous_session(D(2026, 11, 27)) == D(2026, 11, 25)
    assert cal.next_session(D(2026, 11, 25)) == D(2026, 11, 27)
    assert cal.previous_session(D(2026, 11, 30)) == D(2026, 11, 27)  # from a Monday
    assert cal.sessions_between(D(2026, 11, 21), D(2026, 11, 29)) == [
        D(2026, 11, 23), D(2026, 11, 24), D(2026, 11, 25), D(2026, 11, 27)
    ]
    assert cal.sessions_between(D(2026, 11, 29), D(2026, 11, 21)) == []
    assert cal.offset(D(2026, 11, 27), -2) == D(2026, 11, 24)
    assert len(cal.sessions_between(D(2025, 1, 1), D(2025, 12, 31))) == 250


def test_last_closed_session_respects_the_close(cal):
    before_close = dt.datetime(2026, 11, 27, 12, 59, tzinfo=ET)
    after_close = dt.datetime(2026, 11, 27, 13, 0, tzinfo=ET)
    assert cal.last_closed_session(before_close) == D(2026, 11, 25)
    assert cal.last_closed_session(after_close) == D(2026, 11, 27)
    assert cal.last_closed_session(dt.datetime(2026, 11, 26, 20, tzinfo=ET)) == D(2026, 11, 25)
    with pytest.raises(ValueError, match="aware"):
        cal.last_closed_session(dt.datetime(2026, 11, 27, 12))  # noqa: DTZ001


def test_non_session_and_out_of_range_are_errors(cal):
    with pytest.raises(ValueError, match="not an NYSE session"):
        cal.close_time(D(2026, 11, 26))
    with pytest.raises(ValueError, match="outside the session calendar"):
        cal.is_session(D(1900, 1, 2))
