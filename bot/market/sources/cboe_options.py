"""Cboe delayed quotes for the SPX option chain (``_SPX.json``, ~14 MB).

Shape, as read by public clients of the endpoint (OpenBB's Cboe provider and
several probes recorded in 2026)::

    {"timestamp": "2026-08-28 20:29:59",          <- publication time, UTC
     "symbol": "_SPX",
     "data": {"symbol": "^SPX", "security_type": "index",
              "current_price": 7745.06, "close": ..., "prev_day_close": ...,
              "last_trade_time": "2026-08-28T16:14:59",   <- New York local time
              "options": [{"option": "SPXW260828P06790000",
                           "bid": 0.65, "ask": 0.9, "iv": 0.3092,
                           "delta": -0.0061, "open_interest": 151.0, ...}, ...]}}

The ``option`` field is an OSI symbol without padding: root (``SPX`` for the
AM-settled monthlies, ``SPXW`` for the PM-settled dailies/weeklies), YYMMDD,
``C``/``P``, strike × 1000 in eight digits. Numbers arrive as floats (open
interest ``151.0``) and a greek can be ``null``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bot.kernel.errors import SourceDataError
from bot.kernel.models import ET_NAME
from bot.market.sources.base import SourceContext
from bot.market.sources.body import load_json
from bot.market.sources.http import BROWSER_USER_AGENT

SOURCE = "cboe-spx-options"
URL = "https://cdn.cboe.com/api/global/delayed_quotes/options/_SPX.json"

ET = ZoneInfo(ET_NAME)
Right = Literal["call", "put"]

_OSI = re.compile(r"^([A-Z]{1,6})(\d{2})(\d{2})(\d{2})([CP])(\d{8})$")


@dataclass(frozen=True, slots=True)
class OptionQuote:
    """One listed option. Prices in index points; ``iv`` decimal; ``delta`` signed."""

    symbol: str
    root: str
    expiry: dt.date
    right: Right
    strike: float
    bid: float
    ask: float
    iv: float | None
    delta: float | None
    open_interest: int | None

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2


@dataclass(frozen=True, slots=True)
class OptionChain:
    """The chain and its underlying. ``published`` is UTC; ``last_trade_time`` is ET."""

    underlying: str
    spot: float
    close: float | None
    prev_close: float | None
    published: dt.datetime | None
    last_trade_time: dt.datetime | None
    quotes: tuple[OptionQuote, ...]

    def for_expiry(self, root: str, expiry: dt.date) -> list[OptionQuote]:
        return [q for q in self.quotes if q.root == root and q.expiry == expiry]

    def expiries(self, root: str) -> list[dt.date]:
        return sorted({q.expiry for q in self.quotes if q.root == root})


def parse_osi(symbol: str) -> tuple[str, dt.date, Right, float]:
    """``SPXW260828P06790000`` → ("SPXW", 2026-08-28, "put", 6790.0)."""
    match = _OSI.match(symbol.replace(" ", ""))
    if match is None:
        raise ValueError(f"not an OSI option symbol: {symbol!r}")
    root, yy, mm, dd, cp, strike = match.groups()
    expiry = dt.date(2000 + int(yy), int(mm), int(dd))
    return root, expiry, "call" if cp == "C" else "put", int(strike) / 1000


def _fail(reason: str) -> SourceDataError:
    return SourceDataError(SOURCE, reason)


def _to_float(value: Any, what: str) -> float | None:
    """``None`` for a missing value; a float (possibly NaN/inf) for a number; raise otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _fail(f"{what} is not a number: {value!r}")
    try:
        return float(value)
    except ValueError:
        raise _fail(f"{what} is not a number: {value!r}") from None


def _required(value: Any, what: str) -> float:
    number = _to_float(value, what)
    if number is None or not math.isfinite(number):
        raise _fail(f"{what} is missing or not finite: {value!r}")
    return number


def _optional(value: Any, what: str) -> float | None:
    number = _to_float(value, what)
    return number if number is not None and math.isfinite(number) else None


