"""One evaluation of session D, from the store to decisions (and the replay loop).

``indicator_frame`` turns stored history into the indicator frame (the rules
vocabulary, plus the blackout from the rules' widths); ``replay`` walks the
layer state machine across sessions; ``evaluate_day`` is what the scheduler,
``run-once`` and ``/rundate`` call: it refuses stale or gapped data, picks up
the layer state where the previous run left it, and records the run so a
second evaluation of the same session changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from bot.engine.compose import Context, compose
from bot.engine.condor import ChainQuote
from bot.engine.evaluate import Evaluation, evaluate_session
from bot.engine.indicators import NOT_EVALUABLE, IndicatorParams, blackout, compute_frame
from bot.engine.indicators.evaluable import why_key
from bot.engine.indicators.frame import WEEKLY_WARMUP_SESSIONS
from bot.engine.rules import Rules
from bot.engine.state import LayerState, Value
from bot.kernel.alerts import Alert
from bot.kernel.models import BREADTH, EventKind, Freshness, Symbol
from bot.kernel.sessions import SessionCalendar
from bot.market.freshness import DEFAULT_LOOKBACK, FreshnessIndex, window_start
from bot.pipeline.checkpoint import StateCache
from bot.store import Store

log = logging.getLogger(__name__)

WARMUP_SESSIONS = 250
"""Sessions after the first stored SPX session before the indicators count as warmed up
(DESIGN §4: at least 250 sessions before the first date used)."""


def indicator_params(rules: Rules) -> IndicatorParams:
    i = rules.indicators
    return IndicatorParams(
        macd_fast=i.macd.fast, macd_slow=i.macd.slow, macd_signal=i.macd.signal,
        compression_k=i.histogram_compression_sessions,
        weekly_macd_fast=i.weekly_macd.fast, weekly_macd_slow=i.weekly_macd.slow,
        weekly_macd_signal=i.weekly_macd.signal,
        weekly_compression_k=i.histogram_compression_sessions,
        rsi_period=i.rsi.period,
        divergence_window=i.divergence.window,
        divergence_tolerance=i.divergence.tolerance,
        divergence_min_separation=i.divergence.min_separation,
        max_imputed_sessions=i.divergence.max_imputed_sessions,
    )


def history_start(calendar: SessionCalendar, first_used: dt.date, rules: Rules) -> dt.date:
    """The earliest session whose indicator values a caller of ``first_used`` may want to show.

    The weekly MACD needs 5 years of SPX before it is evaluable (DESIGN.md §4),
    more than any daily indicator's ``lookback_sessions``. Values never depend
    on it: :func:`indicator_frame` computes from the store's first SPX session
    whatever window is asked for.
    """
    n = max(rules.indicators.lookback_sessions, WEEKLY_WARMUP_SESSIONS)
    try:
        return calendar.offset(calendar.session_on_or_after(first_used), -n)
    except ValueError:
        return calendar.first


def frame_start(store: Store) -> dt.date | None:
    """Where every indicator computation starts: the store's first SPX session (None: empty).

    One start for every caller is what makes a session's values independent of
    who asks: EMAs and Wilder's RSI carry their seed for ever (fading, never
    gone), so a frame started elsewhere differs in the last digits, and a
    threshold at exactly those digits would decide differently in ``run-once``
    and in a backtest.
    """
    return store.first(Symbol.SPX)


def load_series(store: Store, start: dt.date, end: dt.date) -> dict[str, pd.DataFrame]:
    """Every market series ``start..end`` in one place, for callers that need them twice
    (the indicator frame and the freshness check of the same evaluation)."""
    out = {str(sym): store.bars(sym, start, end)
           for sym in (Symbol.SPX, Symbol.VIX, Symbol.VIX3M, Symbol.VIX6M)}
    out[BREADTH] = store.breadth(start, end)
    return out


def indicator_frame(
    store: Store, calendar: SessionCalendar, rules: Rules, start: dt.date, end: dt.date,
    *, data: Mapping[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """The indicator frame for sessions ``start..end`` from what the store holds.

    Computed from :func:`frame_start` (or ``start`` if earlier), so a session's
    values are the same whatever window is asked for (rows before ``start``
    are computed, then dropped). Missing data stays NaN and says why (not
    evaluable); breadth is imputed per DESIGN.md §4; freshness is judged
    separately, before anything is signalled. ``data`` (from
    :func:`load_series`, covering ``frame_start..end``) saves the reads.

    Point in time, one rule for the live job, ``run-once --date`` and the
    backtest: a session uses only the events known after its close.
    Scheduled FOMC meetings and BLS releases are known a year ahead; an
    unscheduled FOMC action (``Event.scheduled`` False) counts only from its
    own date, so it never blacks out the sessions before it, whatever the
    store learnt since.
    """
    base = frame_start(store)
    first = start if base is None else min(base, start)
    sessions = calendar.session_index(first, end)
    got = data if data is not None else load_series(store, first, end)
    lo, hi = pd.Timestamp(first), pd.Timestamp(end)
    spx, vix, vix3m, vix6m, breadth = (got[str(k)].loc[lo:hi] for k in (
        Symbol.SPX, Symbol.VIX, Symbol.VIX3M, Symbol.VIX6M, BREADTH))
    scheduled: dict[str, list[dt.date]] = {}
    unscheduled: dict[str, list[dt.date]] = {}
    for event in store.events():
        into = scheduled if event.scheduled else unscheduled
        into.setdefault(event.kind.value, []).append(event.date)
    refused = store.breadth_rejected(start, end)
    rejected = pd.Series({pd.Timestamp(r.session): r.reason for r in refused}, dtype=object)
    frame = compute_frame(
        spx_close=spx["close"], advancers=breadth["advancers"], decliners=breadth["decliners"],
        breadth_source=breadth["source"], vix=vix["close"], vix3m=vix3m["close"],
        vix6m=vix6m["close"], events_by_kind=scheduled, unscheduled_by_kind=unscheduled,
        sessions=sessions, calendar_sessions=calendar.session_index(calendar.first, calendar.last),
        params=indicator_params(rules), rejected_breadth=rejected,
    )
    full = with_blackout(frame, rules)
    return full.loc[pd.Timestamp(start) :] if first < start else full


def with_blackout(frame: pd.DataFrame, rules: Rules) -> pd.DataFrame:
    """``frame`` with ``blackout``, ``blackout_kind`` and ``blackout_unapplied`` for ``rules``.

    ``blackout_kind`` lists every kind in blackout; ``blackout_unapplied``
    the watched kinds (width > 0) whose ``sessions_to_<kind>`` is not
    evaluable, whose blackout therefore cannot be applied (every alert says
    so). The proximity columns do not depend on the rules, so this gives
    exactly what :func:`indicator_frame` would for ``rules``.
    """
    widths = {k.value: rules.blackout.sessions(k) for k in EventKind}
    proximity = {k: frame[f"sessions_to_{k.lower()}"] for k in widths}
    flags, cause = blackout(proximity, widths)
    out = frame.copy()
    out["blackout"] = flags
    out["blackout_kind"] = cause
    watched = [k for k, width in widths.items() if width > 0]
    unknown = {k: frame[f"sessions_to_{k.lower()}"].isna().to_numpy() for k in watched}
    out["blackout_unapplied"] = [
        ", ".join(k for k in watched if unknown[k][i]) for i in range(len(frame))
    ]
    return out


def frame_rows(frame: pd.DataFrame) -> Iterator[tuple[dt.date, dict[str, Value]]]:
    """Rows as plain dicts of Python scalars; a value that is not evaluable is None or NaN
    with its reason under ``why_key(name)`` (the rules read it as "not evaluable", and say why).

    Built from ``tolist()`` per column, which already yields Python floats,
    bools and strs: converting cell by cell would cost more than the whole
    state machine. Nullable true/false columns give None where NA.
    """
    names = [str(c) for c in frame.columns if c != NOT_EVALUABLE]
    columns = []
    for name in names:
        col = frame[name]
        if isinstance(col.dtype, pd.BooleanDtype):
            columns.append([None if v is pd.NA else v for v in col.tolist()])
        else:
            columns.append(col.tolist())
    reasons = (frame[NOT_EVALUABLE].tolist() if NOT_EVALUABLE in frame.columns
               else [{}] * len(frame))
    for ts, row, why in zip(frame.index, zip(*columns, strict=True), reasons, strict=True):
        values: dict[str, Value] = dict(zip(names, row, strict=True))
        for name, reason in why.items():
            values[why_key(name)] = reason
        yield ts.date(), values


def replay(
    frame: pd.DataFrame,
    rules: Rules,
    calendar: SessionCalendar,
    *,
    capital: float,
    start: dt.date,
    end: dt.date,
    state: LayerState | None = None,
    build: bool = True,
    explain_quiet: bool = False,
    condors: CondorGate | None = None,
    fresh: FreshnessIndex | None = None,
    rows: Mapping[dt.date, Mapping[str, Value]] | None = None,
    price_condors: bool = True,
) -> list[Evaluation]:
    """Evaluate every session ``start..end`` in order, carrying the layer state.

    Quiet sessions go unexplained by default (see :func:`bot.engine.state.step`);
    every decision that changes something is explained as in a live run.
    ``fresh`` skips the sessions its freshness rule refuses, exactly as a live
    run refuses them: no decision and no step of the state (the layer state
    carries over a refused session unchanged). ``condors`` (a sweep) says on
    which GO sessions the condor is worth pricing; nothing else depends on it.
    ``rows`` (``dict(frame_rows(frame))``) saves converting the frame again when
    one frame is replayed many times (a sweep); they are read, never changed.
    ``price_condors=False`` decides every condor GO/skip without pricing it: a
    replay that only rebuilds the layer state needs no strikes (the state never
    depends on them), and pricing is most of a replay's time.
    """
    state = state or LayerState()
    out: list[Evaluation] = []
    if rows is None:
        picked: Iterable[tuple[dt.date, Mapping[str, Value]]] = frame_rows(
            frame.loc[pd.Timestamp(start) : pd.Timestamp(end)])
    else:
        picked = ((d, rows[d]) for d in calendar.sessions_between(start, end) if d in rows)
    for day, values in picked:
        if fresh is not None and not fresh.complete(day):
            continue
        ev = evaluate_session(day, values, state, rules, calendar=calendar, capital=capital,
                              build=build, explain_quiet=explain_quiet,
                              build_condor=price_condors and (
                                  condors is None or condors.wants(day)))
        if condors is not None:
            condors.saw(ev)
        out.append(ev)
        state = ev.state_after
    return out


class CondorGate(Protocol):
    """Which GO sessions' condors a replay prices (:class:`bot.backtest.condors.EntryGate`)."""

    def wants(self, session: dt.date) -> bool: ...

    def saw(self, evaluation: Evaluation) -> None: ...


