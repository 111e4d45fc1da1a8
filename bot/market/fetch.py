"""Fetch what session D needs from the live sources into the store.

Series are fetched concurrently, each through its fallback chain; a series
the store already holds for D is not fetched again (the scheduler re-polls
until the data is complete, and only what is missing should cost requests).
Every failure is reported with its source and reason; nothing here decides
whether to signal: that is the freshness check's job, on what was stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bot.kernel.errors import DataIncomplete, SourceError
from bot.kernel.models import BREADTH, EventKind, Parsed, Symbol
from bot.kernel.sessions import ET, SessionCalendar
from bot.market.sources.cboe_options import URL as CHAIN_URL
from bot.market.sources.cboe_options import OptionChain, fetch_spx_chain
from bot.market.sources.chain import (
    Sources,
    breadth_chain,
    fetch_first,
    fomc_chain,
    index_chain,
    release_chain,
    spx_chain,
)
from bot.market.sources.vx_settlement import BASE_URL as VX_BASE_URL
from bot.market.sources.vx_settlement import fetch_vx_settlements
from bot.market.sources.yahoo import YAHOO_BASE, fetch_yahoo
from bot.store import Store

log = logging.getLogger(__name__)

WINDOW_SESSIONS = 15
"""Sessions fetched ending at D: enough to repair a short outage of the bot."""
HISTORY_SESSIONS = 1300
"""Sessions fetched when the store lacks the recent window (a first live run):
the 300-session look-back plus the weekly MACD's warm-up, about five years."""


@dataclass(slots=True)
class FetchReport:
    session: dt.date
    used: dict[str, str] = field(default_factory=dict)
    """Series -> the source whose rows were stored."""
    failed: dict[str, str] = field(default_factory=dict)
    """Series -> every source's reason, when the whole chain failed."""
    skipped: list[str] = field(default_factory=list)
    """Series already complete for D in the store."""

    def lines(self) -> list[str]:
        out = [f"{s}: fetched from {src}" for s, src in sorted(self.used.items())]
        out += [f"{s}: already stored for {self.session}" for s in self.skipped]
        out += [f"{s}: FAILED: {why}" for s, why in sorted(self.failed.items())]
        return out


async def fetch_session(
    sources: Sources,
    store: Store,
    session: dt.date,
    *,
    now: dt.datetime,
    shipped_calendar_dir: Path | None = None,
) -> FetchReport:
    """Fetch every series for ``session`` that the store lacks; store what arrives.

    ``now`` (aware) decides whether breadth can still be fetched: the WSJ
    diary only ever shows the latest closed session.
    """
    cal = sources.calendar
    if now < cal.close_time(session):
        # Before the close a daily bar's "close" is the live price: storing it
        # would make a later evaluation use an intraday print as the session's.
        raise DataIncomplete(f"{session} has not closed yet: nothing is fetched before the close")
    today = now.astimezone(ET).date()
    start = cal.offset(session, -(WINDOW_SESSIONS - 1))
    report = FetchReport(session)
    jobs: dict[str, Callable[[], Awaitable[tuple[Parsed[Any], list[tuple[str, str]]]]]] = {}

    def have(series: str) -> bool:
        last, _ = store.latest(series, on_or_before=session)
        return last == session

    deep = cal.offset(session, -(HISTORY_SESSIONS - 1))
    for symbol in Symbol:
        if have(symbol):
            report.skipped.append(symbol.value)
            continue
        # A store with nothing before the window (a first run, a long outage)
        # gets years of history, or freshness could never be satisfied.
        last, _ = store.latest(symbol, on_or_before=session)
        begin = start if last is not None and last >= start else deep
        attempts = (spx_chain(sources, begin, session, expect=session) if symbol is Symbol.SPX
                    else index_chain(sources, symbol, begin, session, expect=session))
        jobs[symbol.value] = _job(symbol.value, attempts)
    if have(BREADTH):
        report.skipped.append(BREADTH)
    elif session == cal.last_closed_session(now):
        jobs[BREADTH] = _job(BREADTH, breadth_chain(sources, expect=session))
    else:
        report.failed[BREADTH] = (
            f"the WSJ diary only gives today's figures; {session} must be imported "
            "(alvh data import)"
        )
    fomc = shipped_calendar_dir / "fomc_decisions.csv" if shipped_calendar_dir else None
    cpi = shipped_calendar_dir / "cpi_releases.csv" if shipped_calendar_dir else None
    jobs["FOMC"] = _job("FOMC", fomc_chain(sources, today=today, shipped=fomc))
    jobs["CPI"] = _job("CPI", release_chain(sources, EventKind.CPI, today=today, shipped=cpi))
    ppi_file = shipped_calendar_dir / "ppi_releases.csv" if shipped_calendar_dir else None
    ppi = release_chain(sources, EventKind.PPI, today=today, shipped=ppi_file)
    if ppi:
        jobs["PPI"] = _job("PPI", ppi)
    else:
        report.failed["PPI"] = ("no PPI source: no shipped calendar, and ALVH_FRED_API_KEY "
                                "is not set for FRED's release dates")

    names = list(jobs)
    results = await asyncio.gather(*(jobs[n]() for n in names), return_exceptions=True)
    for name, res in zip(names, results, strict=True):
        if isinstance(res, SourceError):
            report.failed[name] = res.reason
            continue
        if isinstance(res, BaseException):
            raise res
        parsed, _failures = res
        _store(store, name, parsed)
        report.used[name] = parsed.source
    return report


