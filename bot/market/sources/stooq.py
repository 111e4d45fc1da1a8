"""S&P 500 daily bars from Stooq: an optional SPX fallback, used only with a key.

Since March 2026 Stooq serves CSV only with an ``apikey``; without one (or
with a bad one) it answers 200 with an HTML page or a one-line message, so
the status code proves nothing and the body is checked: anything but the
``Date,Open,High,Low,Close,Volume`` header is a failure with its first line
quoted (key redacted).
"""

from __future__ import annotations

from pydantic import SecretStr

from bot.kernel.errors import SourceDataError, SourceError
from bot.kernel.models import Bar, Parsed, Symbol
from bot.kernel.sessions import SessionCalendar
from bot.market.sources.base import BarSource, SourceContext, Window
from bot.market.sources.body import decode_body
from bot.market.sources.files import parse_ohlc_csv
from bot.market.sources.fred import install_key_redaction, redacted
from bot.market.sources.http import BROWSER_USER_AGENT

SOURCE = "stooq"
STOOQ_BASE = "https://stooq.com"
SPX_TICKER = "^spx"


def parse_stooq_csv(
    body: bytes | str, *, calendar: SessionCalendar, symbol: str = Symbol.SPX
) -> Parsed[Bar]:
    """A Stooq daily CSV to bars; Stooq's one-line refusals are errors."""
    text = decode_body(body, SOURCE)
    first = text.strip().splitlines()[0].strip()
    if not first.lower().startswith("date,"):
        lowered = first.lower()
        if "no data" in lowered:
            reason = "answered 'No data'"
        elif "apikey" in lowered or "api key" in lowered:
            reason = f"API key refused or required: {first[:80]!r}"
        elif "limit" in lowered:
            reason = f"request limit reached: {first[:80]!r}"
        else:
            reason = f"not a Stooq CSV: first line {first[:80]!r}"
        raise SourceDataError(SOURCE, reason)
    return parse_ohlc_csv(text, symbol, SOURCE, calendar)


class Stooq(BarSource):
    """SPX daily bars, with an API key (``apikey`` travels in the query: redacted)."""

    name = SOURCE

    def __init__(self, api_key: SecretStr, base_url: str = STOOQ_BASE) -> None:
        super().__init__(base_url)
        self.api_key = api_key

    async def answer(self, ctx: SourceContext, window: Window) -> Parsed[Bar]:
        install_key_redaction()
        params = {
            "s": SPX_TICKER,
            "i": "d",
            "d1": window.start.strftime("%Y%m%d"),
            "d2": window.end.strftime("%Y%m%d"),
            "apikey": self.api_key.get_secret_value(),
        }
        response = await ctx.get(SOURCE, f"{self.base_url}/q/d/l/", params=params,
                                 headers={"User-Agent": BROWSER_USER_AGENT})
        return parse_stooq_csv(response.content, calendar=ctx.calendar)

    async def fetch(self, ctx: SourceContext, window: Window) -> Parsed[Bar]:
        """As every source, with the key removed from any error's reason."""
        try:
            return await super().fetch(ctx, window)
        except SourceError as exc:
            failure = redacted(exc, self.api_key)
        raise failure  # outside the handler: no unredacted __context__
