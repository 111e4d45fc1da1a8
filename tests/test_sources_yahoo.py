"""Yahoo v8 chart: the recorded answer, nulls, broken bodies, and the fetcher over HTTP."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from httpserver import LocalServer, RecordingSleep

from bot.kernel.errors import SourceDataError
from bot.kernel.sessions import ET, SessionCalendar
from bot.market.sources.base import SourceContext, Window
from bot.market.sources.files import NOT_A_SESSION
from bot.market.sources.http import BROWSER_USER_AGENT
from bot.market.sources.yahoo import NOT_FINAL, NULL_ROW, YahooChart, parse_yahoo_chart

BODY = (
    Path(__file__).parent / "fixtures" / "recorded" / "yahoo_chart_gspc_2026-02.json"
).read_bytes()
PATH = "/v8/finance/chart/^GSPC"
D = dt.date
START, END = D(2026, 2, 9), D(2026, 2, 27)


def chart() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(BODY)
    return data


def quote(data: dict[str, Any]) -> dict[str, list[Any]]:
    q: dict[str, list[Any]] = data["chart"]["result"][0]["indicators"]["quote"][0]
    return q


def encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


# -- parser -------------------------------------------------------------------------


def test_recorded_answer(calendar: SessionCalendar) -> None:
    parsed = parse_yahoo_chart(BODY, calendar=calendar)
    assert parsed.source == "yahoo" and parsed.dropped == ()
    assert len(parsed.rows) == 14
    assert parsed.rows[0].session == START and parsed.rows[-1].session == END
    assert D(2026, 2, 16) not in {b.session for b in parsed.rows}  # Presidents' Day
    last = parsed.rows[-1]
    assert (last.open, last.high, last.low, last.close) == (6856.54, 6882.96, 6831.74, 6878.88)
    assert last.volume == 6_665_660_000 and last.symbol == "SPX" and last.source == "yahoo"


def test_session_date_is_taken_in_new_york(calendar: SessionCalendar) -> None:
    data = chart()
    # 20:30 ET on Feb 27 is already Feb 28 in UTC: the bar still belongs to Feb 27.
    late = dt.datetime(2026, 2, 27, 20, 30, tzinfo=ET)
    assert late.astimezone(dt.UTC).date() == D(2026, 2, 28)
    data["chart"]["result"][0]["timestamp"][-1] = int(late.timestamp())
    assert parse_yahoo_chart(encode(data), calendar=calendar).rows[-1].session == END


def test_null_close_on_newest_row_means_not_final(calendar: SessionCalendar) -> None:
    data = chart()
    for name in ("open", "high", "low", "close", "volume"):
        quote(data)[name][-1] = None
    parsed = parse_yahoo_chart(encode(data), calendar=calendar)
    assert parsed.rows[-1].session == D(2026, 2, 26)
    assert [(d.date, d.reason) for d in parsed.dropped] == [(END, NOT_FINAL)]


def test_newest_row_with_close_but_null_open_is_kept(calendar: SessionCalendar) -> None:
    data = chart()
    quote(data)["open"][-1] = None
    quote(data)["volume"][-1] = None
    last = parse_yahoo_chart(encode(data), calendar=calendar).rows[-1]
    assert (last.session, last.open, last.close, last.volume) == (END, None, 6878.88, None)


def test_a_past_null_row_is_dropped_and_the_rest_kept(calendar: SessionCalendar) -> None:
    """July 2026: Yahoo served null OHLC on past sessions for weeks; refusing the whole
    answer would have left SPX unavailable. The session is dropped with its reason."""
    data = chart()
    for name in ("open", "high", "low", "close", "volume"):
        quote(data)[name][3] = None
    parsed = parse_yahoo_chart(encode(data), calendar=calendar)
    assert [(d.date, d.reason) for d in parsed.dropped] == [(D(2026, 2, 12), NULL_ROW)]
    assert len(parsed.rows) == 13 and parsed.rows[-1].session == END


@pytest.mark.parametrize("field", ["open", "high", "low"])
def test_a_close_without_open_high_or_low_is_kept_close_only(
        field: str, calendar: SessionCalendar) -> None:
    data = chart()
    quote(data)[field][3] = None
    row = next(b for b in parse_yahoo_chart(encode(data), calendar=calendar).rows
               if b.session == D(2026, 2, 12))
    assert getattr(row, field) is None and row.close == quote(chart())["close"][3]


def with_duplicate_newest(close_delta: float = 0.0, volume: int = 5_129_731_000) -> bytes:
    """The recorded answer with the newest session listed again, as Yahoo does just
    after the close (pandas-datareader #610, yfinance #1070): a second row stamped at
    the close, the same prices and a later volume. Derived from the recorded body."""
    data = chart()
    result = data["chart"]["result"][0]
    close_stamp = int(dt.datetime(2026, 2, 27, 16, 0, 2, tzinfo=ET).timestamp())
    result["timestamp"].append(close_stamp)
    q = quote(data)
    for name in ("open", "high", "low", "close"):
        q[name].append(q[name][-1] + (close_delta if name == "close" else 0.0))
    q["volume"].append(volume)
    return encode(data)


def test_a_duplicated_newest_row_keeps_the_later_one(calendar: SessionCalendar) -> None:
    parsed = parse_yahoo_chart(with_duplicate_newest(), calendar=calendar)
    assert len(parsed.rows) == 14 and parsed.dropped == ()
    assert (parsed.rows[-1].session, parsed.rows[-1].close) == (END, 6878.88)
    assert parsed.rows[-1].volume == 5_129_731_000


def test_duplicates_that_disagree_are_both_dropped(calendar: SessionCalendar) -> None:
    parsed = parse_yahoo_chart(with_duplicate_newest(close_delta=12.5), calendar=calendar)
    assert parsed.rows[-1].session == D(2026, 2, 26)
    (drop,) = parsed.dropped
    assert drop.date == END and drop.reason == (
        "listed twice with different closes (6878.88 and 6891.38): neither kept")


def test_non_numeric_value(calendar: SessionCalendar) -> None:
    data = chart()
    quote(data)["close"][2] = "6941.47"
    with pytest.raises(
        SourceDataError, match=re.escape("non-numeric close '6941.47' on 2026-02-11")
    ):
        parse_yahoo_chart(encode(data), calendar=calendar)


def test_chart_error_object(calendar: SessionCalendar) -> None:
    body = (
        b'{"chart":{"result":null,"error":{"code":"Not Found",'
        b'"description":"No data found, symbol may be delisted"}}}'
    )
    with pytest.raises(SourceDataError, match=re.escape("chart.error Not Found: No data found")):
        parse_yahoo_chart(body, calendar=calendar)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<!DOCTYPE html><html><title>Yahoo</title></html>", "HTML page instead of JSON"),
        (b"", "empty body"),
        (BODY[: len(BODY) // 2], "truncated or invalid JSON"),
        (b'{"chart":{"result":[],"error":null}}', "chart.result is empty"),
        (b'{"finance":{"error":"x"}}', "chart is not an object"),
    ],
)
def test_broken_bodies(body: bytes, message: str, calendar: SessionCalendar) -> None:
    with pytest.raises(SourceDataError, match=message):
        parse_yahoo_chart(body, calendar=calendar)


def test_arrays_of_different_length_are_truncation(calendar: SessionCalendar) -> None:
    data = chart()
    quote(data)["close"].pop()
    with pytest.raises(SourceDataError, match="truncated answer: 14 timestamps, 13 close values"):
        parse_yahoo_chart(encode(data), calendar=calendar)


def test_a_past_session_listed_twice_with_two_closes_is_dropped(
        calendar: SessionCalendar) -> None:
    data = chart()
    stamps = data["chart"]["result"][0]["timestamp"]
    stamps[-1] = stamps[-2] + 3600  # the 27th's prices restamped onto the 26th
    parsed = parse_yahoo_chart(encode(data), calendar=calendar)
    assert [d.date for d in parsed.dropped] == [D(2026, 2, 26)]
    assert "listed twice with different closes" in parsed.dropped[0].reason
    assert parsed.rows[-1].session == D(2026, 2, 25)


def test_weekend_bar_dropped_and_reported(calendar: SessionCalendar) -> None:
    data = chart()
    saturday = int(dt.datetime(2026, 2, 28, 9, 30, tzinfo=ET).timestamp())
    data["chart"]["result"][0]["timestamp"].append(saturday)
    for name in ("open", "high", "low", "close", "volume"):
        quote(data)[name].append(quote(data)[name][-1])
    parsed = parse_yahoo_chart(encode(data), calendar=calendar)
    assert parsed.rows[-1].session == END
    assert [(d.date, d.reason) for d in parsed.dropped] == [(D(2026, 2, 28), NOT_A_SESSION)]


def test_answer_for_another_symbol(calendar: SessionCalendar) -> None:
    data = chart()
    data["chart"]["result"][0]["meta"]["symbol"] = "SPY"
    with pytest.raises(SourceDataError, match="answer is for 'SPY', not '\\^GSPC'"):
        parse_yahoo_chart(encode(data), calendar=calendar)


# -- the source over HTTP (retries, 429, timeouts, HTML: tests/test_sources_contract.py) -----


async def test_fetch_sends_browser_agent_and_range(
    ctx: SourceContext, server: LocalServer, sleeps: RecordingSleep
) -> None:
    server.route(PATH, BODY)
    parsed = await YahooChart(server.url).fetch(ctx, Window(START, END, END))
    assert parsed.rows[-1].close == 6878.88
    (request,) = server.requests_to(PATH)
    assert request.headers["user-agent"] == BROWSER_USER_AGENT
    assert request.raw_path.startswith("/v8/finance/chart/%5EGSPC?")
    period1 = int(request.query["period1"][0])
    period2 = int(request.query["period2"][0])
    assert dt.datetime.fromtimestamp(period1, tz=ET) == dt.datetime(2026, 2, 9, tzinfo=ET)
    assert dt.datetime.fromtimestamp(period2, tz=ET) == dt.datetime(2026, 2, 28, tzinfo=ET)
    assert request.query["interval"] == ["1d"]
    assert sleeps.delays == []


async def test_fetch_trims_rows_outside_the_request(
    ctx: SourceContext, server: LocalServer
) -> None:
    server.route(PATH, BODY)
    parsed = await YahooChart(server.url).fetch(
        ctx, Window(D(2026, 2, 17), D(2026, 2, 24), D(2026, 2, 24)))
    assert [b.session.day for b in parsed.rows] == [17, 18, 19, 20, 23, 24]


async def test_an_etp_ticker_is_asked_by_its_own_name(
    ctx: SourceContext, server: LocalServer
) -> None:
    data = chart()
    data["chart"]["result"][0]["meta"]["symbol"] = "VXX"
    server.route("/v8/finance/chart/VXX", encode(data))
    parsed = await YahooChart(server.url, ticker="VXX", symbol="VXX").fetch(
        ctx, Window(START, END, END))
    assert {b.symbol for b in parsed.rows} == {"VXX"}


async def test_null_newest_close_fails_as_stale(ctx: SourceContext, server: LocalServer) -> None:
    data = chart()
    quote(data)["close"][-1] = None
    server.route(PATH, encode(data))
    with pytest.raises(SourceDataError, match="stale: the row for 2026-02-27 was dropped"):
        await YahooChart(server.url).fetch(ctx, Window(START, END, END))


async def test_yesterdays_bar_as_todays(ctx: SourceContext, server: LocalServer) -> None:
    data = chart()
    q = quote(data)
    for name in ("open", "high", "low", "close"):
        q[name][-1] = q[name][-2]
    server.route(PATH, encode(data))
    with pytest.raises(
        SourceDataError, match="yesterday's bar presented as today's: 2026-02-27 repeats 2026-02-26"
    ):
        await YahooChart(server.url).fetch(ctx, Window(START, END, END))


async def test_without_expect_no_freshness_check(ctx: SourceContext, server: LocalServer) -> None:
    server.route(PATH, encode(chart()))
    parsed = await YahooChart(server.url).fetch(ctx, Window(START, END))
    assert len(parsed.rows) == 14
