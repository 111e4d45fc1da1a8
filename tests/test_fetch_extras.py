"""Optional Cboe inputs (VX settlements, SPX chain) from a local server; failures are notes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
from httpserver import LocalServer, Reply

from bot.fetch import fetch_extras
from bot.sessions import ET

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
            extras = await fetch_extras(
                client, calendar, D(2026, 8, 18), now=dt.datetime(2026, 8, 18, 17, tzinfo=ET),
                settlement_url=f"{srv.url}/settlement", chain_url=f"{srv.url}/chain.json",
            )
    assert extras.notes == []
    assert extras.settlements and all(p > 0 for p in extras.settlements.values())
    assert extras.chain is not None and len(extras.chain.quotes) > 100


async def test_failures_become_notes_and_the_model_is_used(calendar):
    with LocalServer() as srv:
        srv.route("/settlement", Reply(200, b"<html>Just a moment...</html>"))
        async with httpx.AsyncClient(timeout=5) as client:
            extras = await fetch_extras(
                client, calendar, D(2026, 8, 17), now=dt.datetime(2026, 8, 18, 17, tzinfo=ET),
                settlement_url=f"{srv.url}/settlement", chain_url=f"{srv.url}/chain.json",
            )
    assert extras.settlements is None and extras.chain is None
    assert "hedge priced from the proxy" in extras.notes[0] and "HTML" in extras.notes[0]
    assert "only available for the latest session" in extras.notes[1]
