"""VIX, VIX3M and VIX6M daily history from Cboe's CDN (primary volatility source).

Each file is the whole history (VIX since 1990), so a live fetch downloads
~400 KB and keeps the requested window. The CSV parser lives in
:mod:`bot.market.sources.files` because ``alvh data import`` reads the same files.
Cboe computes VIX on some NYSE holidays; those rows are dropped and reported
by the parser and then trimmed to the window like every other row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping

import httpx

from bot.kernel.errors import SourceDataError
from bot.kernel.models import Bar, Parsed, Symbol
from bot.kernel.sessions import SessionCalendar
from bot.market.sources.files import parse_cboe_csv
from bot.market.sources.http import BROWSER_USER_AGENT, RetryPolicy, Sleep, get
from bot.market.sources.validate import DEFAULT_POLICY, fresh_window

SOURCE = "cboe"
CBOE_BASE = "https://cdn.cboe.com"

FILES: Mapping[Symbol, str] = {
    Symbol.VIX: "VIX_History.csv",
    Symbol.VIX3M: "VIX3M_History.csv",
    Symbol.VIX6M: "VIX6M_History.csv",
}


def cboe_path(symbol: Symbol) -> str:
    """URL path of ``symbol``'s history file on the CDN."""
    name = FILES.get(symbol)
    if name is None:
        raise SourceDataError(SOURCE, f"Cboe publishes no daily history for {symbol}")
    return f"/api/global/us_indices/daily_prices/{name}"


async def fetch_cboe_index(
    client: httpx.AsyncClient,
    symbol: Symbol,
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    expect: dt.date | None = None,
    calendar: SessionCalendar,
    base_url: str = CBOE_BASE,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Sleep = asyncio.sleep,
    previous: Bar | None = None,
) -> Parsed[Bar]:
    """Bars of ``symbol`` inside ``start..end`` (open ends keep the whole file).

    With ``expect`` and no ``end``, the window ends at ``expect``: a catch-up
    run for an earlier session must not trip over the rows after it.
    """
    if end is None:
        end = expect
    response = await get(
        client,
        SOURCE,
        f"{base_url}{cboe_path(symbol)}",
        # The CDN has answered 403 to bare library user agents.
        headers={"User-Agent": BROWSER_USER_AGENT, "Accept": "text/csv,*/*"},
        policy=policy,
        sleep=sleep,
    )
    parsed = parse_cboe_csv(response.content, symbol, SOURCE, calendar)
    return fresh_window(
        SOURCE, parsed, start, end, expect=expect, calendar=calendar, previous=previous
    )
