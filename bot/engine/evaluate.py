"""Decisions for one session (pipeline stage "rules" + "state"), pure.

Given the indicator values of session D, yesterday's layer state and the
rules, produce everything the alerts need: layer additions/removals/deferrals
with their sizing, the condor go/skip with its construction, the early
warnings, and for each of them the explanation (every condition with its
value, threshold and pass/fail) plus the rules hash. No clock, no store, no
network: the daily job, ``run-once`` and the backtest share this function.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from bot.engine.condor import ChainQuote, Condor, CondorParams, build_condor
from bot.engine.expirations import choose_expiry
from bot.engine.hedge import HedgeQuote, HedgeSize, choose_hedge, size_layer
from bot.engine.rules import Rules, Verdict
from bot.engine.state import LayerDecision, LayerState, StateRules, Value, step
from bot.kernel.errors import DataIncomplete
from bot.kernel.sessions import SessionCalendar

HEDGE_CARRY_NOTE = (
    "hedge cost = expected roll-down of the active layers over the condor's life "
    "(futures premium over spot VIX), split over the condor contracts"
)


@dataclass(frozen=True, slots=True)
class LayerAction:
    decision: LayerDecision
    quote: HedgeQuote | None = None
    size: HedgeSize | None = None


@dataclass(frozen=True, slots=True)
class CondorDecision:
    go: bool
    verdict: Verdict
    condor: Condor | None = None
    note: str | None = None
    """Why no condor could be built although the conditions passed (e.g. no VIX)."""


@dataclass(frozen=True, slots=True)
class WarningHit:
    name: str
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class Evaluation:
    session: dt.date
    rules_sha256: str
    values: Mapping[str, Value]
    state_before: LayerState
    state_after: LayerState
    actions: tuple[LayerAction, ...] = ()
    condor: CondorDecision | None = None
    warnings: tuple[WarningHit, ...] = ()
    hedge_cost_total: float = 0.0
    """Dollars: expected carry of the active layers over the condor's life."""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def changed(self) -> bool:
        return any(a.decision.action in ("add", "remove", "defer", "cancel_deferral")
                   for a in self.actions)


def state_rules(rules: Rules) -> StateRules:
    return StateRules(
        layers=rules.hedge.layers,
        max_layers=rules.hedge.max_layers,
        cooldown_sessions=rules.hedge.cooldown_sessions,
        exit_hysteresis_sessions=rules.hedge.exit_hysteresis_sessions,
        blackout_override=rules.blackout.override_when,
    )


def condor_params(rules: Rules) -> CondorParams:
    c = rules.condor
    return CondorParams(
        put_delta=c.target_delta.put,
        call_delta=c.target_delta.call,
        wing_width=c.wing_width,
        strike_step=c.strike_step,
        r=c.risk_free_rate,
        q=c.dividend_yield,
    )


def _num(values: Mapping[str, Value], name: str) -> float | None:
    v = values.get(name)
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _quote(
    rules: Rules, session: dt.date, values: Mapping[str, Value], calendar: SessionCalendar,
    settlements: Mapping[dt.date, float] | None, etp_price: float | None,
) -> HedgeQuote:
    inst = rules.hedge.instrument
    return choose_hedge(
        kind=inst.kind, as_of=session, calendar=calendar, settlements=settlements,
        vix3m=_num(values, "vix3m"), vix6m=_num(values, "vix6m"),
        months_out_min=inst.months_out_min, months_out_max=inst.months_out_max,
        etp_symbol=inst.etp_symbol, etp_price=etp_price,
    )


def hedge_carry(
    state: LayerState, values: Mapping[str, Value], horizon_days: int,
    current: Mapping[str, float] | None = None,
) -> float:
    """Dollars the active layers are expected to lose to roll-down over ``horizon_days``.

    A VIX future above spot VIX converges down towards it by expiry if nothing
    happens; that premium is what the protection costs. We take the layer's
    entry price minus today's VIX (never negative), scaled to the horizon
    against ~120 days to expiry, times the contracts held.
    """
    vix = _num(values, "vix")
    if vix is None:
        return 0.0
    total = 0.0
    for layer in state.layers:
        if layer.quantity <= 0 or layer.entry_price <= 0:
            continue
        multiplier = layer.unit_cost / layer.entry_price
        premium = max(0.0, layer.entry_price - vix)
        total += premium * multiplier * layer.quantity * min(1.0, horizon_days / 120.0)
    return total


