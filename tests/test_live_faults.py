"""The real services' faults that used to break a live run, each against 127.0.0.1.

The live fetch for session D runs on a copy of the shipped snapshot (history up to
D's eve) with every source served from a local server in its real format. Each test
breaks the answers the way the real service did (issue 12, DESIGN.md §3) and checks
that D still gets its data, from where, and that what could not be had is said.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from conftest import make_ctx
from httpserver import LocalServer, Reply
from pydantic import SecretStr

from bot.kernel.sessions import ET
from bot.market.fetch import FetchReport, fetch_session
from bot.market.snapshot import SNAPSHOT_DIR, STORE_NAME
from bot.market.sources.base import Window
from bot.market.sources.cboe import cboe_path
from bot.market.sources.chain import Endpoints, default_chains
from bot.market.sources.fed import PATH as FED_PATH
from bot.market.sources.stooq import Stooq
from bot.store import Store, open_store

RECORDED = Path(__file__).parent / "fixtures" / "recorded"
YAHOO = "/v8/finance/chart/^GSPC"
GRAPH = "/graph/fredgraph.csv"
D = dt.date
LAST = D(2026, 2, 27)
EVENING = dt.datetime(2026, 2, 27, 16, 20, tzinfo=ET)


def chart() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDED / "yahoo_chart_gspc_2026-02.json").read_bytes())
    return data


def quote(data: dict[str, Any]) -> dict[str, list[Any]]:
    q: dict[str, list[Any]] = data["chart"]["result"][0]["indicators"]["quote"][0]
    return q


@pytest.fixture
def store(snapshot_dir: Path):
    st = open_store(f"sqlite:///{snapshot_dir / STORE_NAME}")
    with st.engine.begin() as conn:  # D's eve: the live fetch must bring D
        conn.execute(sa.text("delete from bars where session >= '2026-02-12'"))
    yield st
    st.close()


def serve_the_rest(srv: LocalServer) -> None:
    for sym in ("VIX", "VIX3M", "VIX6M"):
        srv.route(cboe_path(sym), SNAPSHOT_DIR / "vix" / f"{sym}_History.csv")
    srv.route(FED_PATH, RECORDED / "fed_calendar_2026-10.json")


async def fetch(srv: LocalServer, store: Store, calendar, now: dt.datetime = EVENING,
                **keys: Any) -> FetchReport:
    async with httpx.AsyncClient(timeout=5) as client:
        ctx = make_ctx(client, calendar, now=now)
        chains = default_chains(Endpoints.all_at(srv.url), calendar_dir=SNAPSHOT_DIR / "calendar",
                                **keys)
        return await fetch_session(ctx, chains, store, LAST)


def spx(store: Store) -> dict[dt.date, tuple[float, str]]:
    frame = store.bars("SPX", D(2026, 2, 9), LAST)
    return {ts.date(): (float(c), str(s)) for ts, c, s in
            zip(frame.index, frame["close"], frame["source"], strict=True)}


async def test_a_duplicated_newest_row_is_not_a_lost_session(store, calendar) -> None:
    """Just after the close Yahoo lists D twice (same prices, another volume) and FRED
    has no row for D yet: D's close still comes from Yahoo."""
    data = chart()
    data["chart"]["result"][0]["timestamp"].append(int(EVENING.replace(minute=0).timestamp()))
    q = quote(data)
    for name in ("open", "high", "low", "close"):
        q[name].append(q[name][-1])
    q["volume"].append(q["volume"][-1] + 1_000_000)
    fred_without_d = (RECORDED / "fred_graph_SP500_2026-02.csv").read_text().replace(
        "2026-02-27,6878.88\n", "")
    with LocalServer() as srv:
        serve_the_rest(srv)
        srv.route(YAHOO, json.dumps(data))
        srv.route(GRAPH, fred_without_d)
        report = await fetch(srv, store, calendar)
    assert report.used["SPX"] == "yahoo" and "SPX" not in report.failed
    assert spx(store)[LAST] == (6878.88, "yahoo")
    assert srv.requests_to(GRAPH) == []  # nothing was missing: FRED not even asked


