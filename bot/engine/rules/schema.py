"""The rules file's shape: pydantic models with every condition compiled.

Strict (YAML already yields real numbers, so a quoted ``"12"`` is a mistake
worth reporting) and closed (``extra="forbid"``: a misspelt key must not be
silently ignored while the default it meant to change stays in force).
Conditions are compiled during validation against the file's own thresholds,
which arrive through the validation context: use :meth:`Rules.from_data`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bot.engine.rules.language import (
    Condition,
    ConditionError,
    compile_condition,
    threshold_name_problem,
)
from bot.engine.rules.names import NAMES, Context
from bot.engine.rules.syntax import Compare, Name, Neg, Node, Number
from bot.kernel.models import EventKind

THRESHOLDS_KEY: Final = "thresholds"
"""Validation-context key holding the file's thresholds for condition compilation."""

_NAME_PATTERN: Final = r"^[A-Za-z][A-Za-z0-9_-]{0,39}$"
_GRID_TOLERANCE: Final = 1e-9


def rules_error(message: str, at: tuple[str | int, ...] = ()) -> PydanticCustomError:
    """A validation error whose location is ``at`` below the failing model.

    Pydantic places a model validator's error on the model itself; ``at``
    lets the loader point at the exact key (and line) the problem is about.
    """
    return PydanticCustomError("rules", "{message}", {"message": message, "at": at})


def _condition_validator(context: Context) -> Callable[[object, ValidationInfo], Condition]:
    def validate(value: object, info: ValidationInfo) -> Condition:
        if isinstance(value, Condition):
            return value
        if isinstance(value, bool):  # YAML turns a bare `true`/`false` into a bool
            value = "true" if value else "false"
        if not isinstance(value, str):
            raise PydanticCustomError(
                "condition_type",
                "{message}",
                {"message": f"expected a condition such as `rsi < rsi_layer2`, got {value!r}"},
            )
        ctx = info.context if isinstance(info.context, Mapping) else {}
        thresholds = ctx.get(THRESHOLDS_KEY)
        if not isinstance(thresholds, Mapping):
            raise PydanticCustomError(
                "condition_context",
                "conditions need the file's thresholds: validate with Rules.from_data",
            )
        try:
            return compile_condition(value, thresholds, context=context)
        except ConditionError as exc:
            raise PydanticCustomError("condition", "{message}", {"message": exc.render()}) from None

    return validate


def _as_text(value: object) -> str:
    """A compiled condition serialises as the text the user wrote."""
    return str(value)


_AS_TEXT: Final = PlainSerializer(_as_text, return_type=str)
_JSON_TEXT: Final = WithJsonSchema({"type": "string"})

EnterCondition = Annotated[
    Condition, PlainValidator(_condition_validator(Context.CONDOR_ENTER)), _AS_TEXT, _JSON_TEXT
]
AddCondition = Annotated[
    Condition, PlainValidator(_condition_validator(Context.LAYER_ADD)), _AS_TEXT, _JSON_TEXT
]
RemoveCondition = Annotated[
    Condition, PlainValidator(_condition_validator(Context.LAYER_REMOVE)), _AS_TEXT, _JSON_TEXT
]
OverrideCondition = Annotated[
    Condition,
    PlainValidator(_condition_validator(Context.BLACKOUT_OVERRIDE)),
    _AS_TEXT,
    _JSON_TEXT,
]
WarningCondition = Annotated[
    Condition, PlainValidator(_condition_validator(Context.WARNING)), _AS_TEXT, _JSON_TEXT
]