def evaluate_session(
    session: dt.date,
    values: Mapping[str, Value],
    state: LayerState,
    rules: Rules,
    *,
    calendar: SessionCalendar,
    capital: float,
    settlements: Mapping[dt.date, float] | None = None,
    etp_price: float | None = None,
    chain: Sequence[ChainQuote] | None = None,
    build: bool = True,
    build_condor: bool = True,
    explain_quiet: bool = True,
) -> Evaluation:
    """Evaluate session D. ``build=False`` skips pricing (used by fast replays);
    ``build_condor=False`` only the condor's (a sweep prices the condors it trades).

    ``settlements`` ({VX expiry: settlement}) price the hedge when given, else
    the VIX3M/VIX6M proxy does; ``chain`` (the Cboe SPX quotes of session D)
    picks and prices the condor's strikes when given, else the model does.
    """
    result = step(state, session, values, state_rules(rules), explain_quiet=explain_quiet)
    new_state = result.state
    actions: list[LayerAction] = []
    notes: list[str] = []
    for decision in result.decisions:
        if decision.action != "add":
            actions.append(LayerAction(decision))
            continue
        if not build:
            actions.append(LayerAction(decision))
            continue
        try:
            quote = _quote(rules, session, values, calendar, settlements, etp_price)
        except (DataIncomplete, ValueError) as exc:
            actions.append(LayerAction(decision))
            notes.append(f"{decision.layer}: cannot price the hedge ({exc})")
            continue
        committed = sum(a.cost for a in new_state.layers if a.name != decision.layer)
        size = size_layer(capital, rules.hedge.budget_per_layer_pct, quote.unit_cost,
                          committed, rules.hedge.max_total_pct)
        sized = tuple(
            replace(a, instrument=quote.symbol, quantity=size.quantity,
                    unit_cost=quote.unit_cost, entry_price=quote.price)
            if a.name == decision.layer and a.added_on == session else a
            for a in new_state.layers
        )
        new_state = replace(new_state, layers=sized)
        actions.append(LayerAction(decision, quote, size))

    after = dict(values)
    after["active_layers"] = len(new_state.layers)
    after["sessions_since_last_layer_added"] = new_state.sessions_since_last_added

    verdict = rules.condor.enter_when.evaluate(after)
    condor_decision = CondorDecision(go=verdict.passed, verdict=verdict)
    hedge_total = 0.0
    if verdict.passed and build and build_condor:
        condor_decision, hedge_total = _condor(session, after, new_state, rules, calendar,
                                               capital, verdict, chain)

    warnings = tuple(
        WarningHit(w.name, w.when.evaluate(after)) for w in rules.warnings if w.when.holds(after)
    )
    return Evaluation(
        session=session, rules_sha256=rules.sha256, values=after, state_before=state,
        state_after=new_state, actions=tuple(actions), condor=condor_decision,
        warnings=warnings, hedge_cost_total=hedge_total, notes=tuple(notes),
    )


def _condor(
    session: dt.date, values: Mapping[str, Value], state: LayerState, rules: Rules,
    calendar: SessionCalendar, capital: float, verdict: Verdict,
    chain: Sequence[ChainQuote] | None,
) -> tuple[CondorDecision, float]:
    spot, vix = _num(values, "close"), _num(values, "vix")
    if spot is None or vix is None:
        return CondorDecision(False, verdict, note="no SPX close or VIX for this session"), 0.0
    c = rules.condor
    expiry = choose_expiry(session, c.dte, c.expiry, calendar)
    params = condor_params(rules)
    budget = capital * c.max_loss_budget_pct / 100.0
    plain = build_condor(spot=spot, sigma=vix / 100.0, as_of=session, expiry=expiry,
                         kind=c.expiry, params=params, max_loss_budget=budget, chain=chain)
    carry = hedge_carry(state, values, plain.dte)
    if carry <= 0 or plain.contracts <= 0:
        return CondorDecision(True, verdict, plain), carry
    per_condor = carry / (plain.contracts * 100.0)
    condor = build_condor(spot=spot, sigma=vix / 100.0, as_of=session, expiry=expiry,
                          kind=c.expiry, params=params, hedge_cost_per_condor=per_condor,
                          max_loss_budget=budget, chain=chain)
    return CondorDecision(True, verdict, condor), carry
