"""Fallback chains: first usable source wins, every failure is reported."""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path

import httpx
import pytest
from httpserver import LocalServer, RecordingSleep, Reply
from pydantic import SecretStr

from bot.kernel.errors import SourceDataError, SourceUnavailable
from bot.kernel.models import Bar, EventKind, Parsed, Symbol
from bot.kernel.sessions import SessionCalendar
from bot.market.sources.cboe import cboe_path
from bot.market.sources.chain import (
    Endpoints,
    Sources,
    breadth_chain,
    fetch_first,
    fomc_chain,
    index_chain,
    release_chain,
    shipped_calendar,
    spx_chain,
)
from bot.market.sources.fed import PATH as FED_PATH
from bot.market.sources.http import RetryPolicy
from bot.market.sources.wsj import PAGE as WSJ_PAGE

RECORDED = Path(__file__).parent / "fixtures" / "recorded"
SNAP = Path(__file__).resolve().parents[1] / "bot" / "data" / "snapshot"
YAHOO = "/v8/finance/chart/^GSPC"
GRAPH = "/graph/fredgraph.csv"
POLICY = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)
D = dt.date
START, END = D(2026, 2, 9), D(2026, 2, 27)


def sources(
    client: httpx.AsyncClient,
    server: LocalServer,
    calendar: SessionCalendar,
    sleeps: RecordingSleep,
    **keys: SecretStr,
) -> Sources:
    return Sources(
        client=client,
        calendar=calendar,
        endpoints=Endpoints.all_at(server.url),
        policy=POLICY,
        sleep=sleeps,
        **keys,
    )


def ok(name: str) -> tuple[str, object]:
    async def fetch() -> Parsed[Bar]:
        return Parsed(name, (Bar("SPX", END, 1.0, name),))

    return (name, fetch)


def failing(name: str, exc: Exception) -> tuple[str, object]:
    async def fetch() -> Parsed[Bar]:
        raise exc

    return (name, fetch)


# -- fetch_first ---------------------------------------------------------------------


async def test_first_success_wins_and_later_sources_are_not_tried() -> None:
    tried: list[str] = []

    async def second() -> Parsed[Bar]:
        tried.append("b")
        return Parsed("b", ())

    parsed, failures = await fetch_first("SPX", [ok("a"), ("b", second)])  # type: ignore[list-item]
    assert parsed.source == "a" and failures == [] and tried == []


async def test_failures_are_listed_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    parsed, failures = await fetch_first(
        "SPX",
        [
            failing(
                "yahoo",
                SourceDataError("yahoo", "stale: newest row 2026-02-26, expected 2026-02-27"),
            ),
            ok("fred"),
        ],  # type: ignore[list-item]
    )
    assert parsed.source == "fred"
    assert failures == [("yahoo", "stale: newest row 2026-02-26, expected 2026-02-27")]
    assert "SPX: source yahoo failed: stale: newest row 2026-02-26" in caplog.text
    assert "trying fred" in caplog.text


async def test_all_permanent_failures() -> None:
    with pytest.raises(SourceDataError) as info:
        await fetch_first(
            "VIX",
            [
                failing("cboe", SourceDataError("cboe", "HTML page instead of CSV")),
                failing("fred", SourceDataError("fred", "HTTP 404 from /x")),
            ],  # type: ignore[list-item]
        )
    assert not isinstance(info.value, SourceUnavailable)
    assert str(info.value) == (
        "VIX: all sources failed (cboe: HTML page instead of CSV; fred: HTTP 404 from /x)"
    )


async def test_any_temporary_failure_makes_it_temporary() -> None:
    with pytest.raises(
        SourceUnavailable,
        match="all sources failed \\(cboe: HTTP 503 after 4 attempts; fred: empty body\\)",
    ):
        await fetch_first(
            "VIX",
            [
                failing("cboe", SourceUnavailable("cboe", "HTTP 503 after 4 attempts")),
                failing("fred", SourceDataError("fred", "empty body")),
            ],  # type: ignore[list-item]
        )


async def test_a_bug_is_not_swallowed_by_the_chain() -> None:
    with pytest.raises(KeyError):
        await fetch_first("SPX", [failing("yahoo", KeyError("chart")), ok("fred")])  # type: ignore[list-item]


async def test_no_sources() -> None:
    with pytest.raises(SourceDataError, match="CPI: no sources configured"):
        await fetch_first("CPI", [])


# -- default chains over HTTP -------------------------------------------------------------------


