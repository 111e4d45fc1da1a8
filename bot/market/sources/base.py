"""What a data source is: one context, a declared reach, one ``fetch``.

Every source gets the same :class:`SourceContext` (the HTTP client, the
session calendar, the retry policy, the sleep and the clock), built once by
the composition root, so no fetcher repeats those arguments. Each source
declares its :class:`Reach`: most serve any window of past sessions
(``HISTORY``); a page with no date parameter, such as the WSJ diary, serves
only the latest closed session or two (``LATEST``). The live fetch asks
:meth:`Source.serves` instead of knowing which source is which.

A subclass implements :meth:`Source.answer` (download and parse; it may
return more than was asked); :meth:`Source.fetch` then applies the rules every
source obeys, in one place:

* a row dated on a session that has not closed yet at ``ctx.clock()`` is
  dropped with its reason: before the close a daily bar is the live price
  (Yahoo stamps it 09:30 and it looks final; Stooq's last row can be it);
* with ``window.expect``, the newest row must be that session (else the
  source is *stale*: it failed, whatever the quality of its older rows);
* rows outside the window are trimmed (they were never asked for).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

import httpx

from bot.kernel.models import Bar, Breadth, Dropped, Event, Parsed
from bot.kernel.sessions import ET, SessionCalendar
from bot.market.sources import http
from bot.market.sources.http import RetryPolicy, Sleep
from bot.market.sources.validate import (
    DEFAULT_POLICY,
    check_fresh_bars,
    check_fresh_breadth,
    trim,
)

T = TypeVar("T", Bar, Breadth, Event)

NOT_CLOSED = "session not closed yet when fetched: a partial bar, not the close"


def _now() -> dt.datetime:
    return dt.datetime.now(tz=ET)


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What every source needs, built once by the composition root."""

    client: httpx.AsyncClient
    calendar: SessionCalendar
    policy: RetryPolicy = DEFAULT_POLICY
    sleep: Sleep = asyncio.sleep
    clock: Callable[[], dt.datetime] = _now
    """Aware "now": which sessions have closed (tests pin it)."""

    async def get(
        self,
        source: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """GET with this context's retry policy (see :func:`bot.market.sources.http.get`)."""
        return await http.get(self.client, source, url, params=params, headers=headers,
                              policy=self.policy, sleep=self.sleep)

    def last_closed(self) -> dt.date:
        """The newest session that has closed at ``clock()``."""
        return self.calendar.last_closed_session(self.clock())


class Reach(enum.StrEnum):
    """Which sessions a source can answer for."""

    HISTORY = "history"
    """Any window of past sessions (a date range in the request, or the whole history)."""
    LATEST = "latest"
    """Only the most recent closed session(s): a page with no date parameter."""


@dataclass(frozen=True, slots=True)
class Window:
    """Sessions ``start..end`` asked of a source; ``expect``: the newest row must be it.

    For event calendars ``end`` is today: the calendar must list an event after it.
    """

    start: dt.date
    end: dt.date
    expect: dt.date | None = None


class Source(ABC, Generic[T]):
    """One data source (see the module doc). ``name`` is recorded on every row."""

    name: str
    """Recorded on every row; a class attribute, or set per instance (a file's name)."""
    reach: ClassVar[Reach] = Reach.HISTORY
    recent: ClassVar[int] = 1
    """With ``Reach.LATEST``: how many of the latest closed sessions it can give."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.base_url!r})"

    def clip(self, ctx: SourceContext, window: Window) -> Window | None:
        """The part of ``window`` this source can answer (None: no part of it)."""
        if self.reach is Reach.HISTORY:
            return window
        last = ctx.last_closed()
        start = max(window.start, ctx.calendar.offset(last, -(self.recent - 1)))
        end = min(window.end, last)
        if start > end:
            return None
        expect = window.expect if window.expect is not None and start <= window.expect <= end \
            else None
        return Window(start, end, expect)

    def serves(self, ctx: SourceContext, window: Window) -> str | None:
        """None when this source can answer all of ``window``; otherwise why it cannot."""
        if self.clip(ctx, window) == window:
            return None
        last = ctx.last_closed()
        oldest = ctx.calendar.offset(last, -(self.recent - 1))
        latest = "the latest closed session" if self.recent == 1 else (
            f"the latest {self.recent} closed sessions")
        return f"{self.name} gives only {latest} ({oldest}..{last})"

    async def fetch(self, ctx: SourceContext, window: Window) -> Parsed[T]:
        """The rows for ``window``, after the rules every source obeys (module doc)."""
        return self.settle(ctx, await self.answer(ctx, window), window)

    @abstractmethod
    async def answer(self, ctx: SourceContext, window: Window) -> Parsed[T]:
        """Download and parse; may return rows outside ``window``."""

    def settle(self, ctx: SourceContext, parsed: Parsed[T], window: Window) -> Parsed[T]:
        return parsed


def drop_unclosed(parsed: Parsed[T], last_closed: dt.date) -> Parsed[T]:
    """Rows dated after ``last_closed`` leave ``rows`` for ``dropped``, with why."""
    late = [r for r in parsed.rows if _day(r) > last_closed]
    if not late:
        return parsed
    keep = tuple(r for r in parsed.rows if _day(r) <= last_closed)
    gone = tuple(Dropped(_day(r), NOT_CLOSED) for r in late)
    return Parsed(parsed.source, keep, parsed.dropped + gone)


def _day(row: Bar | Breadth | Event) -> dt.date:
    return row.date if isinstance(row, Event) else row.session


class BarSource(Source[Bar]):
    """A source of daily bars (SPX, VIX, VIX3M, VIX6M, an ETP)."""

    def settle(self, ctx: SourceContext, parsed: Parsed[Bar], window: Window) -> Parsed[Bar]:
        upto = trim(drop_unclosed(parsed, ctx.last_closed()), None, window.end)
        if window.expect is not None:
            # The check sees everything up to ``end``: a source whose newest row is
            # older than ``start`` is "stale: newest row X", and the previous
            # session's bar is there for the repeated-bar check.
            check_fresh_bars(self.name, upto, window.expect, ctx.calendar)
        return trim(upto, window.start, None)


class BreadthSource(Source[Breadth]):
    """A source of NYSE advancers/decliners."""

    def settle(
        self, ctx: SourceContext, parsed: Parsed[Breadth], window: Window
    ) -> Parsed[Breadth]:
        upto = trim(drop_unclosed(parsed, ctx.last_closed()), None, window.end)
        if window.expect is not None:
            check_fresh_breadth(self.name, upto, window.expect)
        return trim(upto, window.start, None)


class EventSource(Source[Event]):
    """A calendar of FOMC decisions or CPI/PPI releases.

    Its parser refuses a calendar with no event after ``window.end`` (today):
    a feed that silently stops listing future dates would switch blackouts off.
    """
