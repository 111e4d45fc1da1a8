"""Which rules file is in force, and a rules file read as written (issue 11).

- the rule: ALVH_RULES_FILE, else ./rules/alvh.yaml when it exists, else the
  packaged default; said by `alvh rules check`, at start, in /rules and in every
  alert footer beside the hash; `alvh rules init [PATH]` writes the default;
- YAML 1.1 surprises (octal, base 60, yes/no/on/off, dates) read as written
  or refused with file, line and key;
- negative or nonsensical numbers refused with file, line and key.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.app.cli import main
from bot.app.queries import EngineQueries
from bot.app.root import LOCAL_RULES, Root
from bot.app.settings import Settings
from bot.engine.rules import NAMES, RulesFileError, default_rules_path, load_rules, load_rules_text
from bot.engine.rules.schema import VALUE_RANGES

DEFAULT = default_rules_path().read_text()


@pytest.fixture
def workdir(no_alvh_env, tmp_path):
    no_alvh_env.chdir(tmp_path)
    return tmp_path


def root() -> Root:
    return Root(Settings(_env_file=None))


# ------------------------------------------------------------------ the rule


def test_the_packaged_default_when_nothing_else(workdir):
    choice = root().rules_choice()
    assert choice.path == default_rules_path() and choice.why == "the packaged default"
    assert load_rules(choice.path).label == "packaged default"


def test_an_edited_rules_file_in_the_working_directory_is_used(workdir, capsys):
    assert main(["rules", "init"]) == 0
    out = capsys.readouterr().out
    assert "wrote rules/alvh.yaml: the packaged default rules" in out
    assert "the bot uses it: rules/alvh.yaml (./rules/alvh.yaml in the working directory)" in out
    (workdir / LOCAL_RULES).write_text(DEFAULT.replace("rsi_layer2: 40 ", "rsi_layer2: 38 "))
    choice = root().rules_choice()
    assert choice.path == LOCAL_RULES
    rules = root().load_rules()
    assert rules.thresholds["rsi_layer2"] == 38 and rules.label == "rules/alvh.yaml"
    assert main(["rules", "check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rules file: rules/alvh.yaml (./rules/alvh.yaml in the working "
                          "directory)\n")
    assert "rsi_layer2 = 38" in out
    # The same file, in the alert footers, beside the hash.
    assert main(["run-once", "--source", "snapshot", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"Rules {rules.sha256[:12]} · rules/alvh.yaml" in out


def test_alvh_rules_file_wins_and_rules_check_says_so(workdir, capsys, no_alvh_env):
    assert main(["rules", "init"]) == 0
    other = workdir / "elsewhere" / "mine.yaml"
    assert main(["rules", "init", str(other)]) == 0
    out = capsys.readouterr().out
    assert (f"note: the bot uses rules/alvh.yaml (./rules/alvh.yaml in the working directory), "
            f"not this file; to use it, set ALVH_RULES_FILE={other}") in out
    no_alvh_env.setenv("ALVH_RULES_FILE", str(other))
    assert root().rules_choice().describe() == f"{other} (ALVH_RULES_FILE)"
    assert main(["rules", "check", "rules/alvh.yaml"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rules file: rules/alvh.yaml (given on the command line)\n"
                          f"(the bot uses {other} (ALVH_RULES_FILE))\n")


def test_rules_init_never_overwrites_without_force(workdir, capsys):
    assert main(["rules", "init"]) == 0
    (workdir / LOCAL_RULES).write_text("my edits")
    assert main(["rules", "init"]) == 2
    assert capsys.readouterr().err.strip() == (
        "alvh: rules/alvh.yaml already exists; edit it, or add --force to replace it with the "
        "packaged default")
    assert (workdir / LOCAL_RULES).read_text() == "my edits"
    assert main(["rules", "init", "--force"]) == 0
    assert (workdir / LOCAL_RULES).read_text() == DEFAULT


async def test_slash_rules_names_the_file(workdir, snapshot_dir, calendar):
    from test_service import Clock, Sink, make

    from bot.kernel.sessions import ET
    from bot.market.snapshot import STORE_NAME
    from bot.store import open_store

    path = workdir / "custom.yaml"
    path.write_text(DEFAULT)
    store = open_store(f"sqlite:///{snapshot_dir / STORE_NAME}")
    try:
        svc = make(store, calendar, Clock(dt.datetime(2026, 2, 27, 21, tzinfo=ET)), Sink(),
                   rules_path=path)
        q = EngineQueries()
        q.attach(svc)
        text = await q.rules()
    finally:
        store.close()
    assert f"File: <code>{path}</code>" in text


# ------------------------------------------------------------------ YAML read as written


def _with(old: str, new: str) -> str:
    assert old in DEFAULT
    return DEFAULT.replace(old, new, 1)


def test_numbers_with_leading_zeros_are_decimal_as_written():
    rules = load_rules_text(_with("wing_width: 50 ", "wing_width: 050 ")
                            .replace("rsi_layer2: 40 ", "rsi_layer2: 040 "))
    assert rules.condor.wing_width == 50  # YAML 1.1 would read 40 (octal)
    assert rules.thresholds["rsi_layer2"] == 40  # YAML 1.1: 32


@pytest.mark.parametrize(("old", "new", "line_key", "says"), [
    ("dte: 45 ", "dte: 1:30 ", "condor.dte", "expected a valid integer, got '1:30'"),
    ("rsi_layer2: 40 ", "rsi_layer2: 1:20 ", "thresholds.rsi_layer2",
     "expected a number, got '1:20'"),
    ("expiry: monthly ", "expiry: no ", "condor.expiry", "got 'no'"),
    ('when: "weekly_macd_cross_down"', "when: on", "warnings[0].when", "`on`"),
    ("cooldown_sessions: 5 ", "cooldown_sessions: 2026-01-05 ", "hedge.cooldown_sessions",
     "got '2026-01-05'"),
])
def test_yaml_1_1_surprises_are_refused_with_file_line_and_key(old, new, line_key, says):
    assert_refused_at(old, new, line_key, says)


def assert_refused_at(old: str, new: str, key: str, says: str) -> None:
    """The edit ``old`` → ``new`` is refused, first problem at the edited line and ``key``."""
    text = _with(old, new)
    line = next(i for i, x in enumerate(text.splitlines(), 1) if new.strip() in x)
    with pytest.raises(RulesFileError) as exc:
        load_rules_text(text, "alvh.yaml")
    first = str(exc.value.problems[0])
    assert first.startswith(f"alvh.yaml:{line}: {key}: "), first
    assert says in first


def test_the_yaml_12_core_schema_keeps_its_own_forms():
    rules = load_rules_text(_with("max_total_pct: 4.5 ", "max_total_pct: 45e-1 ")
                            .replace("FOMC: 2\n", "FOMC: 0x2\n"))
    assert rules.hedge.max_total_pct == 4.5 and rules.blackout.sessions_before.FOMC == 2


# ------------------------------------------------------------------ nonsense refused


@pytest.mark.parametrize(("old", "new", "key", "says"), [
    ("cooldown_sessions: 5 ", "cooldown_sessions: -5 ", "hedge.cooldown_sessions",
     "expected greater than or equal to 0, got -5"),
    ("put: 0.16", "put: 0.6", "condor.target_delta.put", "expected less than 0.5, got 0.6"),
    ("max_loss_budget_pct: 5 ", "max_loss_budget_pct: 150 ", "condor.max_loss_budget_pct",
     "expected less than or equal to 100, got 150"),
    ("max_total_pct: 4.5 ", "max_total_pct: 104.5 ", "hedge.max_total_pct",
     "expected less than or equal to 100, got 104.5"),
    ("rsi_layer2: 40 ", "rsi_layer2: -40 ", "thresholds.rsi_layer2",
     "`rsi_layer2` = -40 is compared with rsi in hedge.layers[1].add_when, but rsi is always "
     "0 to 100"),
    ("rsi_clear: 50 ", "rsi_clear: 150 ", "thresholds.rsi_clear",
     "but rsi is always 0 to 100"),
    ("ad_min_days: 10 ", "ad_min_days: -3 ", "thresholds.ad_min_days",
     "ad_divergence_days is always at least 0"),
    ("condor_max_vix: 35 ", "condor_max_vix: -35 ", "thresholds.condor_max_vix",
     "vix is always at least 0"),
    ("and vix < condor_max_vix", "and vix < -1", "condor.enter_when",
     "-1 is compared with vix in condor.enter_when"),
])
def test_negative_or_nonsensical_numbers_are_refused(old, new, key, says):
    assert_refused_at(old, new, key, says)


def test_value_ranges_name_real_names():
    assert set(VALUE_RANGES) <= set(NAMES)


def test_the_shipped_rules_pass_the_range_check():
    assert load_rules(default_rules_path()).thresholds
    assert load_rules(Path(__file__).resolve().parents[1] / "rules" / "alvh.yaml").thresholds
