"""FOMC decision dates from the Federal Reserve's ``calendar.json``.

The file starts with a UTF-8 byte-order mark and lists every kind of Fed
event. Only rows with ``type == "FOMC"`` *and* a title starting "FOMC
Meeting" are decisions: the same type also covers "FOMC Minutes" (three
weeks later) and "FOMC Press Conference", which must not become blackouts.

``days`` comes as "28" (the decision day only, as in 2026 recordings),
"27-28", "27 - 28", "27,28", or "31-1" for a meeting that crosses a month
end; the decision is on the last day listed. The statement time is taken
from ``time`` ("2:00 p.m.") and defaults to 14:00 ET.
"""

from __future__ import annotations

import calendar as monthcal
import datetime as dt
import re
from collections.abc import Mapping

from bot.kernel.errors import SourceDataError
from bot.kernel.models import Event, EventKind, Parsed
from bot.kernel.sessions import SessionCalendar
from bot.market.sources.base import EventSource, SourceContext, Window
from bot.market.sources.body import html_text, load_json
from bot.market.sources.http import BROWSER_USER_AGENT

SOURCE = "fed"
FED_BASE = "https://www.federalreserve.gov"
PATH = "/json/calendar.json"
DECISION_TIME = dt.time(14, 0)

_MEETING = re.compile(r"fomc meeting\b")
_MONTH = re.compile(r"(\d{4})-(\d{1,2})")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})\s*([ap])\.?\s*m\.?", re.IGNORECASE)


def _fail(reason: str) -> SourceDataError:
    return SourceDataError(SOURCE, reason)


def decision_day(month: object, days: object) -> dt.date:
    """The last day of a meeting from ``month`` ("2026-11") and ``days`` ("27,28")."""
    match = _MONTH.fullmatch(str(month or "").strip())
    numbers = [int(n) for n in re.findall(r"\d+", str(days or ""))]
    if match is None or not numbers:
        raise _fail(f"unparseable FOMC meeting month={month!r} days={days!r}")
    year, mon = int(match[1]), int(match[2])
    last = numbers[-1]
    if len(numbers) > 1 and last < numbers[0]:
        # "31-1": the meeting ends in the following month.
        year, mon = (year + 1, 1) if mon == 12 else (year, mon + 1)
    if not 1 <= mon <= 12 or not 1 <= last <= monthcal.monthrange(year, mon)[1]:
        raise _fail(f"impossible FOMC meeting date month={month!r} days={days!r}")
    return dt.date(year, mon, last)


def decision_time(raw: object) -> dt.time:
    """ "2:00 p.m." to 14:00; absent or unreadable means the usual 14:00."""
    match = _CLOCK.search(str(raw or ""))
    if match is None:
        return DECISION_TIME
    hour, minute = int(match[1]) % 12, int(match[2])
    if match[3].lower() == "p":
        hour += 12
    return dt.time(hour, minute)


def parse_fed_calendar(
    body: bytes | str, *, today: dt.date, calendar: SessionCalendar
) -> Parsed[Event]:
    """FOMC decisions in ``calendar.json``; none after ``today`` is a failure.

    A meeting row that cannot be dated is an error (one lost meeting would be
    a missing blackout); rows of other types and non-objects are ignored.
    The same meeting listed twice collapses into one event.
    """
    data = load_json(body, SOURCE)
    events = data.get("events") if isinstance(data, Mapping) else None
    if not isinstance(events, list):
        raise _fail("unexpected JSON: no 'events' list")
    found: dict[dt.date, Event] = {}
    for row in events:
        if not isinstance(row, Mapping) or str(row.get("type", "")).strip().upper() != "FOMC":
            continue
        if not _MEETING.match(" ".join(str(row.get("title", "")).lower().split())):
            continue
        day = decision_day(row.get("month"), row.get("days"))
        if not calendar.first <= day <= calendar.last:
            raise _fail(f"FOMC date {day} is outside the session calendar")
        found.setdefault(day, Event(EventKind.FOMC, day, SOURCE, decision_time(row.get("time"))))
    if not any(day > today for day in found):
        raise _fail(f"no upcoming FOMC events after {today}")
    return Parsed(SOURCE, tuple(found[d] for d in sorted(found)))


