"""The condition language: parsing, typing, three-valued evaluation, explanations, safety."""

from __future__ import annotations

import builtins
import itertools
import math
import random
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from bot.engine.rules import Condition, ConditionError, Context, compile_condition
from bot.engine.rules.language import MAX_DEPTH, Check, parse, tokenize
from bot.kernel.errors import RulesError

ROOT = Path(__file__).resolve().parent.parent
THRESHOLDS: Mapping[str, float] = {"rsi_layer2": 40, "ad_min_days": 10, "term_ratio_layer3": 1.0}


def cond(text: str, context: Context = Context.LAYER_ADD) -> Condition:
    return compile_condition(text, THRESHOLDS, context=context)


def passes(text: str, **values: float | bool | None) -> bool:
    c = cond(text)
    verdict = c.evaluate(values)
    assert verdict.passed == c.holds(values), "fast path and explained path disagree"
    return verdict.passed


def error(text: str, context: Context = Context.LAYER_ADD) -> ConditionError:
    with pytest.raises(ConditionError) as info:
        cond(text, context)
    return info.value


# ------------------------------------------------------------------ arithmetic and precedence


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3 == 7", True),  # * binds tighter than +
        ("(1 + 2) * 3 == 9", True),
        ("10 - 4 - 3 == 3", True),  # left associative
        ("12 / 3 / 2 == 2", True),
        ("-3 + 5 == 2", True),  # unary minus
        ("- -3 == 3", True),
        ("-(2 + 3) == -5", True),
        ("2 * -3 == -6", True),
        ("0.95 < 1", True),
        ("1e2 == 100", True),
        (".5 == 0.5", True),
    ],
)
def test_arithmetic_and_precedence(text: str, expected: bool) -> None:
    assert passes(text) is expected


@pytest.mark.parametrize(
    ("op", "left", "right", "expected"),
    [
        ("<", 1, 2, True),
        ("<", 2, 2, False),
        ("<=", 2, 2, True),
        ("<=", 3, 2, False),
        (">", 3, 2, True),
        (">", 2, 2, False),
        (">=", 2, 2, True),
        (">=", 1, 2, False),
        ("==", 2, 2, True),
        ("==", 1, 2, False),
        ("!=", 1, 2, True),
        ("!=", 2, 2, False),
    ],
)
def test_every_comparison_operator(op: str, left: float, right: float, expected: bool) -> None:
    assert passes(f"vix {op} vix3m", vix=left, vix3m=right) is expected


def test_logic_precedence_not_binds_tighter_than_and_tighter_than_or() -> None:
    # "true or true and false" is true only if `and` binds tighter than `or`.
    assert passes("true or true and false") is True
    assert passes("(true or true) and false") is False
    assert passes("not false and false") is False  # (not false) and false
    assert passes("not (false and false)") is True
    assert passes("not rsi < 30", rsi=20) is False  # not (rsi < 30)


def test_thresholds_are_baked_in_and_names_listed() -> None:
    c = cond("rsi < rsi_layer2 and ad_divergence_days > ad_min_days")
    assert c.names == frozenset({"rsi", "ad_divergence_days"})
    assert dict(c.thresholds) == {"ad_min_days": 10, "rsi_layer2": 40}
    assert str(c) == "rsi < rsi_layer2 and ad_divergence_days > ad_min_days"
    assert c.holds({"rsi": 39.9, "ad_divergence_days": 11}) is True
    assert c.holds({"rsi": 40, "ad_divergence_days": 11}) is False


def test_boolean_names_and_equality_with_literals() -> None:
    assert passes("macd_cross_down", macd_cross_down=True) is True
    assert passes("macd_cross_down == true", macd_cross_down=True) is True
    assert passes("macd_cross_down != true", macd_cross_down=True) is False
    assert passes("not macd_cross_down", macd_cross_down=False) is True
    # numpy-ish and float-encoded booleans, as a DataFrame row gives them
    assert passes("macd_cross_down", macd_cross_down=1.0) is True
    assert passes("macd_cross_down", macd_cross_down=0.0) is False


