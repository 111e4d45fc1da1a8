"""Tokens, syntax tree and parser of the condition language.

Our own tokenizer and recursive-descent parser rather than Python's: a
condition can only ever be the few constructs below, and anything else
(strings, calls, attributes, subscripts) fails here with a caret under it,
before any meaning is given to it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Final, TypeAlias

from bot.engine.rules.names import KEYWORDS
from bot.kernel.errors import RulesError

MAX_LENGTH: Final = 2000
"""Longest condition accepted; a real one is a line or two."""
MAX_DEPTH: Final = 40
"""Deepest nesting accepted, so junk cannot exhaust the parser's stack."""
MAX_TOKENS: Final = 200
"""Most tokens accepted; bounds the AST depth that checking and evaluation recurse over."""

# ------------------------------------------------------------------ errors


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem in a condition, located by 0-based column and width."""

    reason: str
    column: int
    width: int = 1


class ConditionError(RulesError):
    """A condition that does not parse or type-check; carries every issue found.

    The loader adds file, line and key; ``str()`` alone shows the text with a
    caret under each offending token so the error is usable on its own too.
    """

    def __init__(self, text: str, issues: list[Issue]) -> None:
        self.text = text
        self.issues = tuple(issues)
        super().__init__(self.render())

    def render(self) -> str:
        shown = self.text.replace("\n", " ").replace("\t", " ")
        blocks = []
        for issue in self.issues:
            caret = " " * issue.column + "^" * max(1, issue.width)
            blocks.append(f"{issue.reason} (column {issue.column + 1})\n    {shown}\n    {caret}")
        return "\n".join(blocks)


# ------------------------------------------------------------------ tokens

_TOKEN_RE: Final = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<bad>\*\*|//|=>|=<)"
    r"|(?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op><=|>=|==|!=|<|>|\+|-|\*|/)"
    r"|(?P<lp>\()"
    r"|(?P<rp>\))",
    re.ASCII,
)

_HINTS: Final = (
    ("**", "exponentiation is not supported"),
    ("//", "`//` is not supported; use `/`"),
    ("=>", "`=>` is not an operator; use `>=`"),
    ("=<", "`=<` is not an operator; use `<=`"),
    ("&&", "use `and`"),
    ("||", "use `or`"),
    ("=", "use `==` to compare for equality"),
    ("&", "use `and`"),
    ("|", "use `or`"),
    ("!", "use `not`"),
    ("'", "string literals are not allowed; conditions compare numbers"),
    ('"', "string literals are not allowed; conditions compare numbers"),
    (".", "attribute access is not allowed"),
    ("[", "subscripts and lists are not allowed"),
    ("]", "subscripts and lists are not allowed"),
    ("{", "braces are not allowed"),
    ("}", "braces are not allowed"),
    ("%", "`%` is not supported; use + - * /"),
    (",", "commas are not allowed (there are no function calls)"),
    (":", "`:` is not allowed; a condition is a single expression"),
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # num, name, op, lp, rp, kw, end
    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, refusing any character the language lacks."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise ConditionError(text, [Issue(_hint(text, pos), pos)])
        kind = m.lastgroup or ""
        if kind == "bad":
            raise ConditionError(text, [Issue(_hint(text, pos), pos, len(m.group()))])
        if kind != "ws":
            word = m.group()
            if kind == "name" and word in KEYWORDS:
                kind = "kw"
            tokens.append(Token(kind, word, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def _hint(text: str, pos: int) -> str:
    for prefix, hint in _HINTS:
        if text.startswith(prefix, pos):
            return hint
    return f"unexpected character {text[pos]!r}"


# ------------------------------------------------------------------ AST


@dataclass(frozen=True, slots=True)
class Number:
    value: float
    span: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool
    span: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    span: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Neg:
    operand: Node
    span: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Arith:
    op: str
    left: Node
    right: Node
    span: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Node
    right: Node
    span: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node
    span: tuple[int, int]


@dataclass(frozen=True, slots=True)
class And:
    left: Node
    right: Node
    span: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node
    span: tuple[int, int]


Node: TypeAlias = Number | Bool | Name | Neg | Arith | Compare | Not | And | Or
_COMPARISONS: Final = frozenset({"<", "<=", ">", ">=", "==", "!="})


# ------------------------------------------------------------------ parser


class _Parser:
    """Recursive descent; one method per precedence level, loosest first."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        if len(self.tokens) > MAX_TOKENS:
            extra = self.tokens[MAX_TOKENS]
            raise ConditionError(text, [Issue(f"more than {MAX_TOKENS} tokens", extra.start)])
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def fail(self, reason: str, tok: Token | None = None) -> ConditionError:
        t = tok or self.tok
        return ConditionError(self.text, [Issue(reason, t.start, max(1, len(t.text)))])

    def take(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def at(self, kind: str, *texts: str) -> bool:
        return self.tok.kind == kind and (not texts or self.tok.text in texts)

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"nested more than {MAX_DEPTH} levels deep")

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise self.fail("empty condition")
        node = self.or_()
        if not self.at("end"):
            raise self.fail(self._unexpected("`and`, `or`, an operator or the end"))
        return node

    def _unexpected(self, expected: str) -> str:
        t = self.tok
        if t.kind == "rp":
            return "unbalanced `)`"
        if t.kind == "lp" and self.i > 0 and self.tokens[self.i - 1].kind == "name":
            return "function calls are not allowed"
        if t.kind == "name" and t.text.lower() in KEYWORDS:
            return f"keywords are lower case: use `{t.text.lower()}`"
        found = "end of condition" if t.kind == "end" else f"`{t.text}`"
        return f"expected {expected}, found {found}"

    def or_(self) -> Node:
        node = self.and_()
        while self.at("kw", "or"):
            self.take()
            right = self.and_()
            node = Or(node, right, (node.span[0], right.span[1]))
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.at("kw", "and"):
            self.take()
            right = self.not_()
            node = And(node, right, (node.span[0], right.span[1]))
        return node

    def not_(self) -> Node:
        if self.at("kw", "not"):
            start = self.take().start
            self.nest()
            operand = self.not_()
            self.depth -= 1
            return Not(operand, (start, operand.span[1]))
        return self.comparison()

    def comparison(self) -> Node:
        left = self.sum_()
        if self.at("op") and self.tok.text in _COMPARISONS:
            op = self.take().text
            right = self.sum_()
            if self.at("op") and self.tok.text in _COMPARISONS:
                raise self.fail("chained comparisons are not supported; write `a < b and b < c`")
            return Compare(op, left, right, (left.span[0], right.span[1]))
        return left

    def sum_(self) -> Node:
        node = self.term()
        while self.at("op", "+", "-"):
            op = self.take().text
            right = self.term()
            node = Arith(op, node, right, (node.span[0], right.span[1]))
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.at("op", "*", "/"):
            op = self.take().text
            right = self.unary()
            node = Arith(op, node, right, (node.span[0], right.span[1]))
        return node

    def unary(self) -> Node:
        if self.at("op", "-"):
            start = self.take().start
            self.nest()
            operand = self.unary()
            self.depth -= 1
            return Neg(operand, (start, operand.span[1]))
        return self.primary()

    def primary(self) -> Node:
        t = self.tok
        if t.kind == "num":
            value = float(t.text)
            if not math.isfinite(value):
                raise self.fail("number out of range")
            self.take()
            return Number(value, (t.start, t.end))
        if t.kind == "kw" and t.text in ("true", "false"):
            self.take()
            return Bool(t.text == "true", (t.start, t.end))
        if t.kind == "name":
            self.take()
            if self.at("lp"):
                raise self.fail("function calls are not allowed")
            return Name(t.text, (t.start, t.end))
        if t.kind == "lp":
            self.take()
            self.nest()
            inner = self.or_()
            self.depth -= 1
            if not self.at("rp"):
                if self.at("end"):
                    raise self.fail("missing `)` for this `(`", t)
                raise self.fail(self._unexpected("`)`"))
            close = self.take()
            return replace(inner, span=(t.start, close.end))
        raise self.fail(self._unexpected("a number, a name, `not` or `(`"))


def parse(text: str) -> Node:
    """Parse ``text`` into an AST; raises :class:`ConditionError`."""
    if len(text) > MAX_LENGTH:
        raise ConditionError(text[:80], [Issue(f"longer than {MAX_LENGTH} characters", 0)])
    return _Parser(text).parse()
