"""A fake Telegram Bot API server on 127.0.0.1 for the real python-telegram-bot client.

Why a server rather than mocks: the things that break Telegram bots in
production (HTML the server refuses, 4096-character limits, 429 flood
control with ``retry_after``, users who blocked the bot, timeouts, long
polling) are properties of the HTTP exchange, and only a real client talking
to a real socket exercises PTB's own request and error handling.

Point PTB at it with ``ApplicationBuilder().token(TOKEN).base_url(fake.base_url)
.base_file_url(fake.base_file_url)`` (or ``Bot(TOKEN, base_url=...)``).

What it implements: getMe, getUpdates (long polling over updates a test
injects with ``user_says`` / ``user_presses``), sendMessage, sendPhoto
(multipart), answerCallbackQuery, editMessageText, editMessageReplyMarkup,
setMyCommands, deleteMyCommands, deleteWebhook, getWebhookInfo, close, logOut.
Every request is recorded (``calls``); successful sends are also recorded as
``sent`` messages.

Like Telegram, it refuses with 400 a text over 4096 UTF-16 units after
entity parsing ("message is too long"), an empty text, a caption over 1024,
and malformed HTML in parse mode HTML ("can't parse entities: ..."): only
Telegram's tags are accepted, tags must nest and close, ``&`` must start one
of the supported entities.

Telegram's limits, enforced by default as the FAQ states them ("avoid sending
more than one message per second" to a chat, "no more than 20 messages per
minute" to a group, "not more than 30 messages per second" overall): a send
beyond them is answered 429 with ``retry_after``, exactly like Telegram, and
counted in ``limited`` (``FakeTelegram(limits=None)`` turns them off for
tests that are not about limits; ``Limits(...)`` scales them).

Faults on demand: ``fail`` (a status with a description and optional
``retry_after``, for one chat or all, for the next N calls or forever, and
delays that make the client time out), ``flood_all`` (a bot-wide 429 mode:
every send refused for a while), ``down(seconds)`` (connection refused, and
the open connections dropped, for N seconds), ``bad_gateway(every=n)`` (every
n-th request answered 502 with nginx's HTML page).

Error bodies are the real ones Telegram sends, from ``fixtures/telegram``
(see its PROVENANCE.md).
"""

from __future__ import annotations

import asyncio
import collections
import email.parser
import email.policy
import itertools
import json
import math
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

BOT_ID = 7000001
BOT_USER = {
    "id": BOT_ID,
    "is_bot": True,
    "first_name": "ALVH test",
    "username": "alvh_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
SEND_METHODS = frozenset({"sendMessage", "sendPhoto"})
JSON_FIELDS = frozenset(
    {"reply_markup", "link_preview_options", "commands", "allowed_updates", "entities", "scope"}
)
MAX_TEXT = 4096
MAX_CAPTION = 1024
RECORDED = Path(__file__).parent / "fixtures" / "telegram"
"""Real Bot API error bodies (see PROVENANCE.md there)."""


def recorded(name: str) -> bytes:
    """A recorded answer, byte for byte."""
    return (RECORDED / name).read_bytes()


def error_body(status: int, description: str, retry_after: int | None = None) -> dict[str, Any]:
    """Telegram's error envelope, with the recorded body where one exists.

    429 is the recorded answer with its wait replaced, 403 "blocked" and 401
    are served as recorded, anything else in the same envelope.
    """
    if status == 429 and retry_after is not None:
        body: dict[str, Any] = json.loads(recorded("429_too_many_requests.json"))
        body["description"] = f"Too Many Requests: retry after {retry_after}"
        body["parameters"]["retry_after"] = retry_after
        return body
    for name in ("403_blocked.json", "401_unauthorized.json", "400_cant_parse_entities.json"):
        body = json.loads(recorded(name))
        if body["error_code"] == status and (body["description"] == description or status == 400):
            body["description"] = description
            if retry_after is not None:
                body["parameters"] = {"retry_after": retry_after}
            return body
    body = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return body

# ---------------------------------------------------------------------------- HTML

ALLOWED_TAGS: dict[str, frozenset[str]] = {
    "b": frozenset(),
    "strong": frozenset(),
    "i": frozenset(),
    "em": frozenset(),
    "u": frozenset(),
    "ins": frozenset(),
    "s": frozenset(),
    "strike": frozenset(),
    "del": frozenset(),
    "a": frozenset({"href"}),
    "code": frozenset({"class"}),
    "pre": frozenset(),
    "tg-spoiler": frozenset(),
    "span": frozenset({"class"}),
    "blockquote": frozenset({"expandable"}),
    "tg-emoji": frozenset({"emoji-id"}),
}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:=\"[^\"]*\"|='[^']*')?)*)\s*>")
_ATTR = re.compile(r"([a-zA-Z-]+)(?:=(\"[^\"]*\"|'[^']*'))?")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class EntityError(ValueError):
    pass


