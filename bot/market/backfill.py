"""``alvh data backfill``: a new user is live in one command.

A live store starts empty, and NYSE breadth has no free history feed a
scheduled job could wait for: without history the first evaluation would be
six months away. Back-fill (1) seeds the store with the shipped snapshot
(real history to early 2026: prices, breadth, calendars), only where the
store has nothing, so it never overwrites what a live source wrote; (2)
fetches SPX, VIX, VIX3M, VIX6M and NYSE breadth from where the store ends to
the last closed session, each through its fallback chain (breadth history
from TradingView's daily bars, the latest sessions from the WSJ diary); (3)
fetches the event calendars; and (4) says, per series, what the store now
holds and exactly which sessions the last session's evaluation still lacks,
with the command that imports them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.engine.indicators.frame import WEEKLY_WARMUP_SESSIONS
from bot.kernel.errors import SourceError
from bot.kernel.models import BREADTH, Bar, Breadth, Event, EventKind, Parsed, Symbol
from bot.kernel.sessions import SessionCalendar
from bot.market.fetch import EVENT_LOOKBACK, StoreScreen
from bot.market.freshness import DEFAULT_LOOKBACK
from bot.market.importer import Item, write_items
from bot.market.snapshot import SNAPSHOT_DIR, parse_snapshot
from bot.market.sources.base import Source, SourceContext, Window
from bot.market.sources.chain import fetch_extended, fetch_filled
from bot.store import Store

log = logging.getLogger(__name__)

SERIES: tuple[str, ...] = (*(s.value for s in Symbol), BREADTH)
IMPORT_HINT: Mapping[str, str] = {
    Symbol.SPX: "alvh data import FILE --symbol SPX   (Date,Open,High,Low,Close[,Volume])",
    Symbol.VIX: "alvh data import VIX_History.csv   (Cboe DATE,OPEN,HIGH,LOW,CLOSE)",
    Symbol.VIX3M: "alvh data import VIX3M_History.csv   (Cboe DATE,OPEN,HIGH,LOW,CLOSE)",
    Symbol.VIX6M: "alvh data import VIX6M_History.csv   (Cboe DATE,OPEN,HIGH,LOW,CLOSE)",
    BREADTH: "alvh data import FILE   (date,advancers,decliners[,source]: NYSE issues)",
}
"""How to import what no source gave, per series (the formats ``alvh data import`` reads)."""
SHOWN = 12


@dataclass(slots=True)
class SeriesState:
    """One line of the closing table."""

    series: str
    first: dt.date | None
    last: dt.date | None
    rows: int
    seeded: int
    fetched: str
    """Who filled the back-filled span (``yahoo + fred (...)``), or why nothing."""
    missing: list[dt.date]
    """Sessions with no (accepted) row from where the store ended (or the look-back the
    last session's evaluation needs, when that reaches further back) to the last session."""
    needed: int
    """That span, in sessions."""
    recent: list[dt.date] = field(default_factory=list)
    """Of ``missing``, those inside the look-back the last session's evaluation reads."""


@dataclass(slots=True)
class BackfillReport:
    upto: dt.date
    series: list[SeriesState] = field(default_factory=list)
    events: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every series has every session of the look-back the evaluation of ``upto`` reads."""
        return not any(s.recent for s in self.series)

    @property
    def evaluable(self) -> bool:
        """``upto`` can be evaluated: breadth may lack earlier sessions of its look-back
        (imputed, DESIGN §4), never ``upto`` itself; the other series lack nothing."""
        return all((self.upto not in s.recent) if s.series == BREADTH else not s.recent
                   for s in self.series)

    def lines(self) -> list[str]:
        out = [f"back-fill to {self.upto} (the last closed session)", "",
               f"{'series':<8} {'first':<10}   {'last':<10}  {'rows':>6}  {'seeded':>6}  "
               f"{'missing':>7}/{'needed':<5}  fetched from"]
        for s in self.series:
            out.append(f"{s.series:<8} {s.first or '-'!s:<10} .. {s.last or '-'!s:<10}  "
                       f"{s.rows:>6}  {s.seeded:>6}  {len(s.missing):>7}/{s.needed:<5}  "
                       f"{s.fetched}")
        out.append("")
        for kind, how in self.events.items():
            out.append(f"{kind:<8} {how}")
        for s in self.series:
            if not s.missing:
                continue
            shown = ", ".join(str(d) for d in s.missing[:SHOWN])
            more = f", ... ({len(s.missing) - SHOWN} more)" if len(s.missing) > SHOWN else ""
            kind = ("imputed by the indicators (the A/D line carries flat), unless imported"
                    if s.series == BREADTH and self.upto not in s.missing else
                    "no signal until they are imported")
            out += ["", f"{s.series}: {len(s.missing)} session(s) still missing, {kind}:",
                    f"  {shown}{more}", f"  import them with: {IMPORT_HINT[s.series]}"]
        out.append("")
        if self.complete:
            out.append(f"ready: {self.upto} can be evaluated")
        elif self.evaluable:
            gaps = next(len(s.recent) for s in self.series if s.series == BREADTH)
            out.append(f"partly ready: {self.upto} can be evaluated, but {gaps} NYSE breadth "
                       "session(s) of its look-back are imputed: an A/D divergence window "
                       "holding more than the rules' max_imputed_sessions is not evaluable "
                       "until they are imported")
        else:
            out.append(f"NOT ready: {self.upto} cannot be evaluated yet (see above)")
        return out + (["", *self.notes] if self.notes else [])


def seed_items(store: Store, items: Sequence[Item]) -> list[Item]:
    """The snapshot's rows for the sessions (and events) the store does not have yet."""
    out: list[Item] = []
    known_events = {(e.kind.value, e.date) for e in store.events()}
    present: dict[str, set[dt.date]] = {}
    for item in items:
        parsed: Parsed[Any] = item.parsed
        if item.series == "events":
            rows = tuple(e for e in parsed.rows if (e.kind.value, e.date) not in known_events)
        else:
            have = present.setdefault(item.series, set(store.sessions_present(item.series)))
            if item.series == BREADTH:
                have |= {r.session for r in store.breadth_rejected()}
            rows = tuple(r for r in parsed.rows if r.session not in have)
        if rows:
            out.append(Item(item.label, replace(parsed, rows=rows, dropped=()), item.series))
    return out


async def backfill(
    ctx: SourceContext,
    chains: Mapping[str, Sequence[Source[Any]]],
    store: Store,
    *,
    snapshot_root: Path = SNAPSHOT_DIR,
    lookback: Mapping[str, int] | None = None,
) -> BackfillReport:
    """Seed, fetch to the last closed session, and report (see the module doc)."""
    cal = ctx.calendar
    upto = ctx.last_closed()
    if lookback is None:  # the daily look-backs, and SPX's five-year weekly warm-up
        lookback = {**DEFAULT_LOOKBACK,
                    Symbol.SPX: max(DEFAULT_LOOKBACK[Symbol.SPX], WEEKLY_WARMUP_SESSIONS)}
    report = BackfillReport(upto)
    seeded = await asyncio.to_thread(_seed, store, cal, snapshot_root)
    for line in seeded[1]:
        log.info("back-fill: snapshot %s", line)
    jobs: dict[str, Any] = {}
    spans: dict[str, dt.date] = {}
    for series in SERIES:
        last, _ = store.latest(series, on_or_before=upto)
        need = lookback.get(series, 30)
        # From where the store ends (the snapshot's end on a new install) to the last
        # closed session; at least the look-back the evaluation of ``upto`` needs.
        begin = min(cal.offset(upto, -(need - 1)),
                    cal.next_session(last) if last is not None and last < upto else upto)
        spans[series] = begin
        have = set(store.sessions_present(series))
        window = Window(begin, upto, expect=upto)
        check = StoreScreen(store, cal, begin) if series == BREADTH else None
        jobs[series] = fetch_filled(series, ctx, chains.get(series, ()), window,
                                    have={d for d in have if begin <= d <= upto}, check=check)
    today = ctx.clock().date()
    for kind in EventKind:
        jobs[kind.value] = fetch_extended(kind.value, ctx, chains.get(kind.value, ()),
                                       Window(today - EVENT_LOOKBACK, today))
    names = list(jobs)
    results = await asyncio.gather(*(jobs[n] for n in names), return_exceptions=True)
    fetched: dict[str, str] = {}
    for name, res in zip(names, results, strict=True):
        if isinstance(res, SourceError):
            fetched[name] = f"FAILED: {res.reason}"
        elif isinstance(res, BaseException):
            raise res
        elif name in SERIES:
            _write(store, name, res.rows)
            fetched[name] = res.sources
            report.notes += [f"{name}: {n}" for n in res.notes]
        else:
            parsed, _ = res
            store.upsert_events(parsed.rows)
            fetched[name] = parsed.source
    for series in SERIES:
        report.series.append(_state(store, cal, series, upto, spans[series],
                                    lookback.get(series, 30), seeded[0].get(series, 0),
                                    fetched[series]))
    for kind in EventKind:
        events = store.events([kind])
        reach = max((e.date for e in events), default=None)
        report.events[kind.value] = (f"{len(events)} events, the last on {reach}; this run: "
                                     f"{fetched[kind.value]}")
    return report


def _seed(store: Store, calendar: SessionCalendar, root: Path) -> tuple[dict[str, int],
                                                                        list[str]]:
    items = seed_items(store, parse_snapshot(calendar, root))
    counts: dict[str, int] = {}
    for item in items:
        counts[item.series] = counts.get(item.series, 0) + len(item.parsed.rows)
    return counts, write_items(store, items)


def _write(store: Store, series: str, rows: Sequence[Bar | Breadth | Event]) -> None:
    if series == BREADTH:
        store.upsert_breadth(r for r in rows if isinstance(r, Breadth))
    else:
        store.upsert_bars(r for r in rows if isinstance(r, Bar))


def _state(store: Store, calendar: SessionCalendar, series: str, upto: dt.date,
           begin: dt.date, need: int, seeded: int, fetched: str) -> SeriesState:
    status = {s.series: s for s in store.status()}.get(series)
    have = set(store.sessions_present(series))
    span = calendar.sessions_between(begin, upto)
    missing = [d for d in span if d not in have]
    recent_from = calendar.offset(upto, -(need - 1))
    return SeriesState(series, status.first if status else None,
                       status.last if status else None, status.rows if status else 0,
                       seeded, fetched, missing, len(span),
                       [d for d in missing if d >= recent_from])
