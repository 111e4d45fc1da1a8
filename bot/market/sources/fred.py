"""FRED: daily closes (fallback for SPX, VIX, VIX3M) and CPI/PPI release dates.

``fredgraph.csv`` needs no key and returns ``observation_date,<ID>`` with
empty values on holidays. The release-dates API needs a free key that only
travels as a query parameter, which is why it is a :class:`SecretStr` here
and why :func:`install_key_redaction` scrubs query-string keys from httpx's
own request log lines (httpx logs full URLs at INFO level).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import Mapping

import httpx
from pydantic import SecretStr

from bot.kernel.errors import SourceDataError, SourceError, SourceUnavailable
from bot.kernel.models import Bar, Event, EventKind, Parsed, Symbol
from bot.kernel.sessions import SessionCalendar
from bot.market.sources.body import load_json
from bot.market.sources.files import parse_fred_csv
from bot.market.sources.http import RetryPolicy, Sleep, get
from bot.market.sources.validate import DEFAULT_POLICY, fresh_window

SOURCE = "fred"
FRED_GRAPH_BASE = "https://fred.stlouisfed.org"
FRED_API_BASE = "https://api.stlouisfed.org"

SERIES: Mapping[Symbol, str] = {Symbol.SPX: "SP500", Symbol.VIX: "VIXCLS", Symbol.VIX3M: "VXVCLS"}
"""FRED series per symbol; FRED has no VIX6M."""

RELEASE_IDS: Mapping[EventKind, int] = {EventKind.CPI: 10, EventKind.PPI: 46}
RELEASE_TIME = dt.time(8, 30)
"""BLS publishes CPI and PPI at 08:30 ET."""

RELEASE_LOOKBACK = dt.timedelta(days=400)
"""How far back release dates are requested: enough for the proximity of past
events in a year of history, small enough to stay one page."""

_KEY_IN_QUERY = re.compile(r"(?i)\b(api_?key)=[^&\s\"']+")


class _RedactKeys(logging.Filter):
    """Replace ``api_key=…``/``apikey=…`` values in a log record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _KEY_IN_QUERY.search(message):
            record.msg = _KEY_IN_QUERY.sub(r"\1=***", message)
            record.args = ()
        return True


_REDACTOR = _RedactKeys()


def install_key_redaction() -> None:
    """Make httpx's request log lines safe for sources keyed by query string.

    Idempotent; called by the keyed fetchers so that no configuration of
    logging elsewhere can leak a key through httpx's INFO line.
    """
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)


def redact(text: str, secret: SecretStr) -> str:
    """``text`` without the secret's value, for error messages built from answers."""
    value = secret.get_secret_value()
    return text.replace(value, "***") if value else text


def redacted(exc: SourceError, secret: SecretStr) -> SourceError:
    """The same kind of error with the secret removed from its reason."""
    reason = redact(exc.reason, secret)
    if isinstance(exc, SourceUnavailable):
        return SourceUnavailable(exc.source, reason)
    return SourceDataError(exc.source, reason)


# -- daily series ----------------------------------------------------------------


async def fetch_fred_series(
    client: httpx.AsyncClient,
    symbol: Symbol,
    start: dt.date,
    end: dt.date,
    *,
    expect: dt.date | None = None,
    calendar: SessionCalendar,
    base_url: str = FRED_GRAPH_BASE,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Sleep = asyncio.sleep,
) -> Parsed[Bar]:
    """Closes of ``symbol`` for ``start..end`` from ``fredgraph.csv``."""
    series = SERIES.get(symbol)
    if series is None:
        raise SourceDataError(SOURCE, f"FRED has no series for {symbol}")
    response = await get(
        client,
        SOURCE,
        f"{base_url}/graph/fredgraph.csv",
        params={"id": series, "cosd": start.isoformat(), "coed": end.isoformat()},
        policy=policy,
        sleep=sleep,
    )
    parsed = parse_fred_csv(response.content, symbol, SOURCE, calendar, series=series)
    return fresh_window(SOURCE, parsed, start, end, expect=expect, calendar=calendar)


# -- release dates (CPI, PPI) ---------------------------------------------------------


def parse_fred_release_dates(
    body: bytes | str,
    kind: EventKind,
    *,
    today: dt.date,
    calendar: SessionCalendar,
) -> Parsed[Event]:
    """``{"release_dates": [{"release_id": 10, "date": "YYYY-MM-DD"}, ...]}`` to events.

    A schedule with nothing after ``today`` is a failure, not an empty
    calendar: a feed that silently stops listing future dates would
    otherwise switch the blackout logic off without anyone noticing.
    """
    release_id = RELEASE_IDS[kind]
    data = load_json(body, SOURCE)
    if not isinstance(data, Mapping):
        raise SourceDataError(SOURCE, "unexpected JSON: the body is not an object")
    if "error_message" in data:
        raise SourceDataError(SOURCE, f"API error: {data.get('error_message')}")
    rows = data.get("release_dates")
    if not isinstance(rows, list):
        raise SourceDataError(SOURCE, "unexpected JSON: no 'release_dates' list")
    days: set[dt.date] = set()
    for row in rows:
        if not isinstance(row, Mapping):
            raise SourceDataError(SOURCE, f"unexpected release_dates entry {row!r}")
        if row.get("release_id") != release_id:
            raise SourceDataError(
                SOURCE, f"release_id {row.get('release_id')!r} in a release {release_id} answer"
            )
        raw = row.get("date")
        try:
            day = dt.date.fromisoformat(str(raw))
        except ValueError:
            raise SourceDataError(SOURCE, f"bad release date {raw!r}") from None
        if not calendar.first <= day <= calendar.last:
            raise SourceDataError(SOURCE, f"release date {day} is outside the session calendar")
        days.add(day)
    if not any(day > today for day in days):
        raise SourceDataError(SOURCE, f"no upcoming {kind} release dates after {today}")
    events = tuple(Event(kind, day, SOURCE, RELEASE_TIME) for day in sorted(days))
    return Parsed(SOURCE, events)


async def fetch_release_dates(
    client: httpx.AsyncClient,
    kind: EventKind,
    api_key: SecretStr,
    *,
    today: dt.date,
    calendar: SessionCalendar,
    base_url: str = FRED_API_BASE,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Sleep = asyncio.sleep,
) -> Parsed[Event]:
    """CPI or PPI release dates around ``today`` (past year and all scheduled)."""
    install_key_redaction()
    params = {
        "release_id": str(RELEASE_IDS[kind]),
        "api_key": api_key.get_secret_value(),
        "file_type": "json",
        "include_release_dates_with_no_data": "true",
        "realtime_start": (today - RELEASE_LOOKBACK).isoformat(),
        "sort_order": "asc",
    }
    try:
        response = await get(
            client,
            SOURCE,
            f"{base_url}/fred/release/dates",
            params=params,
            policy=policy,
            sleep=sleep,
        )
        return parse_fred_release_dates(response.content, kind, today=today, calendar=calendar)
    except SourceError as exc:
        failure = redacted(exc, api_key)
    # Raised outside the handler so the original (unredacted) error is not
    # even kept as __context__ for a traceback or error reporter to print.
    raise failure
