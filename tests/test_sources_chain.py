"""Fallback chains: first usable source wins, gaps are filled from the next, every
failure is reported, and a source is asked only what its declared reach allows."""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path

import pytest
from conftest import make_ctx
from httpserver import LocalServer, Reply
from pydantic import SecretStr

from bot.kernel.errors import SourceDataError, SourceUnavailable
from bot.kernel.models import BREADTH, Bar, EventKind, Parsed, Symbol
from bot.kernel.sessions import ET, SessionCalendar
from bot.market.sources.base import BarSource, Reach, SourceContext, Window
from bot.market.sources.cboe import cboe_path
from bot.market.sources.chain import (
    Endpoints,
    ShippedCalendar,
    default_chains,
    fetch_filled,
    fetch_first,
)
from bot.market.sources.fed import PATH as FED_PATH
from bot.market.sources.wsj import PAGE as WSJ_PAGE

RECORDED = Path(__file__).parent / "fixtures" / "recorded"
SNAP = Path(__file__).resolve().parents[1] / "bot" / "data" / "snapshot"
YAHOO = "/v8/finance/chart/^GSPC"
GRAPH = "/graph/fredgraph.csv"
D = dt.date
START, END = D(2026, 2, 9), D(2026, 2, 27)
WINDOW = Window(START, END, END)


class Canned(BarSource):
    """A source answering from a fixed list of bars (or raising): chain logic only."""

    def __init__(self, name: str, days: list[dt.date] | None = None,
                 error: Exception | None = None, reach: Reach = Reach.HISTORY) -> None:
        super().__init__(f"canned://{name}")
        self.name, self.days, self.error = name, days or [], error
        self.reach = reach  # type: ignore[misc]  # per test
        self.asked: list[Window] = []

    async def answer(self, ctx: SourceContext, window: Window) -> Parsed[Bar]:
        self.asked.append(window)
        if self.error is not None:
            raise self.error
        return Parsed(self.name, tuple(Bar("SPX", d, 1.0, self.name) for d in self.days))


def sessions(calendar: SessionCalendar, start: dt.date = START, end: dt.date = END):
    return calendar.sessions_between(start, end)


# -- fetch_first (event calendars) --------------------------------------------------------


async def test_first_success_wins_and_later_sources_are_not_tried(ctx, calendar) -> None:
    a, b = Canned("a", sessions(calendar)), Canned("b", sessions(calendar))
    parsed, failures = await fetch_first("SPX", ctx, [a, b], WINDOW)
    assert parsed.source == "a" and failures == [] and b.asked == []


async def test_failures_are_listed_and_logged(ctx, calendar, caplog) -> None:
    caplog.set_level(logging.WARNING)
    stale = SourceDataError("yahoo", "stale: newest row 2026-02-26, expected 2026-02-27")
    parsed, failures = await fetch_first(
        "SPX", ctx, [Canned("yahoo", error=stale), Canned("fred", sessions(calendar))], WINDOW)
    assert parsed.source == "fred"
    assert failures == [("yahoo", "stale: newest row 2026-02-26, expected 2026-02-27")]
    assert "SPX: source yahoo failed: stale: newest row 2026-02-26" in caplog.text
    assert "trying fred" in caplog.text


async def test_all_permanent_failures(ctx) -> None:
    with pytest.raises(SourceDataError) as info:
        await fetch_first("VIX", ctx, [
            Canned("cboe", error=SourceDataError("cboe", "HTML page instead of CSV")),
            Canned("fred", error=SourceDataError("fred", "HTTP 404 from /x")),
        ], WINDOW)
    assert not isinstance(info.value, SourceUnavailable)
    assert str(info.value) == (
        "VIX: all sources failed (cboe: HTML page instead of CSV; fred: HTTP 404 from /x)"
    )


async def test_any_temporary_failure_makes_it_temporary(ctx) -> None:
    with pytest.raises(
        SourceUnavailable,
        match="all sources failed \\(cboe: HTTP 503 after 4 attempts; fred: empty body\\)",
    ):
        await fetch_first("VIX", ctx, [
            Canned("cboe", error=SourceUnavailable("cboe", "HTTP 503 after 4 attempts")),
            Canned("fred", error=SourceDataError("fred", "empty body")),
        ], WINDOW)


async def test_a_bug_is_not_swallowed_by_the_chain(ctx, calendar) -> None:
    with pytest.raises(KeyError):
        await fetch_first("SPX", ctx, [Canned("yahoo", error=KeyError("chart")),
                                       Canned("fred", sessions(calendar))], WINDOW)


async def test_no_sources(ctx) -> None:
    with pytest.raises(SourceDataError, match="CPI: no sources configured"):
        await fetch_first("CPI", ctx, [], WINDOW)