# ------------------------------------------------------------------ errors


def test_chained_comparison_is_an_error_that_says_so() -> None:
    err = error("30 < rsi < 70")
    assert "chained comparisons are not supported" in str(err)
    assert err.issues[0].column == len("30 < rsi ")


def test_unknown_name_suggests_close_matches_with_caret() -> None:
    err = error("active_layers >= 1 and rsii < rsi_layer2")
    text = str(err)
    assert "unknown name `rsii`" in text
    assert "did you mean `rsi`" in text
    assert err.issues[0].column == 23
    assert "\n                           ^^^^" in text  # 4 spaces indent + 23 columns


def test_unknown_name_suggests_thresholds_too() -> None:
    assert "`rsi_layer2`" in str(error("rsi < rsi_layer3"))


def test_capitalised_keywords_get_a_hint() -> None:
    assert "keywords are lower case: use `and`" in str(error("rsi < 40 AND vix > 20"))
    assert "did you mean `true`" in str(error("True"))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("macd_cross_down < 3", "cannot be compared with `<`"),
        ("3 >= blackout", "cannot be compared with `>=`"),
        ("macd_cross_down + 1 > 0", "`+` needs numbers"),
        ("-blackout == 1", "`-` needs numbers"),
        ("rsi", "the rule needs true/false, but `rsi` is a number"),
        ("rsi and blackout", "`and` needs true/false"),
        ("blackout or vix", "`or` needs true/false"),
        ("not rsi", "`not` needs true/false"),
        ("rsi == blackout", "compares a number with true/false"),
        ("(rsi < 3) == true", "compare values, not conditions"),
        ("42", "is a number"),
    ],
)
def test_type_errors(text: str, fragment: str) -> None:
    assert fragment in str(error(text))


def test_every_type_error_is_reported_not_just_the_first() -> None:
    err = error("macd_cross_down < 3 and rsii > 2 and vixx > 1")
    assert len(err.issues) == 3


def test_layer_sessions_active_only_in_remove_when() -> None:
    text = "layer_sessions_active >= 5"
    assert cond(text, Context.LAYER_REMOVE).names == frozenset({"layer_sessions_active"})
    for context in (Context.LAYER_ADD, Context.CONDOR_ENTER, Context.WARNING):
        assert "only available in hedge.layers[].remove_when" in str(error(text, context))


def test_layer_deferred_not_available_outside_layer_decisions() -> None:
    assert cond("layer_deferred", Context.LAYER_ADD).names == frozenset({"layer_deferred"})
    assert "only available in" in str(error("layer_deferred", Context.CONDOR_ENTER))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty condition"),
        ("   ", "empty condition"),
        ("(rsi < 3", "missing `)`"),
        ("rsi < 3)", "unbalanced `)`"),
        ("rsi <", "found end of condition"),
        ("rsi < 3 vix", "expected `and`, `or`"),
        ("rsi = 3", "use `==`"),
        ("rsi => 3", "use `>=`"),
        ("rsi < 3 && vix > 1", "use `and`"),
        ("rsi < 3 || vix > 1", "use `or`"),
        ("!blackout", "use `not`"),
        ("rsi ** 2 > 1", "exponentiation"),
        ("rsi % 2 == 1", "not supported"),
        ("rsi < 1e400", "number out of range"),
        ("rsi < ٣", "unexpected character"),
    ],
)
def test_syntax_errors(text: str, fragment: str) -> None:
    assert fragment in str(error(text))


def test_threshold_that_shadows_an_indicator_is_refused_by_the_compiler() -> None:
    with pytest.raises(RulesError, match="may not shadow"):
        compile_condition("vix > 1", {"vix": 3}, context=Context.WARNING)


# ------------------------------------------------------------------ missing data


@pytest.mark.parametrize("missing", [None, math.nan, float("inf")])
def test_missing_value_fails_its_leaf_and_says_not_evaluable(missing: float | None) -> None:
    verdict = cond("rsi < rsi_layer2").evaluate({"rsi": missing})
    assert verdict.passed is False
    assert verdict.undetermined is True
    (check,) = verdict.checks
    assert check.no_data and not check.passed
    assert check.describe() == (
        "rsi = not evaluable < rsi_layer2 = 40 ✘ not evaluable (rsi: no value)")


