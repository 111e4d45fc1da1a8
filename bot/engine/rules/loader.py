"""Read a rules file and refuse a bad one with file, line, key and what was expected.

YAML rather than TOML: the file is edited by people, comments are essential,
and PyYAML's composer keeps a line for every key, so a schema error deep in
``hedge.layers[1]`` can still be reported at the line the user has to fix.
YAML syntax errors, schema errors and condition errors all end up as one
:class:`RulesFileError` listing every problem, one per line.

Scalars are resolved by the YAML 1.2 core schema, not PyYAML's YAML 1.1 one:
in YAML 1.1 ``050`` is octal 40, ``1:30`` is base-60 90, ``yes``/``no``/``on``/
``off`` are booleans and ``2026-01-05`` a date, so a value the user wrote
would silently become another one. Here a number is read as written (``050``
is 50; ``0o17`` and ``0x1f`` only with their prefix), ``true``/``false`` are
the only booleans, and everything else stays text, which the schema then
refuses with file, line and key if a number was expected (``1:30``).
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from bot.engine.rules.schema import Rules
from bot.kernel.errors import RulesError

DEFAULT_RULES_RESOURCE: Final = "default_rules.yaml"
"""The shipped ALVH rules, package data of ``bot``."""

MAX_BYTES: Final = 1_000_000
"""A rules file is a page or two; anything far larger is not one."""

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a rules file, where to find it and what was expected."""

    origin: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.origin}:{self.line}" if self.line else self.origin
        first, *rest = self.message.split("\n")
        head = f"{where}: {self.key}: {first}" if self.key else f"{where}: {first}"
        return "\n".join([head, *rest])


class RulesFileError(RulesError):
    """A refused rules file; ``problems`` holds every problem found, in line order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: (p.line or 0, p.key)))
        super().__init__("\n".join(str(p) for p in self.problems))


# ------------------------------------------------------------------ public


def load_rules(path: str | os.PathLike[str]) -> Rules:
    """Load and validate a rules file; raises :class:`RulesFileError` (a RulesError)."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise RulesFileError([Problem(str(p), None, "", f"cannot read: {exc.strerror}")]) from None
    return load_rules_bytes(raw, str(p), path=p)


def load_rules_text(text: str, name: str = "<rules>") -> Rules:
    """Validate rules given as text (previews, tests); ``name`` stands in for the file."""
    return load_rules_bytes(text.encode("utf-8"), name)


