"""Cboe VIX/VIX3M/VIX6M history files served from 127.0.0.1 (the real shipped bytes).

Retries, 429, timeouts, stale answers and HTML bodies: tests/test_sources_contract.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from httpserver import LocalServer

from bot.kernel.errors import SourceDataError
from bot.kernel.models import Symbol
from bot.market.sources.base import SourceContext, Window
from bot.market.sources.cboe import CboeIndex, cboe_path
from bot.market.sources.files import NOT_A_SESSION
from bot.market.sources.http import BROWSER_USER_AGENT

VIX_DIR = Path(__file__).resolve().parents[1] / "bot" / "data" / "snapshot" / "vix"
D = dt.date


def test_paths() -> None:
    assert cboe_path(Symbol.VIX) == "/api/global/us_indices/daily_prices/VIX_History.csv"
    assert cboe_path(Symbol.VIX3M).endswith("/VIX3M_History.csv")
    assert cboe_path(Symbol.VIX6M).endswith("/VIX6M_History.csv")
    with pytest.raises(SourceDataError, match="no daily history for SPX"):
        cboe_path(Symbol.SPX)


async def test_vix_window_with_browser_agent(ctx: SourceContext, server: LocalServer) -> None:
    server.route(cboe_path(Symbol.VIX), VIX_DIR / "VIX_History.csv")
    parsed = await CboeIndex(Symbol.VIX, server.url).fetch(
        ctx, Window(D(2026, 3, 1), D(2026, 3, 31), D(2026, 3, 31)))
    assert parsed.source == "cboe"
    assert parsed.rows[0].session == D(2026, 3, 2) and parsed.rows[-1].close == 25.25
    assert all(b.symbol == "VIX" for b in parsed.rows)
    (request,) = server.requests_to(cboe_path(Symbol.VIX))
    assert request.headers["user-agent"] == BROWSER_USER_AGENT


async def test_holiday_rows_reported_only_inside_the_window(
    ctx: SourceContext, server: LocalServer
) -> None:
    server.route(cboe_path(Symbol.VIX), VIX_DIR / "VIX_History.csv")
    vix = CboeIndex(Symbol.VIX, server.url)
    whole = await vix.fetch(ctx, Window(D(1990, 1, 2), D(2026, 3, 31)))
    assert len(whole.dropped) == 30
    window = await vix.fetch(ctx, Window(D(2022, 5, 1), D(2022, 6, 30)))
    assert [(d.date, d.reason) for d in window.dropped] == [
        (D(2022, 5, 30), NOT_A_SESSION),
        (D(2022, 6, 20), NOT_A_SESSION),
    ]


async def test_vix3m_and_vix6m(ctx: SourceContext, server: LocalServer) -> None:
    for symbol, name in ((Symbol.VIX3M, "VIX3M_History.csv"), (Symbol.VIX6M, "VIX6M_History.csv")):
        server.route(cboe_path(symbol), VIX_DIR / name)
        parsed = await CboeIndex(symbol, server.url).fetch(
            ctx, Window(D(2026, 4, 1), D(2026, 4, 24), D(2026, 4, 24)))
        assert parsed.rows[-1].session == D(2026, 4, 24) and parsed.rows[-1].symbol == symbol
    assert [b.close for b in parsed.rows][-1] == 23.27


async def test_stale_file(ctx: SourceContext, server: LocalServer) -> None:
    server.route(cboe_path(Symbol.VIX), VIX_DIR / "VIX_History.csv")
    with pytest.raises(
        SourceDataError, match="cboe: stale: newest row 2026-03-31, expected 2026-04-01"
    ):
        await CboeIndex(Symbol.VIX, server.url).fetch(
            ctx, Window(D(2026, 3, 1), D(2026, 4, 1), D(2026, 4, 1)))


async def test_catch_up_run_for_an_earlier_session(ctx: SourceContext, server: LocalServer) -> None:
    """A re-run for 2026-03-27 must not fail because the file already has 03-31."""
    server.route(cboe_path(Symbol.VIX), VIX_DIR / "VIX_History.csv")
    parsed = await CboeIndex(Symbol.VIX, server.url).fetch(
        ctx, Window(D(2026, 3, 1), D(2026, 3, 27), D(2026, 3, 27)))
    assert parsed.rows[-1].session == D(2026, 3, 27)


async def test_yesterdays_bar_as_todays(ctx: SourceContext, server: LocalServer) -> None:
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
        await CboeIndex(Symbol.VIX, server.url).fetch(
            ctx, Window(D(2026, 3, 31), D(2026, 3, 31), D(2026, 3, 31)))
