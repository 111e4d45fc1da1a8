"""The hedge-layer state machine (pipeline stage "state"), pure.

``step`` takes yesterday's state, today's indicator values and the rules, and
returns today's state plus the decisions taken. It never reads a clock or a
store: the daily job, ``run-once`` and the backtest all call the same function,
which is what makes a backtest a faithful preview of live behaviour.

Methodology (DESIGN.md §1) encoded here, thresholds from the rules file:
- layers are added in order (layer k only once layer k-1 is on);
- a cooldown separates two additions; the number of layers is capped;
- in a blackout a new layer is *deferred* unless the override condition holds
  (both the MACD and the A/D triggers already on); a deferred layer fires on
  the first session after the blackout if its condition still holds, and is
  cancelled if the condition clears first;
- a layer is removed only after its exit condition held on N consecutive
  sessions (hysteresis), newest layer first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

Value = float | int | bool | str | None


class CheckLike(Protocol):
    """One comparison of a condition as evaluated (:class:`bot.engine.rules.Check`)."""

    @property
    def text(self) -> str: ...
    @property
    def left(self) -> str: ...
    @property
    def left_value(self) -> float | bool | None: ...
    @property
    def op(self) -> str | None: ...
    @property
    def right(self) -> str | None: ...
    @property
    def right_value(self) -> float | bool | None: ...
    @property
    def holds(self) -> bool | None: ...
    @property
    def passed(self) -> bool: ...
    @property
    def negated(self) -> bool: ...
    @property
    def missing(self) -> tuple[str, ...]: ...
    @property
    def reasons(self) -> tuple[str, ...]: ...

    def describe(self) -> str: ...

    def observed(self, *, with_value: bool = True) -> str: ...


class VerdictLike(Protocol):
    @property
    def passed(self) -> bool: ...

    @property
    def checks(self) -> Sequence[CheckLike]: ...


class ConditionLike(Protocol):
    def evaluate(self, values: Mapping[str, Value]) -> VerdictLike: ...

    def holds(self, values: Mapping[str, Value]) -> bool: ...

    def __str__(self) -> str: ...


class LayerRule(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def add_when(self) -> ConditionLike: ...

    @property
    def remove_when(self) -> ConditionLike: ...


@dataclass(frozen=True, slots=True)
class StateRules:
    """The part of the rules file the state machine needs."""

    layers: Sequence[LayerRule]
    max_layers: int
    cooldown_sessions: int
    exit_hysteresis_sessions: int
    blackout_override: ConditionLike


@dataclass(frozen=True, slots=True)
class ActiveLayer:
    name: str
    added_on: dt.date
    sessions_active: int = 0
    exit_streak: int = 0
    instrument: str = ""
    """What was bought when the layer went on (filled in by sizing)."""
    quantity: int = 0
    unit_cost: float = 0.0
    """Dollars per unit at the time the layer was added."""
    entry_price: float = 0.0

    @property
    def cost(self) -> float:
        return self.quantity * self.unit_cost


@dataclass(frozen=True, slots=True)
class Deferred:
    name: str
    since: dt.date


@dataclass(frozen=True, slots=True)
class LayerState:
    layers: tuple[ActiveLayer, ...] = ()
    deferred: tuple[Deferred, ...] = ()
    last_added: dt.date | None = None
    sessions_since_last_added: int | None = None
    """Sessions since the last addition (None: never added)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "layers": [
                {"name": a.name, "added_on": a.added_on.isoformat(),
                 "sessions_active": a.sessions_active, "exit_streak": a.exit_streak,
                 "instrument": a.instrument, "quantity": a.quantity,
                 "unit_cost": a.unit_cost, "entry_price": a.entry_price}
                for a in self.layers
            ],
            "deferred": [{"name": d.name, "since": d.since.isoformat()} for d in self.deferred],
            "last_added": self.last_added.isoformat() if self.last_added else None,
            "sessions_since_last_added": self.sessions_since_last_added,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LayerState:
        return cls(
            layers=tuple(
                ActiveLayer(a["name"], dt.date.fromisoformat(a["added_on"]),
                            int(a["sessions_active"]), int(a["exit_streak"]),
                            str(a.get("instrument", "")), int(a.get("quantity", 0)),
                            float(a.get("unit_cost", 0.0)), float(a.get("entry_price", 0.0)))
                for a in data.get("layers", [])
            ),
            deferred=tuple(
                Deferred(d["name"], dt.date.fromisoformat(d["since"]))
                for d in data.get("deferred", [])
            ),
            last_added=(
                dt.date.fromisoformat(data["last_added"]) if data.get("last_added") else None
            ),
            sessions_since_last_added=data.get("sessions_since_last_added"),
        )