def _job(
    series: str, attempts: list[Any]
) -> Callable[[], Awaitable[tuple[Parsed[Any], list[tuple[str, str]]]]]:
    async def run() -> tuple[Parsed[Any], list[tuple[str, str]]]:
        return await fetch_first(series, attempts)

    return run


def _store(store: Store, series: str, parsed: Parsed[Any]) -> None:
    if series == BREADTH:
        store.upsert_breadth(parsed.rows)
    elif series in ("FOMC", "CPI", "PPI"):
        store.upsert_events(parsed.rows)
    else:
        store.upsert_bars(parsed.rows)


@dataclass(slots=True)
class Extras:
    """Optional inputs that improve the decision but never block it."""

    settlements: dict[dt.date, float] | None = None
    chain: OptionChain | None = None
    etp_price: float | None = None
    """Close of the ETP hedge (VXX/UVXY) on D, when the rules hedge with one."""
    notes: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    """Series whose whole source chain failed (from the fetch report), for metrics."""


async def fetch_extras(
    client: httpx.AsyncClient, calendar: SessionCalendar, session: dt.date, *, now: dt.datetime,
    settlement_url: str = VX_BASE_URL, chain_url: str = CHAIN_URL,
    etp_symbol: str | None = None, yahoo_url: str = YAHOO_BASE,
) -> Extras:
    """Cboe's VX settlements (hedge pricing) and SPX chain (condor strikes) for D.

    Each failure becomes a note and the model/proxy is used instead: the
    alert says which one priced what. The chain is "now" only, so it is
    fetched only when D is the latest closed session.
    """
    extras = Extras()
    if etp_symbol:
        try:
            bars = await fetch_yahoo(client, etp_symbol, etp_symbol, calendar.offset(session, -5),
                                     session, expect=session, calendar=calendar,
                                     base_url=yahoo_url)
            extras.etp_price = bars.rows[-1].close
        except SourceError as exc:
            extras.notes.append(f"{etp_symbol} price unavailable ({exc}); size the hedge by hand")
    else:
        try:
            extras.settlements = await fetch_vx_settlements(
                client, session, base_url=settlement_url)
        except SourceError as exc:
            extras.notes.append(
                f"VX settlements unavailable ({exc}); hedge priced from the proxy")
    if session != calendar.last_closed_session(now):
        extras.notes.append("SPX option chain is only available for the latest session; "
                            "condor strikes from the model")
        return extras
    try:
        extras.chain = await fetch_spx_chain(client, url=chain_url, session=session)
    except SourceError as exc:
        extras.notes.append(f"SPX option chain unavailable ({exc}); condor strikes from the model")
    return extras


Fetcher = Callable[[dt.date], Awaitable[tuple[list[str], Extras]]]
"""Fetch what session D lacks into the store; returns report lines and the extras."""


async def fetch_nothing(session: dt.date) -> tuple[list[str], Extras]:
    """The snapshot's fetcher: the shipped history is all there is."""
    return [], Extras()


class LiveFetcher:
    """The one live fetch of a session, for the scheduler, ``run-once`` and ``/rundate``.

    Series into the store through their fallback chains, then the optional
    extras (VX settlements, the SPX chain, an ETP's close). ``etp_symbol`` is
    asked at each call because a rules reload may change the hedge instrument.
    """

    def __init__(
        self,
        sources: Sources,
        store: Store,
        *,
        shipped_calendar_dir: Path | None,
        etp_symbol: Callable[[], str | None] = lambda: None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.sources, self.store = sources, store
        self.shipped_calendar_dir = shipped_calendar_dir
        self.etp_symbol = etp_symbol
        self.clock = clock or (lambda: dt.datetime.now(tz=ET))

    async def __call__(self, session: dt.date) -> tuple[list[str], Extras]:
        now = self.clock()
        report = await fetch_session(self.sources, self.store, session, now=now,
                                     shipped_calendar_dir=self.shipped_calendar_dir)
        extras = await fetch_extras(self.sources.client, self.sources.calendar, session, now=now,
                                    etp_symbol=self.etp_symbol())
        extras.failed = dict(report.failed)
        return report.lines() + extras.notes, extras
