"""Loading rules files: the shipped default, and every kind of bad file refused precisely."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from bot.engine.rules import (
    Condition,
    Rules,
    RulesFileError,
    diff_thresholds,
    load_default_rules,
    load_rules,
    load_rules_text,
    thresholds_summary,
)
from bot.kernel.errors import RulesError
from bot.kernel.models import EventKind

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "bot" / "default_rules.yaml"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "rules"
BAD_FIXTURES = sorted(p for p in FIXTURES.glob("*.yaml") if p.name != "valid_minimal.yaml")


def default_text() -> str:
    return DEFAULT.read_text(encoding="utf-8")


def refused(text: str, name: str = "test.yaml") -> RulesFileError:
    with pytest.raises(RulesFileError) as info:
        load_rules_text(text, name)
    return info.value


def line_of(text: str, fragment: str) -> int:
    """1-based line of the only line containing ``fragment``."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if fragment in line]
    assert len(hits) == 1, f"{fragment!r} found on lines {hits}"
    return hits[0]


def mutate(old: str, new: str) -> tuple[str, int]:
    """The default text with one line changed, and the number of the (last) new line."""
    text = default_text()
    assert text.count(old) == 1, old
    at = text.index(old)
    return text.replace(old, new), text[:at].count("\n") + new.rstrip("\n").count("\n") + 1


# ------------------------------------------------------------------ the shipped default


def test_default_rules_load_and_encode_the_methodology() -> None:
    rules = load_rules(DEFAULT)
    assert rules.version == 1
    assert rules.path == DEFAULT
    assert [layer.name for layer in rules.hedge.layers] == ["layer1", "layer2", "layer3"]
    layer1 = rules.hedge.layers[0]
    # DESIGN: MACD divergence AND an A/D divergence lasting more than 10 sessions.
    assert layer1.add_when.names == frozenset({"macd_divergence_days", "ad_divergence_days"})
    assert rules.thresholds["ad_min_days"] == 10
    assert "ad_divergence_days > ad_min_days" in str(layer1.add_when)
    state = {"macd_divergence_days": 3, "ad_divergence_days": 10}
    assert not layer1.add_when.holds(state)
    assert layer1.add_when.holds({**state, "ad_divergence_days": 11})
    assert rules.hedge.layers[1].add_when.holds({"active_layers": 1, "rsi": 39})
    assert rules.hedge.layers[2].add_when.holds({"active_layers": 2, "vix_term_ratio": 1.05})
    # Blackout override is the same signal pair.
    assert rules.blackout.override_when.holds({**state, "ad_divergence_days": 11})
    assert rules.blackout.sessions(EventKind.FOMC) == 2
    assert 0.15 <= rules.condor.target_delta.put <= 0.25
    assert 1 <= rules.hedge.budget_per_layer_pct <= 2
    assert rules.indicators.lookback_sessions >= 250


def test_default_layer1_does_not_come_off_while_spx_falls() -> None:
    layer1 = load_rules(DEFAULT).hedge.layers[0]
    falling = {
        "macd_divergence_days": 0,  # divergences end when SPX leaves its high...
        "ad_divergence_days": 0,
        "macd_hist": -4.0,  # ...but momentum is negative: keep the hedge
        "rsi": 35.0,
        "layer_sessions_active": 20,
    }
    assert not layer1.remove_when.holds(falling)
    recovered = {**falling, "macd_hist": 1.0, "rsi": 55.0}
    # ...and breadth must confirm again (McClellan oscillator above zero) before it comes off.
    assert not layer1.remove_when.holds({**recovered, "mcclellan_oscillator": -12.0})
    assert layer1.remove_when.holds({**recovered, "mcclellan_oscillator": 12.0})


def test_default_condor_entry() -> None:
    enter = load_rules(DEFAULT).condor.enter_when
    calm = {"blackout": False, "active_layers": 0, "vix": 16.0}
    assert enter.holds(calm)
    assert not enter.holds({**calm, "blackout": True})
    assert not enter.holds({**calm, "blackout": None})  # unknown calendar: no go
    assert not enter.holds({**calm, "vix": 40.0})


def test_hash_is_of_the_file_bytes_and_stable() -> None:
    first, second = load_rules(DEFAULT), load_rules(DEFAULT)
    assert first.sha256 == second.sha256 == hashlib.sha256(DEFAULT.read_bytes()).hexdigest()
    assert load_rules_text(default_text(), "preview").sha256 == first.sha256
    edited = load_rules_text(default_text().replace("rsi_layer2: 40", "rsi_layer2: 38"))
    assert edited.sha256 != first.sha256


