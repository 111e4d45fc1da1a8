"""Fallback chains: one series, several sources, first usable answer wins.

A failure of one source is logged and the next one is tried; only when all
of them fail does the series fail, with every source's reason in the error
so one ops message explains the whole outage. The error is temporary
(:class:`SourceUnavailable`, worth a later retry) if any source failed for
a temporary reason, else permanent (:class:`SourceDataError`). A source that
cannot answer the window at all (its :class:`~bot.market.sources.base.Reach`:
the WSJ diary for a session that is not the latest) is skipped, and the
reason is part of the report.

Only :class:`SourceError` moves the chain on. Anything else is a bug in our
code and propagates: a fallback must not hide a crash.

Source names (recorded on every row, shown in ops messages): ``yahoo``,
``fred``, ``cboe``, ``stooq``, ``wsj``, ``fed`` for live sources;
``file:<basename>`` for a file read at run time (imports, the shipped
calendars). History parsers take the name from their caller: ``unicorn`` for
the Unicorn archive, and anything containing ``synthetic`` for synthetic
breadth, which :func:`bot.kernel.models.is_synthetic` keys on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import SecretStr

from bot.kernel.errors import SourceDataError, SourceError, SourceUnavailable
from bot.kernel.models import BREADTH, Bar, Breadth, Event, EventKind, Parsed, Symbol
from bot.market.sources.base import EventSource, Source, SourceContext, Window
from bot.market.sources.cboe import CBOE_BASE, CboeIndex
from bot.market.sources.cboe_options import URL as CBOE_CHAIN_URL
from bot.market.sources.fed import FED_BASE, FedCalendar, FedMeetingsPage
from bot.market.sources.files import parse_event_csv
from bot.market.sources.fred import FRED_API_BASE, FRED_GRAPH_BASE, FredReleaseDates, FredSeries
from bot.market.sources.mcclellan import MCCLELLAN_BASE, McClellanPage
from bot.market.sources.stooq import STOOQ_BASE, Stooq
from bot.market.sources.tradingview import TRADINGVIEW_BASE, TradingViewBreadth
from bot.market.sources.vx_settlement import BASE_URL as VX_SETTLEMENT_URL
from bot.market.sources.wsj import WSJ_BASE, WsjDiary
from bot.market.sources.yahoo import YAHOO_BASE, YahooChart

log = logging.getLogger(__name__)

T = TypeVar("T", Bar, Breadth, Event)
R = TypeVar("R", Bar, Breadth)

CALENDAR_FILES: Mapping[EventKind, str] = {
    EventKind.FOMC: "fomc_decisions.csv",
    EventKind.CPI: "cpi_releases.csv",
    EventKind.PPI: "ppi_releases.csv",
}
"""The shipped calendar file of each kind (``bot/data/snapshot/calendar``)."""


def all_failed(series: str, failures: Sequence[tuple[str, str]], *,
               temporary: bool) -> SourceError:
    """One error naming every source's reason: temporary if any failure was."""
    if not failures:
        return SourceDataError(series, "no sources configured")
    summary = "; ".join(f"{name}: {reason}" for name, reason in failures)
    cls = SourceUnavailable if temporary else SourceDataError
    return cls(series, f"all sources failed ({summary})")


async def fetch_first(
    series: str, ctx: SourceContext, sources: Sequence[Source[T]], window: Window
) -> tuple[Parsed[T], list[tuple[str, str]]]:
    """The first source that answers ``window``, and ``(source, reason)`` of the others.

    Sources that cannot serve the window are passed over (their reason is
    listed); if none can, the series fails permanently with those reasons.
    """
    failures: list[tuple[str, str]] = []
    temporary = False
    usable: list[Source[T]] = []
    for source in sources:
        why = source.serves(ctx, window)
        if why is None:
            usable.append(source)
        else:
            failures.append((source.name, why))
    for i, source in enumerate(usable):
        try:
            parsed = await source.fetch(ctx, window)
        except SourceError as exc:
            failures.append((source.name, exc.reason))
            temporary = temporary or isinstance(exc, SourceUnavailable)
            following = usable[i + 1].name if i + 1 < len(usable) else None
            log.warning("%s: source %s failed: %s%s", series, source.name, exc.reason,
                        f"; trying {following}" if following else "")
            continue
        if failures:
            log.info("%s: using %s after %d failed source(s)", series, source.name,
                     len(failures))
        return parsed, failures
    raise all_failed(series, failures, temporary=temporary)


