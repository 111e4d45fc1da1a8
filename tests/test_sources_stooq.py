"""Stooq (optional, keyed SPX source): CSV, its one-line refusals, and the key."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from httpserver import LocalServer, Reply
from pydantic import SecretStr

from bot.kernel.errors import SourceDataError, SourceUnavailable
from bot.kernel.sessions import SessionCalendar
from bot.market.sources.base import SourceContext, Window
from bot.market.sources.stooq import Stooq, parse_stooq_csv

BODY = (Path(__file__).parent / "fixtures" / "recorded" / "stooq_spx_2026-02.csv").read_bytes()
PATH = "/q/d/l/"
KEY = SecretStr("stooq-secret-4711")
D = dt.date


def test_recorded_csv(calendar: SessionCalendar) -> None:
    parsed = parse_stooq_csv(BODY, calendar=calendar)
    assert parsed.source == "stooq" and len(parsed.rows) == 14
    last = parsed.rows[-1]
    assert (last.session, last.open, last.close, last.volume) == (
        D(2026, 2, 27),
        6856.54,
        6878.88,
        6665660000,
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"No data", "answered 'No data'"),
        (
            b"Get your apikey: https://stooq.com/q/d/?s=spy.us&get_apikey",
            "API key refused or required",
        ),
        (b"Exceeded the daily hits limit", "request limit reached"),
        (b"Symbol,Price\n^SPX,1\n", "not a Stooq CSV: first line 'Symbol,Price'"),
        (b"<html><body><script>proof of work</script></body></html>", "HTML page instead of CSV"),
        (b"", "empty body"),
    ],
)
def test_refusals(body: bytes, message: str, calendar: SessionCalendar) -> None:
    with pytest.raises(SourceDataError) as info:
        parse_stooq_csv(body, calendar=calendar)
    assert message in str(info.value)


async def test_fetch_sends_key_range_and_agent(
    ctx: SourceContext,
    server: LocalServer,
) -> None:
    server.route(PATH, BODY)
    parsed = await Stooq(KEY, server.url).fetch(
        ctx, Window(D(2026, 2, 9), D(2026, 2, 27), D(2026, 2, 27)))
    assert parsed.rows[-1].close == 6878.88
    (request,) = server.requests_to(PATH)
    assert request.query == {
        "s": ["^spx"],
        "i": ["d"],
        "d1": ["20260209"],
        "d2": ["20260227"],
        "apikey": [KEY.get_secret_value()],
    }
    assert "Mozilla/5.0" in request.headers["user-agent"]


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, f"Invalid apikey {KEY.get_secret_value()}"),
        Reply(503),
        Reply(403, f"forbidden for {KEY.get_secret_value()}"),
    ],
    ids=["echo", "503", "403"],
)
async def test_key_never_leaks(
    reply: Reply,
    ctx: SourceContext,
    server: LocalServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in (None, "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    server.route(PATH, reply)
    with pytest.raises((SourceDataError, SourceUnavailable)) as info:
        await Stooq(KEY, server.url).fetch(ctx, Window(D(2026, 2, 9), D(2026, 2, 27)))
    secret = KEY.get_secret_value()
    assert server.requests_to(PATH)[0].query["apikey"] == [secret]
    assert secret not in str(info.value) and info.value.__context__ is None
    assert secret not in caplog.text


async def test_stale(
    ctx: SourceContext,
    server: LocalServer,
) -> None:
    server.route(PATH, BODY)
    with pytest.raises(
        SourceDataError, match="stooq: stale: newest row 2026-02-27, expected 2026-03-02"
    ):
        await Stooq(KEY, server.url).fetch(ctx, Window(D(2026, 2, 9), D(2026, 3, 2), D(2026, 3, 2)))