class FedCalendar(EventSource):
    """FOMC decision dates published by the Fed (``calendar.json``)."""

    name = SOURCE

    def __init__(self, base_url: str = FED_BASE) -> None:
        super().__init__(base_url)

    async def answer(self, ctx: SourceContext, window: Window) -> Parsed[Event]:
        response = await ctx.get(
            SOURCE, f"{self.base_url}{PATH}",
            headers={"User-Agent": BROWSER_USER_AGENT, "Accept": "application/json"},
        )
        return parse_fed_calendar(response.content, today=window.end, calendar=ctx.calendar)


# -- the meetings page: the next year's tentative schedule --------------------------------

MEETINGS_PAGE = "/monetarypolicy/fomccalendars.htm"
"""The Fed's "Meeting calendars and information" page: every year's meetings, and the
next year's tentative schedule, announced months before ``calendar.json`` lists it."""
_MONTHS = {name: i for i, name in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september",
     "october", "november", "december"), start=1)}
_MONTH_NAME = r"(Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|" \
         r"Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
_YEAR_HEADING = re.compile(r"\b(\d{4}) FOMC Meetings\b")
_MEETING_ROW = re.compile(
    rf"(?<!Released )\b{_MONTH_NAME}(?:/{_MONTH_NAME})?\s+(\d{{1,2}})(?:\s*-\s*(\d{{1,2}}))?\*?"
    r"(?!,?\s*\d{4})(\s*\((?:unscheduled|notation vote)\))?", re.IGNORECASE)


def _month(name: str) -> int:
    key = name.lower()
    return next(n for full, n in _MONTHS.items() if full.startswith(key[:3]))


def parse_fed_meetings_page(
    body: bytes | str, *, today: dt.date, calendar: SessionCalendar
) -> Parsed[Event]:
    """Scheduled FOMC decisions from the meetings page ("2027 FOMC Meetings ... March 16-17*").

    A meeting's decision is on its last day ("Jan/Feb 31-1": February 1).
    Unscheduled actions and notation votes are left out: they come from
    ``calendar.json`` on their own day. Minutes release dates ("Released May
    19, 2021") are not meetings. None after ``today`` is a failure.
    """
    text = html_text(body.decode("utf-8-sig", "replace") if isinstance(body, bytes) else body)
    headings = list(_YEAR_HEADING.finditer(text))
    if not headings:
        raise _fail("no 'YYYY FOMC Meetings' section on the meetings page")
    found: dict[dt.date, Event] = {}
    for i, head in enumerate(headings):
        year = int(head.group(1))
        section = text[head.end(): headings[i + 1].start() if i + 1 < len(headings) else None]
        for row in _MEETING_ROW.finditer(section):
            first, second, start_day, end_day, unscheduled = row.groups()
            if unscheduled:
                continue
            month = _month(second or first)
            day = int(end_day or start_day)
            try:
                decision = dt.date(year, month, day)
            except ValueError:
                raise _fail(f"impossible FOMC meeting {row.group(0)!r} in {year}") from None
            if not calendar.first <= decision <= calendar.last:
                continue
            found.setdefault(decision, Event(EventKind.FOMC, decision, MEETINGS_SOURCE,
                                             DECISION_TIME))
    if not any(day > today for day in found):
        raise SourceDataError(MEETINGS_SOURCE, f"no upcoming FOMC meetings after {today}")
    return Parsed(MEETINGS_SOURCE, tuple(found[d] for d in sorted(found)))


MEETINGS_SOURCE = "fed-meetings"


class FedMeetingsPage(EventSource):
    """The Fed's meetings page: the next year's tentative FOMC schedule."""

    name = MEETINGS_SOURCE

    def __init__(self, base_url: str = FED_BASE) -> None:
        super().__init__(base_url)

    async def answer(self, ctx: SourceContext, window: Window) -> Parsed[Event]:
        response = await ctx.get(
            MEETINGS_SOURCE, f"{self.base_url}{MEETINGS_PAGE}",
            headers={"User-Agent": BROWSER_USER_AGENT, "Accept": "text/html,*/*"},
        )
        return parse_fed_meetings_page(response.content, today=window.end,
                                       calendar=ctx.calendar)