Action = Literal[
    "add", "remove", "defer", "cancel_deferral", "blocked", "hold_exit", "keep", "not_added"
]
"""``keep``/``not_added`` change nothing: they carry the explanation of why an
active layer stays on and why the next layer does not go on (``/why``)."""


@dataclass(frozen=True, slots=True)
class LayerDecision:
    """One thing the state machine did (or refused to do), with its reasons."""

    action: Action
    layer: str
    layer_index: int
    reasons: tuple[str, ...]
    """Plain sentences, then each condition check ("rsi = 38.2 < 40 ✔")."""
    late_from: dt.date | None = None
    """For a deferred layer that fires: the session it was first deferred."""
    checks: tuple[CheckLike, ...] = ()
    """The comparisons behind ``reasons``, as evaluated (for structured output)."""


@dataclass(frozen=True, slots=True)
class StepResult:
    state: LayerState
    decisions: tuple[LayerDecision, ...] = field(default_factory=tuple)


def _decision(
    action: Action, layer: str, index: int, lead: Sequence[str], *verdicts: VerdictLike,
    late: dt.date | None = None,
) -> LayerDecision:
    """A decision whose reasons are ``lead`` then every check of ``verdicts`` as a line."""
    checks = tuple(c for v in verdicts for c in v.checks)
    return LayerDecision(action, layer, index, (*lead, *(c.describe() for c in checks)), late,
                         checks)


@dataclass(slots=True)
class _Draft:
    """Today's state while :func:`step` builds it (phase 1 shrinks it, phase 2 grows it)."""

    layers: list[ActiveLayer]
    deferred: dict[str, Deferred]
    last_added: dt.date | None
    since: int | None
    base: dict[str, Value]
    """What the conditions see: the indicator values plus the state names."""
    index: Mapping[str, int]
    """Layer name → its position in the rules file."""

    def state(self) -> LayerState:
        return LayerState(tuple(self.layers), tuple(self.deferred.values()), self.last_added,
                          self.since)


def step(
    state: LayerState,
    session: dt.date,
    values: Mapping[str, Value],
    rules: StateRules,
    *,
    explain_quiet: bool = True,
) -> StepResult:
    """Advance the layer state machine by one session: exits first, then at most one addition.

    The order is the methodology's: a layer that comes off frees its place
    before the next one is considered, and no layer goes on in the session
    another came off (:func:`_exits`, then :func:`_addition`).
    ``explain_quiet=False`` skips the explanations of sessions where nothing
    happens (``keep``/``not_added``/``hold_exit``): a replay of decades only
    needs the decisions, and building every explanation string doubles its cost.
    """
    # Age everything by one session first: "since" counts include today.
    layers = [replace(a, sessions_active=a.sessions_active + 1) for a in state.layers]
    since = None if state.sessions_since_last_added is None else state.sessions_since_last_added + 1
    base = dict(values)
    base.update({"active_layers": len(layers), "sessions_since_last_layer_added": since,
                 "layer_deferred": False})
    draft = _Draft(layers, {d.name: d for d in state.deferred}, state.last_added, since, base,
                   {rule.name: i for i, rule in enumerate(rules.layers)})
    removed_any, exits = _exits(draft, rules, explain_quiet)
    adds = _addition(draft, session, values, rules, explain_quiet, removed_any=removed_any)
    return StepResult(draft.state(), (*exits, *adds))


def _exits(
    draft: _Draft, rules: StateRules, explain_quiet: bool
) -> tuple[bool, list[LayerDecision]]:
    """Phase 1: exits, newest layer first, with hysteresis. Whether any came off, and why."""
    index = draft.index
    decisions: list[LayerDecision] = []
    kept: list[ActiveLayer] = []
    removed_any = False
    for layer in reversed(draft.layers):
        rule = rules.layers[index[layer.name]] if layer.name in index else None
        if rule is None:
            # Its rule was deleted from the file (the running bot refuses such an
            # edit; this is an edit made while it was down). Nothing could ever
            # take it off or count it right: it comes off now, loudly.
            removed_any = True
            decisions.append(LayerDecision(
                "remove", layer.name, -1,
                ("this layer is no longer in the rules file: it leaves the bot's state; "
                 "close the position by hand",)))
            continue
        scoped = dict(draft.base, layer_sessions_active=layer.sessions_active)
        passed = rule.remove_when.holds(scoped)
        streak = layer.exit_streak + 1 if passed else 0
        need = rules.exit_hysteresis_sessions
        removing = passed and streak >= need and not _has_higher(kept, index, layer)
        if not removing and not explain_quiet:
            kept.append(replace(layer, exit_streak=streak))
            continue
        verdict = rule.remove_when.evaluate(scoped)
        if removing:
            removed_any = True
            decisions.append(_decision(
                "remove", layer.name, index[layer.name],
                (f"exit condition held {streak} session(s) (need {need})",), verdict))
            continue
        if passed:
            why = (f"exit condition holds, {streak}/{need} session(s) of hysteresis"
                   if streak < need else "exit condition holds, waiting for higher layers")
            decisions.append(_decision(
                "hold_exit", layer.name, index[layer.name], (why,), verdict))
        else:
            decisions.append(_decision(
                "keep", layer.name, index[layer.name], ("exit condition does not hold",),
                verdict))
        kept.append(replace(layer, exit_streak=streak))
    draft.layers = list(reversed(kept))
    draft.base["active_layers"] = len(draft.layers)
    return removed_any, decisions


