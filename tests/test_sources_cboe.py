"""Cboe VIX/VIX3M/VIX6M history files served from 127.0.0.1 (the real shipped bytes)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from httpserver import LocalServer, RecordingSleep, Reply

from bot.kernel.errors import SourceDataError, SourceUnavailable
from bot.kernel.models import Symbol
from bot.kernel.sessions import SessionCalendar
from bot.market.sources.cboe import cboe_path, fetch_cboe_index
from bot.market.sources.files import NOT_A_SESSION
from bot.market.sources.http import BROWSER_USER_AGENT, RetryPolicy

VIX_DIR = Path(__file__).resolve().parents[1] / "bot" / "data" / "snapshot" / "vix"
POLICY = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)
D = dt.date


def test_paths() -> None:
    assert cboe_path(Symbol.VIX) == "/api/global/us_indices/daily_prices/VIX_History.csv"
    assert cboe_path(Symbol.VIX3M).endswith("/VIX3M_History.csv")
    assert cboe_path(Symbol.VIX6M).endswith("/VIX6M_History.csv")
    with pytest.raises(SourceDataError, match="no daily history for SPX"):
        cboe_path(Symbol.SPX)


async def test_vix_window_with_browser_agent(
    client: httpx.AsyncClient,
    server: LocalServer,
    calendar: SessionCalendar,
    sleeps: RecordingSleep,
) -> None:
    server.route(cboe_path(Symbol.VIX), VIX_DIR / "VIX_History.csv")
    parsed = await fetch_cboe_index(
        client,
        Symbol.VIX,
        D(2026, 3, 1),
        expect=D(2026, 3, 31),
        calendar=calendar,
        base_url=server.url,
        policy=POLICY,
        sleep=sleeps,
    )
    assert parsed.source == "cboe"
    assert parsed.rows[0].session == D(2026, 3, 2) and parsed.rows[-1].close == 25.25
    assert all(b.symbol == "VIX" for b in parsed.rows)
    (request,) = server.requests_to(cboe_path(Symbol.VIX))
    assert request.headers["user-agent"] == BROWSER_USER_AGENT


async def test_holiday_rows_reported_only_inside_the_window(
    client: httpx.AsyncClient,
    server: LocalServer,
    calendar: SessionCalendar,
    sleeps: RecordingSleep,
) -> None:
    server.route(cboe_path(Symbol.VIX), VIX_DIR / "VIX_History.csv")
    whole = await fetch_cboe_index(
        client, Symbol.VIX, calendar=calendar, base_url=server.url, policy=POLICY, sleep=sleeps
    )
    assert len(whole.dropped) == 30
    window = await fetch_cboe_index(
        client,
        Symbol.VIX,
        D(2022, 5, 1),
        D(2022, 6, 30),
        calendar=calendar,
        base_url=server.url,
        policy=POLICY,
        sleep=sleeps,
    )
    assert [(d.date, d.reason) for d in window.dropped] == [
        (D(2022, 5, 30), NOT_A_SESSION),
        (D(2022, 6, 20), NOT_A_SESSION),
    ]


async def test_vix3m_and_vix6m(
    client: httpx.AsyncClient,
    server: LocalServer,
    calendar: SessionCalendar,
    sleeps: RecordingSleep,
) -> None:
    for symbol, name in ((Symbol.VIX3M, "VIX3M_History.csv"), (Symbol.VIX6M, "VIX6M_History.csv")):
        server.route(cboe_path(symbol), VIX_DIR / name)
        parsed = await fetch_cboe_index(
            client,
            symbol,
            D(2026, 4, 1),
            expect=D(2026, 4, 24),
            calendar=calendar,
            base_url=server.url,
            policy=POLICY,
            sleep=sleeps,
        )
        assert parsed.rows[-1].session == D(2026, 4, 24) and parsed.rows[-1].symbol == symbol
    assert [b.close for b in parsed.rows][-1] == 23.27


async def test_stale_file(
    client: httpx.AsyncClient,
    server: LocalServer,
    calendar: SessionCalendar,
    sleeps: RecordingSleep,
) -> None:
    server.route(cboe_path(Symbol.VIX), VIX_DIR / "VIX_History.csv")
    with pytest.raises(
        SourceDataError, match="cboe: stale: newest row 2026-03-31, expected 2026-04-01"
    ):
        await fetch_cboe_index(
            client,
            Symbol.VIX,
            D(2026, 3, 1),
            expect=D(2026, 4, 1),
            calendar=calendar,
            base_url=server.url,
            policy=POLICY,
            sleep=sleeps,
        )


async def test_catch_up_run_for_an_earlier_session(
    client: httpx.AsyncClient,
    server: LocalServer,
    calendar: SessionCalendar,
    sleeps: RecordingSleep,
) -> None:
    """A re-run for 2026-03-27 must not fail because the file already has 03-31."""
    server.route(cboe_path(Symbol.VIX), VIX_DIR / "VIX_History.csv")
    parsed = await fetch_cboe_index(
        client,
        Symbol.VIX,
        D(2026, 3, 1),
        expect=D(2026, 3, 27),
        calendar=calendar,
        base_url=server.url,
        policy=POLICY,
        sleep=sleeps,
    )
    assert parsed.rows[-1].session == D(2026, 3, 27)


async def test_yesterdays_bar_as_todays(
    client: httpx.AsyncClient,
    server: LocalServer,
    calendar: SessionCalendar,
    sleeps: RecordingSleep,
) -> None:
    body = (
        "DATE,OPEN,HIGH,LOW,CLOSE\n"
        "03/27/2026,31.05,31.90,29.10,30.03\n"
        "03/30/2026,30.79,31.52,29.33,30.61\n"
        "03/31/2026,30.79,31.52,29.33,30.61\n"
    )
    server.route(cboe_path(Symbol.VIX), body)
    with pytest.raises(
        SourceDataError, match="yesterday's bar presented as today's: 2026-03-31 repeats 2026-03-30"
    ):
        await fetch_cboe_index(
            client,
            Symbol.VIX,
            expect=D(2026, 3, 31),
            calendar=calendar,
            base_url=server.url,
            policy=POLICY,
            sleep=sleeps,
        )


async def test_html_and_errors(
    client: httpx.AsyncClient,
    server: LocalServer,
    calendar: SessionCalendar,
    sleeps: RecordingSleep,
) -> None:
    path = cboe_path(Symbol.VIX)
    server.route(path, b"<!DOCTYPE html><html><body>Access Denied</body></html>")
    with pytest.raises(SourceDataError, match="HTML page instead of CSV"):
        await fetch_cboe_index(
            client, Symbol.VIX, calendar=calendar, base_url=server.url, policy=POLICY, sleep=sleeps
        )
    server.route(path, Reply(502))
    with pytest.raises(SourceUnavailable, match="cboe: HTTP 502 after 2 attempts"):
        await fetch_cboe_index(
            client, Symbol.VIX, calendar=calendar, base_url=server.url, policy=POLICY, sleep=sleeps
        )
    assert len(server.requests_to(path)) == 1 + 2