def test_a_not_evaluable_value_says_why() -> None:
    """DESIGN.md §4: a condition needing a not-evaluable value does not hold, and says why."""
    values = {"vix_term_ratio": math.nan,
              "vix_term_ratio.why": "no VIX3M history up to this session",
              "active_layers": 2}
    verdict = cond("active_layers >= 2 and vix_term_ratio > term_ratio_layer3").evaluate(values)
    assert not verdict.passed and verdict.undetermined
    assert verdict.checks[1].describe() == (
        "vix_term_ratio = not evaluable > term_ratio_layer3 = 1 ✘ not evaluable "
        "(vix_term_ratio: no VIX3M history up to this session)")


def test_missing_value_under_not_is_not_a_pass() -> None:
    for text in ("not blackout", "not (rsi < 30)", "not not not blackout"):
        c = cond(text)
        values = {"blackout": math.nan, "rsi": None}
        assert c.holds(values) is False
        verdict = c.evaluate(values)
        assert verdict.passed is False
        assert all(not ch.passed and ch.no_data for ch in verdict.checks)


def test_absent_key_counts_as_no_data() -> None:
    verdict = cond("not blackout").evaluate({})
    assert not verdict.passed
    assert verdict.checks[0].missing == ("blackout",)


def test_three_valued_logic_with_missing_data() -> None:
    # unknown and false = false; unknown or true = true; not (unknown and false) = true
    assert passes("blackout and false", blackout=None) is False
    assert passes("blackout or true", blackout=None) is True
    assert passes("not (blackout and false)", blackout=None) is True
    assert passes("not (blackout or false)", blackout=None) is False


def test_division_by_zero_is_no_data_not_a_crash() -> None:
    verdict = cond("vix / vix3m > term_ratio_layer3").evaluate({"vix": 20, "vix3m": 0})
    assert not verdict.passed
    assert "not evaluable (division by zero or overflow)" in verdict.checks[0].describe()


# ------------------------------------------------------------------ explanations


def test_check_reports_leaf_text_values_operator_and_threshold() -> None:
    verdict = cond("rsi < rsi_layer2").evaluate({"rsi": 38.2})
    (check,) = verdict.checks
    assert isinstance(check, Check)
    assert (check.text, check.left, check.left_value) == ("rsi < rsi_layer2", "rsi", 38.2)
    assert (check.op, check.right, check.right_value) == ("<", "rsi_layer2", 40)
    assert check.passed
    assert check.describe() == "rsi = 38.2 < rsi_layer2 = 40 ✔"


def test_describe_formats() -> None:
    values = {"ad_divergence_days": 12, "blackout": False, "vix_term_ratio": 0.98765, "rsi": 50}
    c = cond("ad_divergence_days > 10 and not blackout and vix_term_ratio > term_ratio_layer3")
    lines = c.evaluate(values).describe().split("\n")
    assert lines == [
        "ad_divergence_days = 12 > 10 ✔",
        "not blackout (blackout = false) ✔",
        "vix_term_ratio = 0.9877 > term_ratio_layer3 = 1 ✘",
    ]
    negated = cond("not (rsi < 60)").evaluate(values).checks[0]
    assert negated.describe() == "not (rsi = 50 < 60) ✘"
    assert negated.holds is True and negated.negated and not negated.passed