def test_load_default_rules_uses_package_data() -> None:
    assert load_default_rules().sha256 == load_rules(DEFAULT).sha256


def test_default_file_spells_out_every_key() -> None:
    """Users see every knob in the file; nothing silently comes from a code default."""
    rules = load_rules(DEFAULT)

    def unset(model: object, where: str) -> list[str]:
        if not isinstance(model, BaseModel):
            return []
        out = [f"{where}.{k}" for k in type(model).model_fields if k not in model.model_fields_set]
        for key in model.model_fields_set:
            value = getattr(model, key)
            items = value if isinstance(value, list) else [value]
            for item in items:
                out += unset(item, f"{where}.{key}")
        return out

    assert unset(rules, "") == []


def test_conditions_listing_has_dotted_keys_in_file_order() -> None:
    keys = [key for key, _ in load_rules(DEFAULT).conditions()]
    assert keys[:3] == ["blackout.override_when", "condor.enter_when", "hedge.layers[0].add_when"]
    assert all(isinstance(c, Condition) for _, c in load_rules(DEFAULT).conditions())


# ------------------------------------------------------------------ bad files (fixtures)


@pytest.mark.parametrize("path", BAD_FIXTURES, ids=lambda p: p.stem)
def test_bad_fixture_names_file_line_and_key(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    key = re.search(r"^# expect-key: (.+)$", text, re.M)
    message = re.search(r"^# expect-message: (.+)$", text, re.M)
    assert key and message, "fixture header missing"
    line = line_of(text, "# <-- error")
    with pytest.raises(RulesFileError) as info:
        load_rules(path)
    err = info.value
    assert isinstance(err, RulesError)
    assert len(err.problems) == 1, str(err)
    assert str(err).startswith(f"{path}:{line}: {key.group(1)}: ")
    assert message.group(1) in str(err)


def test_valid_minimal_fixture_loads() -> None:
    rules = load_rules(FIXTURES / "valid_minimal.yaml")
    assert rules.indicators.macd.slow == 26  # defaults fill what the file leaves out
    assert rules.hedge.instrument.months_out_max == 6


def test_condition_error_shows_column_caret() -> None:
    text, line = mutate(
        'add_when: "active_layers >= 1 and rsi < rsi_layer2"',
        'add_when: "active_layers >= 1 and rsii < rsi_layer2"',
    )
    err = refused(text, "alvh.yaml")
    assert str(err).splitlines() == [
        f"alvh.yaml:{line}: hedge.layers[1].add_when: unknown name `rsii`; "
        "did you mean `rsi`? (column 24)",
        "    active_layers >= 1 and rsii < rsi_layer2",
        "                           ^^^^",
    ]


# ------------------------------------------------------------ bad files (edits of the default)


@pytest.mark.parametrize(
    ("old", "new", "key", "fragment"),
    [
        ("  wing_width: 50 ", "  wing_width: 52 ", "condor.wing_width", "multiple of strike_step"),
        ("  dte: 45 ", "  dte: 0 ", "condor.dte", "greater than 0"),
        ("  expiry: monthly ", "  expiry: quarterly ", "condor.expiry", "'monthly' or 'weekly'"),
        ("    call: 0.16", "    call: -0.2", "condor.target_delta.call", "greater than 0"),
        ("  risk_free_rate: 0.045 ", "  risk_free_rate: 4.5 ", "condor.risk_free_rate", "0.045"),
        ("  max_layers: 3 ", "  max_layers: 2 ", "hedge.max_layers", "max_layers is 2"),
        ("  max_total_pct: 4.5 ", "  max_total_pct: 1 ", "hedge.max_total_pct", "below"),
        ("    - name: layer3", "    - name: layer2", "hedge.layers[2].name", "used twice"),
        ("    - name: layer2", "    - name: 2nd layer", "hedge.layers[1].name", "letters, digits"),
        ("    kind: vx_future ", "    kind: etp ", "hedge.instrument.kind", "etp_symbol"),
        ("    etp_symbol: null ", "    etp_symbol: VXX ", "hedge.instrument.etp_symbol", "only"),
        ("    etp_symbol: null ", "    etp_symbol: SVXY ", "hedge.instrument.etp_symbol", "VXX"),
        ("    months_out_max: 6\n", "    months_out_max: 2\n", "hedge.instrument.months_out_max",
         "at least months_out_min"),
        ("  lookback_sessions: 300 ", "  lookback_sessions: 100 ", "indicators.lookback_sessions",
         "greater than or equal to 250"),
        ("    fast: 12               #", "    fast: 30               #", "indicators.macd.fast",
         "less than slow"),
        ("    min_separation: 5 ", "    min_separation: 63 ",
         "indicators.divergence.min_separation", "less than window"),
        ("    FOMC: 2", "    FOMC: -1", "blackout.sessions_before.FOMC", "greater than or equal"),
        ("    FOMC: 2", "    FOMC: 2\n    ECB: 1", "blackout.sessions_before.ECB", "unknown key"),
        ("  rsi_layer2: 40 ", "  rsi_layer2: forty ", "thresholds.rsi_layer2", "expected a number"),
        ("  rsi_layer2: 40 ", "  rsi_layer2: true ", "thresholds.rsi_layer2", "expected a number"),
        ("  condor_max_layers: 2 ", "  condor_max_layers: 2\n  and: 3 ", "thresholds.and",
         "keyword"),
        ("  cooldown_sessions: 5 ", "  cooldown_sessions: 2.5 ", "hedge.cooldown_sessions",
         "valid integer"),
        ("    when: \"ad_divergence_streak == 1\"", "    when: 3", "warnings[2].when",
         "expected a condition"),
        ("  - name: macd_divergence_started ", "  - name: ad_divergence_started ",
         "warnings[3].name", "used twice"),
        ("version: 1", "version: 2", "version", "expected 1"),
    ],
)  # fmt: skip
def test_bad_edit_names_exact_line_and_key(old: str, new: str, key: str, fragment: str) -> None:
    text, line = mutate(old, new)
    err = refused(text, "rules/alvh.yaml")
    assert len(err.problems) == 1, str(err)
    (problem,) = err.problems
    assert (problem.line, problem.key) == (line, key), str(err)
    assert str(err).startswith(f"rules/alvh.yaml:{line}: {key}: ")
    assert fragment in problem.message


def test_missing_required_key_points_at_its_parent() -> None:
    text, _ = mutate("  max_total_pct: 4.5 ", "  # max_total_pct removed ")
    err = refused(text)
    (problem,) = err.problems
    assert problem.key == "hedge.max_total_pct"
    assert problem.line == line_of(text, "hedge:")
    assert "required key is missing" in problem.message


def test_several_problems_are_listed_one_per_line_in_line_order() -> None:
    text = (
        default_text()
        .replace("  dte: 45 ", '  dte: "45" ')
        .replace("    put: 0.16", "    put: 0.7")
        .replace('when: "weekly_macd_cross_down"', 'when: "weekly_macd_cross_dwn"')
    )
    err = refused(text, "f.yaml")
    assert [p.key for p in err.problems] == [
        "condor.target_delta.put",
        "condor.dte",
        "warnings[0].when",
    ]
    lines = [line for line in str(err).splitlines() if line.startswith("f.yaml:")]
    assert len(lines) == 3
    assert [p.line for p in err.problems] == sorted(p.line or 0 for p in err.problems)


def test_wrong_section_shapes_and_misspelt_sections() -> None:
    text = (
        default_text()
        .replace("warnings:\n", "warning:\n")
        .replace("  layers:                  # ordered, layer 1 first\n", "  layers: {}\n  x:\n")
    )
    messages = {p.key: p.message for p in refused(text).problems}
    assert messages["warning"].startswith("unknown key; did you mean `warnings`?")
    assert messages["hedge.layers"] == "expected a list (lines starting with `- `), got a mapping"
    assert "hedge.x" in messages


def test_a_bad_threshold_value_does_not_also_make_its_name_unknown() -> None:
    text, line = mutate("  rsi_layer2: 40 ", "  rsi_layer2: .inf ")
    err = refused(text)
    assert [(p.line, p.key) for p in err.problems] == [(line, "thresholds.rsi_layer2")]


def test_yaml_bool_condition_is_accepted_as_literal() -> None:
    text, _ = mutate(
        '  override_when: "macd_divergence_days >= macd_div_min_days and ad_divergence_days > '
        'ad_min_days"',
        "  override_when: false",
    )
    rules = load_rules_text(text)
    assert str(rules.blackout.override_when) == "false"
    assert not rules.blackout.override_when.holds({})


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("- a\n- b\n", "found list"),
        ("version: 1\ncondor: !!python/object:os.system {}\n", "YAML syntax"),
        ("version: 1\nthresholds: {a: 1\n", "YAML syntax"),
    ],
)
def test_not_a_rules_file(text: str, fragment: str) -> None:
    assert fragment in str(refused(text))


