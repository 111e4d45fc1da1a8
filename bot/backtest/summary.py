"""Everything the backtest report shows, computed once from a replay.

The printed table, the CSV/JSON files and the HTML page all render this one
:class:`Summary`, so the counts a person reads on the terminal are the counts
in the files (a test checks they match).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from bot.backtest.condors import CondorOutcomes, condor_outcomes
from bot.backtest.fmt import usd
from bot.backtest.run import CHANGE_ACTIONS, BacktestResult, LayerPeriod, layer_periods
from bot.backtest.stats import (
    DEFAULT_DRAWDOWN_PCT,
    DEFAULT_FALSE_ALARM_HORIZON,
    DEFAULT_FALSE_ALARM_PCT,
    DEFAULT_LEAD_SESSIONS,
    HORIZONS,
    EpisodeOutcome,
    TriggerOutcome,
    drawdown_episodes,
    episodes_preceded,
    trigger_outcomes,
)
from bot.engine.evaluate import Evaluation, LayerAction
from bot.engine.indicators import NOT_EVALUABLE
from bot.engine.state import LayerState
from bot.kernel.models import is_synthetic
from bot.kernel.sessions import SessionCalendar

MISSING = ""
"""The breadth-source label of a session with no breadth row."""
PROXY_NOTE = (
    "Hedge P&L is a PROXY approximation: a backtest has no VX settlement history, so each "
    "layer's contract is priced on the day it goes on and the day it comes off by interpolating "
    "the VIX3M (93-day) and VIX6M (184-day) indices to that contract's days to expiry. Real VX "
    "futures trade at their own term-structure prices, with roll, spread and commissions not "
    "modelled. P&L = (exit - entry) x $1,000 x contracts."
)


@dataclass(frozen=True, slots=True)
class StatsParams:
    """The thresholds the statistics use (all CLI arguments)."""

    drawdown_pct: float = DEFAULT_DRAWDOWN_PCT
    lead_sessions: int = DEFAULT_LEAD_SESSIONS
    false_alarm_pct: float = DEFAULT_FALSE_ALARM_PCT
    false_alarm_horizon: int = DEFAULT_FALSE_ALARM_HORIZON


@dataclass(frozen=True, slots=True)
class SourcePeriod:
    """A run of consecutive sessions whose breadth came from one source."""

    source: str
    first: dt.date
    last: dt.date
    sessions: int

    @property
    def kind(self) -> str:
        if self.source == MISSING:
            return "no breadth data"
        return "SYNTHETIC (not NYSE figures)" if is_synthetic(self.source) else "NYSE"

    @property
    def label(self) -> str:
        return self.kind if self.source == MISSING else f"{self.source}: {self.kind}"


@dataclass(frozen=True, slots=True)
class BlindWindow:
    """A run of sessions on which the A/D divergence is not evaluable, and why.

    From the indicator frame itself (DESIGN.md §4): a divergence window with
    more imputed breadth sessions than the rules allow, NYSE and synthetic
    breadth in one window, or a breadth history that does not fill the window.
    ``reason`` is the first session's (the imputed dates move with the window).
    NYSE sources (Unicorn, TradingView, WSJ, …) are one segment: a change
    between them blinds nothing.
    """

    first: dt.date
    last: dt.date
    sessions: int
    reason: str


def source_periods(labels: pd.Series[str]) -> list[SourcePeriod]:
    """Runs of the same ``breadth_source`` label, oldest first ("" = missing)."""
    out: list[SourcePeriod] = []
    days = [ts.date() for ts in pd.DatetimeIndex(labels.index)]
    values = [str(v) for v in labels.tolist()]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        out.append(SourcePeriod(values[i], days[i], days[j], j - i + 1))
        i = j + 1
    return out


def blind_windows(
    frame: pd.DataFrame, start: dt.date | None = None, end: dt.date | None = None
) -> list[BlindWindow]:
    """Runs of ``start..end`` sessions whose ``ad_divergence_days`` is not evaluable."""
    rows = frame.loc[pd.Timestamp(start) if start else None : pd.Timestamp(end) if end else None]
    unknown = rows["ad_divergence_days"].isna().tolist()
    days = [ts.date() for ts in pd.DatetimeIndex(rows.index)]
    why = rows[NOT_EVALUABLE].tolist() if NOT_EVALUABLE in rows.columns else [{}] * len(rows)
    out: list[BlindWindow] = []
    i = 0
    while i < len(unknown):
        if not unknown[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(unknown) and unknown[j + 1]:
            j += 1
        out.append(BlindWindow(days[i], days[j], j - i + 1,
                               str(why[i].get("ad_divergence_days", "not evaluable"))))
        i = j + 1
    return out


@dataclass(frozen=True, slots=True)
class LayerRow:
    session: dt.date
    action: str
    layer: str
    detail: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CondorYear:
    year: int
    go: int
    skip: int
    refused: int = 0
    """Sessions the freshness rule refused: no decision at all."""


@dataclass(frozen=True, slots=True)
class RefusedRun:
    """Consecutive refused sessions failing the same series, and the first one's reasons."""

    first: dt.date
    last: dt.date
    sessions: int
    series: tuple[str, ...]
    reasons: tuple[str, ...]


