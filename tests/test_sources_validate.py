"""Freshness rules shared by every live fetcher."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import make_ctx

from bot.kernel.errors import SourceDataError
from bot.kernel.models import Bar, Breadth, Dropped, Parsed
from bot.kernel.sessions import ET, SessionCalendar
from bot.market.sources.base import BarSource, SourceContext, Window
from bot.market.sources.validate import check_fresh_bars, check_fresh_breadth, trim

D = dt.date
THU, FRI, MON = D(2026, 11, 19), D(2026, 11, 20), D(2026, 11, 23)


def bar(day: dt.date, close: float, ohlc: bool = True) -> Bar:
    if not ohlc:
        return Bar("VIX", day, close, "fred")
    return Bar("SPX", day, close, "test", open=close - 1, high=close + 2, low=close - 3)


def parsed(*bars: Bar, dropped: tuple[Dropped, ...] = ()) -> Parsed[Bar]:
    return Parsed("test", bars, dropped)


def test_fresh_passes(calendar: SessionCalendar) -> None:
    check_fresh_bars("test", parsed(bar(THU, 10), bar(FRI, 11)), FRI, calendar)


def test_stale_newest_row(calendar: SessionCalendar) -> None:
    with pytest.raises(
        SourceDataError, match="test: stale: newest row 2026-11-24, expected 2026-11-25"
    ):
        check_fresh_bars(
            "test", parsed(bar(MON, 1), bar(D(2026, 11, 24), 2)), D(2026, 11, 25), calendar
        )


def test_no_rows_is_stale(calendar: SessionCalendar) -> None:
    with pytest.raises(SourceDataError, match="stale: no rows, expected 2026-11-20"):
        check_fresh_bars("test", parsed(), FRI, calendar)


def test_row_after_expected(calendar: SessionCalendar) -> None:
    with pytest.raises(
        SourceDataError, match="newest row 2026-11-23 is after the expected session 2026-11-20"
    ):
        check_fresh_bars("test", parsed(bar(FRI, 1), bar(MON, 2)), FRI, calendar)


def test_dropped_expected_row_explains_itself(calendar: SessionCalendar) -> None:
    p = parsed(bar(THU, 10), dropped=(Dropped(FRI, "close not yet available"),))
    with pytest.raises(
        SourceDataError,
        match="stale: the row for 2026-11-20 was dropped \\(close not yet available\\)",
    ):
        check_fresh_bars("test", p, FRI, calendar)


def test_yesterdays_bar_across_a_weekend(calendar: SessionCalendar) -> None:
    with pytest.raises(
        SourceDataError, match="yesterday's bar presented as today's: 2026-11-23 repeats 2026-11-20"
    ):
        check_fresh_bars("test", parsed(bar(FRI, 50), bar(MON, 50)), MON, calendar)


def test_one_price_differing_is_a_real_bar(calendar: SessionCalendar) -> None:
    same = bar(FRI, 50)
    moved = Bar(
        "SPX", MON, same.close, "test", open=same.open, high=same.high, low=(same.low or 0) - 0.01
    )
    check_fresh_bars("test", parsed(same, moved), MON, calendar)


def test_previous_from_the_store(calendar: SessionCalendar) -> None:
    with pytest.raises(SourceDataError, match="yesterday's bar"):
        check_fresh_bars("test", parsed(bar(MON, 50)), MON, calendar, previous=bar(FRI, 50))
    # A stored bar of another session is not "the previous session".
    check_fresh_bars("test", parsed(bar(MON, 50)), MON, calendar, previous=bar(THU, 50))


def test_close_only_bars_are_not_compared(calendar: SessionCalendar) -> None:
    check_fresh_bars("fred", parsed(bar(FRI, 17.24, False), bar(MON, 17.24, False)), MON, calendar)


def test_early_close_day_before_thanksgiving_friday(calendar: SessionCalendar) -> None:
    """The session before Monday 2026-11-30 is the 13:00 early close on Friday 11-27."""
    with pytest.raises(SourceDataError, match="2026-11-30 repeats 2026-11-27"):
        check_fresh_bars(
            "test",
            parsed(bar(D(2026, 11, 27), 9), bar(D(2026, 11, 30), 9)),
            D(2026, 11, 30),
            calendar,
        )


def test_trim_keeps_window_and_its_drop_reports() -> None:
    p = parsed(
        bar(THU, 1),
        bar(FRI, 2),
        bar(MON, 3),
        dropped=(Dropped(D(2026, 11, 11), "x"), Dropped(D(2026, 11, 21), "y")),
    )
    t = trim(p, FRI, MON)
    assert [b.session for b in t.rows] == [FRI, MON]
    assert [d.date for d in t.dropped] == [D(2026, 11, 21)]
    assert trim(p, None, None) == p


class Given(BarSource):
    name = "test"

    def __init__(self, answer: Parsed[Bar]) -> None:
        super().__init__("given://")
        self.given = answer

    async def answer(self, ctx: SourceContext, window: Window) -> Parsed[Bar]:
        return self.given


async def test_a_source_checks_freshness_beyond_the_window(client, calendar) -> None:
    ctx = make_ctx(client, calendar, now=dt.datetime(2026, 11, 30, 18, tzinfo=ET))
    p = parsed(bar(THU, 1), bar(FRI, 2))
    with pytest.raises(SourceDataError, match="stale: newest row 2026-11-20, expected 2026-11-23"):
        await Given(p).fetch(ctx, Window(MON, MON, MON))
    # The repeated-bar check sees Friday although the window is Monday only.
    q = parsed(bar(FRI, 2), bar(MON, 2))
    with pytest.raises(SourceDataError, match="yesterday's bar"):
        await Given(q).fetch(ctx, Window(MON, MON, MON))
    assert [b.session for b in (await Given(p).fetch(ctx, Window(FRI, FRI, FRI))).rows] == [FRI]


def test_breadth_freshness() -> None:
    row = Breadth(FRI, 1500, 1300, "wsj")
    check_fresh_breadth("wsj", Parsed("wsj", (row,)), FRI)
    with pytest.raises(
        SourceDataError, match="wsj: stale: newest row 2026-11-20, expected 2026-11-23"
    ):
        check_fresh_breadth("wsj", Parsed("wsj", (row,)), MON)
