"""Cboe Futures Exchange daily settlement CSV → VX monthly settlement prices.

The file (``/us/futures/market_statistics/settlement/csv?dt=YYYY-MM-DD``) lists
every CFE contract for one trade date::

    Product,Symbol,Expiration Date,Price
    VX,VX34/Q6,2026-08-26,17.6066      <- weekly VX: week number before the slash
    VX,VX/U6,2026-09-16,17.6066        <- monthly VX: kept
    VXM,VXM/U6,2026-09-16,17.6066      <- Mini VIX and other products: ignored

Only monthly VX rows are kept; the hedge uses monthlies 3–6 months out, and
weeklies that did not trade carry a repeated reference price. Quirks seen in
public recordings of the file and handled here: CRLF line ends, an optional
UTF-8 BOM, and a ``*`` after a price (Cboe's mark for a changed settlement
value: the number is still the settlement). When the requested date is not
published yet, Cboe answers 200 with the *latest* published file and names it
in ``Content-Disposition: attachment; filename=FuturesSettlements_<date>.csv``;
:meth:`VxSettlements.fetch` refuses that rather than pass yesterday off as today.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re

import httpx

from bot.engine.expirations import VX_MONTH_CODES
from bot.kernel.errors import SourceDataError, SourceUnavailable
from bot.market.sources.base import SourceContext
from bot.market.sources.body import decode_body
from bot.market.sources.http import BROWSER_USER_AGENT

SOURCE = "cboe-vx-settlement"
BASE_URL = "https://www.cboe.com/us/futures/market_statistics/settlement/csv"
COLUMNS = ("Product", "Symbol", "Expiration Date", "Price")

_MONTHLY = re.compile(r"^VX/([FGHJKMNQUVXZ])(\d)$")
_FILENAME_DATE = re.compile(r"FuturesSettlements_(\d{4}-\d{2}-\d{2})\.csv")


def _fail(reason: str) -> SourceDataError:
    return SourceDataError(SOURCE, reason)


def _price(text: str, symbol: str) -> float:
    raw = text.strip().rstrip("*").strip()
    try:
        value = float(raw)
    except ValueError:
        raise _fail(f"{symbol}: price {text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise _fail(f"{symbol}: price {text!r} is not a positive number")
    return value


def parse_vx_settlements(body: bytes) -> dict[dt.date, float]:
    """{expiration date: settlement price} for the VX monthly contracts in ``body``.

    Anything that is not a complete settlement file raises
    :class:`~bot.kernel.errors.SourceDataError`: an HTML page, an empty or header-only
    body, missing columns, a short (truncated) row, an unparseable date or
    price, a symbol whose month code disagrees with its expiration date, a
    duplicated symbol, or no VX monthly at all.
    """
    text = decode_body(body, SOURCE)  # HTML, XML errors, empty or non-UTF-8 bodies

    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader)]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise _fail(f"missing columns {missing}; header was {header}")
    index = {name: header.index(name) for name in COLUMNS}

    prices: dict[dt.date, float] = {}
    seen: set[str] = set()
    for line_no, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            raise _fail(f"line {line_no} has {len(row)} fields, expected {len(header)}: truncated?")
        product = row[index["Product"]].strip()
        symbol = row[index["Symbol"]].strip()
        if product != "VX":
            continue
        match = _MONTHLY.match(symbol)
        if match is None:
            continue  # weekly (VX34/Q6) or an unknown VX series
        if symbol in seen:
            raise _fail(f"symbol {symbol} appears twice")
        seen.add(symbol)
        try:
            expiry = dt.date.fromisoformat(row[index["Expiration Date"]].strip())
        except ValueError:
            raise _fail(
                f"{symbol}: expiration {row[index['Expiration Date']]!r} is not YYYY-MM-DD"
            ) from None
        code, year_digit = match.groups()
        if VX_MONTH_CODES[expiry.month - 1] != code or expiry.year % 10 != int(year_digit):
            raise _fail(f"{symbol} does not match its expiration date {expiry}")
        prices[expiry] = _price(row[index["Price"]], symbol)
    if not prices:
        raise _fail("no VX monthly contracts in the file")
    return dict(sorted(prices.items()))


def _served_date(response: httpx.Response) -> dt.date | None:
    match = _FILENAME_DATE.search(response.headers.get("Content-Disposition", ""))
    if match is None:
        return None
    try:
        return dt.date.fromisoformat(match.group(1))
    except ValueError:
        return None


class VxSettlements:
    """Cboe's settlement file for one trade date: VX monthly settlement prices."""

    name = SOURCE

    def __init__(self, base_url: str = BASE_URL) -> None:
        self.base_url = base_url.rstrip("/")

    async def fetch(self, ctx: SourceContext, day: dt.date) -> dict[dt.date, float]:
        """VX monthly settlements for trade date ``day``.

        Raises :class:`~bot.kernel.errors.SourceUnavailable` when Cboe serves another
        date's file (the requested one is not published yet: worth retrying later),
        and :class:`~bot.kernel.errors.SourceDataError` when the body is not usable.
        """
        response = await ctx.get(
            SOURCE, self.base_url, params={"dt": day.isoformat()},
            headers={"User-Agent": BROWSER_USER_AGENT, "Accept": "text/csv,*/*"},
        )
        served = _served_date(response)
        if served is not None and served != day:
            raise SourceUnavailable(
                SOURCE, f"asked for {day}, Cboe served the {served} file: not published yet"
            )
        return parse_vx_settlements(response.content)