def refused_runs(
    refused: Mapping[dt.date, tuple[str, ...]], sessions: Sequence[dt.date]
) -> list[RefusedRun]:
    """Group refused sessions (``{session: reasons}``) into runs by the series that failed.

    A run is consecutive ``sessions`` failing the same series: "1999-01-04..2000-03-13
    (300 sessions): SPX …", with the first session's reasons.
    """
    out: list[RefusedRun] = []
    prev: dt.date | None = None
    for day in sessions:
        why = refused.get(day)
        if why is None:
            prev = None
            continue
        series = tuple(sorted(r.split(":", 1)[0] for r in why))
        if prev is not None and out and out[-1].series == series:
            r = out[-1]
            out[-1] = RefusedRun(r.first, day, r.sessions + 1, series, r.reasons)
        else:
            out.append(RefusedRun(day, day, 1, series, why))
        prev = day
    return out


def session_states(
    evaluations: Sequence[Evaluation], sessions: Sequence[dt.date]
) -> dict[dt.date, LayerState]:
    """The layer state after each session's close; a refused session carries the state on.

    (No decision is taken on a refused session, but the layers bought before it
    are still held: the hedged-session counts and "layer 1 on at the start"
    of a drawdown see them.)
    """
    by_day = {ev.session: ev for ev in evaluations}
    state = evaluations[0].state_before if evaluations else LayerState()
    out: dict[dt.date, LayerState] = {}
    for day in sessions:
        ev = by_day.get(day)
        if ev is not None:
            state = ev.state_after
        out[day] = state
    return out


def action_detail(action: LayerAction, notes: Sequence[str] = ()) -> str:
    """One line for the table: the sizing of an addition, else the first reason."""
    d = action.decision
    if d.action != "add":
        return d.reasons[0] if d.reasons else ""
    parts: list[str] = []
    if d.late_from is not None:
        parts.append(f"deferred since {d.late_from}")
    if action.quote is not None and action.size is not None:
        q, s = action.quote, action.size
        proxy = " (proxy)" if q.is_proxy else ""
        parts.append(f"{s.quantity} × {q.symbol} @ {q.price:.2f}{proxy} = {usd(s.cost)}")
        if s.reason:
            parts.append(s.reason)
    parts += [n for n in notes if n.startswith(f"{d.layer}:")]
    if d.reasons:
        parts.append(d.reasons[0])
    return "; ".join(parts)


def skip_reasons(ev: Evaluation, *, with_values: bool = True) -> list[str]:
    """Why the condor was a skip: each failed check as it came out, never the rule it broke.

    ``vix = 70.2 ≥ condor_max_vix = 35``, ``blackout = true (before FOMC)``,
    ``vix: no data``. ``with_values=False`` leaves the session's own value out,
    so sessions can be tallied by reason (``vix ≥ condor_max_vix = 35``).
    """
    c = ev.condor
    if c is None or c.go:
        return []
    keys = []
    for check in c.verdict.checks:
        if check.passed:
            continue
        key = check.observed(with_value=with_values)
        kind = ev.values.get("blackout_kind")
        if check.left == "blackout" and check.left_value is True and kind:
            key += f" (before {kind})"
        keys.append(key)
    if not keys:
        keys.append(c.note or "condition did not pass")
    return keys


def layer1_triggers(evaluations: Sequence[Evaluation]) -> list[dt.date]:
    """Sessions on which the first hedge layer was added (the "triggers" graded)."""
    return [ev.session for ev in evaluations
            if any(a.decision.action == "add" and a.decision.layer_index == 0
                   for a in ev.actions)]


