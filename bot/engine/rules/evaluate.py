"""Compiled evaluation of checked conditions, with explanations.

A condition is compiled once into closures: a short-circuiting one for
backtests that only need the outcome, and one that reports every leaf (value,
operator, threshold, pass/fail) for alerts. Missing data follows Kleene's
three-valued logic and an unknown outcome never passes; its explanation says
"not evaluable" and why, never 0 or false.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, NamedTuple, TypeAlias

from bot.engine.rules.names import NAMES, Kind
from bot.engine.rules.syntax import And, Arith, Bool, Compare, Name, Neg, Node, Not, Number, Or
from bot.kernel.evaluable import NOT_EVALUABLE_TEXT, why_key

Value: TypeAlias = float | bool | None
Values: TypeAlias = Mapping[str, object]
"""Indicator/state values by name: floats, ints, bools, numpy scalars; None/NaN/NA = not
evaluable, with the reason under :func:`~bot.engine.indicators.evaluable.why_key` (name)."""

_Eval: TypeAlias = Callable[[Values], Value]
_Tri: TypeAlias = Callable[[list[bool | None]], bool | None]
_Fast: TypeAlias = Callable[[Values], bool | None]

_OPS: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def _number(raw: object) -> float | None:
    """A usable number, or ``None`` for missing/NaN/inf/pd.NA, text and the like."""
    if isinstance(raw, float):  # the common case first: runs per name per session
        return raw if math.isfinite(raw) else None
    if isinstance(raw, int):
        return float(raw)
    if raw is None or isinstance(raw, (str, bytes)):
        return None
    try:
        f = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _flag(raw: object) -> bool | None:
    f = _number(raw)
    return None if f is None else f != 0.0


def fmt(value: Value) -> str:
    """Compact display: ``38.2``, ``40``, ``0.9877``, ``true``, ``not evaluable``."""
    if value is None:
        return NOT_EVALUABLE_TEXT
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4f}".rstrip("0").rstrip(".")


class Check(NamedTuple):
    """One leaf of a condition (a comparison or a bare true/false) on one session.

    ``holds`` is the leaf's own truth (``None``: not evaluable); ``negated``
    says it sits under an odd number of ``not``; ``passed`` is whether the leaf
    pulled the way the rule wants. A not-evaluable value never passes, negated
    or not; ``missing`` names those values and ``reasons`` says why, one
    ``name: why`` per missing name (DESIGN.md §4: not evaluable is not zero).
    """

    text: str
    left: str
    left_value: Value
    op: str | None
    right: str | None
    right_value: Value
    holds: bool | None
    negated: bool
    missing: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.holds is not None and self.holds != self.negated

    @property
    def no_data(self) -> bool:
        return self.holds is None

    def describe(self) -> str:
        """E.g. ``rsi = 38.2 < rsi_layer2 = 40 ✔`` — the line an alert shows."""
        mark = "✔" if self.passed else "✘"
        if self.op is None:
            core = f"{self.left} = {fmt(self.left_value)}"
            if self.negated:
                core = f"not {self.left} ({core})"
        else:
            core = (
                f"{_side(self.left, self.left_value)} {self.op} "
                f"{_side(self.right or '', self.right_value)}"
            )
            if self.negated:
                core = f"not ({core})"
        if self.holds is None:
            why = "; ".join(self.reasons) if self.reasons else "division by zero or overflow"
            return f"{core} {mark} {NOT_EVALUABLE_TEXT} ({why})"
        return f"{core} {mark}"


    def observed(self, *, with_value: bool = True) -> str:
        """The leaf as it actually came out, e.g. ``vix = 70.2 ≥ condor_max_vix = 35``.

        :meth:`describe` prints the rule and marks it ✘ when it fails, which
        read backwards as a *reason* ("skipped because vix < condor_max_vix"
        with VIX at 70). This prints what was true instead: the comparison
        with the operator that held (the complement when the rule's did not),
        a bare flag with its value, or which name had no data.
        ``with_value=False`` leaves the left value out (a key to tally
        sessions by: ``vix ≥ condor_max_vix = 35``).
        """
        if self.holds is None:
            if self.reasons or self.missing:
                return "; ".join(_not_evaluable(r) for r in self.reasons or self.missing)
            return f"{self.text}: division by zero or overflow"
        left = _side(self.left, self.left_value) if with_value else self.left
        if self.op is None:
            return f"{self.left} = {fmt(self.left_value)}"
        op = _SHOWN[self.op] if self.holds else _COMPLEMENT[self.op]
        return f"{left} {op} {_side(self.right or '', self.right_value)}"


_SHOWN: Final[Mapping[str, str]] = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "==": "=",
                                    "!=": "≠"}
_COMPLEMENT: Final[Mapping[str, str]] = {"<": "≥", "<=": ">", ">": "≤", ">=": "<", "==": "≠",
                                         "!=": "="}
"""The operator that holds when the rule's does not (numbers only: no NaN gets this far)."""


def _not_evaluable(reason: str) -> str:
    """``vix: no value`` → ``vix not evaluable (no value)``."""
    name, _, why = reason.partition(": ")
    return f"{name} {NOT_EVALUABLE_TEXT} ({why})" if why else f"{name} {NOT_EVALUABLE_TEXT}"


def _side(text: str, value: Value) -> str:
    if _LITERAL_RE.fullmatch(text):
        return text
    return f"{text} = {fmt(value)}"


_LITERAL_RE: Final = re.compile(r"-?\s*[\d.]+(?:[eE][+-]?\d+)?|true|false")


class Verdict(NamedTuple):
    """Outcome of a condition on one session with every leaf explained.

    ``undetermined`` is true when missing data left the outcome unknown; it
    then did not pass.
    """

    text: str
    passed: bool
    checks: list[Check]
    undetermined: bool = False

    def describe(self, sep: str = "\n") -> str:
        return sep.join(c.describe() for c in self.checks)


_LeafFn: TypeAlias = Callable[[Values], "Check"]


def _leaf(
    text: str,
    left: str,
    op: str | None,
    right: str | None,
    left_fn: _Eval,
    right_fn: _Eval | None,
    names: tuple[str, ...],
    negated: bool,
) -> _LeafFn:
    """A closure producing one leaf's :class:`Check` (the hot path of backtests)."""

    def missing(values: Values) -> tuple[tuple[str, ...], tuple[str, ...]]:
        gone = tuple(n for n in names if _number(values.get(n)) is None)
        return gone, tuple(f"{n}: {values.get(why_key(n)) or 'no value'}" for n in gone)

    if right_fn is None or op is None:

        def bare(values: Values) -> Check:
            lv = left_fn(values)
            if lv is None:
                return Check(text, left, None, None, None, None, None, negated, *missing(values))
            return Check(text, left, lv, None, None, None, bool(lv), negated)

        return bare

    cmp = _OPS[op]
    right_fn_ = right_fn

    def compare(values: Values) -> Check:
        lv, rv = left_fn(values), right_fn_(values)
        if lv is None or rv is None:
            return Check(text, left, lv, op, right, rv, None, negated, *missing(values))
        return Check(text, left, lv, op, right, rv, cmp(lv, rv), negated)

    return compare


class Compiler:
    """Turns a checked AST into closures; the leaves it collects feed ``Condition.evaluate``."""

    def __init__(self, text: str, thresholds: Mapping[str, float]) -> None:
        self.text = text
        self.thresholds = thresholds
        self.leaves: list[_LeafFn] = []

    def src(self, node: Node) -> str:
        return self.text[node.span[0] : node.span[1]]

    def value(self, node: Node) -> _Eval:
        if isinstance(node, Number | Bool):
            return _const(node.value)
        if isinstance(node, Name):
            if node.name in self.thresholds:
                return _const(float(self.thresholds[node.name]))
            return _lookup(node.name, NAMES[node.name].kind)
        if isinstance(node, Neg):
            return _neg(self.value(node.operand))
        if isinstance(node, Arith):
            return _arith(node.op, self.value(node.left), self.value(node.right))
        raise AssertionError(f"not a value: {node!r}")  # the checker rules this out

    def fast(self, node: Node) -> _Fast:
        """Short-circuiting three-valued evaluator for ``Condition.holds``."""
        if isinstance(node, Not):
            inner = self.fast(node.operand)
            return lambda v: None if (x := inner(v)) is None else not x
        if isinstance(node, And):
            a, b = self.fast(node.left), self.fast(node.right)
            return lambda v: _and3(a, b, v)
        if isinstance(node, Or):
            a, b = self.fast(node.left), self.fast(node.right)
            return lambda v: _or3(a, b, v)
        if isinstance(node, Compare):
            left, right, op = self.value(node.left), self.value(node.right), _OPS[node.op]
            return lambda v: _compare(op, left(v), right(v))
        fn = self.value(node)
        return lambda v: None if (x := fn(v)) is None else bool(x)

    def tri(self, node: Node, negated: bool = False) -> _Tri:
        """Combine leaf results (in source order) the way the rule's logic says."""
        if isinstance(node, Not):
            inner = self.tri(node.operand, not negated)
            return lambda r: None if (x := inner(r)) is None else not x
        if isinstance(node, And | Or):
            a = self.tri(node.left, negated)
            b = self.tri(node.right, negated)
            combine = _kleene_and if isinstance(node, And) else _kleene_or
            return lambda r: combine(a(r), b(r))
        index = len(self.leaves)
        self.leaves.append(self.leaf(node, negated))
        return lambda r: r[index]

    def leaf(self, node: Node, negated: bool) -> _LeafFn:
        names = tuple(
            sorted({n.name for n in _walk(node) if isinstance(n, Name)} - set(self.thresholds))
        )
        if isinstance(node, Compare):
            return _leaf(
                self.src(node),
                self.src(node.left),
                node.op,
                self.src(node.right),
                self.value(node.left),
                self.value(node.right),
                names,
                negated,
            )
        text = self.src(node)
        return _leaf(text, text, None, None, self.value(node), None, names, negated)


def _walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, Neg | Not):
        yield from _walk(node.operand)
    elif isinstance(node, Arith | Compare | And | Or):
        yield from _walk(node.left)
        yield from _walk(node.right)


