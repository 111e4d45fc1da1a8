"""Optional Cboe inputs (VX settlements, SPX chain) from a local server; failures are notes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from conftest import make_ctx
from httpserver import LocalServer, Reply

from bot.kernel.sessions import ET
from bot.market.fetch import fetch_extras
from bot.market.sources.chain import Endpoints

FIX = Path(__file__).parent / "fixtures"
D = dt.date


async def test_settlements_and_chain_are_used_when_served(calendar):
    with LocalServer() as srv:
        srv.route("/settlement", Reply(
            200, (FIX / "vx_settlement/settlement_2026-08-19.csv").read_bytes(),
            {"Content-Disposition": "attachment; filename=FuturesSettlements_2026-08-18.csv"},
        ))
        srv.route("/chain.json", FIX / "cboe_options/spx_chain_2026-08-18.json")
        async with httpx.AsyncClient(timeout=5) as client:
            ctx = make_ctx(client, calendar, now=dt.datetime(2026, 8, 18, 17, tzinfo=ET))
            extras = await fetch_extras(ctx, D(2026, 8, 18), Endpoints(
                vx_settlement=f"{srv.url}/settlement", cboe_chain=f"{srv.url}/chain.json"))
    assert extras.notes == []
    assert extras.settlements and all(p > 0 for p in extras.settlements.values())
    assert extras.chain is not None and len(extras.chain.quotes) > 100


async def test_failures_become_notes_and_the_model_is_used(calendar):
    with LocalServer() as srv:
        srv.route("/settlement", Reply(200, b"<html>Just a moment...</html>"))
        async with httpx.AsyncClient(timeout=5) as client:
            ctx = make_ctx(client, calendar, now=dt.datetime(2026, 8, 18, 17, tzinfo=ET))
            extras = await fetch_extras(ctx, D(2026, 8, 17), Endpoints(
                vx_settlement=f"{srv.url}/settlement", cboe_chain=f"{srv.url}/chain.json"))
    assert extras.settlements is None and extras.chain is None
    assert "hedge priced from the proxy" in extras.notes[0] and "HTML" in extras.notes[0]
    assert "only available for the latest session" in extras.notes[1]


async def test_an_etp_hedge_is_priced_from_its_yahoo_close(calendar):
    body = (FIX / "recorded/yahoo_chart_gspc_2026-02.json").read_text()
    body = body.replace('"symbol":"^GSPC"', '"symbol":"VXX"')
    assert '"symbol":"VXX"' in body
    with LocalServer() as srv:
        srv.route("/v8/finance/chart/VXX", Reply(200, body.encode()))
        async with httpx.AsyncClient(timeout=5) as client:
            ctx = make_ctx(client, calendar, now=dt.datetime(2026, 2, 27, 17, tzinfo=ET))
            extras = await fetch_extras(ctx, D(2026, 2, 27), Endpoints.all_at(srv.url),
                                        etp_symbol="VXX")
    assert extras.etp_price == 6878.88  # the recorded closes, relabelled as VXX
    assert extras.settlements is None  # VX settlements are not fetched for an ETP hedge
    assert any("SPX option chain unavailable" in n for n in extras.notes)


def test_an_etp_layer_is_sized_in_shares(calendar):
    from bot.engine.evaluate import evaluate_session
    from bot.engine.rules import default_rules_path, load_rules_text
    from bot.engine.state import LayerState

    text = default_rules_path().read_text()
    text = text.replace("    kind: vx_future ", "    kind: etp ").replace(
        "    etp_symbol: null ", "    etp_symbol: VXX ")
    rules = load_rules_text(text)
    values = {"close": 5000.0, "macd_divergence_days": 3, "ad_divergence_days": 12,
              "macd_hist": -1.0, "rsi": 45.0, "vix": 18.0, "vix3m": 19.0, "vix6m": 20.0,
              "blackout": False, "blackout_kind": ""}
    ev = evaluate_session(D(2024, 6, 20), values, LayerState(), rules, calendar=calendar,
                          capital=100_000, etp_price=47.5)
    (add,) = [a for a in ev.actions if a.decision.action == "add"]
    assert add.quote is not None and add.quote.symbol == "VXX" and add.quote.unit_cost == 47.5
    assert add.size is not None and add.size.quantity == 31  # floor(1.5 % of 100,000 / 47.5)
    assert ev.state_after.layers[0].quantity == 31


async def test_nothing_is_fetched_before_the_close(calendar, tmp_path):
    from bot.kernel.errors import DataIncomplete
    from bot.market.fetch import fetch_session
    from bot.market.sources.chain import default_chains
    from bot.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'a.sqlite'}")
    with LocalServer() as srv:
        async with httpx.AsyncClient(timeout=5) as client:
            ctx = make_ctx(client, calendar, now=dt.datetime(2026, 2, 27, 11, 0, tzinfo=ET))
            chains = default_chains(Endpoints.all_at(srv.url))
            with pytest.raises(DataIncomplete, match="has not closed yet"):
                await fetch_session(ctx, chains, store, D(2026, 2, 27))
        assert srv.requests == []
    store.close()