async def test_spx_primary_500_falls_back_to_fred(
    client: httpx.AsyncClient,
    server: LocalServer,
    calendar: SessionCalendar,
    sleeps: RecordingSleep,
) -> None:
    server.route(YAHOO, Reply(500))
    server.route(GRAPH, RECORDED / "fred_graph_SP500_2026-02.csv")
    attempts = spx_chain(sources(client, server, calendar, sleeps), START, END, expect=END)
    assert [name for name, _ in attempts] == ["yahoo", "fred"]
    parsed, failures = await fetch_first("SPX", attempts)
    assert parsed.source == "fred" and parsed.rows[-1].close == 6878.88
    assert failures == [("yahoo", "HTTP 500 after 2 attempts")]
    assert len(server.requests_to(YAHOO)) == 2


async def test_spx_both_fail_lists_both(
    client: httpx.AsyncClient,
    server: LocalServer,
    calendar: SessionCalendar,
    sleeps: RecordingSleep,
) -> None:
    server.route(YAHOO, Reply(500))
    server.route(GRAPH, b"<html><body>maintenance</body></html>")
    with pytest.raises(SourceUnavailable) as info:
        await fetch_first(
            "SPX", spx_chain(sources(client, server, calendar, sleeps), START, END, expect=END)
        )
    assert "yahoo: HTTP 500 after 2 attempts" in str(info.value)
    assert "fred: HTML page instead of CSV" in str(info.value)


async def test_spx_stooq_only_with_a_key(
    client: httpx.AsyncClient,
    server: LocalServer,
    calendar: SessionCalendar,
    sleeps: RecordingSleep,
) -> None:
    server.route(YAHOO, Reply(404))
    server.route(GRAPH, RECORDED / "fred_graph_SP500_2026-02.csv")  # stale for 03-02
    server.route("/q/d/l/", RECORDED / "stooq_spx_2026-02.csv")
    src = sources(client, server, calendar, sleeps, stooq_api_key=SecretStr("k"))
    attempts = spx_chain(src, START, END, expect=END)
    assert [name for name, _ in attempts] == ["yahoo", "fred", "stooq"]
    server.route(GRAPH, Reply(404))
    parsed, failures = await fetch_first("SPX", attempts)
    assert parsed.source == "stooq" and [f[0] for f in failures] == ["yahoo", "fred"]


async def test_vix_cboe_stale_falls_back_to_fred(
    client: httpx.AsyncClient,
    server: LocalServer,
    calendar: SessionCalendar,
    sleeps: RecordingSleep,
) -> None:
    server.route(cboe_path(Symbol.VIX), SNAP / "vix" / "VIX_History.csv")  # ends 2026-03-31
    server.route(GRAPH, SNAP / "vix" / "VIXCLS.csv")  # ends 2026-04-23
    expect = D(2026, 4, 23)
    attempts = index_chain(
        sources(client, server, calendar, sleeps), Symbol.VIX, D(2026, 4, 1), expect, expect=expect
    )
    parsed, failures = await fetch_first("VIX", attempts)
    assert parsed.source == "fred" and parsed.rows[-1].close == 19.31
    assert failures == [("cboe", "stale: newest row 2026-03-31, expected 2026-04-23")]
    assert server.requests_to(GRAPH)[0].query["id"] == ["VIXCLS"]


def test_index_chain_shapes(client: httpx.AsyncClient, calendar: SessionCalendar) -> None:
    src = Sources(client=client, calendar=calendar)
    names = {
        s: [n for n, _ in index_chain(src, s, START, END)]
        for s in (Symbol.VIX, Symbol.VIX3M, Symbol.VIX6M)
    }
    assert names == {
        Symbol.VIX: ["cboe", "fred"],
        Symbol.VIX3M: ["cboe", "fred"],
        Symbol.VIX6M: ["cboe"],
    }
    with pytest.raises(ValueError, match="no volatility-index chain for SPX"):
        index_chain(src, Symbol.SPX, START, END)


async def test_vix3m_fallback_uses_vxvcls(
    client: httpx.AsyncClient,
    server: LocalServer,
    calendar: SessionCalendar,
    sleeps: RecordingSleep,
) -> None:
    server.route(cboe_path(Symbol.VIX3M), Reply(503))
    server.route(GRAPH, "observation_date,VXVCLS\n2026-04-22,20.11\n2026-04-23,20.42\n")
    attempts = index_chain(
        sources(client, server, calendar, sleeps), Symbol.VIX3M, D(2026, 4, 22), D(2026, 4, 23)
    )
    parsed, _ = await fetch_first("VIX3M", attempts)
    assert [b.close for b in parsed.rows] == [20.11, 20.42] and parsed.rows[0].symbol == "VIX3M"


