"""A small, closed condition language for the rules file.

Users edit conditions, so a condition is data, never code: it is tokenized and
parsed (:mod:`bot.engine.rules.syntax`) into frozen dataclasses, checked against a
fixed vocabulary (:mod:`bot.engine.rules.names`, :mod:`bot.engine.rules.typecheck`) and
compiled into closures (:mod:`bot.engine.rules.evaluate`). Nothing reaches ``eval``,
``exec``, ``compile`` or Python's ``ast``; a condition can only do arithmetic,
comparisons and boolean logic over the numbers it is given.

Missing data (``None``/NaN) follows Kleene's three-valued logic and an unknown
outcome never passes, so ``not blackout`` with no blackout data is not a pass:
a bot that cannot see must not act as if the coast were clear.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.engine.rules.evaluate import Check, Compiler, Values, Verdict, fmt
from bot.engine.rules.names import Context
from bot.engine.rules.syntax import (
    MAX_DEPTH,
    MAX_LENGTH,
    ConditionError,
    Issue,
    Node,
    parse,
    tokenize,
)
from bot.engine.rules.typecheck import TypeChecker, threshold_name_problem
from bot.kernel.errors import RulesError

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Check",
    "Condition",
    "ConditionError",
    "Issue",
    "Verdict",
    "compile_condition",
    "fmt",
    "parse",
    "threshold_name_problem",
    "tokenize",
]


class Condition:
    """A parsed, type-checked, compiled condition; build with :func:`compile_condition`.

    Threshold values are baked in at compile time, so ``evaluate`` only needs
    the indicator and state values listed in ``names``; ``thresholds`` maps the
    thresholds it uses to their values; ``str()`` is the text as written.
    """

    __slots__ = ("_combine", "_fast", "_leaves", "ast", "context", "names", "text", "thresholds")

    def __init__(
        self,
        text: str,
        ast: Node,
        context: Context,
        names: frozenset[str],
        thresholds: Mapping[str, float],
        compiler: Compiler,
    ) -> None:
        self.text = text
        self.ast = ast
        self.context = context
        self.names = names
        self.thresholds = thresholds
        self._fast = compiler.fast(ast)
        self._combine = compiler.tri(ast)
        self._leaves = tuple(compiler.leaves)

    def evaluate(self, values: Values) -> Verdict:
        """Outcome plus one :class:`Check` per leaf (every leaf, even past a short-circuit)."""
        checks = [leaf(values) for leaf in self._leaves]
        outcome = self._combine([c.holds for c in checks])
        return Verdict(self.text, outcome is True, checks, outcome is None)

    def holds(self, values: Values) -> bool:
        """Just the outcome, short-circuiting: for backtests over thousands of sessions."""
        return self._fast(values) is True

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"

    def _key(self) -> tuple[object, ...]:
        return (self.text, self.context, tuple(sorted(self.thresholds.items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Condition) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def compile_condition(
    text: str, thresholds: Mapping[str, float] | None = None, *, context: Context
) -> Condition:
    """Parse, type-check and compile ``text``; raises :class:`ConditionError`.

    ``thresholds`` are the file's named numbers; ``context`` says where the
    condition sits, which decides the names it may use.
    """
    known = dict(thresholds or {})
    for name in known:
        reason = threshold_name_problem(name)
        if reason:
            raise RulesError(f"threshold `{name}`: {reason}")
    ast = parse(text)
    checker = TypeChecker(text, known, context)
    checker.top(ast)
    if checker.issues:
        raise ConditionError(text, checker.issues)
    used = {n: known[n] for n in sorted(checker.used_thresholds)}
    return Condition(text, ast, context, frozenset(checker.inputs), used, Compiler(text, used))