def upcoming_events(store: Store, after: dt.date, limit: int = 3) -> list[tuple[str, dt.date]]:
    """The next few FOMC/CPI/PPI dates after ``after``, for the summary and the chart."""
    evs = store.events(start=after + dt.timedelta(days=1), end=after + dt.timedelta(days=120))
    return [(e.kind.value, e.date) for e in evs[:limit]]


def day_alerts(
    store: Store, result: DayResult, rules_sha256: str, capital: float, *,
    late: bool = False, chart: bool = True, rules_file: str = "",
) -> list[Alert]:
    """The alerts of an evaluated session (the daily job, catch-up, run-once).

    ``chart=False`` skips rendering the summary's PNG (a dry run prints text);
    ``rules_file`` names the rules file beside its hash in every footer.
    """
    ev = result.evaluation
    if ev is None:
        raise ValueError(f"{result.session} was not evaluated: {result.freshness.problems()}")
    ctx = Context(result.session, rules_sha256, result.sources, result.breadth_source, capital,
                  late=late, replayed_from=result.replayed_from, replayed=result.replayed,
                  rules_file=rules_file)
    upcoming = upcoming_events(store, result.session)
    png = None
    if chart:
        from bot.engine.chart import daily_chart  # matplotlib: only when a chart is drawn

        png = daily_chart(result.frame, [(a.name, a.added_on) for a in ev.state_after.layers],
                          upcoming)
    return compose(ctx, ev, upcoming, chart=png)