@pytest.mark.parametrize(("text", "values", "observed", "key"), [
    # A failed comparison is shown with the operator that held (issue 11).
    ("vix < condor_max_vix", {"vix": 70.2}, "vix = 70.2 ≥ condor_max_vix = 35",
     "vix ≥ condor_max_vix = 35"),
    ("rsi <= 30", {"rsi": 31}, "rsi = 31 > 30", "rsi > 30"),
    ("rsi > rsi_layer2", {"rsi": 40}, "rsi = 40 ≤ rsi_layer2 = 40", "rsi ≤ rsi_layer2 = 40"),
    ("rsi >= 30", {"rsi": 29.5}, "rsi = 29.5 < 30", "rsi < 30"),
    ("rsi == 30", {"rsi": 29}, "rsi = 29 ≠ 30", "rsi ≠ 30"),
    ("rsi != 30", {"rsi": 30}, "rsi = 30 = 30", "rsi = 30"),
    # A passed one keeps its own operator, in the same notation.
    ("rsi >= 30", {"rsi": 31}, "rsi = 31 ≥ 30", "rsi ≥ 30"),
    # Under a `not`, what was true is the inner comparison itself.
    ("not (rsi < 60)", {"rsi": 50}, "rsi = 50 < 60", "rsi < 60"),
    ("not blackout", {"blackout": True}, "blackout = true", "blackout = true"),
    ("vix < condor_max_vix", {"vix": None}, "vix not evaluable (no value)",
     "vix not evaluable (no value)"),
    ("vix / vix3m > 1", {"vix": 20, "vix3m": 0}, "vix / vix3m > 1: division by zero or overflow",
     "vix / vix3m > 1: division by zero or overflow"),
])
def test_observed_says_what_was_true_not_the_rule(
    text: str, values: dict[str, object], observed: str, key: str
) -> None:
    (check,) = compile_condition(text, {"condor_max_vix": 35, "rsi_layer2": 40},
                                 context=Context.CONDOR_ENTER).evaluate(values).checks
    assert check.observed() == observed
    assert check.observed(with_value=False) == key


def test_every_leaf_is_reported_even_after_short_circuit() -> None:
    c = cond("macd_cross_down and rsi < 30 or vix > 40 or true")
    verdict = c.evaluate({"macd_cross_down": False, "rsi": 25, "vix": 10})
    assert verdict.passed
    assert [ch.text for ch in verdict.checks] == [
        "macd_cross_down",
        "rsi < 30",
        "vix > 40",
        "true",
    ]
    assert [ch.left_value for ch in verdict.checks] == [False, 25, 10, True]


def test_parenthesised_leaf_keeps_its_source_text() -> None:
    verdict = cond("(vix - vix3m) * 2 > 1").evaluate({"vix": 21, "vix3m": 20})
    assert verdict.checks[0].left == "(vix - vix3m) * 2"
    assert verdict.checks[0].describe() == "(vix - vix3m) * 2 = 2 > 1 ✔"


# ------------------------------------------------------------------ safety


JUNK = [
    "__import__('os')",
    "__import__('os').system('true')",
    "().__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "lambda: 1",
    "lambda x: x",
    "rsi.real > 1",
    "rsi[0] > 1",
    "'abc' == 'abc'",
    '"x"',
    "open('/etc/passwd')",
    "exec('1')",
    "eval('1')",
    "rsi if True else vix",
    "[x for x in ()]",
    "{}",
    "vix; import os",
    "vix > 1 # comment",
    "f'{rsi}'",
    "rsi @ vix",
    "rsi := 3",
    "1 < 2 < 3",
    "(" * (MAX_DEPTH + 5) + "true" + ")" * (MAX_DEPTH + 5),
    "not " * (MAX_DEPTH + 5) + "true",
    "-" * (MAX_DEPTH + 5) + "1 > 0",
    " or ".join(["true"] * 500),
    "x" * 5000,
]


@pytest.mark.parametrize("text", JUNK)
def test_junk_is_rejected_with_rules_error(text: str) -> None:
    with pytest.raises(RulesError):
        cond(text)


def _forbidden(*_args: object, **_kwargs: object) -> object:
    raise AssertionError("the condition language must never call eval/exec/compile/__import__")


