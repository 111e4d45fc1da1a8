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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

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
from bot.kernel.models import EventKind, Freshness, Symbol
from bot.kernel.sessions import SessionCalendar
from bot.market.freshness import DEFAULT_LOOKBACK, check_freshness
from bot.store import Store

log = logging.getLogger(__name__)

WARMUP_SESSIONS = 250
"""Sessions of replay that rebuild the layer state when no earlier run exists."""


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
    """Where to start loading so every indicator is warmed up by ``first_used``.

    The weekly MACD needs 5 years of SPX before it is evaluable (DESIGN.md §4),
    more than any daily indicator's ``lookback_sessions``.
    """
    n = max(rules.indicators.lookback_sessions, WEEKLY_WARMUP_SESSIONS)
    try:
        return calendar.offset(calendar.session_on_or_after(first_used), -n)
    except ValueError:
        return calendar.first


def indicator_frame(
    store: Store, calendar: SessionCalendar, rules: Rules, start: dt.date, end: dt.date,
) -> pd.DataFrame:
    """The indicator frame for sessions ``start..end`` from what the store holds.

    ``start`` should already include the warm-up (see :func:`history_start`).
    Missing data stays NaN and says why (not evaluable); breadth is imputed
    per DESIGN.md §4; freshness is judged separately, before anything is
    signalled.

    Point in time, one rule for the live job, ``run-once --date`` and the
    backtest: a session uses only the events known after its close.
    Scheduled FOMC meetings and BLS releases are known a year ahead; an
    unscheduled FOMC action (``Event.scheduled`` False) counts only from its
    own date, so it never blacks out the sessions before it, whatever the
    store learnt since.
    """
    sessions = calendar.session_index(start, end)
    spx = store.bars(Symbol.SPX, start, end)
    breadth = store.breadth(start, end)
    vix = store.bars(Symbol.VIX, start, end)
    vix3m = store.bars(Symbol.VIX3M, start, end)
    vix6m = store.bars(Symbol.VIX6M, start, end)
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
    return with_blackout(frame, rules)


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
) -> list[Evaluation]:
    """Evaluate every session ``start..end`` in order, carrying the layer state.

    Quiet sessions go unexplained by default (see :func:`bot.engine.state.step`);
    every decision that changes something is explained as in a live run.
    """
    state = state or LayerState()
    out: list[Evaluation] = []
    for day, values in frame_rows(frame.loc[pd.Timestamp(start) : pd.Timestamp(end)]):
        ev = evaluate_session(day, values, state, rules, calendar=calendar, capital=capital,
                              build=build, explain_quiet=explain_quiet)
        out.append(ev)
        state = ev.state_after
    return out


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
    """What changed in the sessions replayed (without alerts) to rebuild the state."""


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
) -> DayResult:
    """Evaluate session D on the stored data (no recording: see :meth:`bot.store.Runs.record`)."""
    fresh = check_freshness(store, calendar, session, lookback)
    sources = {c.series: c.last_source or "" for c in fresh.checks}
    if not fresh.complete:
        return DayResult(session, fresh, None, None, None, sources)
    prev = store.runs.last(before=session)
    prev_session = calendar.previous_session(session)
    if prev is not None and prev.session == prev_session:
        state, replay_start = prev.state, None
    elif prev is not None and prev.session >= calendar.offset(session, -WARMUP_SESSIONS):
        state, replay_start = prev.state, calendar.next_session(prev.session)
    else:
        state, replay_start = LayerState(), calendar.offset(session, -WARMUP_SESSIONS)
    first = replay_start or session
    frame = indicator_frame(store, calendar, rules, history_start(calendar, first, rules), session)
    replayed: list[str] = []
    if replay_start is not None and replay_start < session:
        warm = replay(frame, rules, calendar, capital=capital, start=replay_start,
                      end=prev_session, state=state, build=True)
        if warm:
            state = warm[-1].state_after
        replayed = [f"{e.session} {a.decision.layer} {a.decision.action.replace('_', ' ')}"
                    for e in warm for a in e.actions
                    if a.decision.action in ("add", "remove", "defer", "cancel_deferral")]
    values = dict(next(frame_rows(frame.loc[[pd.Timestamp(session)]]))[1])
    ev = evaluate_session(session, values, state, rules, calendar=calendar, capital=capital,
                          settlements=settlements, chain=chain, etp_price=etp_price)
    src = values.get("breadth_source")
    return DayResult(session, fresh, ev, replay_start, str(src) if src else None, sources, frame,
                     tuple(replayed))
