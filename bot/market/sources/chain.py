"""Fallback chains: one series, several sources, first usable answer wins.

A failure of one source is logged and the next one is tried; only when all
of them fail does the series fail, with every source's reason in the error
so one ops message explains the whole outage. The error is temporary
(:class:`SourceUnavailable`, worth a later retry) if any source failed for
a temporary reason, else permanent (:class:`SourceDataError`).

Only :class:`SourceError` moves the chain on. Anything else is a bug in our
code and propagates: a fallback must not hide a crash.

The ``*_chain`` builders return the default attempts for each series; the
caller runs them with :func:`fetch_first`.

Source names (recorded on every row, shown in ops messages): ``yahoo``,
``fred``, ``cboe``, ``stooq``, ``wsj``, ``fed`` for live sources;
``file:<basename>`` for a file read at run time (imports, the shipped
calendars). History parsers take the name from their caller: ``unicorn`` for
the Unicorn archive, and anything starting with ``synthetic`` for synthetic
breadth, which :func:`bot.kernel.models.is_synthetic` keys on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar

import httpx
from pydantic import SecretStr

from bot.kernel.errors import SourceDataError, SourceError, SourceUnavailable
from bot.kernel.models import Bar, Breadth, Event, EventKind, Parsed, Symbol
from bot.kernel.sessions import SessionCalendar
from bot.market.sources.cboe import CBOE_BASE, fetch_cboe_index
from bot.market.sources.fed import FED_BASE, fetch_fomc_fed
from bot.market.sources.files import parse_event_csv
from bot.market.sources.fred import (
    FRED_API_BASE,
    FRED_GRAPH_BASE,
    fetch_fred_series,
    fetch_release_dates,
)
from bot.market.sources.http import RetryPolicy, Sleep
from bot.market.sources.stooq import STOOQ_BASE, fetch_spx_stooq
from bot.market.sources.validate import DEFAULT_POLICY
from bot.market.sources.wsj import WSJ_BASE, fetch_breadth_wsj
from bot.market.sources.yahoo import YAHOO_BASE, fetch_spx_yahoo

log = logging.getLogger(__name__)

T = TypeVar("T")

Fetch = Callable[[], Awaitable[Parsed[T]]]
Attempt = tuple[str, Fetch[T]]
"""``(source name, zero-argument coroutine function)``: nothing runs until tried."""


async def fetch_first(
    series: str, attempts: Sequence[Attempt[T]]
) -> tuple[Parsed[T], list[tuple[str, str]]]:
    """The first attempt that succeeds, and the ``(source, reason)`` of those that failed."""
    failures: list[tuple[str, str]] = []
    temporary = False
    for i, (name, fetch) in enumerate(attempts):
        try:
            parsed = await fetch()
        except SourceError as exc:
            failures.append((name, exc.reason))
            temporary = temporary or isinstance(exc, SourceUnavailable)
            following = attempts[i + 1][0] if i + 1 < len(attempts) else None
            log.warning(
                "%s: source %s failed: %s%s",
                series,
                name,
                exc.reason,
                f"; trying {following}" if following else "",
            )
            continue
        if failures:
            log.info("%s: using %s after %d failed source(s)", series, name, len(failures))
        return parsed, failures
    if not attempts:
        raise SourceDataError(series, "no sources configured")
    summary = "; ".join(f"{name}: {reason}" for name, reason in failures)
    if temporary:
        raise SourceUnavailable(series, f"all sources failed ({summary})")
    raise SourceDataError(series, f"all sources failed ({summary})")


# -- default chains ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Base URL of every source; tests point them all at a local server."""

    yahoo: str = YAHOO_BASE
    fred_graph: str = FRED_GRAPH_BASE
    fred_api: str = FRED_API_BASE
    cboe: str = CBOE_BASE
    stooq: str = STOOQ_BASE
    wsj: str = WSJ_BASE
    fed: str = FED_BASE

    @classmethod
    def all_at(cls, base_url: str) -> Endpoints:
        """Every source at one base URL (a test server that routes by path)."""
        return cls(**{f.name: base_url for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class Sources:
    """What every fetcher needs, built once by the entry point."""

    client: httpx.AsyncClient
    calendar: SessionCalendar
    endpoints: Endpoints = field(default_factory=Endpoints)
    policy: RetryPolicy = DEFAULT_POLICY
    sleep: Sleep = asyncio.sleep
    fred_api_key: SecretStr | None = None
    stooq_api_key: SecretStr | None = None


def spx_chain(
    src: Sources, start: dt.date, end: dt.date, *, expect: dt.date | None = None
) -> list[Attempt[Bar]]:
    """SPX: Yahoo (OHLC) → FRED SP500 (close only) → Stooq (only with a key)."""

    async def yahoo() -> Parsed[Bar]:
        return await fetch_spx_yahoo(
            src.client,
            start,
            end,
            expect=expect,
            calendar=src.calendar,
            base_url=src.endpoints.yahoo,
            policy=src.policy,
            sleep=src.sleep,
        )

    attempts: list[Attempt[Bar]] = [
        ("yahoo", yahoo),
        ("fred", _fred_series(src, Symbol.SPX, start, end, expect)),
    ]
    key = src.stooq_api_key
    if key is not None:

        async def stooq() -> Parsed[Bar]:
            return await fetch_spx_stooq(
                src.client,
                key,
                start,
                end,
                expect=expect,
                calendar=src.calendar,
                base_url=src.endpoints.stooq,
                policy=src.policy,
                sleep=src.sleep,
            )

        attempts.append(("stooq", stooq))
    return attempts


def index_chain(
    src: Sources, symbol: Symbol, start: dt.date, end: dt.date, *, expect: dt.date | None = None
) -> list[Attempt[Bar]]:
    """VIX: Cboe → FRED VIXCLS; VIX3M: Cboe → FRED VXVCLS; VIX6M: Cboe only."""
    if symbol not in (Symbol.VIX, Symbol.VIX3M, Symbol.VIX6M):
        raise ValueError(f"no volatility-index chain for {symbol}")

    async def cboe() -> Parsed[Bar]:
        return await fetch_cboe_index(
            src.client,
            symbol,
            start,
            end,
            expect=expect,
            calendar=src.calendar,
            base_url=src.endpoints.cboe,
            policy=src.policy,
            sleep=src.sleep,
        )

    attempts: list[Attempt[Bar]] = [("cboe", cboe)]
    if symbol is not Symbol.VIX6M:
        attempts.append(("fred", _fred_series(src, symbol, start, end, expect)))
    return attempts


def breadth_chain(src: Sources, *, expect: dt.date) -> list[Attempt[Breadth]]:
    """NYSE breadth: the WSJ diary (history only ever comes from imports)."""

    async def wsj() -> Parsed[Breadth]:
        return await fetch_breadth_wsj(
            src.client,
            expect=expect,
            calendar=src.calendar,
            base_url=src.endpoints.wsj,
            policy=src.policy,
            sleep=src.sleep,
        )

    return [("wsj", wsj)]


def fomc_chain(
    src: Sources, *, today: dt.date, shipped: Path | None = None
) -> list[Attempt[Event]]:
    """FOMC: the Fed's calendar.json → the shipped calendar file (if given)."""

    async def fed() -> Parsed[Event]:
        return await fetch_fomc_fed(
            src.client,
            today=today,
            calendar=src.calendar,
            base_url=src.endpoints.fed,
            policy=src.policy,
            sleep=src.sleep,
        )

    attempts: list[Attempt[Event]] = [("fed", fed)]
    if shipped is not None:
        attempts.append(
            shipped_calendar(shipped, EventKind.FOMC, today=today, calendar=src.calendar)
        )
    return attempts


def release_chain(
    src: Sources, kind: EventKind, *, today: dt.date, shipped: Path | None = None
) -> list[Attempt[Event]]:
    """CPI/PPI: FRED release dates (only with a key) → the shipped file (if given)."""
    if kind not in (EventKind.CPI, EventKind.PPI):
        raise ValueError(f"no release-date chain for {kind}")
    attempts: list[Attempt[Event]] = []
    key = src.fred_api_key
    if key is not None:

        async def fred() -> Parsed[Event]:
            return await fetch_release_dates(
                src.client,
                kind,
                key,
                today=today,
                calendar=src.calendar,
                base_url=src.endpoints.fred_api,
                policy=src.policy,
                sleep=src.sleep,
            )

        attempts.append(("fred", fred))
    if shipped is not None:
        attempts.append(shipped_calendar(shipped, kind, today=today, calendar=src.calendar))
    return attempts


def shipped_calendar(
    path: Path, kind: EventKind, *, today: dt.date, calendar: SessionCalendar
) -> Attempt[Event]:
    """An attempt reading ``kind`` events from a shipped calendar CSV.

    Held to the live sources' rule: a file with nothing after ``today`` has
    run out (the shipped CPI list ends 2026-07) and fails rather than
    silently switching blackouts off.
    """
    source = f"file:{path.name}"

    def load() -> Parsed[Event]:
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise SourceDataError(source, f"cannot read {path}: {exc.strerror}") from None
        parsed = parse_event_csv(text, source, calendar)
        events = tuple(e for e in parsed.rows if e.kind is kind)
        if not any(e.date > today for e in events):
            raise SourceDataError(source, f"no upcoming {kind} events after {today}")
        return Parsed(source, events, parsed.dropped)

    async def attempt() -> Parsed[Event]:
        return await asyncio.to_thread(load)

    return (source, attempt)


def _fred_series(
    src: Sources, symbol: Symbol, start: dt.date, end: dt.date, expect: dt.date | None
) -> Fetch[Bar]:
    async def fred() -> Parsed[Bar]:
        return await fetch_fred_series(
            src.client,
            symbol,
            start,
            end,
            expect=expect,
            calendar=src.calendar,
            base_url=src.endpoints.fred_graph,
            policy=src.policy,
            sleep=src.sleep,
        )

    return fred
