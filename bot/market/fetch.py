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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.engine.breadth_screen import MEDIAN_SESSIONS, BreadthScreen
from bot.engine.indicators.frame import WEEKLY_WARMUP_SESSIONS
from bot.kernel.errors import DataIncomplete, SourceError
from bot.kernel.models import BREADTH, Breadth, EventKind, Symbol
from bot.kernel.sessions import ET, SessionCalendar
from bot.market.extras import Extras
from bot.market.freshness import weekly_warmup
from bot.market.sources.base import Reach, Source, SourceContext, Window
from bot.market.sources.cboe_options import CboeChain
from bot.market.sources.chain import Endpoints, Filled, fetch_extended, fetch_filled
from bot.market.sources.vx_settlement import VxSettlements
from bot.market.sources.yahoo import YahooChart
from bot.store import Store

log = logging.getLogger(__name__)

WINDOW_SESSIONS = 15
"""Sessions fetched ending at D: enough to repair a short outage of the bot."""
HISTORY_SESSIONS = WEEKLY_WARMUP_SESSIONS + 40
"""Sessions fetched when the store lacks the recent window (a first live run) or,
for SPX, the weekly MACD's five-year warm-up (DESIGN.md §4), with a margin."""
EVENT_LOOKBACK = dt.timedelta(days=400)
"""Calendars are asked for the past year and everything scheduled after today."""


@dataclass(slots=True)
class FetchReport:
    session: dt.date
    used: dict[str, str] = field(default_factory=dict)
    """Series -> the source(s) whose rows were stored (``yahoo + fred (2026-02-20)``)."""
    failed: dict[str, str] = field(default_factory=dict)
    """Series -> every source's reason, when the chain gave nothing for D."""
    skipped: list[str] = field(default_factory=list)
    """Series already complete for D in the store."""
    missing: dict[str, list[dt.date]] = field(default_factory=dict)
    """Series -> sessions of the fetched window that no source gave."""
    notes: list[str] = field(default_factory=list)
    """Rows sources dropped, and sources passed over, with why."""

    def lines(self) -> list[str]:
        out = [f"{s}: fetched from {src}" for s, src in sorted(self.used.items())]
        out += [f"{s}: already stored for {self.session}" for s in self.skipped]
        out += [f"{s}: FAILED: {why}" for s, why in sorted(self.failed.items())]
        out += [f"{s}: no source has {', '.join(map(str, days))}"
                for s, days in sorted(self.missing.items())]
        return out + self.notes


async def fetch_session(
    ctx: SourceContext,
    chains: Mapping[str, Sequence[Source[Any]]],
    store: Store,
    session: dt.date,
) -> FetchReport:
    """Fetch every series for ``session`` that the store lacks; store what arrives.

    ``ctx.clock()`` decides what has closed: nothing is fetched for a session
    before its close, and sources that serve only the latest session (the WSJ
    diary) are asked only when ``session`` is within their reach.
    """
    cal = ctx.calendar
    now = ctx.clock()
    if now < cal.close_time(session):
        # Before the close a daily bar's "close" is the live price: storing it
        # would make a later evaluation use an intraday print as the session's.
        raise DataIncomplete(f"{session} has not closed yet: nothing is fetched before the close")
    today = now.astimezone(ET).date()
    start = cal.offset(session, -(WINDOW_SESSIONS - 1))
    deep = cal.offset(session, -(HISTORY_SESSIONS - 1))
    report = FetchReport(session)
    jobs: dict[str, Awaitable[Any]] = {}
    windows: dict[str, Window] = {}
    for series in (*(s.value for s in Symbol), BREADTH):
        last, _ = store.latest(series, on_or_before=session)
        if last == session:
            report.skipped.append(series)
            continue
        # A store with nothing before the window (a first run, a long outage)
        # gets years of history, or freshness could never be satisfied; SPX also
        # whenever the weekly MACD's five-year warm-up is not all there.
        begin = start if last is not None and last >= start else deep
        if series == Symbol.SPX and weekly_warmup(store, cal, cal.previous_session(session)):
            begin = deep
        window = windows[series] = Window(begin, session, expect=session)
        have = {d for d in store.sessions_present(series) if begin <= d <= session}
        check = StoreScreen(store, cal, begin) if series == BREADTH else None
        jobs[series] = fetch_filled(series, ctx, chains.get(series, ()), window, have=have,
                                    check=check)
    for kind in EventKind:
        chain = chains.get(kind.value, ())
        if not chain:
            report.failed[kind.value] = (f"no {kind} source: no shipped calendar, and "
                                         "ALVH_FRED_API_KEY is not set for FRED's release dates")
            continue
        jobs[kind.value] = fetch_extended(kind.value, ctx, chain,
                                       Window(today - EVENT_LOOKBACK, today))

    names = list(jobs)
    results = await asyncio.gather(*(jobs[n] for n in names), return_exceptions=True)
    for name, res in zip(names, results, strict=True):
        if isinstance(res, SourceError):
            report.failed[name] = res.reason
            continue
        if isinstance(res, BaseException):
            raise res
        if isinstance(res, Filled):
            _store(store, name, res.rows)
            report.used[name] = res.sources
            # Still missing = not in the store after the write (a source's gap in a
            # session the store already had is no news; a rejected breadth row is).
            have = set(store.sessions_present(name))
            still = [d for d in cal.sessions_between(windows[name].start, session)
                     if d not in have]
            if still:
                report.missing[name] = still
            if session in still:
                report.failed[name] = "; ".join(f"{n}: {why}" for n, why in res.failures) or (
                    f"no source has an accepted row for {session}")
            report.notes += [f"{name}: {note}" for note in res.notes]
        else:
            parsed, _failures = res
            _store(store, name, parsed.rows)
            report.used[name] = parsed.source
    return report