async def fetch_extended(
    series: str, ctx: SourceContext, sources: Sequence[Source[Event]], window: Window
) -> tuple[Parsed[Event], list[tuple[str, str]]]:
    """A calendar: the first source that answers, *extended* by the later ones.

    Each later source adds only the events after the calendar's last known
    one (the Fed's meetings page adds next year's tentative schedule that
    ``calendar.json`` does not list yet; a shipped file adds what a live
    source has not published): a second opinion never adds a *different* date
    for a meeting the first already placed. Fails like :func:`fetch_first`
    when no source answers.
    """
    events: list[Event] = []
    used: list[str] = []
    failures: list[tuple[str, str]] = []
    temporary = False
    for source in sources:
        try:
            parsed = await source.fetch(ctx, window)
        except SourceError as exc:
            failures.append((source.name, exc.reason))
            temporary = temporary or isinstance(exc, SourceUnavailable)
            log.info("%s: source %s: %s", series, source.name, exc.reason)
            continue
        end = max((e.date for e in events), default=None)
        extra = [e for e in parsed.rows if end is None or e.date > end]
        if extra:
            events += extra
            used.append(source.name if end is None else
                        f"{source.name} ({len(extra)} after {end})")
    if events:
        return Parsed(" + ".join(used), tuple(events)), failures
    raise all_failed(series, failures, temporary=temporary)


@dataclass(slots=True)
class Filled(Generic[R]):
    """What a chain gathered for a window of sessions, and from whom."""

    rows: list[R] = field(default_factory=list)
    """Oldest first, at most one per session."""
    by_source: dict[str, list[dt.date]] = field(default_factory=dict)
    """Which sessions each source gave, in the chain's order."""
    missing: list[dt.date] = field(default_factory=list)
    """Sessions of the window no source gave and the store does not have."""
    failures: list[tuple[str, str]] = field(default_factory=list)
    """``(source, reason)`` of each source that failed or could not serve the window."""
    notes: list[str] = field(default_factory=list)
    """Rows a source dropped inside the window, with why (null rows, partial bars...)."""

    @property
    def sources(self) -> str:
        """``yahoo`` or ``yahoo + fred (2026-02-20)``: who filled what, for the report."""
        names = list(self.by_source)
        if len(names) == 1:
            return names[0]
        head, *rest = names
        return " + ".join([head, *(f"{n} ({_days(self.by_source[n])})" for n in rest)])


def _days(days: Sequence[dt.date]) -> str:
    """A few sessions by name; many as a count and a range."""
    if len(days) <= 3:
        return ", ".join(map(str, days))
    return f"{len(days)} sessions, {min(days)}..{max(days)}"


async def fetch_filled(
    series: str,
    ctx: SourceContext,
    sources: Sequence[Source[R]],
    window: Window,
    *,
    have: Collection[dt.date] = (),
    check: Callable[[R], str | None] | None = None,
) -> Filled[R]:
    """Every session of ``window``, each from the first source that has it.

    The first source that can answer is asked for the whole window (it may
    revise what the store holds); the sessions its answer lacks (left out,
    dropped as null rows, not closed yet) and the store does not ``have`` are
    asked of the next source, and so on (DESIGN.md §3: never refuse a whole
    answer for one bad row; fill those dates from the next source in the
    chain). A source that fails its freshness check for ``window.expect``
    gives nothing, and the next is asked for everything still missing.
    ``check`` (the breadth screen, DESIGN §4) judges each row before it counts:
    a row it refuses leaves its session to the next source, and is kept only
    when no source has a better one (the store then records it as rejected).
    Raises like :func:`fetch_first` when no source gave any row.
    """
    stored = set(have)
    held: dict[dt.date, R] = {}
    remaining = set(ctx.calendar.sessions_between(window.start, window.end))
    out: Filled[R] = Filled()
    got: dict[dt.date, R] = {}
    temporary = False
    for source in sources:
        wanted = remaining - stored if got or out.failures else remaining
        if not wanted:
            break
        expect = window.expect if window.expect in wanted else None
        ask = source.clip(ctx, Window(min(wanted), max(wanted), expect))
        if ask is None:
            out.failures.append((source.name, source.serves(ctx, window) or "nothing to ask"))
            continue
        try:
            parsed = await source.fetch(ctx, ask)
        except SourceError as exc:
            out.failures.append((source.name, exc.reason))
            temporary = temporary or isinstance(exc, SourceUnavailable)
            log.warning("%s: source %s failed: %s", series, source.name, exc.reason)
            continue
        for row in parsed.rows:
            if row.session not in remaining:
                continue
            refused = check(row) if check is not None else None
            if refused is not None:
                held.setdefault(row.session, row)
                out.notes.append(f"{source.name} {row.session}: refused, {refused}")
                continue
            got[row.session] = row
            remaining.discard(row.session)
            out.by_source.setdefault(source.name, []).append(row.session)
        out.notes += [f"{source.name} {d.date}: {d.reason}" for d in parsed.dropped
                      if ask.start <= d.date <= ask.end]
    for day, row in held.items():
        if day in remaining:  # nothing better: stored, and flagged rejected by the store
            got[day] = row
            remaining.discard(day)
            out.by_source.setdefault(row.source, []).append(day)
    out.rows = [got[d] for d in sorted(got)]
    out.missing = sorted(remaining - stored)
    if len(out.by_source) > 1:
        log.info("%s: filled from %s", series, out.sources)
    if got:
        return out
    raise all_failed(series, out.failures, temporary=temporary)


