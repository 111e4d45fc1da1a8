"""The rules documentation and the user copy cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from bot.engine.rules import NAMES, RulesFileError, load_rules_text
from bot.engine.rules.names import INDICATOR_NAMES, STATE_NAMES, Context
from bot.engine.rules.schema import Rules

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "rules" / "README.md"


def readme() -> str:
    return README.read_text(encoding="utf-8")


def test_user_rules_file_is_byte_identical_to_the_shipped_default() -> None:
    user = (ROOT / "rules" / "alvh.yaml").read_bytes()
    assert user == (ROOT / "bot" / "default_rules.yaml").read_bytes()


def test_readme_lists_every_name_with_its_type() -> None:
    text = readme()
    for name, spec in NAMES.items():
        row = re.search(rf"^\| `{name}` \| (\w+) \|", text, re.M)
        assert row, f"rules/README.md has no table row for `{name}`"
        assert row.group(1) == spec.kind.value, name


def test_readme_names_nothing_that_does_not_exist() -> None:
    rows = re.findall(r"^\| `(\w+)` \| (?:number|boolean) \|", readme(), re.M)
    assert sorted(rows) == sorted(NAMES)


def _keys(model: type[BaseModel]) -> set[str]:
    keys: set[str] = set()
    for key, info in model.model_fields.items():
        keys.add(key)
        stack = [info.annotation]
        while stack:
            ann = stack.pop()
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                keys |= _keys(ann)
            stack.extend(getattr(ann, "__args__", ()))
    return keys


def test_readme_documents_every_key() -> None:
    text = readme()
    keys = _keys(Rules)
    assert {"version", "override_when", "etp_symbol", "remove_when", "FOMC"} <= keys
    missing = sorted(k for k in keys if f"| `{k}` |" not in text)
    assert missing == []


def test_readme_documents_every_shipped_threshold() -> None:
    text = readme()
    rules = load_rules_text((ROOT / "bot" / "default_rules.yaml").read_text(encoding="utf-8"))
    assert [t for t in rules.thresholds if f"| `{t}` |" not in text] == []


def test_readme_error_example_is_what_the_loader_prints() -> None:
    block = re.search(r"```\n(rules/alvh\.yaml:\d+: .*?)```", readme(), re.S)
    assert block, "README lost its error example"
    text = (ROOT / "rules" / "alvh.yaml").read_text(encoding="utf-8")
    edited = text.replace('rsi < rsi_layer2"', 'rsii < rsi_layer2"')
    try:
        load_rules_text(edited, "rules/alvh.yaml")
    except RulesFileError as exc:
        assert str(exc) == block.group(1).rstrip("\n")
    else:
        raise AssertionError("the README's example edit was accepted")


def test_vocabulary_is_partitioned_and_contexts_are_real() -> None:
    assert set(INDICATOR_NAMES) | set(STATE_NAMES) == set(NAMES)
    assert not set(INDICATOR_NAMES) & set(STATE_NAMES)
    assert NAMES["layer_sessions_active"].allowed == frozenset({Context.LAYER_REMOVE})
    assert all(spec.doc.endswith(".") and spec.allowed for spec in NAMES.values())