def _offset(text: str, i: int) -> int:
    return len(text[:i].encode("utf-8"))


def parse_html(text: str) -> str:
    """The visible text of Telegram HTML, or ``EntityError`` the way Telegram words it."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            m = _TAG.match(text, i)
            if m is None:
                raise EntityError(f"Unexpected character '<' at byte offset {_offset(text, i)}")
            closing, name, attrs = m.group(1) == "/", m.group(2).lower(), m.group(3)
            if name not in ALLOWED_TAGS:
                raise EntityError(
                    f'Unsupported start tag "{name}" at byte offset {_offset(text, i)}'
                )
            if closing:
                if not stack:
                    raise EntityError(f"Unexpected end tag at byte offset {_offset(text, i)}")
                if stack[-1] != name:
                    raise EntityError(
                        f"Unmatched end tag at byte offset {_offset(text, i)}, "
                        f'expected "</{stack[-1]}>", found "</{name}>"'
                    )
                stack.pop()
            else:
                found = {a.group(1).lower(): a.group(2) for a in _ATTR.finditer(attrs)}
                extra = set(found) - ALLOWED_TAGS[name]
                if extra:
                    raise EntityError(
                        f'Unsupported attribute "{sorted(extra)[0]}" of tag "{name}" '
                        f"at byte offset {_offset(text, i)}"
                    )
                if name == "a" and "href" not in found:
                    raise EntityError(f'Tag "a" must have attribute href at byte offset {i}')
                if name == "span" and (found.get("class") or "").strip("\"'") != "tg-spoiler":
                    raise EntityError(f'Tag "span" must have class "tg-spoiler" at offset {i}')
                stack.append(name)
            i = m.end()
        elif ch == "&":
            m = _ENTITY.match(text, i)
            if m is None:
                raise EntityError(f"Character entity expected at byte offset {_offset(text, i)}")
            ref = m.group(1)
            if ref.startswith("#x"):
                out.append(chr(int(ref[2:], 16)))
            elif ref.startswith("#"):
                out.append(chr(int(ref[1:])))
            else:
                out.append(_NAMED[ref])
            i = m.end()
        elif ch == ">":
            out.append(ch)  # Telegram tolerates a bare '>'
            i += 1
        else:
            out.append(ch)
            i += 1
    if stack:
        raise EntityError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def u16len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# ---------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Call:
    """One request, as the fake saw it and answered it."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    status: int
    description: str
    token: str
    at: float
    """``time.monotonic()`` when the request arrived."""

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None


@dataclass(frozen=True)
class Sent:
    """A message Telegram would have shown the user."""

    chat_id: int
    method: str
    message_id: int
    text: str
    """Visible text (tags removed, entities decoded), or the caption of a photo."""
    raw: str
    """The text or caption exactly as sent."""
    parse_mode: str | None
    photo: bytes | None
    reply_markup: Any
    at: float


