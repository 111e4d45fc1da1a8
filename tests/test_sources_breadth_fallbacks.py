"""The breadth chain's other sources: the McClellan page (one day) and TradingView's
USI:ADVN.NY/USI:DECL.NY daily bars (history), each against a real local server."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import httpx
import pytest
from conftest import make_ctx
from httpserver import LocalServer
from tvserver import FakeTradingView, TradingViewServer, tv_rows

from bot.kernel.errors import SourceDataError, SourceUnavailable
from bot.kernel.models import Breadth
from bot.kernel.sessions import ET, SessionCalendar
from bot.market.sources.base import Window
from bot.market.sources.body import html_text
from bot.market.sources.mcclellan import PAGE, McClellanPage, parse_mcclellan_page
from bot.market.sources.tradingview import (
    TradingViewBreadth,
    breadth_from_bars,
    frame,
    frames,
)

RECORDED = Path(__file__).parent / "fixtures" / "recorded"
D = dt.date


# -- McClellan --------------------------------------------------------------------------


def test_the_page_text_snapshot_gives_the_patch_figures(calendar: SessionCalendar) -> None:
    """The 2024-06-17 snapshot is where the shipped patch file's figures come from."""
    parsed = parse_mcclellan_page((RECORDED / "mcclellan_breadth_2024-06-17.txt").read_bytes(),
                                  calendar=calendar)
    assert parsed.rows == (Breadth(D(2024, 6, 17), 1650, 1131, "mcclellan",
                                   adv_volume=2_081_873_000.0, dec_volume=1_335_642_000.0),)


def test_the_html_table_form_reads_the_same(calendar: SessionCalendar) -> None:
    body = (RECORDED / "mcclellan_breadth_2023-05-30.html").read_bytes()
    (row,) = parse_mcclellan_page(body, calendar=calendar).rows
    assert (row.session, row.advancers, row.decliners) == (D(2023, 5, 30), 1408, 1574)
    assert html_text("<td>Advances</td><td>1408</td>") == "Advances 1408"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html><body>Just a moment...</body></html>", "no 'NYSE: MM/DD/YYYY' on the page"),
        (b"NYSE: 06/17/2024 Issues Volume Declines 1131 1335642", "no Advances row"),
        (b"NYSE: 06/16/2024 Advances 1650 2081873 Declines 1131 1335642",
         "2024-06-16 on the page is not an NYSE session"),
        (b"", "empty body"),
    ],
)
def test_a_page_without_the_figures_is_refused(body: bytes, message: str,
                                               calendar: SessionCalendar) -> None:
    with pytest.raises(SourceDataError, match=re.escape(message)):
        parse_mcclellan_page(body, calendar=calendar)


async def test_the_page_serves_its_one_day(server: LocalServer, client: httpx.AsyncClient,
                                           calendar: SessionCalendar) -> None:
    server.route(PAGE, RECORDED / "mcclellan_breadth_2024-06-17.txt")
    day = D(2024, 6, 17)
    ctx = make_ctx(client, calendar, now=dt.datetime(2024, 6, 17, 21, tzinfo=ET))
    page = McClellanPage(server.url)
    assert (await page.fetch(ctx, Window(day, day, day))).rows[0].advancers == 1650
    assert page.serves(ctx, Window(D(2024, 6, 14), day)) is not None  # one day only
    late = make_ctx(client, calendar, now=dt.datetime(2024, 6, 18, 21, tzinfo=ET))
    with pytest.raises(SourceDataError, match="stale: newest row 2024-06-17, expected 2024-06-18"):
        await page.fetch(late, Window(D(2024, 6, 18), D(2024, 6, 18), D(2024, 6, 18)))


# -- TradingView ---------------------------------------------------------------------------


def test_frames_split_and_heartbeats() -> None:
    packed = frame('{"m":"a","p":[]}') + frame("~h~7")
    assert frames(packed) == ['{"m":"a","p":[]}', "~h~7"]
    with pytest.raises(SourceDataError, match="truncated frame"):
        frames("~m~40~m~{}")


