"""``/healthz``, ``/metrics`` (and extra routes, e.g. ``/unsubscribe``) over plain
HTTP on the service's event loop.

A few lines of asyncio instead of a web framework: a handful of small routes
do not justify a dependency, and running in the same loop means the answer
reflects the live state of the scheduler, not a copy. In production the
server sits behind a TLS reverse proxy (``ALVH_PUBLIC_URL``) for the routes
people reach from outside.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.kernel.errors import ConfigError

log = logging.getLogger(__name__)

MAX_REQUEST_LINE = 4096
MAX_BODY = 8192
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           413: "Content Too Large", 503: "Service Unavailable"}


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    body: dict[str, Any]


def merged(*checks: Callable[[], Health]) -> Callable[[], Health]:
    """One health answer from several parts (the service, delivery): healthy when
    all are, their keys side by side, ``status`` recomputed for the whole."""

    def health() -> Health:
        parts = [check() for check in checks]
        ok = all(part.ok for part in parts)
        body: dict[str, Any] = {}
        for part in parts:
            body.update(part.body)
        body["status"] = "ok" if ok else "failing"
        return Health(ok, body)

    return health


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


Route = Callable[[Request], Response]


class HealthServer:
    def __init__(
        self, host: str, port: int, health: Callable[[], Health], metrics: Callable[[], bytes],
        routes: Mapping[str, Route] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self._health, self._metrics = health, metrics
        self._routes = dict(routes or {})
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen; a port in use or an address this host does not have is one ConfigError."""
        try:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as exc:
            why = ("is already in use (another alvh run, or another program: choose a free "
                   "ALVH_HTTP_PORT)" if exc.errno == errno.EADDRINUSE
                   else f"cannot be opened ({exc.strerror or exc})")
            raise ConfigError(f"ALVH_HTTP_HOST={self.host} ALVH_HTTP_PORT={self.port}: "
                              f"{self.host}:{self.port} {why}") from None
        sock = self._server.sockets[0].getsockname()
        self.port = int(sock[1])
        log.info("health: listening on http://%s:%d (/healthz, /metrics)", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> HealthServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await self._read(reader)
            response = self._respond(request) if request is not None else Response(
                400, b"bad request\n")
            method = request.method if request is not None else ""
            head = (f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Error')}\r\n"
                    f"Content-Type: {response.content_type}\r\n"
                    f"Content-Length: {len(response.body)}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode() + (b"" if method == "HEAD" else response.body))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> Request | None:
        line = await asyncio.wait_for(reader.readline(), timeout=5)
        headers: dict[str, str] = {}
        while True:
            header = await asyncio.wait_for(reader.readline(), timeout=5)
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        parts = line.decode("latin-1").split()
        if len(parts) < 2:
            return None
        target = urllib.parse.urlsplit(parts[1])
        query = dict(urllib.parse.parse_qsl(target.query))
        length = headers.get("content-length", "0")
        size = int(length) if length.isdigit() else 0
        if size > MAX_BODY:
            return Request(parts[0], target.path, query, b"\0" * (MAX_BODY + 1), headers)
        body = await asyncio.wait_for(reader.readexactly(size), timeout=5) if size else b""
        return Request(parts[0], target.path, query, body, headers)

    def _respond(self, request: Request) -> Response:
        if len(request.body) > MAX_BODY:
            return Response(413, b"request body too large\n")
        route = self._routes.get(request.path)
        if route is not None:
            return route(request)
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"method not allowed\n")
        if request.path == "/healthz":
            h = self._health()
            body = json.dumps(h.body, default=str, indent=1).encode() + b"\n"
            return Response(200 if h.ok else 503, body, "application/json")
        if request.path == "/metrics":
            return Response(200, self._metrics(), "text/plain; version=0.0.4; charset=utf-8")
        return Response(404, b"not found\n")