@dataclass(frozen=True, slots=True)
class DayResult:
    session: dt.date
    freshness: Freshness
    evaluation: Evaluation | None
    """None when the data was not complete: no signal, say why."""
    replayed_from: dt.date | None
    """Where the layer state came from when no run existed for the previous session."""
    breadth_source: str | None
    sources: dict[str, str]
    frame: pd.DataFrame | None = None
    """The indicator frame the evaluation used (for the daily chart)."""
    replayed: tuple[str, ...] = ()
    """What changed in the sessions replayed (without alerts) to rebuild the state: after a
    gap every change, after a rebuild from the first session those since it was last empty."""


def changes_since(
    evaluations: Sequence[Evaluation], carried: Sequence[str] = (), *,
    reset_when_empty: bool,
) -> list[str]:
    """The layer changes of replayed sessions as ``"<session> <layer> <action>"`` lines.

    ``carried`` are the lines of sessions before these; with
    ``reset_when_empty`` the list starts again after each session that leaves
    no layer on and none deferred (what built today's state, not all history).
    """
    out = list(carried)
    for e in evaluations:
        out += [f"{e.session} {a.decision.layer} {a.decision.action.replace('_', ' ')}"
                for a in e.actions
                if a.decision.action in ("add", "remove", "defer", "cancel_deferral")]
        if reset_when_empty and not e.state_after.layers and not e.state_after.deferred:
            out = []
    return out