# -- reach: a source is asked only what it can answer --------------------------------------


async def test_a_latest_only_source_is_not_asked_for_an_older_session(client, calendar) -> None:
    """The live fetch reads the declared reach instead of knowing the WSJ diary."""
    ctx = make_ctx(client, calendar, now=dt.datetime(2026, 3, 3, 18, tzinfo=ET))
    latest = Canned("diary", [END], reach=Reach.LATEST)
    with pytest.raises(SourceDataError) as info:
        await fetch_first("BREADTH", ctx, [latest], WINDOW)
    assert latest.asked == []
    assert "diary gives only the latest closed session (2026-03-03..2026-03-03)" in str(
        info.value)


async def test_fill_asks_a_latest_only_source_for_its_part_and_the_next_for_the_rest(
        client, calendar) -> None:
    ctx = make_ctx(client, calendar, now=dt.datetime(2026, 2, 27, 18, tzinfo=ET))
    diary = Canned("diary", [END], reach=Reach.LATEST)
    history = Canned("history", sessions(calendar))
    filled = await fetch_filled("BREADTH", ctx, [diary, history], WINDOW)
    assert diary.asked == [Window(END, END, END)]
    assert history.asked == [Window(START, D(2026, 2, 26))]  # no expect: END is filled
    assert filled.by_source == {"diary": [END], "history": sessions(calendar)[:-1]}
    assert filled.missing == [] and len(filled.rows) == 14


# -- fill: a gap in one answer is filled from the next source ----------------------------


async def test_a_session_left_out_is_filled_from_the_next_source(ctx, calendar) -> None:
    days = sessions(calendar)
    gap = days[5]
    yahoo = Canned("yahoo", [d for d in days if d != gap])
    fred = Canned("fred", days)
    filled = await fetch_filled("SPX", ctx, [yahoo, fred], WINDOW)
    assert [r.session for r in filled.rows] == days
    assert fred.asked == [Window(gap, gap)]
    assert filled.by_source == {"yahoo": [d for d in days if d != gap], "fred": [gap]}
    assert filled.sources == f"yahoo + fred ({gap})"


async def test_sessions_no_source_has_are_reported_missing(ctx, calendar) -> None:
    days = sessions(calendar)
    filled = await fetch_filled("SPX", ctx, [Canned("yahoo", days[:-3] + days[-1:]),
                                             Canned("fred", days[:-3])], WINDOW)
    assert filled.missing == days[-3:-1]


async def test_a_stale_first_source_gives_nothing_and_the_next_is_asked_for_all(
        ctx, calendar) -> None:
    days = sessions(calendar)
    yahoo = Canned("yahoo", days[:-1])  # no row for END: stale
    fred = Canned("fred", days)
    filled = await fetch_filled("SPX", ctx, [yahoo, fred], WINDOW)
    assert filled.by_source == {"fred": days}
    assert filled.failures == [("yahoo", "stale: newest row 2026-02-26, expected 2026-02-27")]


async def test_a_bar_dated_on_an_unclosed_session_is_dropped(client, calendar) -> None:
    """Before the close the daily bar is the live price, whatever the source says."""
    ctx = make_ctx(client, calendar, now=dt.datetime(2026, 2, 27, 11, 0, tzinfo=ET))
    days = sessions(calendar)
    parsed = await Canned("stooq", days).fetch(ctx, Window(START, END))
    assert parsed.rows[-1].session == D(2026, 2, 26)
    assert [(d.date, d.reason) for d in parsed.dropped] == [
        (END, "session not closed yet when fetched: a partial bar, not the close")]


# -- the default chains over HTTP ----------------------------------------------------------


def test_default_chain_shapes() -> None:
    names = {s: [src.name for src in chain] for s, chain in default_chains().items()}
    assert names == {
        "SPX": ["yahoo", "fred"], "VIX": ["cboe", "fred"], "VIX3M": ["cboe", "fred"],
        "VIX6M": ["cboe"], BREADTH: ["wsj", "mcclellan", "tradingview"],
        "FOMC": ["fed", "fed-meetings"], "CPI": [], "PPI": []}
    keyed = default_chains(stooq_api_key=SecretStr("k"), fred_api_key=SecretStr("f"),
                           calendar_dir=SNAP / "calendar")
    assert [s.name for s in keyed["SPX"]] == ["yahoo", "fred", "stooq"]
    assert [s.name for s in keyed["PPI"]] == ["fred", "file:ppi_releases.csv"]
    assert [s.name for s in keyed["FOMC"]] == ["fed", "fed-meetings", "file:fomc_decisions.csv"]


