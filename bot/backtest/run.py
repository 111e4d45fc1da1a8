"""``alvh backtest``: every session of a date range through the live engine.

The backtest is not a model of the bot, it *is* the bot: the same
``indicator_frame`` (indicators, blackouts) and the same ``replay`` (rules,
layer state machine, hedge sizing, condor construction) the daily job runs,
with no delivery. The frame is computed once over the whole range (with the
warm-up before it); that this sees nothing of the future is proven by a test
that cuts the history at many dates and finds identical decisions.

Point in time is the frame's rule, the same as live: an unscheduled FOMC
action (``Event.scheduled`` False) counts only from its own date, so it never
blacks out the sessions before it (``indicator_frame``). The report lists
those actions so a reader knows they were not anticipated.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TextIO

import pandas as pd

from bot.backtest.progress import Progress
from bot.backtest.stats import layer_pnl, proxy_exit_price
from bot.engine.evaluate import Evaluation
from bot.engine.rules import Rules
from bot.engine.state import LayerState, Value
from bot.kernel.errors import ConfigError
from bot.kernel.models import Symbol
from bot.kernel.sessions import SessionCalendar
from bot.market.freshness import DEFAULT_LOOKBACK, FreshnessIndex, window_start
from bot.pipeline.evaluation import (
    CondorGate,
    frame_start,
    indicator_frame,
    load_series,
    replay,
)
from bot.store import Store

CHANGE_ACTIONS = ("add", "remove", "defer", "cancel_deferral", "blocked")
"""Layer actions the table lists (``keep``/``not_added``/``hold_exit`` only explain)."""

CHUNK_SESSIONS = 126
"""On a terminal, replay in half-years so the progress bar moves (state carried across)."""


def unscheduled_events(
    store: Store, start: dt.date, end: dt.date
) -> dict[str, tuple[dt.date, ...]]:
    """``{kind: dates}`` of the unscheduled events (``Event.scheduled`` False) in ``start..end``."""
    out: dict[str, list[dt.date]] = {}
    for event in store.events(start=start, end=end):
        if not event.scheduled:
            out.setdefault(event.kind.value, []).append(event.date)
    return {k: tuple(v) for k, v in out.items()}


@dataclass(frozen=True, slots=True)
class DataRange:
    """The sessions actually replayed, and why they differ from what was asked."""

    start: dt.date
    end: dt.date
    notes: tuple[str, ...] = ()


def resolve_range(
    store: Store, calendar: SessionCalendar, start: dt.date, end: dt.date
) -> DataRange:
    """Snap ``start..end`` to sessions with SPX data; a range with none is an error.

    The replay needs an SPX close on every session (no close, no decision),
    so the range is clipped to the stored SPX history and the output says so.
    """
    if end < start:
        raise ConfigError(f"--to {end} is before --from {start}")
    for name, day in (("--from", start), ("--to", end)):
        if not calendar.first <= day <= calendar.last:
            raise ConfigError(
                f"{name} {day} is outside the NYSE calendar ({calendar.first}..{calendar.last})"
            )
    spx = store.sessions_present(Symbol.SPX)
    if not spx:
        raise ConfigError("the store has no SPX history: import some, or use --source snapshot")
    notes: list[str] = []
    lo = max(calendar.session_on_or_after(start), spx[0])
    hi = min(calendar.session_on_or_before(end), spx[-1])
    if hi < lo:
        raise ConfigError(
            f"no SPX data between {start} and {end} (SPX here covers {spx[0]}..{spx[-1]})"
        )
    if lo != start:
        why = "first session with SPX data" if lo == spx[0] and start < spx[0] else "first session"
        notes.append(f"starts {lo} ({why} on or after {start})")
    if hi != end:
        why = "last session with SPX data" if hi == spx[-1] and end > spx[-1] else "last session"
        notes.append(f"ends {hi} ({why} on or before {end})")
    spx_need = DEFAULT_LOOKBACK[Symbol.SPX]
    warm = calendar.offset(spx[0], spx_need - 1) if len(spx) >= spx_need else spx[-1]
    if lo < warm:
        notes.append(
            f"SPX history starts {spx[0]}: sessions before {warm} are refused, as run-once "
            f"refuses them ({spx_need} sessions of SPX look-back: docs/methodology.md)"
        )
    return DataRange(lo, hi, tuple(notes))


@dataclass(frozen=True, slots=True)
class LayerPeriod:
    """One layer from the session it went on to the session it came off, with its proxy P&L."""

    layer: str
    index: int
    added_on: dt.date
    removed_on: dt.date | None
    """None: still on at the end of the range."""
    late_from: dt.date | None
    symbol: str | None
    expiry: dt.date | None
    quantity: int
    entry_price: float | None
    multiplier: float | None
    exit_on: dt.date | None
    exit_price: float | None
    status: Literal["closed", "expired", "open", "unpriced"]
    basis: str
    """How the exit was priced, in words."""
    pnl: float | None


@dataclass(slots=True)
class _Open:
    layer: str
    index: int
    added_on: dt.date
    late_from: dt.date | None
    symbol: str | None
    expiry: dt.date | None
    quantity: int
    entry_price: float | None
    multiplier: float | None


def _num(values: Mapping[str, object], name: str) -> float | None:
    v = values.get(name)
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _close_period(
    o: _Open, day: dt.date, removed: bool, frame: pd.DataFrame, calendar: SessionCalendar,
) -> LayerPeriod:
    """Price the exit of ``o`` on ``day`` with the proxy for its own contract."""
    removed_on = day if removed else None
    if o.entry_price is None or o.multiplier is None or o.expiry is None:
        return LayerPeriod(o.layer, o.index, o.added_on, removed_on, o.late_from, o.symbol,
                           o.expiry, o.quantity, o.entry_price, o.multiplier, None, None,
                           "unpriced", "no hedge price on the day it was added", None)
    last_trade = calendar.session_on_or_before(o.expiry)
    if day >= last_trade:
        exit_on = last_trade
        v = _row(frame, exit_on)
        price = _num(v, "vix")
        status: Literal["closed", "expired", "open", "unpriced"] = "expired"
        basis = (f"held past its expiry {o.expiry} (no roll modelled): closed at the VIX "
                 "close of the expiry session, a stand-in for the final settlement")
    else:
        exit_on = day
        v = _row(frame, day)
        try:
            price = proxy_exit_price(o.expiry, day, _num(v, "vix3m"), _num(v, "vix6m"))
        except ValueError:
            price = None
        status = "closed" if removed else "open"
        basis = (f"proxy on {day}: VIX3M/VIX6M interpolated to {(o.expiry - day).days} days"
                 + ("" if removed else " (still on at the end: marked, not closed)"))
    if price is None:
        return LayerPeriod(o.layer, o.index, o.added_on, removed_on, o.late_from, o.symbol,
                           o.expiry, o.quantity, o.entry_price, o.multiplier, exit_on, None,
                           "unpriced", f"no VIX/VIX3M/VIX6M on {exit_on} to price the exit", None)
    pnl = layer_pnl(o.entry_price, price, o.multiplier, o.quantity)
    return LayerPeriod(o.layer, o.index, o.added_on, removed_on, o.late_from, o.symbol, o.expiry,
                       o.quantity, o.entry_price, o.multiplier, exit_on, price, status, basis, pnl)


def _row(frame: pd.DataFrame, day: dt.date) -> dict[str, object]:
    ts = pd.Timestamp(day)
    if ts not in frame.index:
        return {}
    return {str(k): v for k, v in frame.loc[ts].items()}


def layer_periods(
    evaluations: Sequence[Evaluation], frame: pd.DataFrame, calendar: SessionCalendar
) -> list[LayerPeriod]:
    """Every layer's period and its proxy P&L, from the decisions of a replay.

    Entry: the layer's ``entry_price``, ``unit_cost`` and ``quantity`` as the
    engine sized it on the add session (itself priced from the VIX3M/VIX6M
    proxy: a backtest has no Cboe settlement files). Exit: the same proxy for
    the *same* expiry on the removal session.
    """
    opened: dict[str, _Open] = {}
    out: list[LayerPeriod] = []
    for ev in evaluations:
        for action in ev.actions:
            d = action.decision
            if d.action == "remove" and d.layer in opened:
                out.append(_close_period(opened.pop(d.layer), ev.session, True, frame, calendar))
            elif d.action == "add":
                layer = next((a for a in ev.state_after.layers
                              if a.name == d.layer and a.added_on == ev.session), None)
                quote = action.quote
                priced = layer is not None and layer.entry_price > 0 and quote is not None
                opened[d.layer] = _Open(
                    d.layer, d.layer_index, ev.session, d.late_from,
                    quote.symbol if quote else None, quote.expiry if quote else None,
                    layer.quantity if layer else 0,
                    layer.entry_price if priced and layer else None,
                    (layer.unit_cost / layer.entry_price) if priced and layer else None,
                )
    if evaluations:
        last = evaluations[-1].session
        for o in opened.values():
            out.append(_close_period(o, last, False, frame, calendar))
    out.sort(key=lambda p: (p.added_on, p.index))
    return out


@dataclass(frozen=True)
class BacktestResult:
    """A replay and everything needed to grade and render it (see ``summary.summarize``)."""

    rules: Rules
    source: str
    start: dt.date
    end: dt.date
    capital: float
    frame: pd.DataFrame
    """The indicator frame, warm-up included (``frame.loc[start:end]`` was replayed)."""
    evaluations: list[Evaluation]
    """The sessions of ``start..end`` that were evaluated, in order."""
    excluded_events: Mapping[str, tuple[dt.date, ...]]
    """Unscheduled events in the range: counted only from their own date (point in time)."""
    refused: Mapping[dt.date, tuple[str, ...]] = field(default_factory=dict)
    """Sessions of ``start..end`` the freshness rule refused, with its reasons (as run-once)."""
    opens: pd.Series[float] = field(default_factory=lambda: pd.Series(dtype=float))
    """SPX opens of the replayed sessions (the AM settlement of monthly condors)."""
    notes: tuple[str, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def replayed(self) -> pd.DataFrame:
        return self.frame.loc[pd.Timestamp(self.start) : pd.Timestamp(self.end)]

    @property
    def layer1(self) -> str:
        """The name of the first hedge layer (its additions are the "triggers")."""
        return self.rules.hedge.layers[0].name


def backtest_frame(
    store: Store, calendar: SessionCalendar, rules: Rules, start: dt.date, end: dt.date,
    *, data: Mapping[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """The frame a backtest of ``start..end`` replays: from the store's first SPX session (the
    live frame: :func:`~bot.pipeline.evaluation.frame_start`) to ``end``."""
    return indicator_frame(store, calendar, rules, min(frame_start(store) or start, start), end,
                           data=data)


@dataclass(frozen=True)
class Replayed:
    """What one replay of ``start..end`` on a store gives (one engine, one answer)."""

    frame: pd.DataFrame
    evaluations: list[Evaluation]
    refused: dict[dt.date, tuple[str, ...]]
    fresh: FreshnessIndex
    timings: Mapping[str, float] = field(default_factory=dict)
    """Seconds: ``indicators`` (reads, frame, freshness index) and ``replay``."""


def replay_range(
    store: Store | None, calendar: SessionCalendar, rules: Rules, start: dt.date,
    end: dt.date, *, capital: float, frame: pd.DataFrame | None = None,
    fresh: FreshnessIndex | None = None, progress: TextIO | None = None,
    label: str = "replay", condors: CondorGate | None = None,
    rows: Mapping[dt.date, Mapping[str, Value]] | None = None, base: dt.date | None = None,
) -> Replayed:
    """The sessions ``start..end`` decided exactly as ``run-once --date D`` decides each D.

    The same frame (from the store's first SPX session), the same freshness
    rule (a refused session is reported with its reasons, not decided, and
    does not step the layer state), the same layer state: folded from the
    store's first session, as :func:`~bot.pipeline.evaluation.evaluate_day`
    rebuilds it when no earlier run exists. The sessions before ``start`` are
    replayed silently to get there. ``frame``/``fresh``/``rows``/``base`` reuse
    what a caller already built (a sweep, a rules diff); with all of
    ``base``/``frame``/``fresh`` given the store is not read (``store`` may be None).
    """
    t0 = time.perf_counter()
    if base is None or frame is None or fresh is None:
        if store is None:
            raise ValueError("replay_range needs the store unless base, frame and fresh are given")
        base = base or min(frame_start(store) or start, start)
    if frame is None or fresh is None:
        assert store is not None  # noqa: S101 - checked above
        data = load_series(store, min(base, window_start(calendar, base)), end)
        fresh = fresh or FreshnessIndex.from_store(store, calendar, base, end, frames=data)
        frame = frame if frame is not None else backtest_frame(store, calendar, rules, start,
                                                               end, data=data)
    t1 = time.perf_counter()
    state = None
    if base < start:
        lead = replay(frame, rules, calendar, capital=capital, start=base,
                      end=calendar.previous_session(start), fresh=fresh, condors=NO_CONDORS,
                      rows=rows)
        state = lead[-1].state_after if lead else None
    evs = replay_with_progress(frame, rules, calendar, capital=capital, start=start, end=end,
                               progress=progress, label=label, state=state, fresh=fresh,
                               condors=condors, rows=rows)
    refused = dict(fresh.refused(start, end))
    return Replayed(frame, evs, refused, fresh,
                    {"indicators": t1 - t0, "replay": time.perf_counter() - t1})


class _NoCondors:
    """A replay's lead-in: nothing before the range is traded, so no condor is priced."""

    def wants(self, session: dt.date) -> bool:
        return False

    def saw(self, evaluation: Evaluation) -> None:
        pass


NO_CONDORS = _NoCondors()


def replay_with_progress(
    frame: pd.DataFrame, rules: Rules, calendar: SessionCalendar, *, capital: float,
    start: dt.date, end: dt.date, progress: TextIO | None = None, label: str = "replay",
    state: LayerState | None = None, fresh: FreshnessIndex | None = None,
    condors: CondorGate | None = None, rows: Mapping[dt.date, Mapping[str, Value]] | None = None,
) -> list[Evaluation]:
    """``pipeline.replay`` in chunks (state carried across) so a terminal can show progress.

    Chunking changes nothing: ``replay`` is a fold over sessions, and each
    chunk starts from the state the previous one ended with.
    """
    days = calendar.sessions_between(start, end)
    bar = Progress(progress, len(days), label)
    if not bar.enabled:  # nothing to draw: one call, no per-chunk overhead
        return replay(frame, rules, calendar, capital=capital, start=start, end=end,
                      state=state, fresh=fresh, condors=condors, rows=rows)
    out: list[Evaluation] = []
    try:
        for i in range(0, len(days), CHUNK_SESSIONS):
            chunk = days[i : i + CHUNK_SESSIONS]
            evs = replay(frame, rules, calendar, capital=capital, start=chunk[0], end=chunk[-1],
                         state=state, fresh=fresh, condors=condors, rows=rows)
            if evs:
                state = evs[-1].state_after
            out.extend(evs)
            bar.update(len(chunk))
    finally:
        bar.close()
    return out


def run_backtest(
    store: Store,
    calendar: SessionCalendar,
    rules: Rules,
    start: dt.date,
    end: dt.date,
    *,
    capital: float,
    source: str = "store",
    progress: TextIO | None = None,
) -> BacktestResult:
    """Replay ``start..end`` (snapped to sessions with SPX data) as ``run-once`` would decide
    each of its sessions (:func:`replay_range`)."""
    rng = resolve_range(store, calendar, start, end)
    done = replay_range(store, calendar, rules, rng.start, rng.end, capital=capital,
                        progress=progress)
    return BacktestResult(
        rules=rules, source=source, start=rng.start, end=rng.end, capital=capital,
        frame=done.frame, evaluations=done.evaluations,
        excluded_events=unscheduled_events(store, rng.start, rng.end), refused=done.refused,
        opens=spx_opens(store, rng.start, rng.end),
        notes=rng.notes, timings=done.timings,
    )


def spx_opens(store: Store, start: dt.date, end: dt.date) -> pd.Series[float]:
    """SPX opens ``start..end`` (the indicator frame holds closes only)."""
    return store.bars(Symbol.SPX, start, end)["open"].astype(float)