def evaluate_day(
    store: Store,
    calendar: SessionCalendar,
    rules: Rules,
    session: dt.date,
    *,
    capital: float,
    lookback: Mapping[str, int] = DEFAULT_LOOKBACK,
    settlements: Mapping[dt.date, float] | None = None,
    chain: Sequence[ChainQuote] | None = None,
    etp_price: float | None = None,
    cache: StateCache | None = None,
) -> DayResult:
    """Evaluate session D on the stored data (no recording: see :meth:`bot.store.Runs.record`).

    The layer state is the previous run's, carried over the sessions since
    (replayed, refused ones skipped); with no earlier run it is rebuilt from
    the store's first session, so it is the state a backtest of the same
    store has on D: one answer, whichever way D is evaluated.
    """
    first = min(frame_start(store) or session, session)
    prev = store.runs.last(before=session)
    replay_start = calendar.next_session(prev.session) if prev is not None else first
    checked_from = min(replay_start, session)
    data = load_series(store, min(first, window_start(calendar, checked_from, lookback)),
                       session)
    index = FreshnessIndex.from_store(store, calendar, checked_from, session, lookback,
                                      frames=data)
    fresh = index.check(session)
    sources = {c.series: c.last_source or "" for c in fresh.checks}
    if not fresh.complete:
        return DayResult(session, fresh, None, None, None, sources)
    state = prev.state if prev is not None else LayerState()
    frame = indicator_frame(store, calendar, rules, first, session, data=data)
    replayed: list[str] = []
    rebuilt_from = None
    # With no earlier run the state is rebuilt from the first session: a cached
    # rebuild (same store, rules, capital and market data) saves most of the replay.
    key = fingerprint = ""
    carried: list[str] = []
    if prev is None and cache is not None:
        key = StateCache.key(store.engine.url.render_as_string(hide_password=True),
                             rules.sha256, capital)
        fingerprint = store.market_fingerprint()
        hit = cache.get(key, fingerprint, session)
        if hit is not None:
            rebuilt_from = replay_start
            through, state, carried = hit
            replay_start = calendar.next_session(through)
    if replay_start < session:
        rebuilt_from = rebuilt_from or replay_start
        warm = replay(frame, rules, calendar, capital=capital, start=replay_start,
                      end=calendar.previous_session(session), state=state, fresh=index,
                      price_condors=False)
        if warm:
            state = warm[-1].state_after
        # After a gap, every change the gap held (none was announced); after a
        # rebuild from the first session, those that built today's state (since
        # the state was last empty), not decades of history.
        replayed = changes_since(warm, carried, reset_when_empty=prev is None)
        if prev is None and cache is not None:
            cache.put(key, fingerprint, calendar.previous_session(session), state, replayed)
    elif carried:
        replayed = carried
    values = dict(next(frame_rows(frame.loc[[pd.Timestamp(session)]]))[1])
    ev = evaluate_session(session, values, state, rules, calendar=calendar, capital=capital,
                          settlements=settlements, chain=chain, etp_price=etp_price)
    src = values.get("breadth_source")
    return DayResult(session, fresh, ev, rebuilt_from, str(src) if src else None, sources,
                     frame, tuple(replayed))
