"""SPX and VX expirations against dates that really happened (or are listed by Cboe)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.engine.expirations import (
    choose_expiry,
    spx_expirations,
    spx_monthly_expiration,
    third_friday,
    vx_expiration,
    vx_expirations,
    vx_symbol,
)
from bot.kernel.sessions import SessionCalendar, get_calendar
from bot.market.sources.vx_settlement import parse_vx_settlements

D = dt.date
FIXTURES = Path(__file__).parent / "fixtures" / "vx_settlement"


@pytest.fixture(scope="module")
def cal() -> SessionCalendar:
    return get_calendar()


def test_third_friday() -> None:
    assert third_friday(2026, 9) == D(2026, 9, 18)
    assert third_friday(2027, 1) == D(2027, 1, 15)  # month starting on a Friday
    assert third_friday(2026, 2) == D(2026, 2, 20)


def test_spx_monthly_is_the_third_friday_or_the_session_before(cal: SessionCalendar) -> None:
    assert spx_monthly_expiration(2026, 9, cal) == D(2026, 9, 18)
    assert spx_monthly_expiration(2025, 4, cal) == D(2025, 4, 17)  # Good Friday 2025-04-18
    assert spx_monthly_expiration(2026, 6, cal) == D(2026, 6, 18)  # Juneteenth 2026-06-19


def test_monthly_list_and_weekly_list(cal: SessionCalendar) -> None:
    assert spx_expirations(D(2025, 3, 1), D(2025, 5, 31), "monthly", cal) == [
        D(2025, 3, 21),
        D(2025, 4, 17),
        D(2025, 5, 16),
    ]
    # SPXW lists every session: Thanksgiving and the weekend are not expirations.
    assert spx_expirations(D(2026, 11, 23), D(2026, 11, 30), "weekly", cal) == [
        D(2026, 11, 23),
        D(2026, 11, 24),
        D(2026, 11, 25),
        D(2026, 11, 27),
        D(2026, 11, 30),
    ]


def test_choose_expiry_nearest_target(cal: SessionCalendar) -> None:
    # 2026-09-18 is 31 days out, 2026-10-16 is 59: the third Friday wins.
    assert choose_expiry(D(2026, 8, 18), 30, "monthly", cal) == D(2026, 9, 18)
    # Every session is a weekly expiry: exactly 30 days out is a Thursday session.
    assert choose_expiry(D(2026, 8, 18), 30, "weekly", cal) == D(2026, 9, 17)
    # Good Friday: the April 2025 monthly is the Thursday.
    assert choose_expiry(D(2025, 3, 20), 28, "monthly", cal) == D(2025, 4, 17)


def test_choose_expiry_tie_goes_to_the_later(cal: SessionCalendar) -> None:
    # Target 2026-10-02 is 14 days from both 2026-09-18 and 2026-10-16.
    assert choose_expiry(D(2026, 8, 18), 45, "monthly", cal) == D(2026, 10, 16)


def test_choose_expiry_is_strictly_after_as_of(cal: SessionCalendar) -> None:
    assert choose_expiry(D(2026, 9, 18), 1, "monthly", cal) == D(2026, 10, 16)
    assert choose_expiry(D(2026, 9, 18), 1, "weekly", cal) == D(2026, 9, 21)
    with pytest.raises(ValueError, match="target_dte"):
        choose_expiry(D(2026, 9, 18), 0, "weekly", cal)


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [
        (2024, 2, D(2024, 2, 14)),
        (2024, 3, D(2024, 3, 20)),
        (2024, 4, D(2024, 4, 17)),
        # Cboe's final-settlement page: VX/F9..VX/U9.
        (2019, 1, D(2019, 1, 16)),
        (2019, 2, D(2019, 2, 13)),
        (2019, 5, D(2019, 5, 22)),
        (2019, 9, D(2019, 9, 18)),
    ],
)
def test_vx_expiration_regular(
    year: int, month: int, expected: dt.date, cal: SessionCalendar
) -> None:
    assert vx_expiration(year, month, cal) == expected


@pytest.mark.parametrize(
    ("year", "month", "expected", "why"),
    [
        # Reference Friday is Good Friday: 30 days before Thursday -> a Tuesday.
        (2019, 3, D(2019, 3, 19), "Good Friday 2019-04-19 (Cboe: VX/H9 - 2019-03-19)"),
        (2025, 3, D(2025, 3, 18), "Good Friday 2025-04-18"),
        # Reference Friday is Juneteenth 2026-06-19 (public recording: VX/K6 2026-05-19).
        (2026, 5, D(2026, 5, 19), "Juneteenth 2026-06-19"),
        # The Wednesday itself is Juneteenth 2024: the session before it.
        (2024, 6, D(2024, 6, 18), "Wednesday 2024-06-19 is Juneteenth"),
    ],
)
def test_vx_expiration_holiday_shifts(
    year: int, month: int, expected: dt.date, why: str, cal: SessionCalendar
) -> None:
    assert vx_expiration(year, month, cal) == expected, why


def test_vx_expirations_match_cboe_listings(cal: SessionCalendar) -> None:
    # Cboe's settlement page for 2020-01-24 listed these monthlies.
    assert vx_expirations(D(2020, 1, 25), D(2020, 11, 30), cal) == [
        D(2020, 2, 19),
        D(2020, 3, 18),
        D(2020, 4, 15),
        D(2020, 5, 20),
        D(2020, 6, 17),
        D(2020, 7, 22),
        D(2020, 8, 19),
        D(2020, 9, 16),
        D(2020, 10, 21),
        D(2020, 11, 18),
    ]
    for name in ("settlement_2026-08-19.csv", "settlement_2026-09-01.csv"):
        listed = sorted(parse_vx_settlements((FIXTURES / name).read_bytes()))
        assert vx_expirations(listed[0], listed[-1], cal) == listed, name


def test_vx_symbol() -> None:
    assert vx_symbol(D(2026, 12, 16)) == "VX/Z6"
    assert vx_symbol(D(2027, 1, 20)) == "VX/F7"
    assert vx_symbol(D(2020, 2, 19)) == "VX/G0"
    assert vx_symbol(D(2025, 3, 18)) == "VX/H5"