def _timestamp(value: Any, tz: ZoneInfo | dt.timezone) -> dt.datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed


def _quote(row: Any, position: int) -> OptionQuote:
    if not isinstance(row, dict):
        raise _fail(f"options[{position}] is not an object")
    symbol = row.get("option")
    if not isinstance(symbol, str):
        raise _fail(f"options[{position}] has no 'option' symbol")
    try:
        root, expiry, right, strike = parse_osi(symbol)
    except ValueError as exc:
        raise _fail(f"options[{position}]: {exc}") from None
    oi = _optional(row.get("open_interest"), f"{symbol} open_interest")
    return OptionQuote(
        symbol=symbol,
        root=root,
        expiry=expiry,
        right=right,
        strike=strike,
        bid=_required(row.get("bid"), f"{symbol} bid"),
        ask=_required(row.get("ask"), f"{symbol} ask"),
        iv=_optional(row.get("iv"), f"{symbol} iv"),
        delta=_optional(row.get("delta"), f"{symbol} delta"),
        open_interest=None if oi is None else int(oi),
    )


def parse_spx_chain(body: bytes) -> OptionChain:
    """Typed quotes from a ``_SPX.json`` body.

    A body that is not that document (HTML, empty, truncated JSON, no
    ``data.options``, no positive underlying price, an option row with a
    malformed symbol or a non-numeric bid/ask) raises
    :class:`~bot.kernel.errors.SourceDataError`: a half-read chain would pick strikes
    from whatever rows happened to survive. Quotes are kept as published,
    including zero bids; judging them is the condor builder's job.
    """
    document = load_json(body, SOURCE)  # HTML, empty, truncated or invalid JSON
    if not isinstance(document, dict):
        raise _fail("no 'data' object in the document")
    data = document.get("data")
    if not isinstance(data, dict):
        raise _fail("no 'data' object in the document")
    options = data.get("options")
    if not isinstance(options, list):
        raise _fail("no 'data.options' list in the document")
    if not options:
        raise _fail("'data.options' is empty")
    spot = _optional(data.get("current_price"), "data.current_price")
    if spot is None or spot <= 0:
        raise _fail(f"underlying price data.current_price unusable: {data.get('current_price')!r}")
    close = _optional(data.get("close"), "data.close")
    prev_close = _optional(data.get("prev_day_close"), "data.prev_day_close")
    underlying = data.get("symbol")
    return OptionChain(
        underlying=underlying if isinstance(underlying, str) else "^SPX",
        spot=spot,
        close=close if close is not None and close > 0 else None,
        prev_close=prev_close if prev_close is not None and prev_close > 0 else None,
        published=_timestamp(document.get("timestamp"), dt.UTC),
        last_trade_time=_timestamp(data.get("last_trade_time"), ET),
        quotes=tuple(_quote(row, i) for i, row in enumerate(options)),
    )


class CboeChain:
    """The delayed SPX option chain (``_SPX.json``, ~14 MB): no date parameter."""

    name = SOURCE

    def __init__(self, url: str = URL) -> None:
        self.url = url

    async def fetch(self, ctx: SourceContext, session: dt.date | None = None) -> OptionChain:
        """Download and parse the chain; with ``session``, refuse a chain from another day.

        The chain is always "now". After a holiday or before Cboe rolls over it
        can still be the previous session's, which is a failed source, not data
        (DESIGN.md §3). A chain without a ``last_trade_time`` cannot be checked
        and is refused when ``session`` is set.
        """
        response = await ctx.get(
            SOURCE, self.url,
            headers={"User-Agent": BROWSER_USER_AGENT, "Accept": "application/json"},
        )
        chain = parse_spx_chain(response.content)
        if session is not None:
            traded = chain.last_trade_time
            if traded is None:
                raise _fail(
                    f"chain has no last_trade_time; cannot tell whether it is from {session}")
            if traded.astimezone(ET).date() != session:
                raise _fail(
                    f"chain last traded {traded.astimezone(ET).date()}, not on session {session}"
                )
        return chain
