"""`alvh rules check`: exit codes and what the summary shows."""

from __future__ import annotations

from pathlib import Path

from bot.engine.rules import load_rules
from bot.engine.rules.check import check_command

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "rules" / "alvh.yaml"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "rules"


def test_valid_file_exits_0_with_a_summary() -> None:
    code, out = check_command(DEFAULT)
    rules = load_rules(DEFAULT)
    assert code == 0
    assert out.startswith(f"{DEFAULT}: OK\nsha256: {rules.sha256}\n")
    for layer in rules.hedge.layers:
        assert f"add when:    {layer.add_when}" in out
        assert f"remove when: {layer.remove_when}" in out
    assert "Blackout (sessions before the event): FOMC 2, CPI 1, PPI 1" in out
    assert f"a layer may still go on when: {rules.blackout.override_when}" in out
    assert "short put delta 0.16, short call delta 0.16, wings 50 points" in out
    assert "45 days to expiry (monthly SPX, AM-settled)" in out
    assert "VIX futures 3-6 months out" in out
    assert "1.5 % of capital per layer, at most 4.5 % in total, at most 3 layers" in out
    assert "  ad_min_days = 10\n" in out
    assert "  term_ratio_layer3 = 1.0\n" in out
    assert "weekly_macd_zero_cross_down: weekly_macd_cross_down" in out
    assert "note:" not in out  # 3 × 1.5 fits under 4.5


def check_edited(tmp_path: Path, *edits: tuple[str, str]) -> tuple[int, str]:
    """``check_command`` on the default rules with each (old, new) replaced once; an edit
    that matches nothing fails the test rather than checking the unedited file."""
    text = DEFAULT.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "edited.yaml"
    path.write_text(text, encoding="utf-8")
    return check_command(path)


def test_summary_warns_when_the_total_cap_binds(tmp_path: Path) -> None:
    code, out = check_edited(tmp_path, ("max_total_pct: 4.5", "max_total_pct: 3.5"))
    assert code == 0
    assert "note: only 2 whole layer(s) fit under max_total_pct" in out


def test_summary_notes_a_max_layers_above_the_layers_defined(tmp_path: Path) -> None:
    code, out = check_edited(tmp_path, ("max_layers: 3 ", "max_layers: 5 "))
    assert code == 0
    assert "note: max_layers is 5 but 3 layer(s) are defined; at most 3 can be on" in out


def test_bad_file_exits_1_with_every_problem() -> None:
    path = FIXTURES / "unknown_name.yaml"
    code, out = check_command(path)
    assert code == 1
    first, second, *rest = out.splitlines()
    assert first == f"{path}: refused, 1 problem"
    marked = [
        i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "# <-- error" in line
    ]  # fmt: skip
    assert second.startswith(f"{path}:{marked[0]}: hedge.layers[1].add_when: unknown name `rsii`")
    assert rest[-1].strip() == "^^^^"


def test_a_name_that_is_no_file_exits_2(tmp_path: Path) -> None:
    assert check_command(tmp_path / "nope.yaml") == (2, f"{tmp_path / 'nope.yaml'}: no such file")
    assert check_command(tmp_path) == (2, f"{tmp_path}: is a directory")


def test_summary_notes_a_threshold_no_condition_uses(tmp_path: Path) -> None:
    code, out = check_edited(tmp_path, ("thresholds:\n", "thresholds:\n  unused_thing: 7\n"))
    assert code == 0
    assert "  note: unused_thing is used by no condition: changing it changes nothing" in out
    assert out.count("is used by no condition") == 1  # every shipped threshold is used


def test_summary_says_no_blackout_when_every_count_is_0(tmp_path: Path) -> None:
    code, out = check_edited(tmp_path, *((f"    {kind}: {n}\n", f"    {kind}: 0\n")
                                         for kind, n in (("FOMC", 2), ("CPI", 1), ("PPI", 1))))
    assert code == 0
    assert "Blackout: none (every kind's count of sessions is 0)" in out
    assert "a layer may still go on when" not in out