def test_python_tags_are_refused_not_executed() -> None:
    err = refused("version: !!python/object/apply:os.system ['echo hacked']\n", "evil.yaml")
    assert "evil.yaml:1:" in str(err)
    assert "could not determine a constructor" in str(err)


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(RulesFileError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("version: 1\n# caf\xe9\n".encode("latin-1"))
    with pytest.raises(RulesFileError, match="not UTF-8"):
        load_rules(bad)


def test_conditions_cannot_be_validated_without_the_file_thresholds() -> None:
    data = yaml.safe_load(default_text())
    with pytest.raises(ValidationError, match=r"validate with Rules\.from_data"):
        Rules.model_validate(data)
    assert Rules.from_data(data).hedge.layers[0].add_when.thresholds["ad_min_days"] == 10


# ------------------------------------------------------------------ summaries and diffs


def test_thresholds_summary_is_flat_with_conditions_as_text() -> None:
    summary = thresholds_summary(load_rules(DEFAULT))
    assert summary["indicators.macd.fast"] == 12
    assert summary["thresholds.ad_min_days"] == 10
    assert summary["blackout.sessions_before.CPI"] == 1
    assert summary["hedge.layers[1].add_when"] == "active_layers >= 1 and rsi < rsi_layer2"
    assert summary["hedge.instrument.etp_symbol"] is None
    assert all(isinstance(v, int | float | str | type(None)) for v in summary.values())


def test_diff_thresholds_lists_changed_added_and_removed_keys() -> None:
    old = load_rules(DEFAULT)
    text = (
        default_text()
        .replace("  rsi_layer2: 40 ", "  rsi_layer2: 38 ")
        .replace("  condor_max_vix: 35 ", "  condor_max_vix: 35\n  new_one: 7 ")
        .replace("  cooldown_sessions: 5 ", "  cooldown_sessions: 10 ")
    )
    new = load_rules_text(text)
    assert diff_thresholds(old, new) == [
        ("thresholds.rsi_layer2", 40, 38),
        ("hedge.cooldown_sessions", 5, 10),
        ("thresholds.new_one", None, 7),
    ]
    assert diff_thresholds(old, load_rules(DEFAULT)) == []


@pytest.mark.parametrize(("body", "line", "code"), [(b"\x00\x01binary", 1, "0x0000"),
                                                    (b"version: 1\n\x07bell\n", 2, "0x0007")])
def test_a_control_character_is_refused_at_its_line(tmp_path: Path, body: bytes,
                                                    line: int, code: str) -> None:
    """A binary or corrupted file is a refused rules file (so a hot reload tells the
    admins and keeps the running rules), not an unexpected error."""
    path = tmp_path / "alvh.yaml"
    path.write_bytes(body)
    with pytest.raises(RulesError) as err:
        load_rules(path)
    assert str(err.value).endswith(
        f"{path}:{line}: not a text file: character {code} is not allowed in YAML")


@pytest.mark.parametrize(("body", "line", "alias"), [
    ("a: &x [*x]\n", 1, "x"),  # a cycle: was a RecursionError reported as a bug
    ("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
     + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
               for p, c in zip("abcdefgh", "bcdefghi", strict=True)), 2, "a"),  # 9^9 items
    ("version: 1\nthresholds:\n  rsi_layer2: &r 40\n  rsi_low: *r\n", 4, "r"),
])
def test_yaml_aliases_are_refused_at_their_line(tmp_path: Path, body: str, line: int,
                                                alias: str) -> None:
    """A few lines of aliases expand into gigabytes (9 levels of 9: 387 million items)
    or a cycle; a rules file has no use for them, so the first one is refused."""
    path = tmp_path / "alvh.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(RulesError) as err:
        load_rules(path)
    assert str(err.value).endswith(
        f"{path}:{line}: the alias *{alias} is not allowed in a rules file (write the value out)")
