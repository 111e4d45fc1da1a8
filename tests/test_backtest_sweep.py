"""``alvh backtest --sweep``: variants of the rules file, one row each, the same figures as a
backtest, the split, shared frames, the files and bad input as one line."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import pytest

from bot.app.cli import main
from bot.backtest.run import run_backtest
from bot.backtest.summary import summarize
from bot.backtest.sweep import parse_axis, run_sweep, sweep_lines
from bot.engine.rules import default_rules_path, load_default_rules, load_rules_variant
from bot.kernel.errors import ConfigError
from bot.market.snapshot import STORE_NAME
from bot.store import open_store

D = dt.date
RAW = default_rules_path().read_bytes()
NAME = str(default_rules_path())


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, copy_snapshot):
    return copy_snapshot(tmp_path_factory.mktemp("sweep-data"))


@pytest.fixture(scope="module")
def store(data_dir):
    st = open_store(f"sqlite:///{data_dir / STORE_NAME}")
    yield st
    st.close()


# ------------------------------------------------------------------ variants


def test_a_variant_is_the_file_with_one_value_replaced():
    base = load_default_rules()
    v = load_rules_variant(RAW, NAME, {"ad_min_days": 15, "hedge.cooldown_sessions": 3,
                                       "condor.backtest.take_profit": 0.5})
    assert v.thresholds["ad_min_days"] == 15 and base.thresholds["ad_min_days"] == 10
    assert v.hedge.cooldown_sessions == 3 and v.condor.backtest.take_profit == 0.5
    assert v.indicators == base.indicators and v.sha256 != base.sha256
    assert "ad_min_days=15" in v.origin
    # The conditions use the new threshold: layer 1 now needs a divergence of 16.
    layer1 = v.hedge.layers[0].add_when
    assert not layer1.holds({"macd_divergence_days": 3, "ad_divergence_days": 15})
    assert layer1.holds({"macd_divergence_days": 3, "ad_divergence_days": 16})


@pytest.mark.parametrize(("arg", "message"), [
    ("ad_min_days", "expected KEY=V1,V2,…"),
    ("ad_min_days=5,,10", "expected KEY=V1,V2,…"),
    ("ad_min_days=5,5", "a value is listed twice"),
])
def test_malformed_sweeps_are_one_line(arg, message):
    with pytest.raises(ConfigError, match=message):
        parse_axis(arg)


def test_an_unknown_key_or_a_bad_value_names_it(capsys, data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("ALVH_DATA_DIR", str(data_dir))
    monkeypatch.chdir(tmp_path)
    for argv, expect in (
        (["--sweep", "ad_min_dayz=5,10"], r"ad_min_dayz: not a threshold name .* did you mean "
                                          r"`ad_min_days`\?"),
        # The value was typed on the command line: no rules-file line is blamed for it.
        (["--sweep", "hedge.cooldown_sessions=-1,5"], r"^alvh: --sweep hedge\.cooldown_sessions"
                                                      r"=-1: hedge\.cooldown_sessions: [^/]*$"),
        (["--sweep", "ad_min_days=a,b"], r"^alvh: --sweep ad_min_days=a: thresholds\.ad_min_days"
                                         r": expected a number, got 'a'$"),
        (["--sweep", "condor.backtest.take_profit=2"], r"take_profit"),
        (["--sweep", "ad_min_days=10", "--split", "1990-01-02"], r"--split 1990-01-02 is not "
                                                                 r"inside the replayed range"),
        (["--split", "2015-01-01"], r"--split needs --sweep"),
    ):
        code = main(["backtest", "--source", "snapshot", "--from", "2018-01-02", "--to",
                     "2018-12-31", *argv])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, argv
        assert re.search(expect, err.strip()), (argv, err)


# ------------------------------------------------------------------ the same figures


def test_a_sweep_row_has_the_figures_of_the_same_backtest(store, calendar):
    """The sweep prices only the condors it trades and shares what it can: its row for
    ad_min_days = 5 must be the backtest of that variant to the dollar."""
    start, end = D(2005, 1, 3), D(2012, 12, 31)
    res = run_sweep(store, calendar, RAW, NAME, [parse_axis("ad_min_days=5,10")], start, end,
                    capital=2_000_000)
    assert res.frames == 1 and [r.values for r in res.rows] == [("5",), ("10",)]
    rules = load_rules_variant(RAW, NAME, {"ad_min_days": 5})
    bt = run_backtest(store, calendar, rules, start, end, capital=2_000_000)
    s = summarize(bt, calendar)
    f = res.rows[0].whole
    assert f.sessions == s.sessions
    assert (f.episodes, f.covered) == (len(s.episodes), s.covered)
    assert (f.triggers, f.false_alarms) == (len(s.triggers), s.false_alarms)
    assert f.hedged == s.hedged_sessions and f.hedge_pnl == pytest.approx(s.pnl_total)
    assert f.trades == len(s.condors.trades) > 50
    assert f.condor_pnl == pytest.approx(s.condors.without.total)
    assert f.condor_pnl_with_hedge == pytest.approx(s.condors.total_with_hedge)
    assert f.triggers >= 3 and f.hedge_pnl != 0  # the comparison has something in it


def test_split_figures_add_up_to_the_whole(store, calendar):
    res = run_sweep(store, calendar, RAW, NAME, [parse_axis("ad_min_days=5,10"),
                                                 parse_axis("rsi_layer2=35,40")],
                    D(2005, 1, 3), D(2012, 12, 31), capital=2_000_000, split=D(2009, 1, 2))
    assert len(res.rows) == 4
    for row in res.rows:
        a, b, w = row.before, row.after, row.whole
        assert a is not None and b is not None
        for name in ("sessions", "episodes", "covered", "triggers", "false_alarms", "hedged",
                     "trades"):
            assert getattr(a, name) + getattr(b, name) == getattr(w, name), name
        for name in ("hedge_pnl", "condor_pnl", "condor_pnl_with_hedge"):
            assert getattr(a, name) + getattr(b, name) == pytest.approx(getattr(w, name))
    assert res.rows[0].before.sessions == len(calendar.sessions_between(D(2005, 1, 3),
                                                                         D(2008, 12, 31)))
    lines = sweep_lines(res)
    assert any("before 2009-01-02" in line for line in lines)
    assert re.search(r"^\s+5\s+35\s+\d+/\d+ \| \d+/\d+", "\n".join(lines), re.M)


def test_a_new_indicator_setting_gets_its_own_frame(store, calendar):
    res = run_sweep(store, calendar, RAW, NAME,
                    [parse_axis("indicators.divergence.window=42,63"),
                     parse_axis("blackout.sessions_before.FOMC=1,2")],
                    D(2017, 1, 3), D(2018, 12, 31), capital=2_000_000)
    assert res.frames == 2 and len(res.rows) == 4
    # The 63-session window with FOMC 2 is the shipped file: the same as a plain backtest.
    plain = summarize(run_backtest(store, calendar, load_default_rules(), D(2017, 1, 3),
                                   D(2018, 12, 31), capital=2_000_000), calendar)
    row = next(r for r in res.rows if r.values == ("63", "2"))
    assert row.whole.triggers == len(plain.triggers)
    assert row.whole.hedged == plain.hedged_sessions


# ------------------------------------------------------------------ the CLI


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cli_table_files_and_progress_bar(capsys, data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("ALVH_DATA_DIR", str(data_dir))
    monkeypatch.chdir(tmp_path)
    out_dir = tmp_path / "sweep"
    code = main(["backtest", "--source", "snapshot", "--from", "2014-01-02", "--to",
                 "2016-12-30", "--sweep", "ad_min_days=5,10", "--sweep", "rsi_layer2=35,40",
                 "--split", "2015-06-01", "--out", str(out_dir)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "4 combination(s)" in out and "1 indicator frame(s) computed" in out
    header = next(line for line in out.splitlines() if "covered" in line and "ad_min_days" in line)
    assert header.split() == ["ad_min_days", "rsi_layer2", "covered", "layer-1", "adds",
                              "false", "alarms", "hedged", "hedge", "P&L", "condor", "P&L",
                              "with", "hedges"]
    assert "\r" not in err  # no bar off a terminal
    with (out_dir / "sweep.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["ad_min_days"], r["rsi_layer2"]) for r in rows] == [
        ("5", "35"), ("5", "40"), ("10", "35"), ("10", "40")]
    assert all(int(r["before_sessions"]) + int(r["after_sessions"]) == int(r["sessions"])
               for r in rows)
    meta = json.loads((out_dir / "sweep.json").read_text(encoding="utf-8"))["meta"]
    assert meta["split"] == "2015-06-01" and meta["sweep"]["rsi_layer2"] == ["35", "40"]

    from bot.app.commands import backtest as command
    from bot.app.root import Root
    from bot.app.settings import Settings

    args = _parse(["backtest", "--source", "snapshot", "--from", "2014-01-02", "--to",
                   "2014-12-31", "--sweep", "ad_min_days=5,10"])
    tty, buf = Tty(), io.StringIO()
    assert command.run(args, Root(Settings()), buf, tty) == 0
    assert "\rsweep [" in tty.getvalue() and "2/2" in tty.getvalue()


def _parse(argv):
    from bot.app.cli import build_parser

    return build_parser().parse_args(argv)
