"""S&P 500 daily bars from Stooq: an optional SPX fallback, used only with a key.

Since March 2026 Stooq serves CSV only with an ``apikey``; without one (or
with a bad one) it answers 200 with an HTML page or a one-line message, so
the status code proves nothing and the body is checked: anything but the
``Date,Open,High,Low,Close,Volume`` header is a failure with its first line
quoted (key redacted).
"""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
from pydantic import SecretStr

from bot.kernel.errors import SourceDataError, SourceError
from bot.kernel.models import Bar, Parsed, Symbol
from bot.kernel.sessions import SessionCalendar
from bot.market.sources.body import decode_body
from bot.market.sources.files import parse_ohlc_csv
from bot.market.sources.fred import install_key_redaction, redacted
from bot.market.sources.http import BROWSER_USER_AGENT, RetryPolicy, Sleep, get
from bot.market.sources.validate import DEFAULT_POLICY, fresh_window

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


async def fetch_spx_stooq(
    client: httpx.AsyncClient,
    api_key: SecretStr,
    start: dt.date,
    end: dt.date,
    *,
    expect: dt.date | None = None,
    calendar: SessionCalendar,
    base_url: str = STOOQ_BASE,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Sleep = asyncio.sleep,
    previous: Bar | None = None,
) -> Parsed[Bar]:
    """SPX bars for ``start..end``; with ``expect``, the newest must be that session."""
    install_key_redaction()
    params = {
        "s": SPX_TICKER,
        "i": "d",
        "d1": start.strftime("%Y%m%d"),
        "d2": end.strftime("%Y%m%d"),
        "apikey": api_key.get_secret_value(),
    }
    try:
        response = await get(
            client,
            SOURCE,
            f"{base_url}/q/d/l/",
            params=params,
            headers={"User-Agent": BROWSER_USER_AGENT},
            policy=policy,
            sleep=sleep,
        )
        parsed = fresh_window(
            SOURCE,
            parse_stooq_csv(response.content, calendar=calendar),
            start,
            end,
            expect=expect,
            calendar=calendar,
            previous=previous,
        )
    except SourceError as exc:
        failure = redacted(exc, api_key)
    else:
        return parsed
    raise failure  # outside the handler: no unredacted __context__
