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
from typing import Any

from bot.condor import ChainQuote, Condor, CondorParams, build_condor
from bot.errors import DataIncomplete
from bot.expirations import choose_expiry
from bot.hedge import HedgeQuote, HedgeSize, choose_hedge, size_layer
from bot.rules import Rules, Verdict
from bot.sessions import SessionCalendar
from bot.state import LayerDecision, LayerState, StateRules, Value, step

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
    explain_quiet: bool = True,
) -> Evaluation:
    """Evaluate session D. ``build=False`` skips pricing (used by fast replays).

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
    if verdict.passed and build:
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


def evaluation_json(ev: Evaluation) -> dict[str, Any]:
    """A JSON-ready record of the evaluation (``--json`` and the runs table)."""

    def verdict_json(v: Verdict) -> dict[str, Any]:
        return {"condition": v.text, "passed": v.passed,
                "checks": [c.describe() for c in v.checks]}

    out: dict[str, Any] = {
        "session": ev.session.isoformat(),
        "rules_sha256": ev.rules_sha256,
        "values": {k: _jsonable(v) for k, v in ev.values.items()},
        "state_before": ev.state_before.to_json(),
        "state_after": ev.state_after.to_json(),
        "layer_decisions": [
            {
                "action": a.decision.action, "layer": a.decision.layer,
                "reasons": list(a.decision.reasons),
                "deferred_since": a.decision.late_from.isoformat()
                if a.decision.late_from else None,
                "instrument": a.quote.symbol if a.quote else None,
                "priced_from": a.quote.priced_from if a.quote else None,
                "unit_cost": a.quote.unit_cost if a.quote else None,
                "quantity": a.size.quantity if a.size else None,
                "size_reason": a.size.reason if a.size else None,
            }
            for a in ev.actions
        ],
        "warnings": [{"name": w.name, **verdict_json(w.verdict)} for w in ev.warnings],
        "notes": list(ev.notes),
    }
    if ev.condor is not None:
        cj: dict[str, Any] = {"go": ev.condor.go, **verdict_json(ev.condor.verdict),
                              "note": ev.condor.note}
        k = ev.condor.condor
        if k is not None:
            cj.update({
                "expiry": k.expiry.isoformat(), "expiry_kind": k.kind, "dte": k.dte,
                "short_put": k.short_put.strike, "long_put": k.long_put.strike,
                "short_call": k.short_call.strike, "long_call": k.long_call.strike,
                "pricing": k.pricing, "pricing_note": k.pricing_note,
                "credit": k.credit, "break_even_low": k.break_even_low,
                "break_even_high": k.break_even_high, "max_loss": k.max_loss,
                "credit_to_width": k.credit_to_width, "hedge_cost": k.hedge_cost,
                "break_even_low_with_hedge": k.break_even_low_with_hedge,
                "break_even_high_with_hedge": k.break_even_high_with_hedge,
                "max_loss_with_hedge": k.max_loss_with_hedge,
                "pays_for_hedge": k.pays_for_hedge, "hedge_note": k.hedge_note,
                "contracts": k.contracts, "contracts_note": k.contracts_note,
            })
        out["condor"] = cj
    return out


def _jsonable(v: object) -> object:
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item"):
        return v.item()  # numpy scalar
    return v
