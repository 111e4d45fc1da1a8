"""A TradingView chart WebSocket on 127.0.0.1, answering in the service's own framing.

Frame structure (``~m~<len>~m~`` envelopes, the hello packet, ``~h~`` heartbeats,
``symbol_resolved``, ``timescale_update`` with ``{"s1": {"node", "s": [{"i", "v"}],
"ns", "t", "lbs"}}`` and ``series_completed``) as recorded from the real service in
public code (a ``du`` frame quoted in a TradingView client, see
tests/fixtures/recorded/README.md); the bar values are TradingView's own
USI:ADVN.NY / USI:DECL.NY daily bars from the shipped file
(bot/data/snapshot/breadth/tradingview-2003-2026, PROVENANCE.md), or any the
test gives. Derived, therefore: real structure and real values, put together here.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.kernel.sessions import ET

TV_FILE = (Path(__file__).resolve().parents[1] / "bot" / "data" / "snapshot" / "breadth"
           / "tradingview-2003-2026" / "nyse_advn_decln.csv")
HELLO = ('{"session_id":"<0.12345.678>_sfo-charts-17-webchart-3@sfo-compute-17_x",'
         '"timestamp":1790000000,"timestampMs":1790000000123,"release":"registry.x:5000/'
         'tvbs_release/webchart:release_206-21","studies_metadata_hash":"x",'
         '"auth_scheme_vsn":2,"protocol":"json","via":"89.43.104.115:443",'
         '"javastudies":["3.66"]}')


def framed(payload: str) -> str:
    return f"~m~{len(payload)}~m~{payload}"


def tv_rows(start: dt.date, end: dt.date) -> dict[dt.date, tuple[int, int]]:
    """The shipped TradingView counts (advancing, declining) for ``start..end``."""
    out: dict[dt.date, tuple[int, int]] = {}
    with TV_FILE.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            day = dt.date.fromisoformat(row["date"])
            if start <= day <= end:
                out[day] = (int(row["advancing"]), int(row["declining"]))
    return out


def stamp(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(9, 30), tzinfo=ET).timestamp())


@dataclass
class FakeTradingView:
    """Serves ``counts`` ({session: (advancing, declining)}) for USI:ADVN.NY/USI:DECL.NY."""

    counts: Mapping[dt.date, tuple[int, int]]
    error: str | None = None
    """A method (``series_error``...) sent instead of the bars."""
    close_early: bool = False
    """Hang up after the first series' bars."""
    delay: float = 0.0
    status: int | None = None
    """Refuse the WebSocket handshake with this HTTP status."""
    received: list[Any] = field(default_factory=list)
    """Every client payload, decoded."""
    echoed_heartbeat: bool = False

    def bars(self, which: int) -> list[dict[str, Any]]:
        return [{"i": i, "v": [float(stamp(day)), float(c[which]), float(c[which]),
                                float(c[which]), float(c[which]), 0.0]}
                for i, (day, c) in enumerate(sorted(self.counts.items()))]

    async def handler(self, ws: Any) -> None:
        await ws.send(framed(HELLO))
        await ws.send(framed("~h~1"))
        series: dict[str, str] = {}
        symbols: dict[str, str] = {}
        chart = ""
        async for raw in ws:
            for payload in _split(raw):
                if payload.startswith("~h~"):
                    self.echoed_heartbeat = True  # the real service drops clients that don't
                    continue
                msg = json.loads(payload)
                self.received.append(msg)
                method, params = msg["m"], msg["p"]
                if method == "chart_create_session":
                    chart = params[0]
                elif method == "resolve_symbol":
                    symbols[params[1]] = json.loads(params[2][1:])["symbol"]
                elif method == "create_series":
                    series[params[1]] = symbols[params[3]]
            if len(series) == 2 and self.echoed_heartbeat:
                break
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error:
            await ws.send(framed(json.dumps({"m": self.error, "p": [chart, "s1", "invalid"]})))
            return
        for sid, symbol in series.items():
            which = 0 if symbol == "USI:ADVN.NY" else 1
            resolved = {"m": "symbol_resolved", "p": [chart, f"symbol_{sid[-1]}", {
                "name": symbol.split(":")[1], "exchange": "USI", "timezone": "America/New_York",
                "session": "0930-1600", "type": "index"}]}
            update = {"m": "timescale_update", "p": [chart, {sid: {
                "node": "sfo-charts-17", "s": self.bars(which),
                "ns": {"d": "", "indexes": []}, "t": sid,
                "lbs": {"bar_close_time": stamp(max(self.counts)) + 23400}},
                "index": len(self.counts) - 1, "zoffset": 0, "changes": [], "marks": [],
                "index_diff": []}]}
            completed = {"m": "series_completed", "p": [chart, sid, "streaming", f"{sid}_1"]}
            await ws.send(framed(json.dumps(resolved)) + framed(json.dumps(update)))
            if self.close_early:
                return
            await ws.send(framed(json.dumps(completed)))
        await asyncio.sleep(0.05)


def _split(raw: str | bytes) -> Iterable[str]:
    from bot.market.sources.tradingview import frames

    return frames(raw if isinstance(raw, str) else raw.decode())


class TradingViewServer:
    """Runs a :class:`FakeTradingView` on 127.0.0.1 in a thread; ``url`` is ws://..."""

    def __init__(self, fake: FakeTradingView) -> None:
        self.fake = fake
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        from websockets.asyncio.server import serve
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()

        def refuse(connection: Any, request: Any) -> Response | None:
            if self.fake.status is None:
                return None
            return Response(self.fake.status, "Refused", Headers({"Content-Length": "0"}), b"")

        async with serve(self.fake.handler, "127.0.0.1", 0, process_request=refuse) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> TradingViewServer:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)