async def test_breadth_chain(
    client: httpx.AsyncClient,
    server: LocalServer,
    calendar: SessionCalendar,
    sleeps: RecordingSleep,
) -> None:
    server.route(WSJ_PAGE, RECORDED / "wsj_marketsdiary_2026-07-27.json")
    parsed, failures = await fetch_first(
        "BREADTH", breadth_chain(sources(client, server, calendar, sleeps), expect=D(2026, 7, 27))
    )
    assert parsed.rows[0].advancers == 1729 and failures == []


async def test_fomc_falls_back_to_shipped_file(
    client: httpx.AsyncClient,
    server: LocalServer,
    calendar: SessionCalendar,
    sleeps: RecordingSleep,
) -> None:
    server.route(FED_PATH, Reply(403, b"Forbidden"))
    shipped = SNAP / "calendar" / "fomc_decisions.csv"
    attempts = fomc_chain(
        sources(client, server, calendar, sleeps), today=D(2026, 9, 25), shipped=shipped
    )
    assert [n for n, _ in attempts] == ["fed", "file:fomc_decisions.csv"]
    parsed, failures = await fetch_first("FOMC", attempts)
    assert parsed.source == "file:fomc_decisions.csv"
    assert D(2026, 10, 28) in {e.date for e in parsed.rows}
    assert failures == [("fed", "HTTP 403 from /json/calendar.json")]


async def test_fomc_from_fed(
    client: httpx.AsyncClient,
    server: LocalServer,
    calendar: SessionCalendar,
    sleeps: RecordingSleep,
) -> None:
    server.route(FED_PATH, RECORDED / "fed_calendar_2026-10.json")
    parsed, _ = await fetch_first(
        "FOMC", fomc_chain(sources(client, server, calendar, sleeps), today=D(2026, 9, 25))
    )
    assert parsed.source == "fed" and len(parsed.rows) == 2


async def test_cpi_chain_needs_a_key_for_fred(
    client: httpx.AsyncClient,
    server: LocalServer,
    calendar: SessionCalendar,
    sleeps: RecordingSleep,
) -> None:
    shipped = SNAP / "calendar" / "cpi_releases.csv"
    no_key = release_chain(
        sources(client, server, calendar, sleeps),
        EventKind.CPI,
        today=D(2026, 6, 1),
        shipped=shipped,
    )
    assert [n for n, _ in no_key] == ["file:cpi_releases.csv"]
    parsed, _ = await fetch_first("CPI", no_key)
    assert parsed.rows[-1].date == D(2026, 12, 10)
    server.route("/fred/release/dates", RECORDED / "fred_release_dates_10.json")
    keyed = release_chain(
        sources(client, server, calendar, sleeps, fred_api_key=SecretStr("k")),
        EventKind.CPI,
        today=D(2026, 9, 1),
    )
    parsed, _ = await fetch_first("CPI", keyed)
    assert parsed.source == "fred" and parsed.rows[-1].date == D(2026, 10, 14)


async def test_shipped_calendar_that_ran_out_fails(calendar: SessionCalendar) -> None:
    """The shipped CPI list ends 2026-12-10: after that it must not pass for a calendar."""
    name, attempt = shipped_calendar(
        SNAP / "calendar" / "cpi_releases.csv",
        EventKind.CPI,
        today=D(2026, 12, 10),
        calendar=calendar,
    )
    with pytest.raises(
        SourceDataError,
        match=re.escape("file:cpi_releases.csv: no upcoming CPI events after 2026-12-10"),
    ):
        await attempt()
    # A file of another kind holds no PPI events at all.
    _, ppi = shipped_calendar(
        SNAP / "calendar" / "cpi_releases.csv",
        EventKind.PPI,
        today=D(2026, 1, 1),
        calendar=calendar,
    )
    with pytest.raises(SourceDataError, match="no upcoming PPI events"):
        await ppi()
    _, missing = shipped_calendar(
        SNAP / "calendar" / "nope.csv", EventKind.CPI, today=D(2026, 1, 1), calendar=calendar
    )
    with pytest.raises(SourceDataError, match=re.escape("file:nope.csv: cannot read")):
        await missing()
    assert name == "file:cpi_releases.csv"
