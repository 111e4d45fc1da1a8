"""A real HTTP server on 127.0.0.1 for tests that must cross an actual socket.

Why a real server rather than ``httpx.MockTransport``: retries on timeouts,
``Retry-After`` handling, headers such as User-Agent and what lands in logs
are properties of the whole HTTP stack, and only a socket exercises them.

Usage::

    with LocalServer() as srv:
        srv.route("/v8/finance/chart/^GSPC", Reply(500), Reply(200, body=b"{...}"))
        url = srv.url            # "http://127.0.0.1:<port>"
        ...                      # point the code under test at url
        srv.requests_to("/v8/finance/chart/^GSPC")[0].headers["user-agent"]

* ``route(path, *replies)``: replies are served in order, the last one
  repeats forever; routing the same path again replaces the route. ``path``
  is matched against the *decoded* request path (``%5EGSPC`` and ``^GSPC``
  are the same route); the query string is ignored for matching and recorded
  for assertions. ``method=`` restricts a route to one HTTP method.
* ``Reply(status, body, headers, delay)``: ``delay`` seconds are waited before
  answering, to provoke client timeouts. ``body`` may be ``bytes``/``str`` or
  a ``Path`` read at serve time.
* Unknown paths answer 404 with body ``no route``.
* Every request is recorded (method, path, query, headers, body) in
  ``srv.requests`` in arrival order.

It is stdlib only (``http.server`` in a daemon thread), so any test module
(Telegram fake Bot API, health endpoint, ...) can reuse it.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up mid-request (timeout tests) is expected, not news."""


@dataclass(frozen=True)
class Reply:
    """One canned answer."""

    status: int = 200
    body: bytes | str | Path = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def payload(self) -> bytes:
        if isinstance(self.body, Path):
            return self.body.read_bytes()
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return self.body


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    """Decoded path without the query string."""
    raw_path: str
    """The request target exactly as sent (path and query, still percent-encoded)."""
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Header names lower-cased."""
    body: bytes


@dataclass
class _Route:
    replies: list[Reply]
    method: str | None
    served: int = 0

    def next_reply(self) -> Reply:
        reply = self.replies[min(self.served, len(self.replies) - 1)]
        self.served += 1
        return reply


class LocalServer:
    """Threaded HTTP server with programmable routes; see the module docstring."""

    def __init__(self) -> None:
        self._routes: dict[str, list[_Route]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[RecordedRequest] = []
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler_class())
        # A short poll interval keeps stop() (and so each test's teardown) fast.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def route(
        self, path: str, *replies: Reply | bytes | str | Path, method: str | None = None
    ) -> None:
        """Serve ``replies`` in order on ``path``; the last one repeats.

        Routing the same path (and method) again replaces the earlier route
        and restarts its sequence.
        """
        if not replies:
            raise ValueError("route needs at least one reply")
        canned = [r if isinstance(r, Reply) else Reply(body=r) for r in replies]
        verb = method.upper() if method else None
        with self._lock:
            routes = self._routes.setdefault(urllib.parse.unquote(path), [])
            routes[:] = [r for r in routes if r.method != verb]
            routes.append(_Route(canned, verb))

    def requests_to(self, path: str) -> list[RecordedRequest]:
        decoded = urllib.parse.unquote(path)
        with self._lock:
            return [r for r in self.requests if r.path == decoded]

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals -------------------------------------------------------

    def _pick(self, method: str, path: str) -> Reply:
        with self._lock:
            candidates = self._routes.get(path, [])
            # A method-specific route wins over a catch-all one.
            for candidate in sorted(candidates, key=lambda r: r.method is None):
                if candidate.method in (None, method):
                    return candidate.next_reply()
        return Reply(404, b"no route")

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urllib.parse.unquote(parsed.path)
                server._record(
                    RecordedRequest(
                        method=self.command,
                        path=path,
                        raw_path=self.path,
                        query=urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
                        headers={k.lower(): v for k, v in self.headers.items()},
                        body=body,
                    )
                )
                reply = server._pick(self.command, path)
                if reply.delay and server._stopping.wait(reply.delay):
                    return
                payload = reply.payload()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up (a timeout test): nothing to answer.
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, format: str, *args: object) -> None:
                """Silence per-request stderr noise."""

        return Handler


@dataclass
class RecordingSleep:
    """An injectable ``sleep`` that records requested delays and returns at once."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def header_values(requests: Iterable[RecordedRequest], name: str) -> list[str]:
    """The values of header ``name`` across ``requests`` (missing ones skipped)."""
    key = name.lower()
    return [r.headers[key] for r in requests if key in r.headers]