@dataclass
class Fault:
    status: int
    description: str
    retry_after: int | None = None
    delay: float = 0.0
    """Seconds to wait before answering (beyond the client's timeout = a timeout)."""
    deliver: bool = False
    """With ``delay``: the message is delivered although the client gave up waiting."""
    chat_id: int | None = None
    methods: frozenset[str] = SEND_METHODS
    remaining: int | None = 1
    """How many more calls it applies to; None = forever."""
    after: int = 0
    """Matching calls to let through untouched before the fault starts."""

    def matches(self, method: str, chat_id: int | None) -> bool:
        if method not in self.methods:
            return False
        if self.chat_id is not None and self.chat_id != chat_id:
            return False
        return self.remaining is None or self.remaining > 0


# ---------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class Limits:
    """Telegram's flood limits (Bots FAQ, "My bot is hitting limits")."""

    chat_interval: float = 1.0
    """Seconds between two messages to one private chat."""
    group_per_minute: int = 20
    """Messages to one group (negative chat id) in any 60 s."""
    per_second: int = 30
    """Messages in any 1 s, all chats together."""
    group_window: float = 60.0
    paid_per_second: int = 1000
    """Messages sent with ``allow_paid_broadcast`` in any 1 s (Bot API 7.11: "up to 1000
    messages per second, ignoring broadcasting limits"); they do not count against
    ``per_second``."""


@dataclass
class _Windows:
    """Accepted sends, for the limits: the whole bot, and each chat."""

    overall: collections.deque[float] = field(default_factory=collections.deque)
    paid: collections.deque[float] = field(default_factory=collections.deque)
    chats: dict[int, collections.deque[float]] = field(default_factory=dict)


# ---------------------------------------------------------------------------- server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients hanging up (timeouts, a stopped updater) are expected."""


