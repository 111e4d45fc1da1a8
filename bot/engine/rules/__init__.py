"""The rules file: a safe condition language, its schema, loading and checking.

The rules are data, never code: conditions are parsed by our own small parser
over a documented vocabulary (:mod:`bot.engine.rules.names`) and a bad file is refused
with file, line and key, so a running bot can keep its last good rules.
"""

from bot.engine.rules.language import Check, Condition, ConditionError, Verdict, compile_condition
from bot.engine.rules.loader import (
    Problem,
    RulesFileError,
    default_rules_path,
    load_default_rules,
    load_rules,
    load_rules_bytes,
    load_rules_text,
    load_rules_variant,
    parse_value,
)
from bot.engine.rules.names import NAMES, Context, Kind, NameSpec
from bot.engine.rules.schema import Rules
from bot.engine.rules.summary import diff_thresholds, thresholds_summary

__all__ = [
    "NAMES",
    "Check",
    "Condition",
    "ConditionError",
    "Context",
    "Kind",
    "NameSpec",
    "Problem",
    "Rules",
    "RulesFileError",
    "Verdict",
    "compile_condition",
    "default_rules_path",
    "diff_thresholds",
    "load_default_rules",
    "load_rules",
    "load_rules_bytes",
    "load_rules_text",
    "load_rules_variant",
    "parse_value",
    "thresholds_summary",
]
