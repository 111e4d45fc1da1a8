"""FRED: daily closes (fallback for SPX, VIX, VIX3M) and CPI/PPI release dates.

``fredgraph.csv`` needs no key and returns ``observation_date,<ID>`` with
empty values on holidays. The release-dates API needs a free key that only
travels as a query parameter, which is why it is a :class:`SecretStr` here
and why :func:`install_key_redaction` scrubs query-string keys from httpx's
own request log lines (httpx logs full URLs at INFO level).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping

from pydantic import SecretStr

from bot.kernel.errors import SourceDataError, SourceError, SourceUnavailable
from bot.kernel.models import Bar, Event, EventKind, Parsed, Symbol
from bot.kernel.sessions import SessionCalendar
from bot.market.sources.base import BarSource, EventSource, SourceContext, Window
from bot.market.sources.body import load_json
from bot.market.sources.files import parse_fred_csv

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
REALTIME_END = "9999-12-31"
"""FRED's "latest available": without it the answer stops at today's date."""

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


class FredSeries(BarSource):
    """Daily closes of SPX, VIX or VIX3M from ``fredgraph.csv`` (no key)."""

    name = SOURCE

    def __init__(self, symbol: Symbol, base_url: str = FRED_GRAPH_BASE) -> None:
        super().__init__(base_url)
        series = SERIES.get(symbol)
        if series is None:
            raise ValueError(f"FRED has no daily series for {symbol}")
        self.symbol, self.series = symbol, series

    async def answer(self, ctx: SourceContext, window: Window) -> Parsed[Bar]:
        response = await ctx.get(
            SOURCE,
            f"{self.base_url}/graph/fredgraph.csv",
            params={"id": self.series, "cosd": window.start.isoformat(),
                    "coed": window.end.isoformat()},
        )
        return parse_fred_csv(response.content, self.symbol, SOURCE, ctx.calendar,
                              series=self.series)


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


class FredReleaseDates(EventSource):
    """CPI or PPI release dates: the past :data:`RELEASE_LOOKBACK` and every scheduled one.

    ``realtime_end=9999-12-31`` is what makes FRED list *future* release dates
    (its default real-time period ends today); the key travels as a query
    parameter, so it is redacted from every error and log line.
    """

    name = SOURCE

    def __init__(self, kind: EventKind, api_key: SecretStr,
                 base_url: str = FRED_API_BASE) -> None:
        super().__init__(base_url)
        if kind not in RELEASE_IDS:
            raise ValueError(f"FRED has no release dates for {kind}")
        self.kind, self.api_key = kind, api_key

    async def answer(self, ctx: SourceContext, window: Window) -> Parsed[Event]:
        install_key_redaction()
        today = window.end
        params = {
            "release_id": str(RELEASE_IDS[self.kind]),
            "api_key": self.api_key.get_secret_value(),
            "file_type": "json",
            "include_release_dates_with_no_data": "true",
            "realtime_start": (today - RELEASE_LOOKBACK).isoformat(),
            "realtime_end": REALTIME_END,
            "sort_order": "asc",
        }
        try:
            response = await ctx.get(SOURCE, f"{self.base_url}/fred/release/dates",
                                     params=params)
            return parse_fred_release_dates(response.content, self.kind, today=today,
                                            calendar=ctx.calendar)
        except SourceError as exc:
            failure = redacted(exc, self.api_key)
        # Raised outside the handler so the original (unredacted) error is not
        # even kept as __context__ for a traceback or error reporter to print.
        raise failure
