"""One contract every source keeps, against a real HTTP server on 127.0.0.1.

Each source is served a recorded real body (tests/fixtures, with provenance)
and then broken one way at a time: a 5xx before the answer (retried), a 429
with ``Retry-After`` (honoured), a 5xx that persists (a *temporary* failure),
a server slower than the client's timeout (retried), a redirect (followed),
an HTML page with status 200 (refused: not data) and a *stale* answer, one
that is well formed but does not reach the session or date asked for (a
failure, never data). A new source joins by adding one :class:`Case`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import make_ctx
from httpserver import RecordingSleep, Reply
from pydantic import SecretStr

from bot.kernel.errors import SourceDataError, SourceError, SourceUnavailable
from bot.kernel.models import EventKind, Symbol
from bot.kernel.sessions import ET, SessionCalendar
from bot.market.sources.base import SourceContext, Window
from bot.market.sources.cboe import CboeIndex, cboe_path
from bot.market.sources.cboe_options import CboeChain
from bot.market.sources.fed import MEETINGS_PAGE, FedCalendar, FedMeetingsPage
from bot.market.sources.fed import PATH as FED_PATH
from bot.market.sources.fred import FredReleaseDates, FredSeries
from bot.market.sources.http import RetryPolicy
from bot.market.sources.mcclellan import PAGE as MC_PAGE
from bot.market.sources.mcclellan import McClellanPage
from bot.market.sources.stooq import Stooq
from bot.market.sources.vx_settlement import VxSettlements
from bot.market.sources.wsj import PAGE as WSJ_PAGE
from bot.market.sources.wsj import WsjDiary
from bot.market.sources.yahoo import YahooChart

FIX = Path(__file__).parent / "fixtures"
RECORDED = FIX / "recorded"
SNAP = Path(__file__).resolve().parents[1] / "bot" / "data" / "snapshot"
D = dt.date
POLICY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, max_wait=60.0)

Call = Callable[[SourceContext, str], Awaitable[Any]]


@dataclass(frozen=True)
class Case:
    """A source, where it is served, a recorded body it accepts and a stale variant."""

    name: str
    path: str
    good: bytes
    stale: bytes
    call: Call
    """Fetch from the server at the given base URL; returns what the source returns."""
    now: dt.datetime = dt.datetime(2026, 10, 30, 18, 0, tzinfo=ET)
    headers: dict[str, str] = field(default_factory=dict)
    stale_headers: dict[str, str] | None = None
    stale_error: type[SourceError] = SourceDataError
    stale_says: str = "stale"
    html_says: str = "HTML page instead of"
    """A source whose answer *is* an HTML page says what its page lacks instead."""


def drop_last_line(body: bytes) -> bytes:
    lines = body.rstrip(b"\r\n").split(b"\n")
    return b"\n".join(lines[:-1]) + b"\n"


def yahoo_without_newest(body: bytes) -> bytes:
    data = json.loads(body)
    result = data["chart"]["result"][0]
    result["timestamp"] = result["timestamp"][:-1]
    quote = result["indicators"]["quote"][0]
    for name in quote:
        quote[name] = quote[name][:-1]
    for adj in result["indicators"].get("adjclose", []):
        adj["adjclose"] = adj["adjclose"][:-1]
    return json.dumps(data).encode()


def fed_without_october(body: bytes) -> bytes:
    data = json.loads(body.decode("utf-8-sig"))
    data["events"] = [e for e in data["events"] if e.get("month") != "2026-10"]
    return json.dumps(data).encode()


def releases_until(body: bytes, last: str) -> bytes:
    data = json.loads(body)
    data["release_dates"] = [r for r in data["release_dates"] if r["date"] <= last]
    return json.dumps(data).encode()


def chain_traded_on(body: bytes, stamp: str) -> bytes:
    data = json.loads(body)
    data["data"]["last_trade_time"] = stamp
    return json.dumps(data).encode()


def window(start: dt.date, end: dt.date, expect: dt.date | None = None) -> Window:
    return Window(start, end, expect)


FEB = window(D(2026, 2, 9), D(2026, 2, 27), D(2026, 2, 27))
YAHOO = (RECORDED / "yahoo_chart_gspc_2026-02.json").read_bytes()
SP500 = (RECORDED / "fred_graph_SP500_2026-02.csv").read_bytes()
STOOQ = (RECORDED / "stooq_spx_2026-02.csv").read_bytes()
VIX = (SNAP / "vix" / "VIX_History.csv").read_bytes()
WSJ = (RECORDED / "wsj_marketsdiary_2026-07-27.json").read_bytes()
FED = (RECORDED / "fed_calendar_2026-10.json").read_bytes()
RELEASES = (RECORDED / "fred_release_dates_10.json").read_bytes()
VX = (FIX / "vx_settlement" / "settlement_2026-09-01.csv").read_bytes()
CHAIN = (FIX / "cboe_options" / "spx_chain_2026-08-18.json").read_bytes()
MCCLELLAN = (RECORDED / "mcclellan_breadth_2024-06-17.txt").read_bytes()
MEETINGS = (RECORDED / "fed_fomccalendars_2026-11.html").read_bytes()
SETTLED = {"Content-Disposition": "attachment; filename=FuturesSettlements_2026-09-01.csv"}
TODAY = D(2026, 9, 25)

CASES = [
    Case("yahoo", "/v8/finance/chart/^GSPC", YAHOO, yahoo_without_newest(YAHOO),
         lambda ctx, url: YahooChart(url).fetch(ctx, FEB)),
    Case("fred-series", "/graph/fredgraph.csv", SP500, drop_last_line(SP500),
         lambda ctx, url: FredSeries(Symbol.SPX, url).fetch(ctx, FEB)),
    Case("stooq", "/q/d/l/", STOOQ, drop_last_line(STOOQ),
         lambda ctx, url: Stooq(SecretStr("k"), url).fetch(ctx, FEB)),
    Case("cboe", cboe_path(Symbol.VIX), VIX, drop_last_line(VIX),
         lambda ctx, url: CboeIndex(Symbol.VIX, url).fetch(
             ctx, window(D(2026, 3, 2), D(2026, 3, 31), D(2026, 3, 31)))),
    Case("wsj", WSJ_PAGE, WSJ, WSJ.replace(b"Monday, July 27, 2026", b"Friday, July 24, 2026"),
         lambda ctx, url: WsjDiary(url).fetch(ctx, window(D(2026, 7, 27), D(2026, 7, 27),
                                                           D(2026, 7, 27))),
         now=dt.datetime(2026, 7, 27, 18, 0, tzinfo=ET)),
    Case("mcclellan", MC_PAGE, MCCLELLAN, MCCLELLAN.replace(b"06/17/2024", b"06/14/2024"),
         lambda ctx, url: McClellanPage(url).fetch(ctx, window(D(2024, 6, 17), D(2024, 6, 17),
                                                                D(2024, 6, 17))),
         now=dt.datetime(2024, 6, 17, 21, 0, tzinfo=ET),
         html_says="no 'NYSE: MM/DD/YYYY' on the page"),
    Case("fed", FED_PATH, FED, fed_without_october(FED),
         lambda ctx, url: FedCalendar(url).fetch(ctx, window(TODAY, TODAY)),
         stale_says="no upcoming FOMC events after 2026-09-25"),
    Case("fed-meetings", MEETINGS_PAGE, MEETINGS, MEETINGS.replace(b"2027 FOMC", b"2020 FOMC"),
         lambda ctx, url: FedMeetingsPage(url).fetch(ctx, window(D(2026, 11, 30),
                                                                  D(2026, 11, 30))),
         stale_says="no upcoming FOMC meetings after 2026-11-30",
         html_says="no 'YYYY FOMC Meetings' section"),
    Case("fred-releases", "/fred/release/dates", RELEASES, releases_until(RELEASES, "2026-09-25"),
         lambda ctx, url: FredReleaseDates(EventKind.CPI, SecretStr("k"), url).fetch(
             ctx, window(TODAY, TODAY)),
         stale_says="no upcoming CPI release dates after 2026-09-25"),
    Case("vx-settlement", "/settlement/csv", VX, VX,
         lambda ctx, url: VxSettlements(f"{url}/settlement/csv").fetch(ctx, D(2026, 9, 1)),
         headers=SETTLED,
         stale_headers={"Content-Disposition":
                        "attachment; filename=FuturesSettlements_2026-08-31.csv"},
         stale_error=SourceUnavailable, stale_says="served the 2026-08-31 file"),
    Case("cboe-chain", "/options/_SPX.json", CHAIN,
         chain_traded_on(CHAIN, "2026-08-17T16:14:59"),
         lambda ctx, url: CboeChain(f"{url}/options/_SPX.json").fetch(ctx, D(2026, 8, 18)),
         stale_says="chain last traded 2026-08-17, not on session 2026-08-18"),
]
"""Every HTTP source of the bot. (Shipped calendar files are not served over HTTP;
TradingView speaks WebSocket: tests/test_sources_breadth_fallbacks.py.)"""

HTML = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body></body></html>"


def ctx_for(case: Case, client: httpx.AsyncClient, calendar: SessionCalendar,
            sleeps: RecordingSleep) -> SourceContext:
    return make_ctx(client, calendar, sleeps, now=case.now, policy=POLICY)


def good(case: Case, status: int = 200) -> Reply:
    return Reply(status, case.good, case.headers)


def answered(result: Any) -> None:
    """What every source returns when it worked: rows, prices or a chain, never empty."""
    rows = getattr(result, "rows", None)
    if rows is not None:
        assert rows
    elif isinstance(result, dict):
        assert result and all(v > 0 for v in result.values())
    else:
        assert len(result.quotes) > 100


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    c: Case = request.param
    return c


async def test_the_recorded_body_is_accepted(case, server, client, calendar, sleeps) -> None:
    server.route(case.path, good(case))
    answered(await case.call(ctx_for(case, client, calendar, sleeps), server.url))
    assert sleeps.delays == [] and len(server.requests_to(case.path)) == 1


async def test_a_5xx_is_retried(case, server, client, calendar, sleeps) -> None:
    server.route(case.path, Reply(503, b"Service Unavailable"), good(case))
    answered(await case.call(ctx_for(case, client, calendar, sleeps), server.url))
    assert len(server.requests_to(case.path)) == 2 and len(sleeps.delays) == 1


async def test_a_429_waits_the_retry_after(case, server, client, calendar, sleeps) -> None:
    server.route(case.path, Reply(429, b"Too Many Requests", {"Retry-After": "7"}), good(case))
    answered(await case.call(ctx_for(case, client, calendar, sleeps), server.url))
    assert sleeps.delays == [7.0]


async def test_a_retry_after_beyond_the_limit_is_unavailable(case, server, client, calendar,
                                                             sleeps) -> None:
    server.route(case.path, Reply(429, b"", {"Retry-After": "3600"}), good(case))
    with pytest.raises(SourceUnavailable, match="Retry-After 3600s exceeds 60s"):
        await case.call(ctx_for(case, client, calendar, sleeps), server.url)
    assert sleeps.delays == [] and len(server.requests_to(case.path)) == 1


async def test_a_persistent_5xx_is_a_temporary_failure(case, server, client, calendar,
                                                       sleeps) -> None:
    server.route(case.path, Reply(502, b"Bad Gateway"))
    with pytest.raises(SourceUnavailable, match="HTTP 502 after 3 attempts"):
        await case.call(ctx_for(case, client, calendar, sleeps), server.url)
    assert len(server.requests_to(case.path)) == 3


async def test_a_timeout_is_retried(case, server, calendar, sleeps) -> None:
    # A margin on both sides: a loaded machine must neither answer in time nor time out
    # the retry (the server's first answer comes 3 s late, the client waits 1 s).
    server.route(case.path, Reply(200, case.good, case.headers, delay=3.0), good(case))
    async with httpx.AsyncClient(timeout=httpx.Timeout(1.0)) as quick:
        answered(await case.call(ctx_for(case, quick, calendar, sleeps), server.url))
    assert len(server.requests_to(case.path)) == 2 and len(sleeps.delays) == 1


async def test_a_redirect_is_followed(case, server, client, calendar, sleeps) -> None:
    """Services move: a 301 to the new address is an answer, not a failure."""
    moved = "/moved" + case.path
    server.route(case.path, Reply(301, b"", {"Location": server.url + moved}))
    server.route(moved, good(case))
    answered(await case.call(ctx_for(case, client, calendar, sleeps), server.url))
    assert len(server.requests_to(moved)) == 1


async def test_an_html_page_is_not_data(case, server, client, calendar, sleeps) -> None:
    server.route(case.path, Reply(200, HTML, {"Content-Type": "text/html"}))
    with pytest.raises(SourceDataError, match=re.escape(case.html_says)):
        await case.call(ctx_for(case, client, calendar, sleeps), server.url)
    assert len(server.requests_to(case.path)) == 1  # a wrong answer is not retried


async def test_a_stale_answer_is_a_failure(case, server, client, calendar, sleeps) -> None:
    headers = case.stale_headers if case.stale_headers is not None else case.headers
    server.route(case.path, Reply(200, case.stale, headers))
    with pytest.raises(case.stale_error, match=case.stale_says):
        await case.call(ctx_for(case, client, calendar, sleeps), server.url)
