"""NYSE breadth history from TradingView's ``USI:ADVN.NY`` and ``USI:DECL.NY`` daily bars.

The only free *history* of NYSE advancers and decliners after Unicorn's
archive stopped (February 2020): up to 5,000 daily bars per symbol, which is
how a new install back-fills the breadth the divergence look-back needs, and
how sessions a diary missed are filled.

TradingView has no REST API for this: its chart talks a WebSocket protocol
(``wss://data.tradingview.com/socket.io/websocket``). Every message is framed
``~m~<length>~m~<payload>``, several to a WebSocket message; a payload is a
JSON object ``{"m": method, "p": [params]}`` or a heartbeat ``~h~<n>`` that
must be echoed. The exchange used here, as public clients such as tvDatafeed
do it, anonymously (``unauthorized_user_token``)::

    -> set_auth_token, chart_create_session, resolve_symbol (x2), create_series (x2)
    <- symbol_resolved, timescale_update {"s1": {"s": [{"i": 0, "v": [t, o, h, l, c, vol]}...]}},
       series_completed (once per series)

A daily bar is stamped at the session's 09:30 ET open; the count is its close
(the ``o/h/l`` of a count are intraday extremes and ignored). Some bars are
partial-day snapshots, not final counts (the feed stopped updating during
the day): the breadth screen rejects them before they are stored. Any
``symbol_error``, ``series_error`` or ``critical_error`` fails the source.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from bot.kernel.errors import SourceDataError, SourceUnavailable
from bot.kernel.models import Breadth, Dropped, Parsed
from bot.kernel.sessions import ET, SessionCalendar
from bot.market.sources.base import BreadthSource, SourceContext, Window
from bot.market.sources.files import NOT_A_SESSION, is_session
from bot.market.sources.http import BROWSER_USER_AGENT

SOURCE = "tradingview"
TRADINGVIEW_BASE = "wss://data.tradingview.com"
PATH = "/socket.io/websocket"
ADVANCERS, DECLINERS = "USI:ADVN.NY", "USI:DECL.NY"
MAX_BARS = 5000
"""TradingView serves at most this many bars of one series."""
ANSWER_TIMEOUT = 30.0
"""Seconds to wait for both series to complete once connected."""

_FRAME = re.compile(r"~m~(\d+)~m~")
_ERRORS = {"symbol_error", "series_error", "critical_error", "protocol_error"}


def frames(message: str) -> list[str]:
    """The payloads packed into one WebSocket message (``~m~<len>~m~<payload>``...)."""
    out: list[str] = []
    pos = 0
    while pos < len(message):
        head = _FRAME.match(message, pos)
        if head is None:
            raise SourceDataError(SOURCE, f"not a TradingView frame at char {pos}: "
                                          f"{message[pos:pos + 40]!r}")
        start = head.end()
        end = start + int(head.group(1))
        if end > len(message):
            raise SourceDataError(SOURCE, "truncated frame")
        out.append(message[start:end])
        pos = end
    return out


def frame(payload: str) -> str:
    """One payload framed for sending (lengths count characters, as the server does)."""
    return f"~m~{len(payload)}~m~{payload}"


def message(method: str, *params: object) -> str:
    return frame(json.dumps({"m": method, "p": list(params)}, separators=(",", ":")))


def bars_in(payload: Mapping[str, Any], series: Sequence[str]) -> dict[str, list[list[Any]]]:
    """``v`` arrays per series id from one ``timescale_update``/``du`` payload."""
    params = payload.get("p")
    body = params[1] if isinstance(params, list) and len(params) > 1 else None
    out: dict[str, list[list[Any]]] = {}
    if not isinstance(body, Mapping):
        return out
    for sid in series:
        block = body.get(sid)
        points = block.get("s") if isinstance(block, Mapping) else None
        if isinstance(points, list):
            out[sid] = [p["v"] for p in points if isinstance(p, Mapping) and
                        isinstance(p.get("v"), list)]
    return out


def _counts(points: Sequence[Sequence[Any]], symbol: str) -> dict[dt.date, int]:
    """Session date (09:30 ET stamp) -> the bar's close, as an issue count."""
    out: dict[dt.date, int] = {}
    for v in points:
        if len(v) < 5:
            raise SourceDataError(SOURCE, f"{symbol}: short bar {v!r}")
        stamp, close = v[0], v[4]
        if not isinstance(stamp, int | float) or not isinstance(close, int | float) or (
                not math.isfinite(close)):
            raise SourceDataError(SOURCE, f"{symbol}: non-numeric bar {v!r}")
        if close < 0 or close != int(close):
            raise SourceDataError(SOURCE, f"{symbol}: {close!r} is not an issue count")
        day = dt.datetime.fromtimestamp(float(stamp), tz=ET).date()
        out[day] = int(close)  # a later bar for one day (a live update) wins
    return out


