"""Cboe delayed-quotes SPX chain: OSI symbols, the recorded-structure fixture, broken bodies."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from conftest import make_ctx

from bot.kernel.errors import SourceDataError
from bot.kernel.sessions import get_calendar
from bot.market.sources.cboe_options import (
    SOURCE,
    URL,
    CboeChain,
    parse_osi,
    parse_spx_chain,
)

D = dt.date
ET = ZoneInfo("America/New_York")
BODY = (
    Path(__file__).parent / "fixtures" / "cboe_options" / "spx_chain_2026-08-18.json"
).read_bytes()


def doc(options: list[Any], **data: Any) -> bytes:
    payload: dict[str, Any] = {"current_price": 7745.06, "options": options}
    payload.update(data)
    return json.dumps(
        {"timestamp": "2026-08-18 20:29:59", "symbol": "_SPX", "data": payload}
    ).encode()


ROW = {
    "option": "SPXW260918P07410000",
    "bid": 31.85,
    "ask": 32.4,
    "iv": 0.165,
    "delta": -0.1602,
    "open_interest": 1363.0,
}


def test_parse_osi() -> None:
    assert parse_osi("SPXW260828P06790000") == ("SPXW", D(2026, 8, 28), "put", 6790.0)
    assert parse_osi("SPX261016C08000000") == ("SPX", D(2026, 10, 16), "call", 8000.0)
    assert parse_osi("SPXW260828C00002500") == ("SPXW", D(2026, 8, 28), "call", 2.5)
    assert parse_osi("SPXW  260828C06790000") == ("SPXW", D(2026, 8, 28), "call", 6790.0)
    for bad in ("NOT-A-SYMBOL", "SPXW260828X06790000", "SPXW2608P06790000", "SPXW261328P06790000"):
        with pytest.raises(ValueError):
            parse_osi(bad)


def test_fixture_envelope() -> None:
    chain = parse_spx_chain(BODY)
    assert chain.underlying == "^SPX"
    assert chain.spot == 7745.0601 and chain.close == 7745.0601 and chain.prev_close == 7732.75
    assert chain.published == dt.datetime(2026, 8, 18, 20, 29, 59, tzinfo=dt.UTC)
    assert chain.last_trade_time == dt.datetime(2026, 8, 18, 16, 14, 59, tzinfo=ET)
    assert len(chain.quotes) == 263
    assert chain.expiries("SPXW") == [D(2026, 8, 28), D(2026, 9, 18)]
    assert chain.expiries("SPX") == [D(2026, 9, 18)]


def test_recorded_row_is_typed() -> None:
    chain = parse_spx_chain(BODY)
    (row,) = [q for q in chain.quotes if q.symbol == "SPXW260828P06790000"]
    assert (row.root, row.expiry, row.right, row.strike) == ("SPXW", D(2026, 8, 28), "put", 6790.0)
    assert (row.bid, row.ask, row.iv, row.delta) == (0.65, 0.9, 0.3092, -0.0061)
    assert row.open_interest == 151 and isinstance(row.open_interest, int)
    assert row.mid == pytest.approx(0.775)
    # Zero bids far out of the money are kept as published: judging them is the condor's job.
    assert any(q.bid == 0 for q in chain.quotes)


def test_null_and_missing_greeks_become_none() -> None:
    rows = [
        {**ROW, "iv": None, "delta": None, "open_interest": None},
        {"option": "SPX261016C08000000", "bid": 70.0, "ask": 72.4},
        {**ROW, "option": "SPXW260918C08050000", "iv": "NaN", "delta": "", "open_interest": ""},
    ]
    quotes = parse_spx_chain(doc(rows)).quotes
    assert [(q.iv, q.delta, q.open_interest) for q in quotes] == [(None, None, None)] * 3
    assert parse_spx_chain(doc(rows)).last_trade_time is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"<html><head><title>403 Forbidden</title></head></html>", "HTML"),
        (BODY[: len(BODY) // 2], "truncated or invalid JSON"),
        (b"[1, 2, 3]", "no 'data'"),
        (json.dumps({"data": {"current_price": 7745.0}}).encode(), "no 'data.options'"),
        (doc([]), "empty"),
        (doc([ROW], current_price=None), "current_price"),
        (doc([ROW], current_price=0), "current_price"),
        (doc([{**ROW, "option": "NOT-A-SYMBOL"}]), "not an OSI option symbol"),
        (doc([{**ROW, "option": None}]), "no 'option'"),
        (doc([{**ROW, "bid": "abc"}]), "bid is not a number"),
        (doc([{k: v for k, v in ROW.items() if k != "ask"}]), "ask is missing"),
        (doc([{**ROW, "bid": True}]), "bid is not a number"),
        (doc([["SPXW260918P07410000", 31.85]]), "not an object"),
    ],
)
def test_broken_bodies_are_source_data_errors(body: bytes, reason: str) -> None:
    with pytest.raises(SourceDataError, match=reason) as info:
        parse_spx_chain(body)
    assert info.value.source == SOURCE == "cboe-spx-options"


async def test_fetch_checks_the_session_and_sends_a_browser_agent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=BODY, headers={"Content-Type": "application/json"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        ctx = make_ctx(client, get_calendar())
        chain = await CboeChain().fetch(ctx, session=D(2026, 8, 18))
        assert chain.spot == 7745.0601
        with pytest.raises(SourceDataError, match="not on session 2026-08-19"):
            await CboeChain().fetch(ctx, session=D(2026, 8, 19))
        # Without a session there is nothing to compare: the chain is returned.
        assert len((await CboeChain().fetch(ctx)).quotes) == 263
    assert str(seen[0].url) == URL
    assert seen[0].headers["User-Agent"].startswith("Mozilla/5.0")


async def test_fetch_refuses_an_undated_chain_when_a_session_is_asked() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=doc([ROW]))

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(SourceDataError, match="no last_trade_time"):
            await CboeChain("http://cboe.test/_SPX.json").fetch(
                make_ctx(client, get_calendar()), session=D(2026, 8, 18))