@dataclass(frozen=True)
class Summary:
    start: dt.date
    end: dt.date
    sessions: int
    params: StatsParams
    layer_rows: list[LayerRow]
    action_counts: Mapping[str, int]
    condor_years: list[CondorYear]
    skip_reasons: list[tuple[str, int]]
    triggers: list[TriggerOutcome]
    episodes: list[EpisodeOutcome]
    hedged_sessions: int
    hedged_by_count: Mapping[int, int]
    """Number of layers on → sessions (0 included)."""
    periods: list[LayerPeriod]
    condors: CondorOutcomes
    source_periods: list[SourcePeriod]
    blind_windows: list[BlindWindow]
    refused: list[RefusedRun] = field(default_factory=list)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def false_alarms(self) -> int:
        return sum(t.false_alarm is True for t in self.triggers)

    @property
    def undetermined(self) -> int:
        return sum(t.false_alarm is None for t in self.triggers)

    @property
    def preceded(self) -> int:
        return sum(e.preceded for e in self.episodes)

    @property
    def covered(self) -> int:
        return sum(e.covered for e in self.episodes)

    @property
    def condor_go(self) -> int:
        return sum(y.go for y in self.condor_years)

    @property
    def condor_skip(self) -> int:
        return sum(y.skip for y in self.condor_years)

    @property
    def refused_sessions(self) -> int:
        return sum(r.sessions for r in self.refused)

    @property
    def pnl_total(self) -> float:
        return sum(p.pnl for p in self.periods if p.pnl is not None)

    @property
    def unpriced(self) -> int:
        return sum(p.pnl is None for p in self.periods)


def summarize(
    result: BacktestResult, calendar: SessionCalendar, params: StatsParams | None = None
) -> Summary:
    params = params or StatsParams()
    evs = result.evaluations
    rows: list[LayerRow] = []
    counts: Counter[str] = Counter()
    years: dict[int, list[int]] = {}
    reasons: Counter[str] = Counter()
    for ev in evs:
        for a in ev.actions:
            d = a.decision
            if d.action not in CHANGE_ACTIONS:
                continue
            counts[d.action] += 1
            rows.append(LayerRow(ev.session, d.action, d.layer, action_detail(a, ev.notes),
                                 d.reasons))
        y = years.setdefault(ev.session.year, [0, 0, 0])
        if ev.condor is not None and ev.condor.go:
            y[0] += 1
        else:
            y[1] += 1
            reasons.update(skip_reasons(ev, with_values=False))
    for day in result.refused:
        years.setdefault(day.year, [0, 0, 0])[2] += 1
    days = calendar.sessions_between(result.start, result.end)
    states = session_states(evs, days)
    by_count = Counter(len(st.layers) for st in states.values())
    hedged = {d: bool(st.layers) for d, st in states.items()}
    layer1_on = {d: any(a.name == result.layer1 for a in st.layers) for d, st in states.items()}
    triggers = layer1_triggers(evs)
    replayed = result.replayed
    close = replayed["close"]
    outcomes = trigger_outcomes(
        close, replayed["vix"], triggers, horizons=HORIZONS,
        false_alarm_pct=params.false_alarm_pct, false_alarm_horizon=params.false_alarm_horizon,
    )
    episodes = drawdown_episodes(close, params.drawdown_pct)
    sessions = [ts.date() for ts in close.dropna().index]
    outcomes_ep = episodes_preceded(episodes, triggers, sessions, lead=params.lead_sessions,
                                    hedged=hedged, layer1_on=layer1_on)
    periods = layer_periods(evs, result.frame, calendar)
    return Summary(
        start=result.start, end=result.end, sessions=len(states), params=params, layer_rows=rows,
        action_counts={a: counts[a] for a in CHANGE_ACTIONS},
        condor_years=[CondorYear(y, g, k, r) for y, (g, k, r) in sorted(years.items())],
        skip_reasons=sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])),
        triggers=outcomes, episodes=outcomes_ep,
        hedged_sessions=sum(v for k, v in by_count.items() if k > 0),
        hedged_by_count=dict(sorted(by_count.items())),
        periods=periods,
        condors=condor_outcomes(evs, replayed, result.opens, periods, result.rules, calendar),
        source_periods=source_periods(replayed["breadth_source"].astype(str)),
        blind_windows=blind_windows(result.frame, result.start, result.end),
        refused=refused_runs(result.refused, days),
        notes=result.notes,
    )
