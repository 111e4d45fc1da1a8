"""S&P 500 daily bars from Yahoo's v8 chart API (primary SPX source).

Yahoo answers 429 to library user agents, so a browser User-Agent is sent.
Daily bars are stamped at the session open (09:30 ET) in epoch seconds; the
session date is taken in America/New_York, never UTC (a UTC date would be
right by luck at 13:30Z and wrong for any bar stamped after 20:00 ET).

Quirks of the real service, each survived without refusing good data
(public reports: pandas-datareader #610, yfinance #573 and #1070,
yahooquery #123 and #127):

* **Nulls.** Yahoo fills the price arrays with ``null`` where it has no value.
  On the newest row a null close means the day is not final yet; on a past
  row (July 2026: for weeks) the session is damaged. Either way the row is
  dropped with its reason, the rest of the answer is kept, and the chain
  fills that session from the next source. A close with null open, high or
  low is kept as a close-only bar; null volume is kept as ``None`` (index
  volume is informational only).
* **The newest session listed twice** just after the close: the 09:30 bar
  and a "live" bar stamped at the close, same prices, another volume. When
  the closes agree the later row is kept (it matches Yahoo's own page);
  duplicates whose closes disagree are both dropped with the two values,
  since neither can be trusted.
* **The live bar during the session** carries the live price under the
  session's 09:30 stamp; :class:`bot.market.sources.base.BarSource` drops
  any bar of a session that has not closed.
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
NULL_ROW = "null close: Yahoo left the session empty"
CLOSE_TOLERANCE = 0.005
"""Two listings of one session whose closes agree to the cent are the same print."""
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
    rows: dict[dt.date, Bar] = {}
    dropped: dict[dt.date, Dropped] = {}
    newest = max(days)
    # In the answer's order: of two rows for one date the later one wins.
    for i, day in enumerate(days):
        if not is_session(calendar, day, SOURCE):
            dropped[day] = Dropped(day, NOT_A_SESSION)
            continue
        prices = {n: _number(columns[n][i], n, day) for n in _PRICES}
        volume = _number(columns["volume"][i], "volume", day)
        close = prices["close"]
        if close is None:
            if day in rows:
                continue  # a null duplicate: the row already read stands
            dropped.setdefault(day, Dropped(day, NOT_FINAL if day == newest else NULL_ROW))
            continue
        # A close without open/high/low is kept as close-only (like FRED's rows).
        bar = Bar(symbol=symbol, session=day, close=close, source=SOURCE,
                  open=prices["open"], high=prices["high"], low=prices["low"], volume=volume)
        earlier = rows.get(day)
        if earlier is not None and abs(earlier.close - bar.close) > CLOSE_TOLERANCE:
            del rows[day]
            dropped[day] = Dropped(day, f"listed twice with different closes ({earlier.close} "
                                        f"and {bar.close}): neither kept")
            continue
        if day in dropped and dropped[day].reason.startswith("listed twice"):
            continue
        dropped.pop(day, None)  # a null copy followed by a full one
        rows[day] = bar
    return Parsed(SOURCE, tuple(rows[d] for d in sorted(rows)),
                  tuple(dropped[d] for d in sorted(dropped)))


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