def _threshold_value(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError(
            "threshold_type", "{message}", {"message": f"expected a number, got {value!r}"}
        )
    if not math.isfinite(value):
        raise PydanticCustomError("threshold_type", "expected a finite number")
    return value


ThresholdValue = Annotated[
    float, PlainValidator(_threshold_value), WithJsonSchema({"type": "number"})
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# ------------------------------------------------------------------ indicators


class MacdParams(_Model):
    fast: int = Field(12, ge=1)
    slow: int = Field(26, ge=2)
    signal: int = Field(9, ge=1)

    @model_validator(mode="after")
    def _fast_below_slow(self) -> MacdParams:
        if self.fast >= self.slow:
            raise rules_error(f"fast ({self.fast}) must be less than slow ({self.slow})", ("fast",))
        return self


class RsiParams(_Model):
    period: int = Field(14, ge=2)


class DivergenceParams(_Model):
    window: int = Field(63, ge=2)
    tolerance: float = Field(0.01, ge=0, lt=1)
    min_separation: int = Field(5, ge=0)
    max_imputed_sessions: int = Field(1, ge=0)

    @model_validator(mode="after")
    def _separation_fits(self) -> DivergenceParams:
        if self.min_separation >= self.window:
            raise rules_error(
                f"min_separation ({self.min_separation}) must be less than window ({self.window})",
                ("min_separation",),
            )
        if self.max_imputed_sessions >= self.window:
            raise rules_error(
                f"max_imputed_sessions ({self.max_imputed_sessions}) must be less than window "
                f"({self.window})",
                ("max_imputed_sessions",),
            )
        return self


class Indicators(_Model):
    macd: MacdParams = MacdParams()
    weekly_macd: MacdParams = MacdParams()
    rsi: RsiParams = RsiParams()
    divergence: DivergenceParams = DivergenceParams()
    histogram_compression_sessions: int = Field(3, ge=1)
    lookback_sessions: int = Field(300, ge=250)


# ------------------------------------------------------------------ blackout


class SessionsBefore(_Model):
    FOMC: int = Field(ge=0, le=30)
    CPI: int = Field(ge=0, le=30)
    PPI: int = Field(ge=0, le=30)


class Blackout(_Model):
    sessions_before: SessionsBefore
    override_when: OverrideCondition

    def sessions(self, kind: EventKind) -> int:
        """Blackout width for one event kind."""
        width: int = getattr(self.sessions_before, kind.value)
        return width


# ------------------------------------------------------------------ condor


class TargetDelta(_Model):
    put: float = Field(gt=0, lt=0.5)
    call: float = Field(gt=0, lt=0.5)


class CondorBacktest(_Model):
    """How ``alvh backtest`` trades the GO signals; the live bot only signals and ignores it."""

    entry: Literal["monthly_cycle", "weekly_cycle"] = "monthly_cycle"
    """One condor on the first GO session of each monthly (weekly) expiration cycle."""
    take_profit: float | None = Field(None, gt=0, le=1)
    """Close on a session close once the profit is at least this fraction of the credit."""
    stop_loss: float | None = Field(None, gt=0, le=1)
    """Close on a session close once the loss is at least this fraction of the max loss."""


class Condor(_Model):
    target_delta: TargetDelta
    wing_width: float = Field(gt=0)
    strike_step: float = Field(5, gt=0)
    dte: int = Field(45, gt=0, le=730)
    expiry: Literal["monthly", "weekly"]
    risk_free_rate: float
    dividend_yield: float
    max_loss_budget_pct: float = Field(gt=0, le=100)
    enter_when: EnterCondition
    backtest: CondorBacktest = CondorBacktest()

    @field_validator("risk_free_rate", "dividend_yield")
    @classmethod
    def _decimal(cls, value: float) -> float:
        if not -0.05 <= value <= 0.25:
            raise rules_error(
                f"expected an annual decimal between -0.05 and 0.25 (4.5 % is 0.045), got {value}"
            )
        return value

    @model_validator(mode="after")
    def _wings_on_grid(self) -> Condor:
        steps = self.wing_width / self.strike_step
        if abs(steps - round(steps)) > _GRID_TOLERANCE:
            raise rules_error(
                f"wing_width ({self.wing_width:g}) must be a multiple of "
                f"strike_step ({self.strike_step:g})",
                ("wing_width",),
            )
        return self


# ------------------------------------------------------------------ hedge


class Instrument(_Model):
    kind: Literal["vx_future", "etp"] = "vx_future"
    months_out_min: int = Field(3, ge=1, le=9)
    months_out_max: int = Field(6, ge=1, le=9)
    etp_symbol: Literal["VXX", "UVXY"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Instrument:
        if self.months_out_min > self.months_out_max:
            raise rules_error(
                f"months_out_max ({self.months_out_max}) must be at least "
                f"months_out_min ({self.months_out_min})",
                ("months_out_max",),
            )
        if self.kind == "etp" and self.etp_symbol is None:
            raise rules_error("etp_symbol (VXX or UVXY) is required when kind is etp", ("kind",))
        if self.kind != "etp" and self.etp_symbol is not None:
            raise rules_error(
                f"etp_symbol is only used when kind is etp (kind is {self.kind})",
                ("etp_symbol",),
            )
        return self


class Layer(_Model):
    name: str = Field(pattern=_NAME_PATTERN)
    add_when: AddCondition
    remove_when: RemoveCondition


class Hedge(_Model):
    instrument: Instrument = Instrument()
    budget_per_layer_pct: float = Field(1.5, gt=0, le=10)
    max_total_pct: float = Field(gt=0, le=100)
    max_layers: int = Field(3, ge=1, le=10)
    cooldown_sessions: int = Field(ge=0)
    exit_hysteresis_sessions: int = Field(ge=1)
    layers: list[Layer] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Hedge:
        if len(self.layers) > self.max_layers:
            raise rules_error(
                f"{len(self.layers)} layers are defined but max_layers is {self.max_layers}",
                ("max_layers",),
            )
        if self.max_total_pct < self.budget_per_layer_pct:
            raise rules_error(
                f"max_total_pct ({self.max_total_pct:g}) is below budget_per_layer_pct "
                f"({self.budget_per_layer_pct:g}): not even one layer would fit",
                ("max_total_pct",),
            )
        if (i := _first_duplicate([layer.name for layer in self.layers])) is not None:
            raise rules_error(
                f"layer name `{self.layers[i].name}` is used twice", ("layers", i, "name")
            )
        return self

    @property
    def capped_layers(self) -> int:
        """How many layers fit whole under ``max_total_pct``."""
        return min(self.max_layers, int(self.max_total_pct / self.budget_per_layer_pct + 1e-9))


class WarningRule(_Model):
    name: str = Field(pattern=_NAME_PATTERN)
    when: WarningCondition


def _first_duplicate(names: list[str]) -> int | None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            return i
        seen.add(name)
    return None


# ------------------------------------------------------------------ root


class Rules(_Model):
    """A validated rules file. ``sha256``/``path``/``origin`` say which bytes it came from."""

    version: Literal[1]
    indicators: Indicators = Indicators()
    thresholds: dict[str, ThresholdValue] = Field(default_factory=dict)
    blackout: Blackout
    condor: Condor
    hedge: Hedge
    warnings: list[WarningRule] = Field(default_factory=list)

    _sha256: str = PrivateAttr(default="")
    _path: Path | None = PrivateAttr(default=None)
    _origin: str = PrivateAttr(default="<rules>")

    @field_validator("thresholds")
    @classmethod
    def _threshold_names(cls, value: dict[str, float]) -> dict[str, float]:
        for name in value:
            reason = threshold_name_problem(name)
            if reason:
                raise rules_error(reason, (name,))
        return value

    @model_validator(mode="after")
    def _thresholds_in_range(self) -> Rules:
        """A number compared with a name must lie in the range that name can take.

        ``rsi < -40`` or ``ad_divergence_days > -3`` is always false or always
        true: a typo that would silently switch a rule off (or on). Refused at
        the threshold's own key (or at the condition, for a number written in it).
        """
        for loc, condition in self._condition_locations():
            for name, value, where in _compared_numbers(condition.ast, self.thresholds):
                lo, hi = VALUE_RANGES[name]
                if lo <= value <= hi:
                    continue
                span = f"{lo:g} to {hi:g}" if math.isfinite(hi) else f"at least {lo:g}"
                at = ("thresholds", where) if where else loc
                what = f"`{where}` = {value:g}" if where else f"{value:g}"
                raise rules_error(
                    f"{what} is compared with {name} in {_dotted_loc(loc)}, but {name} is "
                    f"always {span}: the comparison could never change", at)
        return self

    def _condition_locations(self) -> Iterator[tuple[tuple[str | int, ...], Condition]]:
        yield ("blackout", "override_when"), self.blackout.override_when
        yield ("condor", "enter_when"), self.condor.enter_when
        for i, layer in enumerate(self.hedge.layers):
            yield ("hedge", "layers", i, "add_when"), layer.add_when
            yield ("hedge", "layers", i, "remove_when"), layer.remove_when
        for i, warning in enumerate(self.warnings):
            yield ("warnings", i, "when"), warning.when

    @model_validator(mode="after")
    def _unique_warnings(self) -> Rules:
        if (i := _first_duplicate([w.name for w in self.warnings])) is not None:
            raise rules_error(
                f"warning name `{self.warnings[i].name}` is used twice", ("warnings", i, "name")
            )
        return self

    @classmethod
    def from_data(
        cls,
        data: object,
        *,
        origin: str = "<rules>",
        sha256: str = "",
        path: Path | None = None,
    ) -> Rules:
        """Validate parsed YAML, compiling conditions against the file's thresholds.

        Raises pydantic's ``ValidationError``; :mod:`bot.engine.rules.loader` turns it
        into a :class:`~bot.kernel.errors.RulesError` with lines.
        """
        rules = cls.model_validate(data, context={THRESHOLDS_KEY: _raw_thresholds(data)})
        rules._sha256, rules._path, rules._origin = sha256, path, origin
        return rules

    @property
    def sha256(self) -> str:
        """Hash of the file's bytes; every evaluation records it."""
        return self._sha256

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def origin(self) -> str:
        """What error messages and summaries call the file."""
        return self._origin

    @property
    def label(self) -> str:
        """The file as alerts name it beside the hash: its path, or "packaged default"."""
        if self._path is None:
            return self._origin
        from bot.engine.rules.loader import default_rules_path

        try:
            if self._path.resolve() == default_rules_path().resolve():
                return "packaged default"
        except OSError:
            pass
        return str(self._path)

    def conditions(self) -> Iterator[tuple[str, Condition]]:
        """Every condition with its dotted key, in file order."""
        yield "blackout.override_when", self.blackout.override_when
        yield "condor.enter_when", self.condor.enter_when
        for i, layer in enumerate(self.hedge.layers):
            yield f"hedge.layers[{i}].add_when", layer.add_when
            yield f"hedge.layers[{i}].remove_when", layer.remove_when
        for i, warning in enumerate(self.warnings):
            yield f"warnings[{i}].when", warning.when


INF: Final = math.inf

VALUE_RANGES: Final[Mapping[str, tuple[float, float]]] = {
    "rsi": (0, 100),
    "close": (0, INF), "vix": (0, INF), "vix3m": (0, INF), "vix6m": (0, INF),
    "vix_term_ratio": (0, INF),
    "advancers": (0, INF), "decliners": (0, INF),
    "ad_divergence_days": (0, INF), "ad_divergence_streak": (0, INF),
    "macd_divergence_days": (0, INF), "macd_divergence_streak": (0, INF),
    "sessions_to_fomc": (0, INF), "sessions_to_cpi": (0, INF), "sessions_to_ppi": (0, INF),
    "sessions_to_event": (0, INF),
    "active_layers": (0, INF), "sessions_since_last_layer_added": (0, INF),
    "layer_sessions_active": (0, INF),
}
"""The values a name can take (by its definition: RSI is 0–100, a count is never
negative, a price or a VIX level is positive). Names not listed (MACD, the A/D line)
can take any value. tests/test_rules_file.py keeps every key a name in NAMES."""


def _literal(node: Node) -> float | None:
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Neg) and isinstance(node.operand, Number):
        return -node.operand.value
    return None


def _compared_numbers(
    node: Node, thresholds: Mapping[str, float]
) -> Iterator[tuple[str, float, str]]:
    """(name, number, threshold key or "") for each ``name OP number`` in the condition."""
    if isinstance(node, Compare):
        for a, b in ((node.left, node.right), (node.right, node.left)):
            if not (isinstance(a, Name) and a.name in VALUE_RANGES and a.name in NAMES):
                continue
            if isinstance(b, Name) and b.name in thresholds:
                yield a.name, thresholds[b.name], b.name
            elif (value := _literal(b)) is not None:
                yield a.name, value, ""
        return
    for child in ("operand", "left", "right"):
        sub = getattr(node, child, None)
        if sub is not None:
            yield from _compared_numbers(sub, thresholds)


def _dotted_loc(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _raw_thresholds(data: object) -> dict[str, float]:
    """Threshold names as written, so conditions resolve even if a value is bad.

    A bad value is reported at its own key; conditions naming it should not
    also fail with "unknown name". Invalid names are left out (they are
    reported at their key, and a shadowing one must not hide an indicator).
    """
    if not isinstance(data, Mapping):
        return {}
    raw: Any = data.get(THRESHOLDS_KEY)
    if not isinstance(raw, Mapping):
        return {}
    out: dict[str, float] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or threshold_name_problem(name):
            continue
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        out[name] = float(value) if ok else math.nan
    return out
