"""WSJ Markets Diary: the NYSE table, repeated ids, the date, and refusals."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import make_ctx
from httpserver import LocalServer

from bot.kernel.errors import SourceDataError
from bot.kernel.sessions import ET, SessionCalendar
from bot.market.sources.base import Window
from bot.market.sources.http import BROWSER_USER_AGENT
from bot.market.sources.wsj import PAGE, WsjDiary, parse_timestamp, parse_wsj_diary

BODY = (
    Path(__file__).parent / "fixtures" / "recorded" / "wsj_marketsdiary_2026-07-27.json"
).read_bytes()
EVENING = dt.datetime(2026, 7, 27, 18, 0, tzinfo=ET)
DAY = dt.date(2026, 7, 27)


def diary() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(BODY)
    return data


def nyse(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = data["data"]["instrumentSets"][0]["instruments"]
    return rows


def row(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in nyse(data) if r["name"] == name)


def encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def test_recorded_answer(calendar: SessionCalendar) -> None:
    parsed = parse_wsj_diary(BODY, calendar=calendar)
    assert parsed.source == "wsj" and parsed.dropped == ()
    before, b = parsed.rows
    # previousClose: the session before, final figures.
    assert (before.session, before.advancers, before.decliners, before.unchanged) == (
        dt.date(2026, 7, 24), 1652, 1073, 108)
    assert (b.session, b.advancers, b.decliners, b.unchanged) == (DAY, 1729, 1022, 82)
    # The unstarred (all-venue) volume rows, not the starred NYSE-floor ones.
    assert b.adv_volume == 3_626_095_086 and b.dec_volume == 1_394_651_972
    assert not b.synthetic


def test_nyse_is_found_by_label_not_position(calendar: SessionCalendar) -> None:
    data = diary()
    data["data"]["instrumentSets"].reverse()  # NYSE American, NASDAQ, then NYSE
    b = parse_wsj_diary(encode(data), calendar=calendar).rows[-1]
    assert (b.advancers, b.decliners) == (1729, 1022)


def test_volume_rows_reusing_issue_ids_do_not_confuse(calendar: SessionCalendar) -> None:
    """If the volume block carried the issue ids, keying on id alone would pick volumes."""
    data = diary()
    row(data, "Adv. volume*")["id"] = "advances"
    row(data, "Decl. volume*")["id"] = "declines"
    row(data, "Adv. volume")["id"] = "advances"
    b = parse_wsj_diary(encode(data), calendar=calendar).rows[-1]
    assert (b.advancers, b.decliners, b.adv_volume) == (1729, 1022, 3_626_095_086)


def test_two_advances_rows_is_refused(calendar: SessionCalendar) -> None:
    data = diary()
    nyse(data).append({"id": "advances", "name": "Advances", "latestClose": "9"})
    with pytest.raises(
        SourceDataError, match="NYSE table has 2 'advances' rows; refusing to guess"
    ):
        parse_wsj_diary(encode(data), calendar=calendar)


def test_missing_row(calendar: SessionCalendar) -> None:
    data = diary()
    data["data"]["instrumentSets"][0]["instruments"] = [
        r for r in nyse(data) if r["id"] != "declines"
    ]
    with pytest.raises(SourceDataError, match="NYSE table has no 'declines' row"):
        parse_wsj_diary(encode(data), calendar=calendar)


def test_no_nyse_table(calendar: SessionCalendar) -> None:
    data = diary()
    del data["data"]["instrumentSets"][0]
    with pytest.raises(SourceDataError, match="no NYSE table \\(tables: NASDAQ, NYSE American\\)"):
        parse_wsj_diary(encode(data), calendar=calendar)


def test_comma_numbers_and_non_numeric(calendar: SessionCalendar) -> None:
    data = diary()
    row(data, "Advances")["latestClose"] = "2,001"
    assert parse_wsj_diary(encode(data), calendar=calendar).rows[-1].advancers == 2001
    row(data, "Advances")["latestClose"] = "n/a"
    with pytest.raises(
        SourceDataError, match="non-numeric advances latestClose 'n/a' on 2026-07-27"
    ):
        parse_wsj_diary(encode(data), calendar=calendar)


def test_placeholder_zeros(calendar: SessionCalendar) -> None:
    """Before the table is filled the latest figures are 0 and 0: that row is dropped
    with why; the previous session's final figures are still good."""
    data = diary()
    row(data, "Advances")["latestClose"] = "0"
    row(data, "Declines")["latestClose"] = "0"
    parsed = parse_wsj_diary(encode(data), calendar=calendar)
    assert [b.session for b in parsed.rows] == [dt.date(2026, 7, 24)]
    assert [(d.date, d.reason) for d in parsed.dropped] == [
        (DAY, "placeholder figures on 2026-07-27: 0 advances and 0 declines")]
    for name in ("Advances", "Declines"):
        row(data, name)["previousClose"] = "0"
    with pytest.raises(SourceDataError, match="placeholder figures on 2026-07-27"):
        parse_wsj_diary(encode(data), calendar=calendar)