def chains(server: LocalServer, **keys: SecretStr):
    return default_chains(Endpoints.all_at(server.url), calendar_dir=SNAP / "calendar", **keys)


async def test_spx_primary_500_falls_back_to_fred(ctx, server: LocalServer) -> None:
    server.route(YAHOO, Reply(500))
    server.route(GRAPH, RECORDED / "fred_graph_SP500_2026-02.csv")
    filled = await fetch_filled("SPX", ctx, chains(server)["SPX"], WINDOW)
    assert filled.sources == "fred" and filled.rows[-1].close == 6878.88
    assert filled.failures == [("yahoo", "HTTP 500 after 3 attempts")]
    assert len(server.requests_to(YAHOO)) == 3


async def test_spx_both_fail_lists_both(ctx, server: LocalServer) -> None:
    server.route(YAHOO, Reply(500))
    server.route(GRAPH, b"<html><body>maintenance</body></html>")
    with pytest.raises(SourceUnavailable) as info:
        await fetch_filled("SPX", ctx, chains(server)["SPX"], WINDOW)
    assert "yahoo: HTTP 500 after 3 attempts" in str(info.value)
    assert "fred: HTML page instead of CSV" in str(info.value)


async def test_spx_stooq_only_with_a_key(ctx, server: LocalServer) -> None:
    server.route(YAHOO, Reply(404))
    server.route(GRAPH, Reply(404))
    server.route("/q/d/l/", RECORDED / "stooq_spx_2026-02.csv")
    chain = chains(server, stooq_api_key=SecretStr("k"))["SPX"]
    filled = await fetch_filled("SPX", ctx, chain, WINDOW)
    assert filled.sources == "stooq" and [f[0] for f in filled.failures] == ["yahoo", "fred"]


async def test_vix_cboe_stale_falls_back_to_fred(ctx, server: LocalServer) -> None:
    server.route(cboe_path(Symbol.VIX), SNAP / "vix" / "VIX_History.csv")  # ends 2026-03-31
    server.route(GRAPH, SNAP / "vix" / "VIXCLS.csv")  # ends 2026-04-23
    expect = D(2026, 4, 23)
    filled = await fetch_filled("VIX", ctx, chains(server)["VIX"],
                                Window(D(2026, 4, 1), expect, expect))
    assert filled.sources == "fred" and filled.rows[-1].close == 19.31
    assert filled.failures == [("cboe", "stale: newest row 2026-03-31, expected 2026-04-23")]
    assert server.requests_to(GRAPH)[0].query["id"] == ["VIXCLS"]


async def test_vix3m_fallback_uses_vxvcls(ctx, server: LocalServer) -> None:
    server.route(cboe_path(Symbol.VIX3M), Reply(503))
    server.route(GRAPH, "observation_date,VXVCLS\n2026-04-22,20.11\n2026-04-23,20.42\n")
    filled = await fetch_filled("VIX3M", ctx, chains(server)["VIX3M"],
                                Window(D(2026, 4, 22), D(2026, 4, 23)))
    assert [b.close for b in filled.rows] == [20.11, 20.42] and filled.rows[0].symbol == "VIX3M"


async def test_breadth_chain(client, calendar, server: LocalServer) -> None:
    day = D(2026, 7, 27)
    ctx = make_ctx(client, calendar, now=dt.datetime(2026, 7, 27, 18, tzinfo=ET))
    server.route(WSJ_PAGE, RECORDED / "wsj_marketsdiary_2026-07-27.json")
    filled = await fetch_filled(BREADTH, ctx, chains(server)[BREADTH], Window(day, day, day))
    assert filled.rows[0].advancers == 1729 and filled.failures == []


async def test_fomc_falls_back_to_shipped_file(ctx, server: LocalServer) -> None:
    server.route(FED_PATH, Reply(403, b"Forbidden"))
    today = D(2026, 9, 25)
    parsed, failures = await fetch_first("FOMC", ctx, chains(server)["FOMC"],
                                         Window(today, today))
    assert parsed.source == "file:fomc_decisions.csv"
    assert D(2026, 10, 28) in {e.date for e in parsed.rows}
    assert failures == [("fed", "HTTP 403 from /json/calendar.json"),
                        ("fed-meetings", "HTTP 404 from /monetarypolicy/fomccalendars.htm")]


async def test_fomc_from_fed(ctx, server: LocalServer) -> None:
    server.route(FED_PATH, RECORDED / "fed_calendar_2026-10.json")
    today = D(2026, 9, 25)
    parsed, _ = await fetch_first("FOMC", ctx, chains(server)["FOMC"], Window(today, today))
    assert parsed.source == "fed" and len(parsed.rows) == 2