def _const(value: float | bool) -> _Eval:
    return lambda _v: value


def _lookup(name: str, kind: Kind) -> _Eval:
    if kind is Kind.BOOLEAN:
        return lambda v: _flag(v.get(name))
    return lambda v: _number(v.get(name))


def _neg(fn: _Eval) -> _Eval:
    return lambda v: None if (x := fn(v)) is None else -x


def _arith(op: str, left: _Eval, right: _Eval) -> _Eval:
    def run(v: Values) -> Value:
        a, b = left(v), right(v)
        if a is None or b is None:
            return None
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif b == 0:
            return None
        else:
            r = a / b
        return r if math.isfinite(r) else None

    return run


def _compare(op: Callable[[Any, Any], bool], a: Value, b: Value) -> bool | None:
    return None if a is None or b is None else op(a, b)


def _kleene_and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _kleene_or(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def _and3(a: _Fast, b: _Fast, v: Values) -> bool | None:
    x = a(v)
    if x is False:
        return False
    y = b(v)
    if y is False:
        return False
    return None if x is None or y is None else True


def _or3(a: _Fast, b: _Fast, v: Values) -> bool | None:
    x = a(v)
    if x is True:
        return True
    y = b(v)
    if y is True:
        return True
    return None if x is None or y is None else False