def test_yesterdays_table_under_todays_date(calendar: SessionCalendar) -> None:
    data = diary()
    for name in ("Advances", "Declines", "Unchanged"):
        row(data, name)["latestClose"] = row(data, name)["previousClose"]
    with pytest.raises(SourceDataError, match="yesterday's figures presented as today's"):
        parse_wsj_diary(encode(data), calendar=calendar)


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("Monday, July 27, 2026", DAY),
        ("Friday, October 02, 2026", dt.date(2026, 10, 2)),
        ("  Monday,  July 27,  2026 ", DAY),
        ("July 27, 2026", DAY),
    ],
)
def test_timestamp_forms(stamp: str, expected: dt.date) -> None:
    assert parse_timestamp(stamp) == expected


@pytest.mark.parametrize(
    ("stamp", "message"),
    [
        ("Saturday, July 25, 2026", "data.timestamp 2026-07-25 is not an NYSE session"),
        (
            "Friday, July 3, 2026",
            "data.timestamp 2026-07-03 is not an NYSE session",
        ),  # Independence Day observed
        ("27/07/2026", "unrecognised data.timestamp '27/07/2026'"),
        (None, "unrecognised data.timestamp None"),
    ],
)
def test_bad_timestamps(stamp: str | None, message: str, calendar: SessionCalendar) -> None:
    data = diary()
    data["data"]["timestamp"] = stamp
    with pytest.raises(SourceDataError, match=re.escape(message)):
        parse_wsj_diary(encode(data), calendar=calendar)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<!DOCTYPE html><html><body>Please enable JS</body></html>", "HTML page instead of JSON"),
        (BODY[:300], "truncated or invalid JSON"),
        (b'{"data": {"timestamp": "Monday, July 27, 2026"}}', "no 'data.instrumentSets' list"),
        (b'{"error": "x"}', "no 'data' object"),
    ],
)
def test_broken_bodies(body: bytes, message: str, calendar: SessionCalendar) -> None:
    with pytest.raises(SourceDataError, match=re.escape(message)):
        parse_wsj_diary(body, calendar=calendar)


async def test_fetch_headers_params_and_date(server: LocalServer, calendar: SessionCalendar,
                                             client: httpx.AsyncClient) -> None:
    server.route(PAGE, BODY)
    parsed = await WsjDiary(server.url).fetch(make_ctx(client, calendar, now=EVENING),
                                              Window(DAY, DAY, DAY))
    assert parsed.rows[0].advancers == 1729
    (request,) = server.requests_to(PAGE)
    assert request.headers["user-agent"] == BROWSER_USER_AGENT
    assert request.headers["referer"] == "https://www.wsj.com/market-data/stocks/marketsdiary"
    assert json.loads(request.query["id"][0]) == {
        "application": "WSJ",
        "marketsDiaryType": "diaries",
    }
    assert request.query["type"] == ["mdc_marketsdiary"]


async def test_fetch_stale_date(server: LocalServer, calendar: SessionCalendar,
                                client: httpx.AsyncClient) -> None:
    server.route(PAGE, BODY)
    day = dt.date(2026, 7, 28)
    ctx = make_ctx(client, calendar, now=dt.datetime(2026, 7, 28, 16, 20, tzinfo=ET))
    with pytest.raises(
        SourceDataError, match="wsj: stale: newest row 2026-07-27, expected 2026-07-28"
    ):
        await WsjDiary(server.url).fetch(ctx, Window(day, day, day))


def test_the_diary_serves_only_the_latest_session(calendar: SessionCalendar,
                                                  client: httpx.AsyncClient) -> None:
    """Its reach is declared, so the live fetch can ask it only what it can answer."""
    ctx = make_ctx(client, calendar, now=EVENING)
    wsj = WsjDiary()
    assert wsj.serves(ctx, Window(DAY, DAY, DAY)) is None
    assert wsj.serves(ctx, Window(dt.date(2026, 7, 24), DAY)) is None
    assert wsj.serves(ctx, Window(dt.date(2026, 7, 23), DAY)) == (
        "wsj gives only the latest 2 closed sessions (2026-07-24..2026-07-27)")
    assert wsj.clip(ctx, Window(dt.date(2026, 7, 20), DAY, DAY)) == Window(
        dt.date(2026, 7, 24), DAY, DAY)


async def test_after_the_next_open_the_session_comes_from_previous_close(
        server: LocalServer, calendar: SessionCalendar, client: httpx.AsyncClient) -> None:
    """A catch-up run at 10:00 the next morning: the diary is dated the 28th, its latest
    figures are live, and the 27th's final figures sit in previousClose. Derived from the
    recorded body: the 27th's recorded figures moved to previousClose, live ones made up."""
    data = diary()
    data["data"]["timestamp"] = "Tuesday, July 28, 2026"
    for name, live in (("Advances", "1,104"), ("Declines", "1,533"), ("Unchanged", "61")):
        row(data, name)["previousClose"] = row(data, name)["latestClose"]
        row(data, name)["latestClose"] = live
    server.route(PAGE, encode(data))
    ctx = make_ctx(client, calendar, now=dt.datetime(2026, 7, 28, 10, 0, tzinfo=ET))
    parsed = await WsjDiary(server.url).fetch(ctx, Window(DAY, DAY, DAY))
    (b,) = parsed.rows
    assert (b.session, b.advancers, b.decliners, b.unchanged) == (DAY, 1729, 1022, 82)
