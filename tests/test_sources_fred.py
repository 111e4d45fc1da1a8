"""FRED: fredgraph.csv closes and the CPI/PPI release-dates API (whose key must never leak)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import httpx
import pytest
from conftest import make_ctx
from httpserver import LocalServer, RecordingSleep, Reply
from pydantic import SecretStr

from bot.kernel.errors import SourceDataError, SourceUnavailable
from bot.kernel.models import EventKind, Symbol
from bot.kernel.sessions import SessionCalendar
from bot.market.sources.base import SourceContext, Window
from bot.market.sources.files import NO_VALUE, NOT_A_SESSION
from bot.market.sources.fred import FredReleaseDates, FredSeries, parse_fred_release_dates

RECORDED = Path(__file__).parent / "fixtures" / "recorded"
SP500 = (RECORDED / "fred_graph_SP500_2026-02.csv").read_bytes()
RELEASES = (RECORDED / "fred_release_dates_10.json").read_bytes()
VIXCLS = Path(__file__).resolve().parents[1] / "bot" / "data" / "snapshot" / "vix" / "VIXCLS.csv"
GRAPH = "/graph/fredgraph.csv"
API = "/fred/release/dates"
KEY = SecretStr("abcdef0123456789abcdef0123456789")
D = dt.date


# -- fredgraph.csv -------------------------------------------------------------------


async def test_sp500_fetch(
    ctx: SourceContext,
    server: LocalServer,
    sleeps: RecordingSleep,
) -> None:
    server.route(GRAPH, SP500)
    parsed = await FredSeries(Symbol.SPX, server.url).fetch(
            ctx, Window(D(2026, 2, 9), D(2026, 2, 27), D(2026, 2, 27)))
    assert parsed.source == "fred" and len(parsed.rows) == 14
    last = parsed.rows[-1]
    assert (last.session, last.close, last.open, last.symbol) == (
        D(2026, 2, 27),
        6878.88,
        None,
        "SPX",
    )
    assert [(d.date, d.reason) for d in parsed.dropped] == [(D(2026, 2, 16), NOT_A_SESSION)]
    (request,) = server.requests_to(GRAPH)
    assert request.query == {"id": ["SP500"], "cosd": ["2026-02-09"], "coed": ["2026-02-27"]}


async def test_vixcls_real_file_window_and_empty_session(
    ctx: SourceContext,
    server: LocalServer,
    sleeps: RecordingSleep,
) -> None:
    server.route(GRAPH, VIXCLS)  # fredgraph ignores nothing we rely on: we trim ourselves
    parsed = await FredSeries(Symbol.VIX, server.url).fetch(
            ctx, Window(D(1997, 11, 1), D(1997, 11, 28)))
    assert parsed.rows[0].session == D(1997, 11, 3) and parsed.rows[-1].session == D(1997, 11, 28)
    assert (D(1997, 11, 26), NO_VALUE) in [(d.date, d.reason) for d in parsed.dropped]
    assert (D(1997, 11, 27), NOT_A_SESSION) in [(d.date, d.reason) for d in parsed.dropped]
    assert all(d.date.month == 11 for d in parsed.dropped)


async def test_stale_when_newest_value_missing(
    ctx: SourceContext,
    server: LocalServer,
    sleeps: RecordingSleep,
) -> None:
    server.route(GRAPH, SP500 + b"2026-03-02,\n")
    with pytest.raises(SourceDataError, match="stale: the row for 2026-03-02 was dropped"):
        await FredSeries(Symbol.SPX, server.url).fetch(
            ctx, Window(D(2026, 2, 9), D(2026, 3, 2), D(2026, 3, 2)))


async def test_stale_newest_row(
    ctx: SourceContext,
    server: LocalServer,
    sleeps: RecordingSleep,
) -> None:
    server.route(GRAPH, SP500)
    with pytest.raises(SourceDataError, match="stale: newest row 2026-02-27, expected 2026-03-02"):
        await FredSeries(Symbol.SPX, server.url).fetch(
            ctx, Window(D(2026, 2, 9), D(2026, 3, 2), D(2026, 3, 2)))


async def test_wrong_series_and_html(
    ctx: SourceContext,
    server: LocalServer,
    sleeps: RecordingSleep,
) -> None:
    server.route(GRAPH, VIXCLS, b"<html><body>FRED is down</body></html>")
    with pytest.raises(SourceDataError, match="column 'VIXCLS' is not 'SP500'"):
        await FredSeries(Symbol.SPX, server.url).fetch(
            ctx, Window(D(2026, 2, 9), D(2026, 2, 27)))
    with pytest.raises(SourceDataError, match="HTML page instead of CSV"):
        await FredSeries(Symbol.SPX, server.url).fetch(
            ctx, Window(D(2026, 2, 9), D(2026, 2, 27)))


def test_no_vix6m_on_fred() -> None:
    with pytest.raises(ValueError, match="FRED has no daily series for VIX6M"):
        FredSeries(Symbol.VIX6M)


# -- release dates -------------------------------------------------------------------------


def test_release_dates_recorded(calendar: SessionCalendar) -> None:
    parsed = parse_fred_release_dates(
        RELEASES, EventKind.CPI, today=D(2026, 9, 20), calendar=calendar
    )
    assert len(parsed.rows) == 13
    assert {e.kind for e in parsed.rows} == {EventKind.CPI}
    assert {e.time_et for e in parsed.rows} == {dt.time(8, 30)}
    assert [e.date for e in parsed.rows][-3:] == [D(2026, 8, 12), D(2026, 9, 11), D(2026, 10, 14)]
    assert parsed.rows[0].source == "fred"


@pytest.mark.parametrize("today", [D(2026, 10, 14), D(2027, 1, 5)])
def test_no_upcoming_release_is_a_failure(today: dt.date, calendar: SessionCalendar) -> None:
    with pytest.raises(SourceDataError, match=f"no upcoming CPI release dates after {today}"):
        parse_fred_release_dates(RELEASES, EventKind.CPI, today=today, calendar=calendar)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"release_dates": []}', "no upcoming CPI release dates"),
        (b'{"seriess": []}', "no 'release_dates' list"),
        (
            b'{"release_dates": [{"release_id": 10, "date": "2026-13-01"}]}',
            "bad release date '2026-13-01'",
        ),
        (
            b'{"release_dates": [{"release_id": 46, "date": "2026-12-01"}]}',
            "release_id 46 in a release 10 answer",
        ),
        (b'{"error_code": 400, "error_message": "Bad Request."}', "API error: Bad Request."),
        (RELEASES[:200], "truncated or invalid JSON"),
        (b"<!DOCTYPE html><html></html>", "HTML page instead of JSON"),
    ],
)
def test_broken_release_answers(body: bytes, message: str, calendar: SessionCalendar) -> None:
    with pytest.raises(SourceDataError) as info:
        parse_fred_release_dates(body, EventKind.CPI, today=D(2026, 9, 20), calendar=calendar)
    assert message in str(info.value)


def test_ppi_uses_release_46(calendar: SessionCalendar) -> None:
    body = json.dumps({"release_dates": [{"release_id": 46, "date": "2026-12-15"}]})
    parsed = parse_fred_release_dates(body, EventKind.PPI, today=D(2026, 12, 1), calendar=calendar)
    assert [(e.kind, e.date) for e in parsed.rows] == [(EventKind.PPI, D(2026, 12, 15))]
    with pytest.raises(SourceDataError, match="release_id 10 in a release 46 answer"):
        parse_fred_release_dates(RELEASES, EventKind.PPI, today=D(2026, 9, 20), calendar=calendar)


async def test_release_fetch_sends_key_and_parameters(
    ctx: SourceContext,
    server: LocalServer,
    sleeps: RecordingSleep,
) -> None:
    server.route(API, RELEASES)
    parsed = await FredReleaseDates(EventKind.CPI, KEY, server.url).fetch(
            ctx, Window(D(2026, 9, 20), D(2026, 9, 20)))
    assert parsed.rows[-1].date == D(2026, 10, 14)
    (request,) = server.requests_to(API)
    assert request.query["api_key"] == [KEY.get_secret_value()]
    assert request.query["release_id"] == ["10"]
    assert request.query["file_type"] == ["json"]
    assert request.query["include_release_dates_with_no_data"] == ["true"]
    # FRED's default real-time period ends today: future release dates need this.
    assert request.query["realtime_end"] == ["9999-12-31"]
    assert request.query["realtime_start"] == ["2025-08-16"]  # 400 days back


@pytest.mark.parametrize(
    "replies",
    [
        [Reply(500, b"internal error")],
        [
            Reply(
                400,
                json.dumps({"error_message": f"api_key {KEY.get_secret_value()} not registered"}),
            )
        ],
        [
            Reply(
                200,
                json.dumps(
                    {"error_code": 400, "error_message": f"bad key {KEY.get_secret_value()}"}
                ),
            )
        ],
        [Reply(200, b"<html>nope</html>")],
        [Reply(200, RELEASES, delay=1.0)],
    ],
    ids=["500", "400-echo", "200-error-echo", "html", "timeout"],
)
async def test_api_key_never_in_errors_or_logs(
    replies: list[Reply],
    server: LocalServer,
    calendar: SessionCalendar,
    sleeps: RecordingSleep,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Other code (bot.app.logs) quiets httpx; force its request lines on to test them.
    for name in (None, "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    server.route(API, *replies)
    secret = KEY.get_secret_value()
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.2)) as quick:
        with pytest.raises((SourceDataError, SourceUnavailable)) as info:
            await FredReleaseDates(EventKind.CPI, KEY, server.url).fetch(
            make_ctx(quick, calendar, sleeps), Window(D(2026, 9, 20), D(2026, 9, 20)))
    # The key did travel (so the test is meaningful) ...
    assert server.requests_to(API)[0].query["api_key"] == [secret]
    # ... but appears nowhere we write it down.
    assert secret not in str(info.value) and secret not in repr(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert secret not in caplog.text
    for record in caplog.records:
        assert secret not in record.getMessage()


async def test_httpx_request_log_line_is_redacted(
    ctx: SourceContext,
    server: LocalServer,
    sleeps: RecordingSleep,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="httpx")  # bot.app.logs may have set it to WARNING
    server.route(API, RELEASES)
    await FredReleaseDates(EventKind.CPI, KEY, server.url).fetch(
            ctx, Window(D(2026, 9, 20), D(2026, 9, 20)))
    httpx_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("api_key=***" in line for line in httpx_lines)
    assert KEY.get_secret_value() not in caplog.text