def _addition(
    draft: _Draft, session: dt.date, values: Mapping[str, Value], rules: StateRules,
    explain_quiet: bool, *, removed_any: bool,
) -> list[LayerDecision]:
    """Phase 2: at most one addition, the next layer in order, and the deferrals settled.

    A deferral whose layer is no longer next, or whose condition cleared, is
    cancelled; one whose blackout has passed (or is overridden) fires. Nothing
    goes on in a session in which a layer came off.
    """
    index, deferred = draft.index, draft.deferred
    decisions: list[LayerDecision] = []
    active = {a.name for a in draft.layers}
    nxt = next((r for r in rules.layers if r.name not in active), None)
    for name in list(deferred):
        if nxt is None or name != nxt.name:
            # The order changed under it (a lower layer came off): say so.
            decisions.append(LayerDecision(
                "cancel_deferral", name, index.get(name, -1),
                (f"deferred since {deferred[name].since}; cancelled because a lower layer "
                 "came off",)))
            del deferred[name]
    if nxt is None or removed_any:
        return decisions
    i = index[nxt.name]
    base = draft.base
    base["layer_deferred"] = nxt.name in deferred
    add: VerdictLike | None = None
    if nxt.add_when.holds(base) or nxt.name in deferred or explain_quiet:
        add = nxt.add_when.evaluate(base)
    if add is None:
        pass  # quiet: the next layer stays off, unexplained (replays)
    elif not add.passed:
        if nxt.name in deferred:
            decisions.append(_decision(
                "cancel_deferral", nxt.name, i,
                (f"deferred since {deferred[nxt.name].since}; its condition no longer holds",),
                add))
            del deferred[nxt.name]
        else:
            decisions.append(_decision(
                "not_added", nxt.name, i, ("add condition does not hold",), add))
    elif len(draft.layers) >= rules.max_layers:
        decisions.append(_decision(
            "blocked", nxt.name, i, (f"maximum of {rules.max_layers} layers reached",), add))
    elif draft.since is not None and draft.since < rules.cooldown_sessions:
        decisions.append(_decision(
            "blocked", nxt.name, i,
            (f"cooldown: {draft.since} session(s) since the last layer, need "
             f"{rules.cooldown_sessions}",), add))
    else:
        in_blackout = bool(values.get("blackout"))
        override = rules.blackout_override.evaluate(base) if in_blackout else None
        if in_blackout and override is not None and not override.passed:
            if nxt.name not in deferred:
                deferred[nxt.name] = Deferred(nxt.name, session)
                decisions.append(_decision(
                    "defer", nxt.name, i, (_blackout_text(values) + "; deferred until after it",),
                    add, override))
        else:
            lead: list[str] = []
            late = deferred.pop(nxt.name).since if nxt.name in deferred else None
            if late is not None:
                lead.append(f"deferred by a blackout since {late}; still valid")
            if in_blackout and override is not None:
                lead.append(_blackout_text(values) + ", but both triggers are on")
            draft.layers.append(ActiveLayer(nxt.name, session))
            draft.last_added, draft.since = session, 0
            decisions.append(_decision("add", nxt.name, i, lead, add, late=late))
    return decisions


def _has_higher(kept: list[ActiveLayer], index: Mapping[str, int], layer: ActiveLayer) -> bool:
    """A layer is removed only once every layer above it is gone (we walk newest first)."""
    me = index.get(layer.name, -1)
    return any(index.get(k.name, -1) > me for k in kept)


def _blackout_text(values: Mapping[str, Value]) -> str:
    kind = values.get("blackout_kind")
    return f"blackout before {kind}" if kind else "event blackout"
