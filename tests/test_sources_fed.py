"""Fed calendar.json: FOMC decisions only, the day forms, the BOM, and "no upcoming"."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from httpserver import LocalServer

from bot.kernel.errors import SourceDataError
from bot.kernel.models import EventKind
from bot.kernel.sessions import SessionCalendar
from bot.market.sources.base import SourceContext, Window
from bot.market.sources.fed import (
    PATH,
    FedCalendar,
    decision_day,
    decision_time,
    parse_fed_calendar,
)
from bot.market.sources.http import BROWSER_USER_AGENT

BODY = (Path(__file__).parent / "fixtures" / "recorded" / "fed_calendar_2026-10.json").read_bytes()
D = dt.date


def calendar_json(*rows: dict[str, str]) -> bytes:
    return b"\xef\xbb\xbf" + json.dumps({"events": list(rows)}).encode()


def meeting(
    month: str, days: str, title: str = "FOMC Meeting", time: str = "2:00 p.m."
) -> dict[str, str]:
    return {"title": title, "time": time, "month": month, "days": days, "type": "FOMC"}


def test_recorded_calendar_keeps_only_meetings(calendar: SessionCalendar) -> None:
    assert BODY.startswith(b"\xef\xbb\xbf")
    parsed = parse_fed_calendar(BODY, today=D(2026, 9, 25), calendar=calendar)
    assert parsed.source == "fed"
    assert [(e.kind, e.date, e.time_et) for e in parsed.rows] == [
        (EventKind.FOMC, D(2026, 9, 16), dt.time(14, 0)),
        (EventKind.FOMC, D(2026, 10, 28), dt.time(14, 0)),
    ]
    # Minutes (10-07) and press conferences are type FOMC too, but not decisions.
    assert D(2026, 10, 7) not in {e.date for e in parsed.rows}


@pytest.mark.parametrize("today", [D(2026, 10, 28), D(2026, 12, 1)])
def test_nothing_upcoming_is_a_failure(today: dt.date, calendar: SessionCalendar) -> None:
    with pytest.raises(SourceDataError, match=f"fed: no upcoming FOMC events after {today}"):
        parse_fed_calendar(BODY, today=today, calendar=calendar)


@pytest.mark.parametrize(
    ("month", "days", "expected"),
    [
        ("2026-11", "27,28", D(2026, 11, 28)),
        ("2026-10", "27-28", D(2026, 10, 28)),
        ("2026-10", "27 - 28", D(2026, 10, 28)),
        ("2026-12", "9", D(2026, 12, 9)),
        ("2027-01", "31-1", D(2027, 2, 1)),
        ("2026-12", "31-1", D(2027, 1, 1)),
    ],
)
def test_decision_is_the_last_day(month: str, days: str, expected: dt.date) -> None:
    assert decision_day(month, days) == expected


@pytest.mark.parametrize(
    ("month", "days"),
    [("", "4"), ("2026-10", ""), ("2026-02", "30"), ("Oct 2026", "28"), ("2026-13", "1")],
)
def test_undatable_meeting_is_an_error(month: str, days: str, calendar: SessionCalendar) -> None:
    body = calendar_json(meeting("2026-12", "8-9"), meeting(month, days))
    with pytest.raises(SourceDataError, match="FOMC meeting"):
        parse_fed_calendar(body, today=D(2026, 10, 1), calendar=calendar)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2:00 p.m.", dt.time(14, 0)),
        ("12:30 p.m.", dt.time(12, 30)),
        ("9:15 a.m.", dt.time(9, 15)),
        ("", dt.time(14, 0)),
    ],
)
def test_decision_time(raw: str, expected: dt.time) -> None:
    assert decision_time(raw) == expected


def test_title_variants_and_duplicates(calendar: SessionCalendar) -> None:
    body = calendar_json(
        meeting("2026-12", "8-9", title=" FOMC  meeting"),
        meeting("2026-12", "9"),  # the same meeting listed again
        meeting("2026-11", "18", title="FOMC Minutes"),
        meeting("2026-12", "9", title="FOMC Press Conference", time="2:30 p.m."),
        {"title": "Beige Book", "month": "2026-12", "days": "2", "type": "Beige"},
        {"type": "FOMC"},  # no title: not a meeting
    )
    parsed = parse_fed_calendar(body, today=D(2026, 11, 1), calendar=calendar)
    assert [e.date for e in parsed.rows] == [D(2026, 12, 9)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xef\xbb\xbf<!DOCTYPE html><html></html>", "HTML page instead of JSON"),
        (BODY[:500], "truncated or invalid JSON"),
        (b'{"items": []}', "no 'events' list"),
        (b"", "empty body"),
    ],
)
def test_broken_bodies(body: bytes, message: str, calendar: SessionCalendar) -> None:
    with pytest.raises(SourceDataError, match=re.escape(message)):
        parse_fed_calendar(body, today=D(2026, 9, 25), calendar=calendar)


async def test_fetch(ctx: SourceContext, server: LocalServer) -> None:
    server.route(PATH, BODY)
    today = D(2026, 9, 25)
    parsed = await FedCalendar(server.url).fetch(ctx, Window(today, today))
    assert parsed.rows[-1].date == D(2026, 10, 28)
    assert server.requests_to(PATH)[0].headers["user-agent"] == BROWSER_USER_AGENT


def test_the_meetings_page_gives_every_years_decisions(calendar: SessionCalendar) -> None:
    from bot.market.sources.fed import parse_fed_meetings_page

    body = (Path(__file__).parent / "fixtures" / "recorded" /
            "fed_fomccalendars_2026-11.html").read_bytes()
    parsed = parse_fed_meetings_page(body, today=D(2026, 11, 30), calendar=calendar)
    days = [e.date for e in parsed.rows]
    # The 2027 tentative schedule (press release of 2025-09-05): second day of each meeting.
    assert [d for d in days if d.year == 2027] == [
        D(2027, 1, 27), D(2027, 3, 17), D(2027, 4, 28), D(2027, 6, 9), D(2027, 7, 28),
        D(2027, 9, 15), D(2027, 10, 27), D(2027, 12, 8)]
    # "Jan/Feb 31-1" ends in February; minutes release dates are not meetings.
    assert D(2017, 2, 1) in days and D(2017, 11, 1) in days
    assert D(2021, 2, 17) not in days and D(2021, 5, 19) not in days
    assert {e.time_et for e in parsed.rows} == {dt.time(14, 0)}
    with pytest.raises(SourceDataError, match="no upcoming FOMC meetings after 2027-12-08"):
        parse_fed_meetings_page(body, today=D(2027, 12, 8), calendar=calendar)
    with pytest.raises(SourceDataError, match="no 'YYYY FOMC Meetings' section"):
        parse_fed_meetings_page(b"<html><body>Access Denied</body></html>", today=D(2026, 1, 1),
                                calendar=calendar)
