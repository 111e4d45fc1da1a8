"""``/healthz`` and ``/metrics`` over plain HTTP on the service's event loop.

A few lines of asyncio instead of a web framework: two read-only GET routes
do not justify a dependency, and running in the same loop means the answer
reflects the live state of the scheduler, not a copy.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.kernel.errors import ConfigError

log = logging.getLogger(__name__)

MAX_REQUEST_LINE = 4096


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    body: dict[str, Any]


class HealthServer:
    def __init__(
        self, host: str, port: int, health: Callable[[], Health], metrics: Callable[[], bytes]
    ) -> None:
        self.host, self.port = host, port
        self._health, self._metrics = health, metrics
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
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            while True:  # drain headers
                header = await asyncio.wait_for(reader.readline(), timeout=5)
                if header in (b"\r\n", b"\n", b""):
                    break
            parts = line.decode("latin-1").split()
            method, path = (parts[0], parts[1].split("?")[0]) if len(parts) >= 2 else ("", "")
            if method not in ("GET", "HEAD"):
                status, ctype, body = 405, "text/plain", b"method not allowed\n"
            elif path == "/healthz":
                h = self._health()
                status, ctype = (200 if h.ok else 503), "application/json"
                body = json.dumps(h.body, default=str, indent=1).encode() + b"\n"
            elif path == "/metrics":
                status, ctype = 200, "text/plain; version=0.0.4; charset=utf-8"
                body = self._metrics()
            else:
                status, ctype, body = 404, "text/plain", b"not found\n"
            reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed",
                      503: "Service Unavailable"}[status]
            head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode() + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