async def test_past_null_rows_and_a_left_out_session_are_filled_from_fred(store,
                                                                          calendar) -> None:
    """July 2026: null OHLC on past rows; August 2026: a session left out for days.
    The rest of Yahoo's answer is kept and exactly those sessions come from FRED."""
    data = chart()
    result = data["chart"]["result"][0]
    q = quote(data)
    for name in ("open", "high", "low", "close", "volume"):
        q[name][3] = None  # 2026-02-12
    left_out = 6  # 2026-02-18
    result["timestamp"].pop(left_out)
    for name in q:
        q[name].pop(left_out)
    with LocalServer() as srv:
        serve_the_rest(srv)
        srv.route(YAHOO, json.dumps(data))
        srv.route(GRAPH, RECORDED / "fred_graph_SP500_2026-02.csv")
        report = await fetch(srv, store, calendar)
        (asked,) = srv.requests_to(GRAPH)
    assert report.used["SPX"] == "yahoo + fred (2026-02-12, 2026-02-18)"
    assert (asked.query["cosd"], asked.query["coed"]) == (["2026-02-12"], ["2026-02-18"])
    got = spx(store)
    assert got[D(2026, 2, 12)][1] == got[D(2026, 2, 18)][1] == "fred"
    assert got[LAST] == (6878.88, "yahoo") and len(got) == 14
    assert "SPX: yahoo 2026-02-12: null close: Yahoo left the session empty" in report.lines()
    assert "SPX" not in report.missing


async def test_a_session_no_source_has_is_named(store, calendar) -> None:
    data = chart()
    result = data["chart"]["result"][0]
    q = quote(data)
    result["timestamp"].pop(6)
    for name in q:
        q[name].pop(6)
    with LocalServer() as srv:
        serve_the_rest(srv)
        srv.route(YAHOO, json.dumps(data))
        srv.route(GRAPH, Reply(503))
        report = await fetch(srv, store, calendar)
    assert report.missing["SPX"] == [D(2026, 2, 18)]
    assert "SPX: no source has 2026-02-18" in report.lines()


async def test_a_redirected_service_still_answers(store, calendar) -> None:
    with LocalServer() as srv:
        serve_the_rest(srv)
        srv.route(YAHOO, Reply(301, b"", {"Location": f"{srv.url}/v9{YAHOO}"}))
        srv.route(f"/v9{YAHOO}", RECORDED / "yahoo_chart_gspc_2026-02.json")
        report = await fetch(srv, store, calendar)
    assert report.used["SPX"] == "yahoo" and spx(store)[LAST][1] == "yahoo"


async def test_a_bar_dated_today_before_the_close_is_never_taken(store, calendar) -> None:
    """Stooq's (or anyone's) last row during the session is a partial bar: at 11:00 on
    the 27th a source's row for the 27th is dropped with why, never taken as a close."""
    stooq = (RECORDED / "stooq_spx_2026-02.csv").read_bytes()
    with LocalServer() as srv:
        srv.route("/q/d/l/", stooq)
        async with httpx.AsyncClient(timeout=5) as client:
            ctx = make_ctx(client, calendar, now=dt.datetime(2026, 2, 27, 11, 0, tzinfo=ET))
            parsed = await Stooq(SecretStr("k"), srv.url).fetch(ctx, Window(D(2026, 2, 9),
                                                                          LAST))
    assert parsed.rows[-1].session == D(2026, 2, 26)
    assert [(d.date, d.reason) for d in parsed.dropped] == [
        (LAST, "session not closed yet when fetched: a partial bar, not the close")]


# -- the live breadth chain ------------------------------------------------------------------

JULY = D(2026, 7, 27)
WSJ_BODY = (RECORDED / "wsj_marketsdiary_2026-07-27.json").read_text()


@pytest.fixture
def breadth_store(tmp_path: Path, calendar):
    """A live store with the 30 sessions of NYSE breadth before 2026-07-27."""
    st = open_store(f"sqlite:///{tmp_path / 'live.sqlite'}")
    days = calendar.sessions_between(calendar.offset(JULY, -30), calendar.offset(JULY, -1))
    from bot.kernel.models import Breadth

    st.upsert_breadth([Breadth(d, 1500, 1250, "wsj") for d in days])
    yield st
    st.close()


def live_fetcher(srv: LocalServer, store: Store, client: httpx.AsyncClient, calendar,
                 now: dt.datetime):
    from bot.market.fetch import LiveFetcher

    endpoints = Endpoints.all_at(srv.url)
    return LiveFetcher(make_ctx(client, calendar, now=now), default_chains(endpoints), store,
                       endpoints=endpoints)