def test_bars_join_by_session(calendar: SessionCalendar) -> None:
    stamp = dt.datetime(2026, 3, 19, 9, 30, tzinfo=ET).timestamp()
    saturday = dt.datetime(2026, 3, 21, 9, 30, tzinfo=ET).timestamp()
    parsed = breadth_from_bars([[stamp, 1, 2, 0, 1321, 0], [saturday, 5, 5, 5, 5, 0]],
                               [[stamp, 1, 2, 0, 1454, 0]], calendar)
    assert parsed.rows == (Breadth(D(2026, 3, 19), 1321, 1454, "tradingview"),)
    assert [(d.date, d.reason) for d in parsed.dropped] == [(D(2026, 3, 21),
                                                             "not an NYSE session")]
    with pytest.raises(SourceDataError, match="is not an issue count"):
        breadth_from_bars([[stamp, 1, 2, 0, 13.5, 0]], [[stamp, 1, 2, 0, 1, 0]], calendar)


async def test_history_from_the_two_series(client: httpx.AsyncClient,
                                           calendar: SessionCalendar) -> None:
    counts = tv_rows(D(2026, 1, 2), D(2026, 3, 20))
    fake = FakeTradingView(counts)
    ctx = make_ctx(client, calendar, now=dt.datetime(2026, 3, 20, 18, tzinfo=ET))
    with TradingViewServer(fake) as srv:
        parsed = await TradingViewBreadth(srv.url).fetch(
            ctx, Window(D(2026, 2, 2), D(2026, 3, 20), D(2026, 3, 20)))
    assert parsed.rows[-1] == Breadth(D(2026, 3, 20), 621, 2170, "tradingview")
    assert parsed.rows[0].session == D(2026, 2, 2) and len(parsed.rows) == 34
    methods = [m["m"] for m in fake.received]
    assert methods[:2] == ["set_auth_token", "chart_create_session"]
    assert methods.count("create_series") == 2 and fake.echoed_heartbeat
    symbols = {m["p"][2] for m in fake.received if m["m"] == "resolve_symbol"}
    assert symbols == {'={"symbol":"USI:ADVN.NY","adjustment":"splits","session":"regular"}',
                       '={"symbol":"USI:DECL.NY","adjustment":"splits","session":"regular"}'}


@pytest.mark.parametrize(
    ("fake", "error", "says"),
    [
        (FakeTradingView({}, error="series_error"), SourceDataError, "series_error"),
        (FakeTradingView({}, status=503), SourceUnavailable, "handshake refused: HTTP 503"),
        (FakeTradingView({}, status=403), SourceDataError, "handshake refused: HTTP 403"),
    ],
    ids=["series_error", "503", "403"],
)
async def test_failures_are_source_errors(fake, error, says, client, calendar) -> None:
    ctx = make_ctx(client, calendar, now=dt.datetime(2026, 3, 20, 18, tzinfo=ET))
    with TradingViewServer(fake) as srv, pytest.raises(error, match=says):
        await TradingViewBreadth(srv.url).fetch(ctx, Window(D(2026, 3, 2), D(2026, 3, 20)))


async def test_a_hang_up_before_both_series_is_temporary(client, calendar) -> None:
    fake = FakeTradingView(tv_rows(D(2026, 3, 2), D(2026, 3, 20)), close_early=True)
    ctx = make_ctx(client, calendar, now=dt.datetime(2026, 3, 20, 18, tzinfo=ET))
    closed = re.escape("closed before USI:ADVN.NY")
    with TradingViewServer(fake) as srv, pytest.raises(SourceUnavailable, match=closed):
        await TradingViewBreadth(srv.url).fetch(ctx, Window(D(2026, 3, 2), D(2026, 3, 20)))


async def test_nothing_listening_is_temporary(client, calendar) -> None:
    ctx = make_ctx(client, calendar, now=dt.datetime(2026, 3, 20, 18, tzinfo=ET))
    with pytest.raises(SourceUnavailable, match="connection failed"):
        await TradingViewBreadth("ws://127.0.0.1:9").fetch(ctx, Window(D(2026, 3, 2),
                                                                       D(2026, 3, 20)))

