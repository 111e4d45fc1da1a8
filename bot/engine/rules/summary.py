"""Flat views of a rules file, for announcing what an edit changed.

A hot reload is announced to admins as a list of changed keys; a flat
``dotted.key -> value`` map (conditions as their text) makes that a plain
dictionary comparison and reads the same as the keys in error messages.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.engine.rules.schema import Rules


def thresholds_summary(rules: Rules) -> dict[str, object]:
    """Every setting of ``rules`` under its dotted key, in file order."""
    flat: dict[str, object] = {}
    _flatten(rules.model_dump(mode="python"), "", flat)
    return flat


def diff_thresholds(old: Rules, new: Rules) -> list[tuple[str, object, object]]:
    """``(key, old value, new value)`` for every setting that differs.

    A key present on one side only has ``None`` on the other.
    """
    before, after = thresholds_summary(old), thresholds_summary(new)
    keys = [*before, *(k for k in after if k not in before)]
    return [(k, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)]


def _flatten(value: object, prefix: str, out: dict[str, object]) -> None:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            _flatten(item, f"{prefix}[{i}]", out)
    else:
        out[prefix] = value