# -- default chains ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Base URL of every source (settings: mirrors, proxies, recorded-response servers)."""

    yahoo: str = YAHOO_BASE
    fred_graph: str = FRED_GRAPH_BASE
    fred_api: str = FRED_API_BASE
    cboe: str = CBOE_BASE
    stooq: str = STOOQ_BASE
    wsj: str = WSJ_BASE
    mcclellan: str = MCCLELLAN_BASE
    tradingview: str = TRADINGVIEW_BASE
    fed: str = FED_BASE
    vx_settlement: str = VX_SETTLEMENT_URL
    cboe_chain: str = CBOE_CHAIN_URL

    @classmethod
    def all_at(cls, base_url: str) -> Endpoints:
        """Every source at one server (a test server that routes by path).

        The two extras whose setting is a full URL keep their path.
        """
        from urllib.parse import urlsplit

        full_urls = ("vx_settlement", "cboe_chain")
        ws_url = "ws" + base_url.removeprefix("http")  # the WebSocket source, same server
        return cls(**{f.name: base_url + urlsplit(str(f.default)).path if f.name in full_urls
                      else ws_url if f.name == "tradingview" else base_url
                      for f in fields(cls)})


def default_chains(
    endpoints: Endpoints = Endpoints(),
    *,
    fred_api_key: SecretStr | None = None,
    stooq_api_key: SecretStr | None = None,
    calendar_dir: Path | None = None,
) -> dict[str, list[Source[Any]]]:
    """Each series' sources in order of preference (DESIGN.md §3).

    SPX: Yahoo (OHLC) → FRED SP500 (close only) → Stooq (only with a key).
    VIX: Cboe → FRED VIXCLS; VIX3M: Cboe → FRED VXVCLS; VIX6M: Cboe only.
    NYSE breadth: the WSJ diary (the latest two sessions) → the McClellan page
    (the latest session) → TradingView's daily bars (history, back-fill).
    FOMC: the Fed's calendar.json, extended by its meetings page (next year's
    tentative schedule), then by the shipped file; CPI/PPI: FRED release dates
    (only with a key), extended by the shipped file (:func:`fetch_extended`).
    """
    e = endpoints
    spx: list[Source[Any]] = [YahooChart(e.yahoo), FredSeries(Symbol.SPX, e.fred_graph)]
    if stooq_api_key is not None:
        spx.append(Stooq(stooq_api_key, e.stooq))
    chains: dict[str, list[Source[Any]]] = {Symbol.SPX.value: spx}
    for symbol in (Symbol.VIX, Symbol.VIX3M, Symbol.VIX6M):
        chain: list[Source[Any]] = [CboeIndex(symbol, e.cboe)]
        if symbol is not Symbol.VIX6M:
            chain.append(FredSeries(symbol, e.fred_graph))
        chains[symbol.value] = chain
    chains[BREADTH] = [WsjDiary(e.wsj), McClellanPage(e.mcclellan),
                       TradingViewBreadth(e.tradingview)]
    for kind in EventKind:
        events: list[Source[Any]] = []
        if kind is EventKind.FOMC:
            events += [FedCalendar(e.fed), FedMeetingsPage(e.fed)]
        elif fred_api_key is not None:
            events.append(FredReleaseDates(kind, fred_api_key, e.fred_api))
        if calendar_dir is not None:
            events.append(ShippedCalendar(calendar_dir / CALENDAR_FILES[kind], kind))
        chains[kind.value] = events
    return chains


class ShippedCalendar(EventSource):
    """``kind`` events from a calendar CSV shipped with the package (or any such file).

    Held to the live sources' rule: a file with nothing after today has run
    out and fails rather than silently switching blackouts off.
    """

    def __init__(self, path: Path, kind: EventKind) -> None:
        super().__init__(str(path))
        self.path, self.kind = path, kind
        self.name = f"file:{path.name}"

    async def answer(self, ctx: SourceContext, window: Window) -> Parsed[Event]:
        return await asyncio.to_thread(self._load, ctx, window.end)

    def _load(self, ctx: SourceContext, today: dt.date) -> Parsed[Event]:
        try:
            text = self.path.read_bytes()
        except OSError as exc:
            raise SourceDataError(self.name, f"cannot read {self.path}: {exc.strerror}") from None
        parsed = parse_event_csv(text, self.name, ctx.calendar)
        events = tuple(e for e in parsed.rows if e.kind is self.kind)
        if not any(e.date > today for e in events):
            raise SourceDataError(self.name, f"no upcoming {self.kind} events after {today}")
        return Parsed(self.name, events, parsed.dropped)
