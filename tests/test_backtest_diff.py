"""``alvh rules diff`` and ``preview_diff``: which decisions would a rules edit change?

On the shipped snapshot: identical files have no differences; lengthening the
A/D divergence (``ad_min_days`` 10 → 15) changes layer 1's additions; the
shared indicator frame and the recomputed blackout give exactly what separate
frames would; bad files and dates are one-line errors.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest

from bot.app.cli import main
from bot.backtest.diff import preview_diff, with_blackout
from bot.backtest.run import backtest_frame
from bot.engine.rules import default_rules_path, load_default_rules, load_rules, load_rules_text
from bot.market.snapshot import STORE_NAME
from bot.store import open_store

D = dt.date
RULES = load_default_rules()
TEXT = default_rules_path().read_text(encoding="utf-8")


def variant(old: str, new: str, name: str = "edited.yaml"):
    assert TEXT.count(old) == 1
    return load_rules_text(TEXT.replace(old, new), name)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, copy_snapshot) -> Path:
    return copy_snapshot(tmp_path_factory.mktemp("diff-data"))


@pytest.fixture(scope="module")
def store(data_dir: Path):
    st = open_store(f"sqlite:///{data_dir / STORE_NAME}")
    yield st
    st.close()


@pytest.fixture(autouse=True)
def env(no_alvh_env: pytest.MonkeyPatch, tmp_path: Path, data_dir: Path) -> None:
    monkeypatch = no_alvh_env
    monkeypatch.setenv("ALVH_DATA_DIR", str(data_dir))
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, name: str, old: str, new: str) -> Path:
    path = tmp_path / name
    path.write_text(TEXT.replace(old, new), encoding="utf-8")
    return path


def test_identical_files_have_no_differences(capsys, tmp_path):
    copy = tmp_path / "copy.yaml"
    copy.write_text(TEXT, encoding="utf-8")
    code = main(["rules", "diff", str(default_rules_path()), str(copy), "--from", "2013-06-03",
                 "--to", "2014-03-31", "--source", "snapshot"])
    out = capsys.readouterr().out
    assert code == 0
    assert "settings changed: none" in out
    assert "no differences: every decision of the 209 sessions is the same" in out


def test_a_longer_ad_divergence_changes_layer_1(capsys, tmp_path):
    new = write(tmp_path, "ad15.yaml", "  ad_min_days: 10 ", "  ad_min_days: 15 ")
    code = main(["rules", "diff", str(default_rules_path()), str(new), "--from", "2018-06-01",
                 "--to", "2019-03-29", "--source", "snapshot"])
    out = capsys.readouterr().out
    assert code == 0
    assert "thresholds.ad_min_days: 10 -> 15" in out
    # The 2018 A/D divergence is long enough for the old rules only (more than 10
    # sessions long, not more than 15), so the new rules never add layer 1 ...
    assert re.search(r"^2018-07-25  add layer1 ×1\s+no layer change$", out, re.M)
    # ... never get to layer 2 in October, so their condor stays open.
    assert re.search(r"^2018-10-11  add layer2 ×1\s+no layer change$", out, re.M)
    # The skip says what was true, not the rule it broke (issue 11).
    assert re.search(r"^\s+condor skip \(active_layers = 2 ≥ condor_max_layers = 2\)\s+condor go$",
                     out, re.M)
    listed = re.findall(r"^(\d{4}-\d\d-\d\d)  ", out, re.M)
    n = re.search(r"^(\d+) session\(s\) with different decisions$", out, re.M)
    assert n is not None and int(n[1]) == len(listed) > 20


def test_preview_diff_shares_the_frame_and_renders_a_short_text(store, calendar):
    new = variant("  ad_min_days: 10 ", "  ad_min_days: 15 ")
    res = preview_diff(store, calendar, RULES, new, D(2017, 6, 1), D(2019, 3, 29))
    assert res.shared_frame and not res.blackout_recomputed
    assert not res.identical
    assert res.changed_settings == [("thresholds.ad_min_days", 10.0, 15.0)]
    assert res.old_totals.layer1_adds == 2 and res.new_totals.layer1_adds == 0
    first = res.diffs[0]
    assert first.session == D(2017, 11, 6)
    assert first.old.layers == ("add layer1 ×2",) and first.new.layers == ()
    short = res.short_text(max_sessions=3)
    assert len(short) < 4096 and f"... and {len(res.diffs) - 3} more session(s)" in short
    assert short.count("\n2017-") + short.count("\n2018-") == 3
    tight = res.short_text(max_sessions=15, max_chars=900)
    assert len(tight) <= 900 and "more session(s)" in tight
    assert res.text().count("\n2018-") > tight.count("\n2018-")


def test_blackout_widths_are_recomputed_on_the_shared_frame(store, calendar):
    wider = variant("    FOMC: 2\n", "    FOMC: 4\n")
    start, end = D(2018, 1, 2), D(2019, 12, 31)
    own = backtest_frame(store, calendar, wider, start, end)
    shared = with_blackout(backtest_frame(store, calendar, RULES, start, end), wider)
    pd.testing.assert_frame_equal(shared, own)
    res = preview_diff(store, calendar, RULES, wider, start, end)
    assert res.shared_frame and res.blackout_recomputed
    assert res.diffs, "a wider FOMC blackout must skip some condors"
    assert all(d.old.condor != d.new.condor or d.old.layer_key() != d.new.layer_key()
               or d.old.warnings != d.new.warnings for d in res.diffs)
    assert res.new_totals.condor_go < res.old_totals.condor_go


def test_different_indicators_get_their_own_frame(store, calendar):
    slower = variant("    window: 63 ", "    window: 70 ")
    res = preview_diff(store, calendar, RULES, slower, D(2024, 1, 2), D(2024, 9, 30))
    assert not res.shared_frame
    assert ("indicators.divergence.window", 63, 70) in res.changed_settings


def test_a_bad_rules_file_is_one_line_with_file_and_line(capsys):
    bad = Path(__file__).parent / "fixtures" / "rules" / "unknown_name.yaml"
    code = main(["rules", "diff", str(default_rules_path()), str(bad), "--source", "snapshot"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert re.match(rf"alvh: rules file refused: {re.escape(str(bad))}:\d+: \S+: ", err)
    missing = Path("no-such-rules.yaml")
    code = main(["rules", "diff", str(missing), str(default_rules_path())])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no-such-rules.yaml" in err


def test_bad_dates_are_one_line_errors(capsys):
    path = str(default_rules_path())
    code = main(["rules", "diff", path, path, "--from", "2020-06-01", "--to", "2020-01-02",
                 "--source", "snapshot"])
    err = capsys.readouterr().err
    assert code == 2 and err == "alvh: --to 2020-01-02 is before --from 2020-06-01\n"
    code = main(["rules", "diff", path, path, "--from", "1995-01-03", "--to", "1996-01-02",
                 "--source", "snapshot"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no SPX data between" in err
    assert load_rules(path).sha256 == RULES.sha256
