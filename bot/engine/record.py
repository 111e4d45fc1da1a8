"""The record of one evaluated session: what went in, what was decided, the state after.

It is what the runs table stores, what ``run-once --json`` prints and what the
Telegram views (/status, /why, /history) read back. A typed record rather than
a dict read by string keys, so a renamed field is a type error, not a view
that silently shows "n/a".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from bot.engine.evaluate import Evaluation
from bot.engine.indicators.evaluable import WHY_SUFFIX, is_missing, reasons_of, why_key
from bot.engine.rules import Verdict
from bot.engine.state import CheckLike, LayerState, Value


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """One comparison of a condition as evaluated, as fields a program can read.

    ``vix < condor_max_vix`` on a session with VIX at 70.2 is ``name = "vix"``,
    ``value = 70.2``, ``operator = "<"``, ``threshold = "condor_max_vix"``,
    ``threshold_value = 35``, ``passed = False``; ``text`` is the line an alert
    shows (the rule and ✔/✘) and ``observed`` what was true (``vix = 70.2 ≥
    condor_max_vix = 35``). A bare flag (``blackout``) has no operator and no
    threshold; ``negated`` says it sits under a ``not``. ``no_data`` (with the
    names in ``missing`` and, per name, ``name: why`` in ``reasons``): a value
    was not evaluable, and the check did not pass (DESIGN.md §4).
    """

    text: str
    name: str
    value: Value
    operator: str | None
    threshold: str | None
    threshold_value: Value
    passed: bool
    negated: bool = False
    no_data: bool = False
    missing: tuple[str, ...] = ()
    observed: str = ""
    reasons: tuple[str, ...] = ()

    @classmethod
    def of(cls, c: CheckLike) -> CheckRecord:
        return cls(c.describe(), c.left, _plain(c.left_value), c.op, c.right,
                   _plain(c.right_value), c.passed, c.negated, c.holds is None,
                   tuple(c.missing), c.observed(), tuple(c.reasons))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "operator": self.operator,
                "threshold": self.threshold, "threshold_value": self.threshold_value,
                "passed": self.passed, "negated": self.negated, "no_data": self.no_data,
                "missing": list(self.missing), "reasons": list(self.reasons),
                "text": self.text, "observed": self.observed}

    @classmethod
    def from_json(cls, d: object) -> CheckRecord:
        """From :meth:`to_json`, or from the plain line runs recorded before these fields."""
        if not isinstance(d, dict):
            text = str(d)
            return cls(text, "", None, None, None, None, text.rstrip().endswith("✔"))
        return cls(str(d.get("text", "")), str(d.get("name", "")), d.get("value"),
                   d.get("operator"), d.get("threshold"), d.get("threshold_value"),
                   bool(d.get("passed")), bool(d.get("negated")), bool(d.get("no_data")),
                   tuple(str(m) for m in d.get("missing", [])), str(d.get("observed", "")),
                   tuple(str(r) for r in d.get("reasons", [])))


@dataclass(frozen=True, slots=True)
class VerdictRecord:
    """A condition as evaluated: its text, whether it passed, and each comparison."""

    condition: str
    passed: bool
    checks: tuple[CheckRecord, ...]

    @classmethod
    def of(cls, v: Verdict) -> VerdictRecord:
        return cls(v.text, v.passed, tuple(CheckRecord.of(c) for c in v.checks))

    def to_json(self) -> dict[str, Any]:
        return {"condition": self.condition, "passed": self.passed,
                "checks": [c.to_json() for c in self.checks]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> VerdictRecord:
        return cls(str(d.get("condition", "")), bool(d.get("passed")),
                   tuple(CheckRecord.from_json(c) for c in d.get("checks", [])))


@dataclass(frozen=True, slots=True)
class LayerDecisionRecord:
    action: str
    layer: str
    reasons: tuple[str, ...]
    deferred_since: dt.date | None = None
    instrument: str | None = None
    priced_from: str | None = None
    unit_cost: float | None = None
    quantity: int | None = None
    size_reason: str | None = None
    checks: tuple[CheckRecord, ...] = ()
    """The comparisons behind ``reasons`` as fields (empty in runs recorded before them)."""

    @property
    def changes_state(self) -> bool:
        """An add, removal, deferral or cancelled deferral (not an explanation only)."""
        return self.action in ("add", "remove", "defer", "cancel_deferral")

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action, "layer": self.layer, "reasons": list(self.reasons),
            "deferred_since": self.deferred_since.isoformat() if self.deferred_since else None,
            "instrument": self.instrument, "priced_from": self.priced_from,
            "unit_cost": self.unit_cost, "quantity": self.quantity,
            "size_reason": self.size_reason, "checks": [c.to_json() for c in self.checks],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LayerDecisionRecord:
        since = d.get("deferred_since")
        return cls(
            str(d["action"]), str(d["layer"]), tuple(str(r) for r in d.get("reasons", [])),
            dt.date.fromisoformat(since) if since else None, d.get("instrument"),
            d.get("priced_from"), d.get("unit_cost"), d.get("quantity"), d.get("size_reason"),
            tuple(CheckRecord.from_json(c) for c in d.get("checks", [])),
        )


@dataclass(frozen=True, slots=True)
class WarningRecord:
    name: str
    verdict: VerdictRecord

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, **self.verdict.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> WarningRecord:
        return cls(str(d["name"]), VerdictRecord.from_json(d))


@dataclass(frozen=True, slots=True)
class CondorRecord:
    """The condor decision; ``construction`` holds the figures when one was built
    (strikes, credit, break-evens with and without the hedge cost, …)."""

    go: bool
    verdict: VerdictRecord
    note: str | None = None
    construction: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"go": self.go, **self.verdict.to_json(), "note": self.note, **self.construction}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CondorRecord:
        known = {"go", "condition", "passed", "checks", "note"}
        return cls(bool(d.get("go")), VerdictRecord.from_json(d), d.get("note"),
                   {k: v for k, v in d.items() if k not in known})


@dataclass(frozen=True, slots=True)
class RunRecord:
    session: dt.date
    rules_sha256: str
    values: dict[str, Value]
    """Indicator values of the session; NaN / NA (not evaluable) is stored as None."""
    state_before: LayerState
    state_after: LayerState
    layer_decisions: tuple[LayerDecisionRecord, ...]
    warnings: tuple[WarningRecord, ...]
    notes: tuple[str, ...]
    condor: CondorRecord | None
    not_evaluable: dict[str, str] = field(default_factory=dict)
    """Why each value that is None could not be computed (DESIGN.md §4)."""

    def flat(self) -> dict[str, Value]:
        """Values with their reasons under ``why_key(name)``, as the engine hands them on."""
        out: dict[str, Value] = dict(self.values)
        out.update({why_key(k): v for k, v in self.not_evaluable.items()})
        return out

    @property
    def changes(self) -> tuple[LayerDecisionRecord, ...]:
        """The decisions that changed the layer state."""
        return tuple(d for d in self.layer_decisions if d.changes_state)

    @classmethod
    def of(cls, ev: Evaluation) -> RunRecord:
        condor = None
        if ev.condor is not None:
            construction: dict[str, Any] = {}
            k = ev.condor.condor
            if k is not None:
                construction = {
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
                }
            condor = CondorRecord(ev.condor.go, VerdictRecord.of(ev.condor.verdict),
                                  ev.condor.note, construction)
        return cls(
            session=ev.session,
            rules_sha256=ev.rules_sha256,
            values={k: _plain(v) for k, v in ev.values.items() if not k.endswith(WHY_SUFFIX)},
            state_before=ev.state_before,
            state_after=ev.state_after,
            layer_decisions=tuple(
                LayerDecisionRecord(
                    a.decision.action, a.decision.layer, tuple(a.decision.reasons),
                    a.decision.late_from,
                    a.quote.symbol if a.quote else None,
                    a.quote.priced_from if a.quote else None,
                    a.quote.unit_cost if a.quote else None,
                    a.size.quantity if a.size else None,
                    a.size.reason if a.size else None,
                    tuple(CheckRecord.of(c) for c in a.decision.checks),
                )
                for a in ev.actions
            ),
            warnings=tuple(WarningRecord(w.name, VerdictRecord.of(w.verdict))
                           for w in ev.warnings),
            notes=tuple(ev.notes),
            condor=condor,
            not_evaluable=reasons_of(ev.values),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "session": self.session.isoformat(),
            "rules_sha256": self.rules_sha256,
            "values": dict(self.values),
            "not_evaluable": dict(self.not_evaluable),
            "state_before": self.state_before.to_json(),
            "state_after": self.state_after.to_json(),
            "layer_decisions": [d.to_json() for d in self.layer_decisions],
            "warnings": [w.to_json() for w in self.warnings],
            "notes": list(self.notes),
        }
        if self.condor is not None:
            out["condor"] = self.condor.to_json()
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunRecord:
        condor = d.get("condor")
        return cls(
            session=dt.date.fromisoformat(d["session"]),
            rules_sha256=str(d["rules_sha256"]),
            values=dict(d.get("values", {})),
            state_before=LayerState.from_json(d.get("state_before", {})),
            state_after=LayerState.from_json(d.get("state_after", {})),
            layer_decisions=tuple(LayerDecisionRecord.from_json(x)
                                  for x in d.get("layer_decisions", [])),
            warnings=tuple(WarningRecord.from_json(x) for x in d.get("warnings", [])),
            notes=tuple(str(n) for n in d.get("notes", [])),
            condor=CondorRecord.from_json(condor) if condor else None,
            not_evaluable={str(k): str(v) for k, v in d.get("not_evaluable", {}).items()},
        )


def _plain(v: object) -> Value:
    """A JSON-safe scalar: NaN and NA become None, numpy scalars Python ones."""
    if is_missing(v):
        return None
    item = getattr(v, "item", None)
    if callable(item):
        v = item()
    return v  # type: ignore[return-value]