def load_rules_bytes(raw: bytes, name: str, *, path: Path | None = None) -> Rules:
    """Validate rules given as the file's bytes; the hash is of exactly these bytes."""
    if len(raw) > MAX_BYTES:
        raise RulesFileError([Problem(name, None, "", f"larger than {MAX_BYTES} bytes")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RulesFileError(
            [Problem(name, None, "", f"not UTF-8 text (bad byte at offset {exc.start})")]
        ) from None
    data, tree = _parse_yaml(text, name)
    if not isinstance(data, Mapping):
        what = "the file is empty" if data is None else f"found {type(data).__name__}"
        raise RulesFileError(
            [Problem(name, 1, "", f"expected a mapping with `version: 1` at the top; {what}")]
        )
    try:
        return Rules.from_data(data, origin=name, sha256=hashlib.sha256(raw).hexdigest(), path=path)
    except ValidationError as exc:
        raise RulesFileError([_problem(name, tree, err) for err in exc.errors()]) from None


def load_rules_variant(
    raw: bytes, name: str, overrides: Mapping[str, object], *, path: Path | None = None
) -> Rules:
    """The rules file ``raw`` with some values replaced (``alvh backtest --sweep``).

    ``overrides`` maps a key to its new value: a threshold's name
    (``ad_min_days``) or a dotted path of mapping keys (``hedge.cooldown_sessions``,
    ``blackout.sessions_before.FOMC``, ``condor.backtest.take_profit``). The
    variant is validated exactly as a file would be; a bad value is refused at
    the line of the key it replaces, and an unknown key with the known ones.
    The hash is of the bytes and the overrides, so a variant never passes for
    the file itself.
    """
    text = raw.decode("utf-8-sig")
    data, tree = _parse_yaml(text, name)
    if not isinstance(data, dict):
        raise RulesFileError([Problem(name, 1, "", "expected a mapping with `version: 1`")])
    problems: list[Problem] = []
    for key, value in overrides.items():
        loc = override_path(data, key)
        if loc is None:
            problems.append(Problem(name, None, key, _unknown_override(data, key)))
            continue
        node: dict[str, Any] = data
        for part in loc[:-1]:
            node = node[part]
        node[loc[-1]] = value
    if problems:
        raise RulesFileError(problems)
    shown = ", ".join(f"{k}={v}" for k, v in overrides.items())
    digest = hashlib.sha256(raw + repr(sorted(overrides.items(), key=str)).encode()).hexdigest()
    try:
        return Rules.from_data(data, origin=f"{name} [{shown}]", sha256=digest, path=path)
    except ValidationError as exc:
        raise RulesFileError([_problem(name, tree, err) for err in exc.errors()]) from None


def override_path(data: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    """Where ``key`` sits in the parsed file: a threshold name, or an existing dotted path."""
    thresholds = data.get("thresholds")
    if "." not in key and isinstance(thresholds, Mapping) and key in thresholds:
        return ("thresholds", key)
    parts = tuple(key.split("."))
    node: object = data
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return None if isinstance(node, Mapping | list) else parts


def _unknown_override(data: Mapping[str, Any], key: str) -> str:
    known = [*(data.get("thresholds") or {}), *_leaf_paths(data)]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean `{close[0]}`?" if close else ""
    return ("not a threshold name or the dotted path of a value in the rules file "
            f"(e.g. ad_min_days, hedge.cooldown_sessions){hint}")


def _leaf_paths(node: object, prefix: str = "") -> Iterator[str]:
    if isinstance(node, Mapping):
        for k, v in node.items():
            yield from _leaf_paths(v, f"{prefix}.{k}" if prefix else str(k))
    elif not isinstance(node, list):
        yield prefix


def parse_value(text: str, name: str) -> object:
    """A value as the rules file would read it (``5``, ``0.5``, ``null``, ``weekly_cycle``)."""
    data, _ = _parse_yaml(f"value: {text}", name)
    value = data.get("value") if isinstance(data, Mapping) else None
    if isinstance(value, Mapping | list):
        raise RulesFileError([Problem(name, None, "", f"expected a single value, got {text!r}")])
    return value


def default_rules_path() -> Path:
    """Where the shipped rules live (inside the installed package)."""
    return Path(str(resources.files("bot").joinpath(DEFAULT_RULES_RESOURCE)))


def load_default_rules() -> Rules:
    """The shipped ALVH rules; a failure here is a packaging bug, not a user error."""
    return load_rules(default_rules_path())


# ------------------------------------------------------------------ YAML 1.2 core schema


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with the YAML 1.2 core schema's implicit types only.

    Source: YAML 1.2.2 spec, 10.3 "Core Schema" (https://yaml.org/spec/1.2.2/#103-core-schema).
    """

    yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012 - PyYAML's class registry

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        """Aliases (``*name``) are refused: a rules file has no use for them, and they
        are how a few lines expand into gigabytes or a cycle (``a: &x [*x]``)."""
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _AliasRefused(None, None, f"the alias *{event.anchor} is not allowed in a "
                                "rules file (write the value out)", event.start_mark)
        return super().compose_node(parent, index)


class _AliasRefused(yaml.composer.ComposerError):
    """Raised by :meth:`Yaml12Loader.compose_node` on a YAML alias."""


_CORE_SCHEMA: Final = (
    ("tag:yaml.org,2002:null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"true|True|TRUE|false|False|FALSE", list("tTfF")),
    ("tag:yaml.org,2002:int", r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", list("-+0123456789")),
    ("tag:yaml.org,2002:float",
     r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
     r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)", list("-+0123456789.")),
)
for _tag, _pattern, _first in _CORE_SCHEMA:
    Yaml12Loader.add_implicit_resolver(_tag, re.compile(f"^(?:{_pattern})$"), _first)


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    """Decimal as written (``050`` is 50), octal and hex only with ``0o``/``0x``."""
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


# ------------------------------------------------------------------ YAML with lines


@dataclass(slots=True)
class _Node:
    """Where a YAML value sits: the line of its key (or list item) and its children."""

    line: int
    keys: dict[str, _Node] = field(default_factory=dict)
    items: list[_Node] = field(default_factory=list)


def _parse_yaml(text: str, name: str) -> tuple[object, _Node]:
    try:
        loader = Yaml12Loader(text)  # its reader refuses control characters at once
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise RulesFileError([Problem(
            name, line, "", f"not a text file: character {_code(exc.character):#06x} is not "
            "allowed in YAML")]) from None
    try:
        root = loader.get_single_node()
        if root is None:
            return None, _Node(1)
        problems: list[Problem] = []
        tree = _index(root, 1, (), name, problems)
        if problems:
            raise RulesFileError(problems)
        return loader.construct_document(root), tree
    except _AliasRefused as exc:
        at = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise RulesFileError([Problem(name, at, "", str(exc.problem))]) from None
    except yaml.MarkedYAMLError as exc:
        raise RulesFileError([_syntax_problem(text, name, exc)]) from None
    except yaml.YAMLError as exc:
        raise RulesFileError([Problem(name, None, "", f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()


def _code(character: str | int) -> int:
    """PyYAML's ReaderError holds the character, or its code point for bytes input."""
    return character if isinstance(character, int) else ord(character)


def _index(node: yaml.Node, line: int, loc: Loc, name: str, problems: list[Problem]) -> _Node:
    out = _Node(line)
    if isinstance(node, yaml.MappingNode):
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            key_line = key_node.start_mark.line + 1
            if key in first_seen:
                problems.append(
                    Problem(
                        name,
                        key_line,
                        _dotted((*loc, key)),
                        f"duplicate key (first at line {first_seen[key]}); "
                        "YAML would silently keep only the last one",
                    )
                )
                continue
            first_seen[key] = key_line
            out.keys[key] = _index(value_node, key_line, (*loc, key), name, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.items.append(_index(item, item.start_mark.line + 1, (*loc, i), name, problems))
    return out


def _syntax_problem(text: str, name: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    what = exc.problem or "invalid YAML"
    if exc.context:
        started = exc.context_mark.line + 1 if exc.context_mark is not None else None
        at = f" (started at line {started})" if started and started != line else ""
        what = f"{exc.context}{at}: {what}"
    return Problem(name, line, _dotted(_yaml_path_at_error(text)), f"YAML syntax: {what}")


def _yaml_path_at_error(text: str) -> Loc:
    """The key path the YAML parser had reached when it failed.

    Walks the event stream (which fails at the same point as the composer)
    keeping a stack of mapping keys and sequence indices.
    """
    stack: list[list[Any]] = []  # [kind, key-or-index, expecting_key]

    def start_value() -> None:
        if stack and stack[-1][0] == "seq":
            stack[-1][1] += 1

    def end_value() -> None:
        if stack and stack[-1][0] == "map":
            stack[-1][2] = True

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                start_value()
                kind = "map" if isinstance(event, yaml.MappingStartEvent) else "seq"
                stack.append([kind, None if kind == "map" else -1, True])
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                stack.pop()
                end_value()
            elif isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
                top = stack[-1] if stack else None
                if top is not None and top[0] == "map" and top[2]:
                    top[1] = getattr(event, "value", None)
                    top[2] = False
                else:
                    start_value()
                    end_value()
    except yaml.YAMLError:
        pass
    loc: list[str | int] = []
    for kind, where, _ in stack:
        if kind == "seq" and where >= 0:
            loc.append(where)
        elif kind == "map" and where is not None:
            loc.append(str(where))
    return tuple(loc)


# ------------------------------------------------------------------ validation errors


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line(tree: _Node, loc: Loc) -> int:
    """Line of the deepest part of ``loc`` present in the file (a missing key's parent)."""
    node = tree
    for part in loc:
        if isinstance(part, int) and 0 <= part < len(node.items):
            node = node.items[part]
        elif str(part) in node.keys:
            node = node.keys[str(part)]
        else:
            break
    return node.line


def _problem(name: str, tree: _Node, err: Any) -> Problem:
    loc: Loc = tuple(err["loc"])
    ctx = err.get("ctx") or {}
    if err["type"] == "rules":
        loc = (*loc, *ctx.get("at", ()))
    return Problem(name, _line(tree, loc), _dotted(loc), _message(err, loc))


_PATTERN_HINT: Final = "a name of letters, digits, _ and - starting with a letter (at most 40)"


def _message(err: Any, loc: Loc) -> str:
    kind: str = err["type"]
    if kind in ("rules", "condition", "condition_type", "threshold_type", "condition_context"):
        return str(err["msg"])
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping of keys, got {_shown(err['input'])}"
    if kind == "list_type":
        return f"expected a list (lines starting with `- `), got {_shown(err['input'])}"
    if kind == "string_pattern_mismatch":
        return f"expected {_PATTERN_HINT}, got {_shown(err['input'])}"
    msg = str(err["msg"])
    if msg.startswith("Input should be "):
        msg = "expected " + msg.removeprefix("Input should be ")
    return f"{msg}, got {_shown(err['input'])}"


def _shown(value: object) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unknown_key(loc: Loc) -> str:
    model = _model_at(loc[:-1])
    if model is None:
        return "unknown key"
    known = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    hint = f"did you mean `{close[0]}`? " if close else ""
    return f"unknown key; {hint}expected one of: {', '.join(known)}"


def _model_at(loc: Loc) -> type[BaseModel] | None:
    model: type[BaseModel] = Rules
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            return None
        found = next(_models_in(info.annotation), None)
        if found is None:
            return None
        model = found
    return model


def _models_in(annotation: object) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    elif get_origin(annotation) is not None:
        for arg in get_args(annotation):
            yield from _models_in(arg)