async def test_cpi_chain_needs_a_key_for_fred(ctx, server: LocalServer) -> None:
    today = D(2026, 6, 1)
    no_key = chains(server)["CPI"]
    assert [s.name for s in no_key] == ["file:cpi_releases.csv"]
    parsed, _ = await fetch_first("CPI", ctx, no_key, Window(today, today))
    assert parsed.rows[-1].date == D(2026, 12, 10)
    server.route("/fred/release/dates", RECORDED / "fred_release_dates_10.json")
    today = D(2026, 9, 1)
    keyed = chains(server, fred_api_key=SecretStr("k"))["CPI"]
    parsed, _ = await fetch_first("CPI", ctx, keyed, Window(today, today))
    assert parsed.source == "fred" and parsed.rows[-1].date == D(2026, 10, 14)


async def test_shipped_calendar_that_ran_out_fails(ctx) -> None:
    """The shipped CPI list ends 2026-12-10: after that it must not pass for a calendar."""
    cpi = ShippedCalendar(SNAP / "calendar" / "cpi_releases.csv", EventKind.CPI)
    today = D(2026, 12, 10)
    with pytest.raises(
        SourceDataError,
        match=re.escape("file:cpi_releases.csv: no upcoming CPI events after 2026-12-10"),
    ):
        await cpi.fetch(ctx, Window(today, today))
    # A file of another kind holds no PPI events at all.
    ppi = ShippedCalendar(SNAP / "calendar" / "cpi_releases.csv", EventKind.PPI)
    with pytest.raises(SourceDataError, match="no upcoming PPI events"):
        await ppi.fetch(ctx, Window(D(2026, 1, 1), D(2026, 1, 1)))
    missing = ShippedCalendar(SNAP / "calendar" / "nope.csv", EventKind.CPI)
    with pytest.raises(SourceDataError, match=re.escape("file:nope.csv: cannot read")):
        await missing.fetch(ctx, Window(D(2026, 1, 1), D(2026, 1, 1)))
    assert cpi.name == "file:cpi_releases.csv"



async def test_a_refused_row_leaves_its_session_to_the_next_source(ctx, calendar) -> None:
    """The breadth screen runs before a row counts: a partial-day count from the first
    source makes the chain ask the next, and is kept only when nobody has better."""
    days = sessions(calendar)
    first = Canned("first", days)
    second = Canned("second", [days[-1]])
    refused = {days[-1]: "partial-day count"}
    filled = await fetch_filled("X", ctx, [first, second], WINDOW,
                                check=lambda row: refused.get(row.session) if row.source == "first"
                                else None)
    assert filled.by_source == {"first": days[:-1], "second": [days[-1]]}
    assert f"first {days[-1]}: refused, partial-day count" in filled.notes
    alone = await fetch_filled("X", ctx, [Canned("first", days)], WINDOW,
                               check=lambda row: refused.get(row.session))
    assert [r.session for r in alone.rows] == days and alone.missing == []


async def test_next_years_tentative_schedule_extends_calendar_json(ctx, server) -> None:
    """calendar.json (recorded 2026-09) lists FOMC to 2026-10-28; the meetings page adds
    the 2027 tentative schedule; the shipped file only what is after both."""
    from bot.market.sources.chain import fetch_extended
    from bot.market.sources.fed import MEETINGS_PAGE

    server.route(FED_PATH, RECORDED / "fed_calendar_2026-10.json")
    server.route(MEETINGS_PAGE, RECORDED / "fed_fomccalendars_2026-11.html")
    today = D(2026, 9, 25)
    parsed, failures = await fetch_extended("FOMC", ctx, chains(server)["FOMC"],
                                            Window(today, today))
    assert failures == []
    assert parsed.source == ("fed + fed-meetings (8 after 2026-10-28) + "
                             "file:fomc_decisions.csv (1 after 2027-12-08)")
    by_source = {}
    for e in parsed.rows:
        by_source.setdefault(e.source, []).append(e.date)
    assert by_source["fed"] == [D(2026, 9, 16), D(2026, 10, 28)]
    assert by_source["fed-meetings"][0] == D(2027, 1, 27)
    assert by_source["fed-meetings"][-1] == D(2027, 12, 8)
    assert by_source["file:fomc_decisions.csv"] == [D(2028, 1, 26)]
    # calendar.json run out (December 2026): the meetings page carries the calendar.
    later = D(2026, 12, 1)
    parsed, failures = await fetch_extended("FOMC", ctx, chains(server)["FOMC"],
                                            Window(later, later))
    assert failures == [("fed", "no upcoming FOMC events after 2026-12-01")]
    assert parsed.rows[0].source == "fed-meetings"