async def test_the_evening_refetch_stores_the_final_figures_and_logs_the_revision(
        breadth_store, calendar, caplog) -> None:
    """16:20: the diary's preliminary figures; 20:00: its final ones (the recorded body)."""
    preliminary = WSJ_BODY.replace('"latestClose": "1,729"', '"latestClose": "1,702"')
    assert preliminary != WSJ_BODY
    with LocalServer() as srv:
        srv.route("/market-data/stocks/marketsdiary", preliminary, WSJ_BODY)
        async with httpx.AsyncClient(timeout=5) as client:
            early = live_fetcher(srv, breadth_store, client, calendar,
                                 dt.datetime(2026, 7, 27, 16, 20, tzinfo=ET))
            report = await fetch_session(early.ctx, early.chains, breadth_store, JULY)
            assert report.used["BREADTH"] == "wsj"
            assert breadth_store.breadth(JULY, JULY)["advancers"].tolist() == [1702]
            late = live_fetcher(srv, breadth_store, client, calendar,
                                dt.datetime(2026, 7, 27, 20, 0, tzinfo=ET))
            with caplog.at_level("WARNING", logger="bot.store.db"):
                lines = await late.refresh_final(JULY)
    assert breadth_store.breadth(JULY, JULY)["advancers"].tolist() == [1729]
    assert lines == ["BREADTH final figures for 2026-07-27 from wsj: revised (the change is "
                     "logged with both values)"]
    assert "breadth 2026-07-27 changed: advancers stored 1702 (wsj) -> new 1729 (wsj)" in (
        caplog.text)


async def test_a_partial_diary_count_makes_the_chain_ask_the_mcclellan_page(
        breadth_store, calendar) -> None:
    """The diary at 16:20 with a half-filled table (a partial-day count) is refused by the
    breadth screen before anything is stored; the McClellan page has the final figures."""
    partial = WSJ_BODY.replace('"latestClose": "1,729"', '"latestClose": "301"').replace(
        '"latestClose": "1,022"', '"latestClose": "244"')
    page = (RECORDED / "mcclellan_breadth_2024-06-17.txt").read_text().replace(
        "06/17/2024", "07/27/2026")
    with LocalServer() as srv:
        srv.route("/market-data/stocks/marketsdiary", partial)
        srv.route("/market_breadth_data/", page)
        async with httpx.AsyncClient(timeout=5) as client:
            fetcher = live_fetcher(srv, breadth_store, client, calendar,
                                   dt.datetime(2026, 7, 27, 21, 0, tzinfo=ET))
            report = await fetch_session(fetcher.ctx, fetcher.chains, breadth_store, JULY)
    # The diary's previousClose (the 24th's final figures) is taken; the 27th is not.
    assert report.used["BREADTH"] == "wsj + mcclellan (2026-07-27)"
    row = breadth_store.breadth(JULY, JULY)
    assert row["advancers"].tolist() == [1650] and row["source"].tolist() == ["mcclellan"]
    assert any(line.startswith("BREADTH: wsj 2026-07-27: refused, partial-day count: "
                               "advancers + decliners 545 < 80%") for line in report.lines())
    assert breadth_store.breadth_rejected() == []


async def test_spx_short_of_the_weekly_warm_up_is_fetched_five_years_deep(store,
                                                                          calendar) -> None:
    """DESIGN §4: the weekly MACD needs 5 years of SPX. A store with only the daily
    look-back gets the rest from the first live fetch, not just the last 15 sessions."""
    from bot.market.fetch import HISTORY_SESSIONS

    with store.engine.begin() as conn:
        conn.execute(sa.text("delete from bars where symbol = 'SPX' and session < '2025-01-02'"))
    with LocalServer() as srv:
        serve_the_rest(srv)
        srv.route(YAHOO, RECORDED / "yahoo_chart_gspc_2026-02.json")
        await fetch(srv, store, calendar)
        (asked,) = srv.requests_to(YAHOO)
    start = dt.datetime.fromtimestamp(int(asked.query["period1"][0]), tz=ET).date()
    assert start == calendar.offset(LAST, -(HISTORY_SESSIONS - 1)) and HISTORY_SESSIONS >= 1260
