"""NYSE advancers/decliners for today from the WSJ Markets Diary JSON.

There is no free history feed for NYSE breadth after Feb 2020, so this one
daily snapshot is how the bot accumulates its A/D history. The answer has
no date parameter: it is always "the latest close", dated by
``data.timestamp`` ("Monday, July 27, 2026"), which must be the session the
run is for.

The NYSE table (``headerFields[0].label == "NYSE"``; NASDAQ and NYSE
American tables sit beside it) repeats row ids: volume rows come twice,
starred for the NYSE floor only and unstarred for all US venues. A row is
therefore identified by its id *and* its displayed name, and any ambiguity is
an error rather than a guess. Volumes are the unstarred (all-venue) rows,
which is what the Unicorn history carries.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence

from bot.kernel.errors import SourceDataError
from bot.kernel.models import Breadth, Dropped, Parsed
from bot.kernel.sessions import SessionCalendar
from bot.market.sources.base import BreadthSource, Reach, SourceContext, Window
from bot.market.sources.body import load_json
from bot.market.sources.files import is_session
from bot.market.sources.http import BROWSER_USER_AGENT

SOURCE = "wsj"
WSJ_BASE = "https://www.wsj.com"
PAGE = "/market-data/stocks/marketsdiary"
DIARY_ID = json.dumps({"application": "WSJ", "marketsDiaryType": "diaries"}, separators=(",", ":"))
TABLE = "NYSE"

_COUNTS = ("advances", "declines", "unchanged")
_VOLUMES = {"adv_volume": "adv. volume", "dec_volume": "decl. volume"}


def _fail(reason: str) -> SourceDataError:
    return SourceDataError(SOURCE, reason)


def _display(name: object) -> str:
    return str(name or "").strip().lower()


def _issue_name(name: object) -> str:
    """Displayed name without footnote marks: "Advances*" and "Advances" are one row kind."""
    return _display(name).rstrip("*†‡ ")


def parse_timestamp(raw: object) -> dt.date:
    """ "Monday, July 27, 2026" to a date (zero-padded days appear too)."""
    text = " ".join(str(raw or "").split())
    for fmt in ("%A, %B %d, %Y", "%B %d, %Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a date, no time
        except ValueError:
            continue
    raise _fail(f"unrecognised data.timestamp {raw!r} (expected like 'Monday, July 27, 2026')")


def _nyse_table(sets: Sequence[object]) -> Sequence[Mapping[str, object]]:
    labels: list[str] = []
    found: list[Sequence[Mapping[str, object]]] = []
    for entry in sets:
        if not isinstance(entry, Mapping):
            continue
        headers = entry.get("headerFields")
        first = headers[0] if isinstance(headers, list) and headers else None
        label = str(first.get("label", "")).strip() if isinstance(first, Mapping) else ""
        labels.append(label or "?")
        if label.upper() == TABLE:
            rows = entry.get("instruments")
            if not isinstance(rows, list):
                raise _fail("NYSE table has no 'instruments' list")
            found.append([r for r in rows if isinstance(r, Mapping)])
    if not found:
        raise _fail(f"no NYSE table (tables: {', '.join(labels) or 'none'})")
    if len(found) > 1:
        raise _fail("more than one NYSE table")
    return found[0]


def _count(rows: Sequence[Mapping[str, object]], row_id: str, column: str, day: dt.date) -> int:
    matches = [
        r for r in rows if _display(r.get("id")) == row_id and _issue_name(r.get("name")) == row_id
    ]
    if not matches:
        names = ", ".join(f"{r.get('id')}/{r.get('name')}" for r in rows)
        raise _fail(f"NYSE table has no {row_id!r} row (rows: {names})")
    if len(matches) > 1:
        raise _fail(f"NYSE table has {len(matches)} {row_id!r} rows; refusing to guess")
    raw = matches[0].get(column)
    try:
        value = int(str(raw).replace(",", "").strip())
    except ValueError:
        raise _fail(f"non-numeric {row_id} {column} {raw!r} on {day}") from None
    if value < 0:
        raise _fail(f"negative {row_id} {column} {raw!r} on {day}")
    return value


def _volume(
    rows: Sequence[Mapping[str, object]], name: str, column: str, day: dt.date
) -> float | None:
    matches = [r for r in rows if _display(r.get("name")) == name]
    if not matches:
        return None
    if len(matches) > 1:
        raise _fail(f"NYSE table has {len(matches)} {name!r} rows; refusing to guess")
    raw = matches[0].get(column)
    try:
        return float(str(raw).replace(",", "").strip())
    except ValueError:
        raise _fail(f"non-numeric {name} {raw!r} on {day}") from None


def _row(rows: Sequence[Mapping[str, object]], counts: Mapping[str, int], column: str,
         day: dt.date) -> Breadth:
    volumes = {field: _volume(rows, name, column, day) for field, name in _VOLUMES.items()}
    return Breadth(session=day, advancers=counts["advances"], decliners=counts["declines"],
                   source=SOURCE, unchanged=counts["unchanged"],
                   adv_volume=volumes["adv_volume"], dec_volume=volumes["dec_volume"])


def parse_wsj_diary(body: bytes | str, *, calendar: SessionCalendar) -> Parsed[Breadth]:
    """The diary JSON to :class:`Breadth` rows: ``data.timestamp``'s session from
    ``latestClose``, and the session before it from ``previousClose``.

    After the next open the diary is dated the new session and its latest
    figures are live (dropped later as not closed), while the previous
    session's *final* figures are in ``previousClose``: that is how a
    catch-up run after the open still gets D. Refused: a timestamp that is
    not a session, and latest figures identical to the previous close in all
    three counts (yesterday's table under today's date: neither can be
    trusted). Latest figures of 0 and 0 (the table before it is filled) drop
    that row, with its reason, and keep the previous session's.
    """
    data = load_json(body, SOURCE)
    root = data.get("data") if isinstance(data, Mapping) else None
    if not isinstance(root, Mapping):
        raise _fail("unexpected JSON: no 'data' object")
    day = parse_timestamp(root.get("timestamp"))
    if not is_session(calendar, day, SOURCE):
        raise _fail(f"data.timestamp {day} is not an NYSE session")
    sets = root.get("instrumentSets")
    if not isinstance(sets, list):
        raise _fail("unexpected JSON: no 'data.instrumentSets' list")
    rows = _nyse_table(sets)
    latest = {k: _count(rows, k, "latestClose", day) for k in _COUNTS}
    before = calendar.previous_session(day)
    try:
        previous = {k: _count(rows, k, "previousClose", before) for k in _COUNTS}
    except SourceDataError:
        previous = None
    if previous == latest:
        raise _fail(
            f"yesterday's figures presented as today's: latest close equals previous close "
            f"({latest['advances']} adv, {latest['declines']} dec, {latest['unchanged']} unch)"
        )
    out: list[Breadth] = []
    dropped: list[Dropped] = []
    if previous is not None and (previous["advances"] or previous["declines"]):
        out.append(_row(rows, previous, "previousClose", before))
    if latest["advances"] == 0 and latest["declines"] == 0:
        dropped.append(Dropped(day, f"placeholder figures on {day}: 0 advances and 0 declines"))
    else:
        out.append(_row(rows, latest, "latestClose", day))
    if not out:
        raise _fail(f"placeholder figures on {day}: 0 advances and 0 declines")
    return Parsed(SOURCE, tuple(out), tuple(dropped))


class WsjDiary(BreadthSource):
    """The latest session's NYSE breadth from the Markets Diary, and the session before
    it from ``previousClose`` (no date parameter: ``LATEST``, two sessions)."""

    name = SOURCE
    reach = Reach.LATEST
    recent = 2

    def __init__(self, base_url: str = WSJ_BASE) -> None:
        super().__init__(base_url)

    async def answer(self, ctx: SourceContext, window: Window) -> Parsed[Breadth]:
        response = await ctx.get(
            SOURCE,
            f"{self.base_url}{PAGE}",
            params={"id": DIARY_ID, "type": "mdc_marketsdiary"},
            headers={
                "User-Agent": BROWSER_USER_AGENT,
                "Accept": "application/json, text/plain, */*",
                "Referer": f"{WSJ_BASE}{PAGE}",
            },
        )
        return parse_wsj_diary(response.content, calendar=ctx.calendar)