def test_fuzz_never_raises_anything_but_rules_error_and_never_executes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pieces = [
        "rsi", "vix", "blackout", "macd_cross_down", "rsi_layer2", "and", "or", "not",
        "true", "false", "(", ")", "<", "<=", ">", ">=", "==", "!=", "+", "-", "*", "/",
        "1", "0.5", "-3", ".", "'", "[", "]", ",", ":", "=", "!", "__import__", "lambda",
        "__class__", "os", "\n", "\t", "é", "\x00", "1e", "1e+", "0x1F", "#",
    ]  # fmt: skip
    monkeypatch.setattr(builtins, "eval", _forbidden)
    monkeypatch.setattr(builtins, "exec", _forbidden)
    monkeypatch.setattr(builtins, "compile", _forbidden)
    rng = random.Random(20260727)
    accepted = 0
    for _ in range(3000):
        text = " ".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        try:
            c = cond(text)
        except RulesError:
            continue
        accepted += 1
        c.evaluate({"rsi": 30.0, "vix": None, "blackout": True, "macd_cross_down": False})
    assert accepted > 0  # the generator also produces valid conditions


def test_language_modules_have_no_dynamic_execution() -> None:
    rules_dir = ROOT / "bot" / "engine" / "rules"
    for module in ("syntax", "typecheck", "evaluate", "language"):
        source = (rules_dir / f"{module}.py").read_text(encoding="utf-8")
        assert not re.search(r"(?<![.\w])(eval|exec|compile|getattr|__import__)\(", source)
    for path in rules_dir.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"(?<![.\w])(eval|exec|__import__)\(|import ast\b", source), path


def test_tokens_and_ast_are_plain_data() -> None:
    assert [t.kind for t in tokenize("not (rsi <= 3.5)")] == [
        "kw", "lp", "name", "op", "num", "rp", "end",
    ]  # fmt: skip
    tree = parse("a or b")
    with pytest.raises(AttributeError):
        tree.left = tree.right  # type: ignore[misc,union-attr]


# ------------------------------------------------------------------ fast path
# (its speed: bench/bench_rules.py)


def test_the_fast_path_agrees_with_the_explained_one_on_a_grid() -> None:
    """Backtests use ``holds``; alerts show ``evaluate``: one answer for both, on every
    combination of values at, either side of, and missing from each threshold."""
    conditions = [
        cond("macd_divergence_days >= 1 and ad_divergence_days > ad_min_days"),
        cond("active_layers >= 1 and rsi < rsi_layer2"),
        cond("active_layers >= 2 and vix_term_ratio > term_ratio_layer3"),
        cond("not blackout and active_layers < 2 and vix < 35"),
        cond("macd_divergence_days == 0 or ad_divergence_days == 0 or rsi > 50"),
    ]
    grid = {
        "macd_divergence_days": (0, 1, None),
        "ad_divergence_days": (0, 10, 11, None),
        "rsi": (39.9, 40.0, 50.1, None),
        "vix": (34.9, 35.0, None),
        "vix_term_ratio": (1.0, 1.01, None),
        "active_layers": (0, 1, 2),
        "blackout": (False, True, None),
    }
    rows = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    verdicts = [(c.evaluate(row), c.holds(row)) for row in rows for c in conditions]
    assert all(explained.passed == fast for explained, fast in verdicts)
    assert {(v.passed, v.undetermined) for v, _ in verdicts} == {
        (True, False), (False, False), (False, True)}  # held, failed, missing data


def test_values_from_a_dataframe_row_work() -> None:
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(
        {"rsi": [38.2, np.nan], "macd_cross_down": [True, False], "vix": [20, 21]},
        index=pd.to_datetime(["2026-07-27", "2026-07-28"]),
    )
    c = cond("rsi < rsi_layer2 and macd_cross_down and vix > 19")
    first, second = (row.to_dict() for _, row in frame.iterrows())
    assert isinstance(first["rsi"], np.floating | float)
    assert c.evaluate(first).passed
    assert c.evaluate(second).checks[0].no_data
    assert not c.holds({"rsi": pd.NA, "macd_cross_down": np.bool_(True), "vix": np.int64(20)})
    assert c.holds({"rsi": np.float64(1), "macd_cross_down": np.bool_(True), "vix": np.int64(20)})
    assert not c.holds({"rsi": "1", "macd_cross_down": True, "vix": 20})  # text is not a number
