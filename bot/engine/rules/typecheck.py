"""Name resolution and type checking of parsed conditions.

Done once at load, so a condition that compares a true/false flag with `<`,
or names something that does not exist here, is refused with the file's line
instead of silently never firing in production.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Final

from bot.engine.rules.names import KEYWORDS, NAMES, Context, Kind
from bot.engine.rules.syntax import (
    And,
    Arith,
    Bool,
    Compare,
    Issue,
    Name,
    Neg,
    Node,
    Not,
    Number,
    Or,
)

_IDENT_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


def threshold_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a threshold, or ``None`` when it can."""
    if not _IDENT_RE.fullmatch(name):
        return "a threshold name is letters, digits and _ and does not start with a digit"
    if name in KEYWORDS:
        return f"`{name}` is a keyword"
    if name in NAMES:
        return f"`{name}` is already an indicator/state name; a threshold may not shadow it"
    return None


def _is_condition(node: Node) -> bool:
    return isinstance(node, Compare | Not | And | Or)


class TypeChecker:
    """Resolves names and kinds; collects every problem rather than the first."""

    def __init__(self, text: str, thresholds: Mapping[str, float], context: Context) -> None:
        self.text = text
        self.thresholds = thresholds
        self.context = context
        self.issues: list[Issue] = []
        self.inputs: set[str] = set()
        self.used_thresholds: set[str] = set()

    def issue(self, node: Node, reason: str) -> None:
        start, end = node.span
        self.issues.append(Issue(reason, start, max(1, end - start)))

    def src(self, node: Node) -> str:
        return self.text[node.span[0] : node.span[1]]

    def kind(self, node: Node) -> Kind | None:
        """The node's kind, or ``None`` after an error (so errors do not cascade)."""
        if isinstance(node, Number):
            return Kind.NUMBER
        if isinstance(node, Bool):
            return Kind.BOOLEAN
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, Neg):
            self.need_number(node.operand, "`-`")
            return Kind.NUMBER
        if isinstance(node, Arith):
            self.need_number(node.left, f"`{node.op}`")
            self.need_number(node.right, f"`{node.op}`")
            return Kind.NUMBER
        if isinstance(node, Compare):
            self.compare(node)
            return Kind.BOOLEAN
        if isinstance(node, Not):
            self.need_condition(node.operand, "`not`")
            return Kind.BOOLEAN
        self.need_condition(node.left, "`and`" if isinstance(node, And) else "`or`")
        self.need_condition(node.right, "`and`" if isinstance(node, And) else "`or`")
        return Kind.BOOLEAN

    def name(self, node: Name) -> Kind | None:
        n = node.name
        if n in self.thresholds:
            self.used_thresholds.add(n)
            return Kind.NUMBER
        spec = NAMES.get(n)
        if spec is None:
            self.issue(node, self.unknown(n))
            return None
        if self.context not in spec.allowed:
            self.issue(node, f"`{n}` is only available in {spec.where}")
            return None
        self.inputs.add(n)
        return spec.kind

    def unknown(self, n: str) -> str:
        if n.lower() in KEYWORDS:
            return f"unknown name `{n}`; did you mean `{n.lower()}`? (keywords are lower case)"
        if n == "None":
            return "there is no `None`: a check on missing data already fails"
        known = [k for k, s in NAMES.items() if self.context in s.allowed]
        close = difflib.get_close_matches(n, [*known, *self.thresholds], n=3, cutoff=0.6)
        if close:
            hint = " or ".join(f"`{c}`" for c in close)
            return f"unknown name `{n}`; did you mean {hint}?"
        return f"unknown name `{n}`: not an indicator, a state name or a threshold"

    def need_number(self, node: Node, where: str) -> None:
        k = self.kind(node)
        if k is Kind.BOOLEAN:
            self.issue(node, f"{where} needs numbers, but `{self.src(node)}` is true/false")

    def need_condition(self, node: Node, where: str) -> None:
        k = self.kind(node)
        if k is Kind.NUMBER:
            self.issue(
                node,
                f"{where} needs true/false, but `{self.src(node)}` is a number; "
                f"compare it, e.g. `{self.src(node)} > 0`",
            )

    def compare(self, node: Compare) -> None:
        bad = [side for side in (node.left, node.right) if _is_condition(side)]
        for side in bad:
            self.issue(side, "compare values, not conditions; combine conditions with and/or")
        if bad:
            return
        left, right = self.kind(node.left), self.kind(node.right)
        if left is None or right is None:
            return
        if node.op in ("==", "!="):
            if left is not right:
                self.issue(node, f"`{node.op}` compares a number with true/false")
            return
        for side, k in ((node.left, left), (node.right, right)):
            if k is Kind.BOOLEAN:
                self.issue(
                    side,
                    f"`{self.src(side)}` is true/false and cannot be compared with "
                    f"`{node.op}`; use it on its own or with `not`",
                )

    def top(self, root: Node) -> None:
        self.need_condition(root, "the rule")