def breadth_from_bars(
    advancing: Sequence[Sequence[Any]], declining: Sequence[Sequence[Any]],
    calendar: SessionCalendar,
) -> Parsed[Breadth]:
    """Join the two symbols' bars by session into breadth rows, oldest first.

    A session present in one series only is dropped with why; so are bars on
    non-sessions.
    """
    adv, dec = _counts(advancing, ADVANCERS), _counts(declining, DECLINERS)
    rows: list[Breadth] = []
    dropped: list[Dropped] = []
    for day in sorted(adv.keys() | dec.keys()):
        if not is_session(calendar, day, SOURCE):
            dropped.append(Dropped(day, NOT_A_SESSION))
        elif day not in adv or day not in dec:
            missing = ADVANCERS if day not in adv else DECLINERS
            dropped.append(Dropped(day, f"no {missing} bar for this session"))
        else:
            rows.append(Breadth(day, adv[day], dec[day], SOURCE))
    return Parsed(SOURCE, tuple(rows), tuple(dropped))


class TradingViewBreadth(BreadthSource):
    """Daily NYSE advancers/decliners history (any window within the last 5,000 bars)."""

    name = SOURCE

    def __init__(self, base_url: str = TRADINGVIEW_BASE) -> None:
        super().__init__(base_url)

    async def answer(self, ctx: SourceContext, window: Window) -> Parsed[Breadth]:
        wanted = len(ctx.calendar.sessions_between(window.start, ctx.last_closed())) + 5
        n_bars = min(MAX_BARS, max(wanted, 10))
        try:
            points = await asyncio.wait_for(self._series(n_bars), ANSWER_TIMEOUT)
        except TimeoutError:
            raise SourceUnavailable(SOURCE, f"no complete answer in {ANSWER_TIMEOUT:.0f}s") \
                from None
        return breadth_from_bars(points["s1"], points["s2"], ctx.calendar)

    async def _series(self, n_bars: int) -> dict[str, list[list[Any]]]:
        from websockets.asyncio.client import connect
        from websockets.exceptions import (
            ConnectionClosed,
            InvalidHandshake,
            InvalidStatus,
            WebSocketException,
        )

        chart = "cs_" + secrets.token_hex(6)
        symbols = {"s1": ADVANCERS, "s2": DECLINERS}
        points: dict[str, list[list[Any]]] = {sid: [] for sid in symbols}
        done: set[str] = set()
        try:
            async with connect(f"{self.base_url}{PATH}", open_timeout=10,
                               user_agent_header=BROWSER_USER_AGENT,
                               origin="https://www.tradingview.com",  # type: ignore[arg-type]
                               max_size=2**24) as ws:
                await ws.send(message("set_auth_token", "unauthorized_user_token"))
                await ws.send(message("chart_create_session", chart, ""))
                for n, (sid, symbol) in enumerate(symbols.items(), start=1):
                    spec = "=" + json.dumps({"symbol": symbol, "adjustment": "splits",
                                             "session": "regular"}, separators=(",", ":"))
                    await ws.send(message("resolve_symbol", chart, f"symbol_{n}", spec))
                    await ws.send(message("create_series", chart, sid, sid, f"symbol_{n}",
                                          "1D", n_bars))
                async for raw in ws:
                    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                    for payload in frames(text):
                        if payload.startswith("~h~"):
                            await ws.send(frame(payload))  # heartbeat: echo it
                            continue
                        self._read(payload, points, done)
                    if done == set(symbols):
                        return points
        except ConnectionClosed:
            pass  # said below, with what was still missing
        except InvalidStatus as exc:
            status = exc.response.status_code
            cls = SourceUnavailable if status == 429 or status >= 500 else SourceDataError
            raise cls(SOURCE, f"WebSocket handshake refused: HTTP {status}") from None
        except (InvalidHandshake, WebSocketException, OSError) as exc:
            raise SourceUnavailable(SOURCE, f"connection failed ({type(exc).__name__})") \
                from None
        missing = ", ".join(symbols[s] for s in symbols if s not in done)
        raise SourceUnavailable(SOURCE, f"connection closed before {missing} completed")

    def _read(self, payload: str, points: dict[str, list[list[Any]]], done: set[str]) -> None:
        try:
            data = json.loads(payload)
        except json.JSONDecodeError:
            raise SourceDataError(SOURCE, f"not JSON: {payload[:60]!r}") from None
        if not isinstance(data, Mapping):
            return
        method = data.get("m")
        if method in _ERRORS:
            raise SourceDataError(SOURCE, f"{method}: {json.dumps(data.get('p'))[:160]}")
        if method in ("timescale_update", "du"):
            for sid, bars in bars_in(data, list(points)).items():
                points[sid].extend(bars)
        elif method == "series_completed":
            params = data.get("p")
            if isinstance(params, list) and len(params) > 1 and params[1] in points:
                done.add(str(params[1]))
