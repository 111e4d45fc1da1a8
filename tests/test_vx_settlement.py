"""Cboe CFE settlement CSV: recorded bodies, broken bodies, and the fetcher over MockTransport."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from conftest import make_ctx
from httpserver import RecordingSleep

from bot.kernel.errors import SourceDataError, SourceUnavailable
from bot.kernel.sessions import get_calendar
from bot.market.sources.http import RetryPolicy
from bot.market.sources.vx_settlement import (
    BASE_URL,
    SOURCE,
    VxSettlements,
    parse_vx_settlements,
)

D = dt.date
FIXTURES = Path(__file__).parent / "fixtures" / "vx_settlement"
SEP_01 = (FIXTURES / "settlement_2026-09-01.csv").read_bytes()
AUG_19 = (FIXTURES / "settlement_2026-08-19.csv").read_bytes()
HEADER = b"Product,Symbol,Expiration Date,Price\r\n"


def test_keeps_vx_monthlies_only() -> None:
    assert parse_vx_settlements(SEP_01) == {
        D(2026, 9, 16): 17.2528,
        D(2026, 10, 21): 18.8535,
        D(2026, 11, 18): 19.3489,
        D(2026, 12, 16): 19.4024,
        D(2027, 1, 20): 20.4496,
    }


def test_changed_settlement_star_and_expiring_contract() -> None:
    prices = parse_vx_settlements(AUG_19)
    assert len(prices) == 7
    assert prices[D(2026, 8, 19)] == 15.29  # expiring on the trade date: still listed
    assert prices[D(2027, 2, 17)] == 21.9532  # recorded as "21.9532*"
    assert D(2026, 8, 26) not in prices  # the weekly VX34/Q6
    assert list(prices) == sorted(prices)


def test_bom_and_lf_line_ends_are_accepted() -> None:
    body = b"\xef\xbb\xbf" + SEP_01.replace(b"\r\n", b"\n")
    assert parse_vx_settlements(body) == parse_vx_settlements(SEP_01)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<!DOCTYPE html><html><body>Access Denied</body></html>", "HTML"),
        (b"", "empty"),
        (b"  \r\n", "empty"),
        (HEADER, "no VX monthly"),
        (
            HEADER + b"VXM,VXM/U6,2026-09-16,17.2528\r\nVX,VX35/U6,2026-09-02,17.2528\r\n",
            "no VX monthly",
        ),
        (b"Product,Symbol,Price\r\nVX,VX/U6,17.25\r\n", "missing columns"),
        (SEP_01[: SEP_01.index(b"VX/Z6") + 12], "truncated"),  # ends "VX,VX/Z6,2026-1"
        (HEADER + b"VX,VX/U6,2026-09-16", "truncated"),
        (HEADER + b"VX,VX/U6,2026-09-16,n/a\r\n", "not a number"),
        (HEADER + b"VX,VX/U6,2026-09-16,\r\n", "not a number"),
        (HEADER + b"VX,VX/U6,2026-09-16,-1.5\r\n", "not a positive number"),
        (HEADER + b"VX,VX/U6,2026-09-16,17.1\r\nVX,VX/U6,2026-09-16,17.2\r\n", "twice"),
        (HEADER + b"VX,VX/U6,16/09/2026,17.1\r\n", "YYYY-MM-DD"),
        (HEADER + b"VX,VX/V6,2026-09-16,17.1\r\n", "does not match"),
        (b"\xff\xfeP\x00r\x00", "UTF-8"),
    ],
)
def test_broken_bodies_are_source_data_errors(body: bytes, reason: str) -> None:
    with pytest.raises(SourceDataError, match=reason) as info:
        parse_vx_settlements(body)
    assert info.value.source == SOURCE == "cboe-vx-settlement"


def _client(handler: httpx.MockTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=handler)


async def test_fetch_sends_the_date_and_a_browser_agent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            content=SEP_01,
            headers={
                "Content-Type": "text/csv",
                "Content-Disposition": "attachment; filename=FuturesSettlements_2026-09-01.csv",
            },
        )

    async with _client(httpx.MockTransport(handler)) as client:
        prices = await VxSettlements().fetch(make_ctx(client, get_calendar()), D(2026, 9, 1))
    assert prices[D(2027, 1, 20)] == 20.4496
    (request,) = seen
    assert str(request.url).startswith(BASE_URL)
    assert request.url.params["dt"] == "2026-09-01"
    assert request.headers["User-Agent"].startswith("Mozilla/5.0")


async def test_fetch_refuses_another_days_file() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content=AUG_19,
            headers={
                "Content-Disposition": "attachment; filename=FuturesSettlements_2026-08-19.csv"
            },
        )

    async with _client(httpx.MockTransport(handler)) as client:
        with pytest.raises(SourceUnavailable, match="served the 2026-08-19 file"):
            await VxSettlements().fetch(make_ctx(client, get_calendar()), D(2026, 8, 20))


async def test_fetch_html_page_is_a_data_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html><body>Just a moment...</body></html>")

    async with _client(httpx.MockTransport(handler)) as client:
        with pytest.raises(SourceDataError, match="HTML"):
            await VxSettlements().fetch(make_ctx(client, get_calendar()), D(2026, 9, 1))


async def test_fetch_retries_server_errors_with_the_given_policy() -> None:
    calls: list[int] = []
    sleeps = RecordingSleep()

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503) if len(calls) == 1 else httpx.Response(200, content=SEP_01)

    async with _client(httpx.MockTransport(handler)) as client:
        ctx = make_ctx(client, get_calendar(), sleeps,
                       policy=RetryPolicy(attempts=2, base_delay=0.01))
        prices = await VxSettlements("http://cboe.test/csv").fetch(ctx, D(2026, 9, 1))
    assert len(calls) == 2 and len(sleeps.delays) == 1
    assert len(prices) == 5
