"""VIX, VIX3M and VIX6M daily history from Cboe's CDN (primary volatility source).

Each file is the whole history (VIX since 1990), so a live fetch downloads
~400 KB and keeps the requested window. The CSV parser lives in
:mod:`bot.market.sources.files` because ``alvh data import`` reads the same files.
Cboe computes VIX on some NYSE holidays; those rows are dropped and reported
by the parser and then trimmed to the window like every other row.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.kernel.errors import SourceDataError
from bot.kernel.models import Bar, Parsed, Symbol
from bot.market.sources.base import BarSource, SourceContext, Window
from bot.market.sources.files import parse_cboe_csv
from bot.market.sources.http import BROWSER_USER_AGENT

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


class CboeIndex(BarSource):
    """One volatility index's daily history (the whole file; the window is kept)."""

    name = SOURCE

    def __init__(self, symbol: Symbol, base_url: str = CBOE_BASE) -> None:
        super().__init__(base_url)
        self.path = cboe_path(symbol)
        self.symbol = symbol

    async def answer(self, ctx: SourceContext, window: Window) -> Parsed[Bar]:
        response = await ctx.get(
            SOURCE,
            f"{self.base_url}{self.path}",
            # The CDN has answered 403 to bare library user agents.
            headers={"User-Agent": BROWSER_USER_AGENT, "Accept": "text/csv,*/*"},
        )
        return parse_cboe_csv(response.content, self.symbol, SOURCE, ctx.calendar)