class StoreScreen:
    """The breadth screen (DESIGN §4) against what the store has accepted, for a chain.

    A fetched row is judged before it counts, so a partial-day count from one
    source makes the chain ask the next; the store screens again on write
    (in session order), which is what decides what is kept.
    """

    def __init__(self, store: Store, calendar: SessionCalendar, first: dt.date) -> None:
        start = max(calendar.first, calendar.offset(first, -2 * MEDIAN_SESSIONS))
        frame = store.breadth(start)
        self.totals = {ts.date(): int(a) + int(d) for ts, a, d in
                       zip(frame.index, frame["advancers"], frame["decliners"], strict=True)}

    def __call__(self, row: Breadth) -> str | None:
        before = sorted(d for d in self.totals if d < row.session)[-MEDIAN_SESSIONS:]
        reason = BreadthScreen([self.totals[d] for d in before]).check(row.advancers,
                                                                         row.decliners)
        if reason is None:
            self.totals[row.session] = row.advancers + row.decliners
        return reason


def _store(store: Store, series: str, rows: Sequence[Any]) -> None:
    if series == BREADTH:
        store.upsert_breadth(rows)
    elif series in {k.value for k in EventKind}:
        store.upsert_events(rows)
    else:
        store.upsert_bars(rows)


async def fetch_extras(
    ctx: SourceContext, session: dt.date, endpoints: Endpoints, *,
    etp_symbol: str | None = None,
) -> Extras:
    """Cboe's VX settlements (hedge pricing) and SPX chain (condor strikes) for D.

    Each failure becomes a note and the model/proxy is used instead: the
    alert says which one priced what. The chain is "now" only, so it is
    fetched only when D is the latest closed session.
    """
    extras = Extras()
    if etp_symbol:
        try:
            etp = YahooChart(endpoints.yahoo, ticker=etp_symbol, symbol=etp_symbol)
            window = Window(ctx.calendar.offset(session, -5), session, expect=session)
            extras.etp_price = (await etp.fetch(ctx, window)).rows[-1].close
        except SourceError as exc:
            extras.notes.append(f"{etp_symbol} price unavailable ({exc}); size the hedge by hand")
    else:
        try:
            extras.settlements = await VxSettlements(endpoints.vx_settlement).fetch(ctx, session)
        except SourceError as exc:
            extras.notes.append(
                f"VX settlements unavailable ({exc}); hedge priced from the proxy")
    if session != ctx.last_closed():
        extras.notes.append("SPX option chain is only available for the latest session; "
                            "condor strikes from the model")
        return extras
    try:
        extras.chain = await CboeChain(endpoints.cboe_chain).fetch(ctx, session)
    except SourceError as exc:
        extras.notes.append(f"SPX option chain unavailable ({exc}); condor strikes from the model")
    return extras




class LiveFetcher:
    """The one live fetch of a session, for the scheduler, ``run-once`` and ``/rundate``.

    Series into the store through their fallback chains, then the optional
    extras (VX settlements, the SPX chain, an ETP's close). ``etp_symbol`` is
    asked at each call because a rules reload may change the hedge instrument.
    """

    def __init__(
        self,
        ctx: SourceContext,
        chains: Mapping[str, Sequence[Source[Any]]],
        store: Store,
        *,
        endpoints: Endpoints | None = None,
        etp_symbol: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.ctx, self.chains, self.store = ctx, chains, store
        self.endpoints = endpoints or Endpoints()
        self.etp_symbol = etp_symbol

    async def refresh_final(self, session: dt.date) -> list[str]:
        """Fetch ``session``'s NYSE breadth again for the *final* figures (around 20:00 ET).

        The WSJ diary revises its figures after the close; the row stored at
        close + delay may be preliminary. Asked of the sources that serve the
        latest session (the diary, then the McClellan page, which waits for
        the final numbers itself); the store logs a revision with both values.
        The evaluation already made is not redone: the revised row serves the
        A/D line of every later session.
        """
        chain = [s for s in self.chains.get(BREADTH, ()) if s.reach is Reach.LATEST]
        try:
            filled = await fetch_filled(BREADTH, self.ctx, chain,
                                        Window(session, session, session),
                                        check=StoreScreen(self.store, self.ctx.calendar, session))
        except SourceError as exc:
            line = f"BREADTH final figures for {session}: FAILED: {exc.reason}"
            log.warning("%s", line)
            return [line]
        before = self.store.breadth(session, session)
        written = self.store.upsert_breadth(filled.rows)
        what = ("revised (the change is logged with both values)" if written.changed
                else "new" if written.inserted else "unchanged")
        if written.rejected:
            what += "; REJECTED by the breadth screen"
        line = (f"BREADTH final figures for {session} from {filled.sources}: {what}"
                + ("" if len(before) else " (no row before)"))
        log.info("%s", line)
        return [line]

    async def __call__(self, session: dt.date) -> tuple[list[str], Extras]:
        report = await fetch_session(self.ctx, self.chains, self.store, session)
        extras = await fetch_extras(self.ctx, session, self.endpoints,
                                    etp_symbol=self.etp_symbol())
        extras.failed = dict(report.failed)
        return report.lines() + extras.notes, extras