class FakeTelegram:
    """See the module docstring."""

    def __init__(
        self,
        *,
        token: str | None = None,
        long_poll_max: float = 0.2,
        limits: Limits | None = Limits(),
    ) -> None:
        self.token = token
        """If set, any other token is answered 401 Unauthorized."""
        self.long_poll_max = long_poll_max
        self.limits = limits
        self.calls: list[Call] = []
        self.sent: list[Sent] = []
        self.faults: list[Fault] = []
        self.limited: collections.Counter[str] = collections.Counter()
        """429s answered because a limit was exceeded, by limit (chat, group, overall, flood)."""
        self.bad_gateways = 0
        self.paid_messages = 0
        """Sends that carried ``allow_paid_broadcast`` (0.1 Star each for the bot)."""
        self.refused_while_down = 0
        self._lock = threading.RLock()
        self._updates_cv = threading.Condition(self._lock)
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._windows = _Windows()
        self._flood_until = 0.0
        self._flood_retry_after = 1
        self._gateway_every = 0
        self._gateway_methods: frozenset[str] | None = None
        self._requests = 0
        self._stopping = threading.Event()
        # Down mode: no listening socket, every open connection dropped.
        self._gate = threading.Condition(threading.Lock())
        self._down = False
        self._active = 0
        self._connections: set[socket.socket] = set()
        self._up_timer: threading.Timer | None = None
        self._address: tuple[str, int] = ("127.0.0.1", 0)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._listen()

    # -- lifecycle ------------------------------------------------------------
    def _listen(self) -> None:
        self._httpd = _Server(self._address, self._handler())
        self._address = ("127.0.0.1", int(self._httpd.server_address[1]))

    def _serve(self) -> None:
        httpd = self._httpd
        assert httpd is not None
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._address
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    def start(self) -> FakeTelegram:
        self._serve()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._up_timer is not None:
            self._up_timer.cancel()
        with self._updates_cv:
            self._updates_cv.notify_all()
        self._close_listener()
        self._drop_connections()

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _close_listener(self) -> None:
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is not None:
            if thread is not None:
                httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def _drop_connections(self) -> None:
        with self._gate:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- down mode ------------------------------------------------------------
    def down(self, seconds: float | None = None) -> None:
        """Telegram unreachable: connections refused (and open ones dropped) until
        :meth:`up`, or for ``seconds``.

        Requests already being answered finish first, so a message is either
        delivered with its answer or not delivered at all: what a test then
        counts is what the client did, not a race inside the fake.
        """
        with self._gate:
            self._down = True
            with self._updates_cv:
                self._updates_cv.notify_all()
            while self._active:
                self._gate.wait(0.05)
        self._close_listener()
        self._drop_connections()
        if seconds is not None:
            self._up_timer = threading.Timer(seconds, self.up)
            self._up_timer.daemon = True
            self._up_timer.start()

    def up(self) -> None:
        """Reachable again, on the same port."""
        with self._gate:
            if not self._down or self._stopping.is_set():
                return
            self._listen()
            self._down = False
        self._serve()

    @property
    def is_down(self) -> bool:
        return self._down

    # -- what users do --------------------------------------------------------
    def user_says(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        first_name: str = "Ann",
        chat_type: str | None = None,
    ) -> int:
        """Queue a message typed in ``chat_id`` (a private chat by default); returns update_id."""
        user_id = chat_id if user_id is None else user_id
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self._chat(chat_id, chat_type, first_name),
            "from": {"id": user_id, "is_bot": False, "first_name": first_name},
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": u16len(command)}]
        return self._push({"message": message})

    def user_presses(
        self, chat_id: int, data: str, *, message_id: int | None = None, user_id: int | None = None
    ) -> int:
        """Queue a press on an inline button with ``data`` under a bot message in ``chat_id``."""
        user_id = chat_id if user_id is None else user_id
        if message_id is None:
            mine = [s for s in self.sent if s.chat_id == chat_id and s.reply_markup]
            message_id = mine[-1].message_id if mine else 1
        query = {
            "id": f"cq{next(self._callback_ids)}",
            "from": {"id": user_id, "is_bot": False, "first_name": "Ann"},
            "chat_instance": f"ci{chat_id}",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": self._chat(chat_id, None, "Ann"),
                "from": BOT_USER,
                "text": "topics",
            },
        }
        return self._push({"callback_query": query})

    def _push(self, payload: dict[str, Any]) -> int:
        with self._updates_cv:
            update_id = next(self._update_ids)
            self._updates.append({"update_id": update_id, **payload})
            self._updates_cv.notify_all()
            return update_id

    @staticmethod
    def _chat(chat_id: int, chat_type: str | None, first_name: str) -> dict[str, Any]:
        kind = chat_type or ("private" if chat_id > 0 else "group")
        chat: dict[str, Any] = {"id": chat_id, "type": kind}
        if kind == "private":
            chat["first_name"] = first_name
        else:
            chat["title"] = f"group {chat_id}"
        return chat

    # -- faults ---------------------------------------------------------------
    def fail(
        self,
        status: int,
        description: str,
        *,
        chat_id: int | None = None,
        times: int | None = 1,
        retry_after: int | None = None,
        delay: float = 0.0,
        deliver: bool = False,
        methods: Iterable[str] = SEND_METHODS,
        after: int = 0,
    ) -> Fault:
        fault = Fault(
            status,
            description,
            retry_after,
            delay,
            deliver,
            chat_id,
            frozenset(methods),
            times,
            after,
        )
        with self._lock:
            self.faults.append(fault)
        return fault

    def flood(self, *, retry_after: int = 1, chat_id: int | None = None, times: int = 1) -> Fault:
        return self.fail(
            429,
            f"Too Many Requests: retry after {retry_after}",
            retry_after=retry_after,
            chat_id=chat_id,
            times=times,
        )

    def block(self, chat_id: int) -> Fault:
        """The user blocked the bot: every send to them is 403 from now on."""
        return self.fail(403, "Forbidden: bot was blocked by the user", chat_id=chat_id, times=None)

    def server_error(
        self, *, times: int | None = 1, chat_id: int | None = None, after: int = 0
    ) -> Fault:
        return self.fail(500, "Internal Server Error", times=times, chat_id=chat_id, after=after)

    def time_out(
        self,
        delay: float,
        *,
        times: int | None = 1,
        chat_id: int | None = None,
        deliver: bool = False,
    ) -> Fault:
        return self.fail(200, "", delay=delay, times=times, chat_id=chat_id, deliver=deliver)

    def flood_all(self, *, retry_after: int = 5, seconds: float | None = None) -> None:
        """Bot-wide flood control: every send refused with 429 for ``seconds``
        (default: ``retry_after``), as when the bot as a whole went too fast."""
        with self._lock:
            self._flood_retry_after = retry_after
            self._flood_until = time.monotonic() + (retry_after if seconds is None else seconds)

    def bad_gateway(self, every: int | None, *, methods: Iterable[str] | None = None) -> None:
        """Answer every ``every``-th request (of ``methods``, default all) with
        nginx's 502 page, as api.telegram.org does in a partial outage; None: off."""
        with self._lock:
            self._gateway_every = every or 0
            self._gateway_methods = frozenset(methods) if methods is not None else None
            self._requests = 0

    # -- assertions -----------------------------------------------------------
    def calls_to(self, method: str, chat_id: int | None = None) -> list[Call]:
        with self._lock:
            return [
                c
                for c in self.calls
                if c.method == method and (chat_id is None or c.chat_id == chat_id)
            ]

    def sent_to(self, chat_id: int) -> list[Sent]:
        with self._lock:
            return [s for s in self.sent if s.chat_id == chat_id]

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("fake Telegram: condition not met in time")
            await asyncio.sleep(0.01)

    async def wait_sent(self, chat_id: int, count: int = 1, within: float = 5.0) -> list[Sent]:
        await self.wait_until(lambda: len(self.sent_to(chat_id)) >= count, within)
        return self.sent_to(chat_id)

    # -- the API --------------------------------------------------------------
    def _answer(
        self, token: str, method: str, params: dict[str, Any], files: dict[str, bytes],
        now: float | None = None,
    ) -> tuple[int, dict[str, Any] | bytes, float]:
        """(status, JSON body or raw HTML, delay before answering). ``now``: when the
        request arrived (its first line), which is what the limits count."""
        now = time.monotonic() if now is None else now
        chat_id = _int(params.get("chat_id"))
        try:
            status, body, delay = self._dispatch(token, method, params, files, chat_id, now)
        except _BadRequest as exc:
            status, body, delay = 400, error_body(400, str(exc)), 0.0
        description = body.get("description", "") if isinstance(body, dict) else "Bad Gateway"
        with self._lock:
            self.calls.append(Call(method, params, files, status, description, token, now))
        return status, body, delay

    def _dispatch(
        self,
        token: str,
        method: str,
        params: dict[str, Any],
        files: dict[str, bytes],
        chat_id: int | None,
        now: float,
    ) -> tuple[int, dict[str, Any] | bytes, float]:
        if self.token is not None and token != self.token:
            return 401, error_body(401, "Unauthorized"), 0.0
        with self._lock:
            if self._gateway_every and (self._gateway_methods is None
                                        or method in self._gateway_methods):
                self._requests += 1
                if self._requests % self._gateway_every == 0:
                    self.bad_gateways += 1
                    return 502, recorded("502_bad_gateway.html"), 0.0
            fault = next((f for f in self.faults if f.matches(method, chat_id)), None)
            if fault is not None and fault.after > 0:
                fault.after -= 1
                fault = None
            elif fault is not None and fault.remaining is not None:
                fault.remaining -= 1
        if fault is not None and fault.delay:
            # Slow answer: a timeout for a client that does not wait this long. With
            # ``deliver`` the message is shown to the user all the same (Telegram got it).
            result: Any = True
            if fault.deliver:
                result = self._deliver(method, params, files, chat_id, now)
            return 200, {"ok": True, "result": result}, fault.delay
        if fault is not None:
            return fault.status, error_body(fault.status, fault.description,
                                            fault.retry_after), 0.0
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return 404, error_body(404, "Not Found"), 0.0
        if method not in SEND_METHODS:
            return 200, {"ok": True, "result": handler(params, files, chat_id, now)}, 0.0
        paid = str(params.get("allow_paid_broadcast", "")).lower() in ("true", "1")
        refusal = self._reserve(chat_id, now, paid=paid)
        if refusal is not None:
            return 429, refusal, 0.0
        if paid:
            with self._lock:
                self.paid_messages += 1
        try:
            return 200, {"ok": True, "result": handler(params, files, chat_id, now)}, 0.0
        except _BadRequest:
            self._release(chat_id, now)  # a refused message does not count
            raise

    def _reserve(
        self, chat_id: int | None, now: float, *, paid: bool = False
    ) -> dict[str, Any] | None:
        """Count a send against the limits, or the 429 Telegram answers instead."""
        with self._lock:
            if now < self._flood_until:
                self.limited["flood"] += 1
                return error_body(429, "", self._flood_retry_after)
            limits = self.limits
            if limits is None:
                return None
            overall = self._windows.paid if paid else self._windows.overall
            while overall and overall[0] <= now - 1.0:
                overall.popleft()
            chat = self._windows.chats.setdefault(chat_id or 0, collections.deque())
            group = chat_id is not None and chat_id < 0
            span = limits.group_window if group else limits.chat_interval
            while chat and chat[0] <= now - span:
                chat.popleft()
            allowed = limits.group_per_minute if group else 1
            if len(chat) >= allowed:
                self.limited["group" if group else "chat"] += 1
                return error_body(429, "", max(1, math.ceil(chat[0] + span - now)))
            if len(overall) >= (limits.paid_per_second if paid else limits.per_second):
                self.limited["paid" if paid else "overall"] += 1
                return error_body(429, "", 1)
            overall.append(now)
            chat.append(now)
            return None

    def _release(self, chat_id: int | None, now: float) -> None:
        with self._lock:
            for window in (self._windows.overall, self._windows.paid,
                           self._windows.chats.get(chat_id or 0)):
                if window is not None and now in window:
                    window.remove(now)

    def _deliver(
        self,
        method: str,
        params: dict[str, Any],
        files: dict[str, bytes],
        chat_id: int | None,
        now: float,
    ) -> dict[str, Any]:
        handler = getattr(self, f"_api_{method}")
        result: dict[str, Any] = handler(params, files, chat_id, now)
        return result

    def _check_text(self, raw: str, parse_mode: str | None, limit: int, what: str) -> str:
        if parse_mode and parse_mode.upper() == "HTML":
            try:
                visible = parse_html(raw)
            except EntityError as exc:
                raise _BadRequest(f"Bad Request: can't parse entities: {exc}") from None
        else:
            visible = raw
        if what == "text" and not visible.strip():
            raise _BadRequest("Bad Request: message text is empty")
        if u16len(visible) > limit:
            raise _BadRequest(
                "Bad Request: message is too long"
                if what == "text"
                else "Bad Request: message caption is too long"
            )
        return visible

    def _message(self, chat_id: int, now: float, **fields: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self._chat(chat_id, None, "Ann"),
            "from": BOT_USER,
            **fields,
        }

    def _api_getMe(self, *_: Any) -> dict[str, Any]:
        return BOT_USER

    def _api_sendMessage(
        self, params: dict[str, Any], _files: dict[str, bytes], chat_id: int | None, now: float
    ) -> dict[str, Any]:
        if chat_id is None:
            raise _BadRequest("Bad Request: chat_id is empty")
        raw = str(params.get("text", ""))
        mode = params.get("parse_mode")
        visible = self._check_text(raw, mode, MAX_TEXT, "text")
        markup = params.get("reply_markup")
        message = self._message(chat_id, now, text=visible)
        if markup:
            message["reply_markup"] = markup
        with self._lock:
            self.sent.append(
                Sent(
                    chat_id,
                    "sendMessage",
                    message["message_id"],
                    visible,
                    raw,
                    mode,
                    None,
                    markup,
                    now,
                )
            )
        return message

    def _api_sendPhoto(
        self, params: dict[str, Any], files: dict[str, bytes], chat_id: int | None, now: float
    ) -> dict[str, Any]:
        if chat_id is None:
            raise _BadRequest("Bad Request: chat_id is empty")
        photo = files.get("photo")
        if photo is None:
            raise _BadRequest("Bad Request: there is no photo in the request")
        raw = str(params.get("caption", ""))
        mode = params.get("parse_mode")
        visible = self._check_text(raw, mode, MAX_CAPTION, "caption")
        size = {"width": 800, "height": 400, "file_size": len(photo)}
        message = self._message(
            chat_id,
            now,
            photo=[
                {
                    "file_id": f"photo{len(self.sent)}",
                    "file_unique_id": f"u{len(self.sent)}",
                    **size,
                }
            ],
            caption=visible,
        )
        with self._lock:
            self.sent.append(
                Sent(
                    chat_id,
                    "sendPhoto",
                    message["message_id"],
                    visible,
                    raw,
                    mode,
                    photo,
                    None,
                    now,
                )
            )
        return message

    def _api_editMessageText(
        self, params: dict[str, Any], _files: dict[str, bytes], chat_id: int | None, now: float
    ) -> dict[str, Any]:
        raw = str(params.get("text", ""))
        visible = self._check_text(raw, params.get("parse_mode"), MAX_TEXT, "text")
        message = self._message(chat_id or 0, now, text=visible)
        message["message_id"] = _int(params.get("message_id")) or 1
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message

    def _api_editMessageReplyMarkup(
        self, params: dict[str, Any], _files: dict[str, bytes], chat_id: int | None, now: float
    ) -> dict[str, Any]:
        message = self._message(chat_id or 0, now, text="topics")
        message["message_id"] = _int(params.get("message_id")) or 1
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message

    def _api_getUpdates(self, params: dict[str, Any], *_: Any) -> list[dict[str, Any]]:
        offset = _int(params.get("offset")) or 0
        wait = min(float(params.get("timeout") or 0), self.long_poll_max)
        deadline = time.monotonic() + wait
        with self._updates_cv:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and not self._stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._updates_cv.wait(left)
            return list(self._updates)

    def _api_answerCallbackQuery(self, *_: Any) -> bool:
        return True

    def _api_setMyCommands(self, *_: Any) -> bool:
        return True

    def _api_deleteMyCommands(self, *_: Any) -> bool:
        return True

    def _api_deleteWebhook(self, *_: Any) -> bool:
        return True

    def _api_close(self, *_: Any) -> bool:
        return True

    def _api_logOut(self, *_: Any) -> bool:
        return True

    def _api_getWebhookInfo(self, *_: Any) -> dict[str, Any]:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}

    # -- HTTP plumbing --------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with fake._gate:
                    fake._connections.add(self.connection)

            def finish(self) -> None:
                with fake._gate:
                    fake._connections.discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def _serve(self) -> None:
                self.arrived = time.monotonic()
                with fake._gate:
                    if fake._down:  # arrived on a connection being dropped
                        fake.refused_while_down += 1
                        self.close_connection = True
                        return
                    fake._active += 1
                try:
                    self._answer()
                finally:
                    with fake._gate:
                        fake._active -= 1
                        fake._gate.notify_all()

            def _answer(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                m = re.fullmatch(r"/bot([^/]*)/([A-Za-z]+)", path)
                if m is None:
                    self._reply(404, error_body(404, "Not Found"))
                    return
                token, method = m.group(1), m.group(2)
                params, files = _parse_body(self.headers.get("Content-Type", ""), body)
                status, payload, delay = fake._answer(token, method, params, files,
                                                      self.arrived)
                if delay and fake._stopping.wait(delay):
                    return
                self._reply(status, payload)

            def _reply(self, status: int, payload: dict[str, Any] | bytes) -> None:
                if isinstance(payload, bytes):
                    data, ctype = payload, "text/html"
                else:
                    data, ctype = json.dumps(payload).encode("utf-8"), "application/json"
                try:
                    self.send_response(status)
                    self.send_header("Server", "nginx/1.18.0")
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    self.close_connection = True

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        return Handler


class _BadRequest(Exception):
    pass


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _parse_body(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    params: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    if not body:
        return params, files
    if content_type.startswith("application/json"):
        params = json.loads(body)
    elif content_type.startswith("multipart/form-data"):
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if part.get_param("filename", header="content-disposition") is not None:
                files[str(name)] = payload
            else:
                params[str(name)] = payload.decode("utf-8")
    else:
        for key, values in urllib.parse.parse_qs(
            body.decode("utf-8"), keep_blank_values=True
        ).items():
            params[key] = values[-1]
    for key in JSON_FIELDS & params.keys():
        if isinstance(params[key], str):
            try:
                params[key] = json.loads(params[key])
            except ValueError:
                pass
    return params, files


# ---------------------------------------------------------------------------- in a process


@dataclass(frozen=True)
class Report:
    """What a :class:`FakeTelegramProcess` saw: plain tuples, cheap to pickle."""

    calls: list[tuple[str, int | None, int, float]]
    """(method, chat_id, status, arrived at) per request."""
    sent: list[tuple[int, str, str, float]]
    """(chat_id, method, visible text, arrived at) per message shown to a user."""
    limited: dict[str, int]
    bad_gateways: int
    paid_messages: int = 0


def _serve_in_child(conn: Any, limits: Limits | None, faults: list[tuple[str, dict[str, Any]]],
                    token: str | None) -> None:
    with FakeTelegram(limits=limits, token=token) as fake:
        for name, kwargs in faults:
            getattr(fake, name)(**kwargs)
        conn.send(fake.base_url)
        while conn.recv() == "report":
            with fake._lock:
                conn.send(Report(
                    [(c.method, c.chat_id, c.status, c.at) for c in fake.calls],
                    [(s.chat_id, s.method, s.text, s.at) for s in fake.sent],
                    dict(fake.limited), fake.bad_gateways, fake.paid_messages))


class FakeTelegramProcess:
    """The fake Bot API in a child process, as Telegram runs on machines of its own.

    For tests and benchmarks about timing: in-process, the fake's threads and the
    bot's event loop share one interpreter lock, and under load the fake would
    measure arrivals in bunches that never left the bot that way. ``faults`` are
    calls made on the fake before it serves, e.g. ``[("flood", {"chat_id": 7})]``.
    Timestamps are ``time.monotonic()``, one clock for every process of the machine.
    """

    def __init__(self, *, limits: Limits | None = Limits(), token: str | None = None,
                 faults: list[tuple[str, dict[str, Any]]] | None = None) -> None:
        import multiprocessing

        self._here, there = multiprocessing.Pipe()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_serve_in_child, args=(there, limits, faults or [], token), daemon=True)
        self.base_url = ""

    def __enter__(self) -> FakeTelegramProcess:
        self._process.start()
        self.base_url = self._here.recv()
        return self

    def report(self) -> Report:
        self._here.send("report")
        report: Report = self._here.recv()
        return report

    def __exit__(self, *exc: object) -> None:
        self._here.send("stop")
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
