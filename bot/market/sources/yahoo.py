"""S&P 500 daily bars from Yahoo's v8 chart API (primary SPX source).

Yahoo answers 429 to library user agents, so a browser User-Agent is sent.
Daily bars are stamped at the session open (09:30 ET) in epoch seconds; the
session date is taken in America/New_York, never UTC (a UTC date would be
right by luck at 13:30Z and wrong for any bar stamped after 20:00 ET).

Nulls: Yahoo fills the price arrays with ``null`` where it has no value.
On the *newest* row a null close means the day is not final yet: that row is
dropped with a reason, and a live fetch then fails as stale. Anywhere else a
null price is a damaged answer and the whole answer is refused. Null volume
is kept as ``None``: index volume is informational only.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from urllib.parse import quote

from bot.kernel.errors import SourceDataError
from bot.kernel.models import Bar, Dropped, Parsed, Symbol
from bot.kernel.sessions import ET, SessionCalendar
from bot.market.sources.base import BarSource, SourceContext, Window
from bot.market.sources.body import load_json
from bot.market.sources.files import NOT_A_SESSION, is_session
from bot.market.sources.http import BROWSER_USER_AGENT

SOURCE = "yahoo"
YAHOO_BASE = "https://query1.finance.yahoo.com"
SPX_TICKER = "^GSPC"
NOT_FINAL = "close not yet available (null newest close)"
_PRICES = ("open", "high", "low", "close")


def _mapping(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise SourceDataError(SOURCE, f"unexpected JSON: {what} is not an object")
    return value


def _list(value: object, what: str) -> Sequence[object]:
    if not isinstance(value, list):
        raise SourceDataError(SOURCE, f"unexpected JSON: {what} is not a list")
    return value


def _number(value: object, what: str, day: dt.date) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SourceDataError(SOURCE, f"non-numeric {what} {value!r} on {day}")
    return float(value)


def parse_yahoo_chart(
    body: bytes | str,
    *,
    calendar: SessionCalendar,
    symbol: str = Symbol.SPX,
    ticker: str = SPX_TICKER,
) -> Parsed[Bar]:
    """A v8 chart answer to bars, oldest first."""
    chart = _mapping(_mapping(load_json(body, SOURCE), "the body").get("chart"), "chart")
    error = chart.get("error")
    if error:
        detail = (
            error
            if not isinstance(error, Mapping)
            else (f"{error.get('code', '?')}: {error.get('description', '')}")
        )
        raise SourceDataError(SOURCE, f"chart.error {detail}")
    results = _list(chart.get("result"), "chart.result")
    if not results:
        raise SourceDataError(SOURCE, "chart.result is empty")
    result = _mapping(results[0], "chart.result[0]")
    meta = result.get("meta")
    if isinstance(meta, Mapping) and meta.get("symbol") not in (None, ticker):
        raise SourceDataError(SOURCE, f"answer is for {meta.get('symbol')!r}, not {ticker!r}")
    stamps = _list(result.get("timestamp", []), "chart.result[0].timestamp")
    if not stamps:
        raise SourceDataError(SOURCE, "no bars in the answer")
    indicators = _mapping(result.get("indicators"), "indicators")
    quotes = _list(indicators.get("quote"), "indicators.quote")
    if not quotes:
        raise SourceDataError(SOURCE, "indicators.quote is empty")
    quote = _mapping(quotes[0], "indicators.quote[0]")
    columns: dict[str, Sequence[object]] = {}
    for name in (*_PRICES, "volume"):
        if name not in quote:
            raise SourceDataError(SOURCE, f"indicators.quote[0] lacks {name!r}")
        columns[name] = _list(quote[name], f"indicators.quote[0].{name}")
        if len(columns[name]) != len(stamps):
            raise SourceDataError(
                SOURCE,
                f"truncated answer: {len(stamps)} timestamps, {len(columns[name])} {name} values",
            )

    days: list[dt.date] = []
    for stamp in stamps:
        if isinstance(stamp, bool) or not isinstance(stamp, int):
            raise SourceDataError(SOURCE, f"bad timestamp {stamp!r}")
        days.append(dt.datetime.fromtimestamp(stamp, tz=ET).date())
    order = sorted(range(len(days)), key=days.__getitem__)
    seen: set[dt.date] = set()
    for day in days:
        if day in seen:
            raise SourceDataError(SOURCE, f"duplicate date {day}")
        seen.add(day)

    rows: list[Bar] = []
    dropped: list[Dropped] = []
    newest = days[order[-1]]
    for i in order:
        day = days[i]
        if not is_session(calendar, day, SOURCE):
            dropped.append(Dropped(day, NOT_A_SESSION))
            continue
        prices = {n: _number(columns[n][i], n, day) for n in _PRICES}
        volume = _number(columns["volume"][i], "volume", day)
        close = prices["close"]
        if close is None:
            if day == newest:
                dropped.append(Dropped(day, NOT_FINAL))
                continue
            raise SourceDataError(SOURCE, f"null close on {day}")
        if day != newest:
            for name in ("open", "high", "low"):
                if prices[name] is None:
                    raise SourceDataError(SOURCE, f"null {name} on {day}")
        rows.append(
            Bar(
                symbol=symbol,
                session=day,
                close=close,
                source=SOURCE,
                open=prices["open"],
                high=prices["high"],
                low=prices["low"],
                volume=volume,
            )
        )
    return Parsed(SOURCE, tuple(rows), tuple(dropped))


def _epoch(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(0), tzinfo=ET).timestamp())


class YahooChart(BarSource):
    """Daily bars of one Yahoo ticker: ``^GSPC`` for SPX (the default), or an ETP hedge."""

    name = SOURCE

    def __init__(
        self, base_url: str = YAHOO_BASE, *, ticker: str = SPX_TICKER, symbol: str = Symbol.SPX
    ) -> None:
        super().__init__(base_url)
        self.ticker, self.symbol = ticker, symbol

    async def answer(self, ctx: SourceContext, window: Window) -> Parsed[Bar]:
        response = await ctx.get(
            SOURCE,
            f"{self.base_url}/v8/finance/chart/{quote(self.ticker, safe='')}",
            params={
                "period1": str(_epoch(window.start)),
                "period2": str(_epoch(window.end + dt.timedelta(days=1))),
                "interval": "1d",
                "includePrePost": "false",
            },
            headers={"User-Agent": BROWSER_USER_AGENT, "Accept": "application/json"},
        )
        return parse_yahoo_chart(response.content, calendar=ctx.calendar, symbol=self.symbol,
                                 ticker=self.ticker)
