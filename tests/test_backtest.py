"""``alvh backtest`` on the shipped snapshot: the table, the statistics, the files,
no look-ahead, and unscheduled FOMC moves that were not known in advance.

The snapshot store is loaded once (``snapshot_db``) and copied once for this
module; the CLI only reads it.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import re
import sqlite3
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from bot.app.cli import main
from bot.backtest.report import FILES
from bot.backtest.run import (
    CHUNK_SESSIONS,
    backtest_frame,
    replay_with_progress,
    run_backtest,
    unscheduled_events,
)
from bot.engine.rules import default_rules_path, load_default_rules, load_rules
from bot.market.snapshot import STORE_NAME
from bot.pipeline.evaluation import history_start, indicator_frame, replay
from bot.store import open_store

D = dt.date
RULES = load_default_rules()
UNSCHEDULED = (D(2001, 1, 3), D(2001, 4, 18), D(2001, 9, 17), D(2007, 8, 17), D(2008, 1, 22),
               D(2008, 10, 8), D(2020, 3, 3), D(2020, 3, 15))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, copy_snapshot) -> Path:
    """A read-only copy of the loaded snapshot for the CLI (ALVH_DATA_DIR)."""
    return copy_snapshot(tmp_path_factory.mktemp("bt-data"))


@pytest.fixture(scope="module")
def store(data_dir: Path):
    st = open_store(f"sqlite:///{data_dir / STORE_NAME}")
    yield st
    st.close()


@pytest.fixture(autouse=True)
def env(no_alvh_env: pytest.MonkeyPatch, tmp_path: Path, data_dir: Path) -> None:
    monkeypatch = no_alvh_env
    monkeypatch.setenv("ALVH_DATA_DIR", str(data_dir))
    monkeypatch.chdir(tmp_path)  # no stray .env


def rules_with(tmp_path: Path, name: str, old: str, new: str) -> Path:
    text = default_rules_path().read_text(encoding="utf-8")
    assert text.count(old) == 1
    path = tmp_path / name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ the CLI


def test_2005_2009_default_rules_hedge_ahead_of_the_bear_market(capsys):
    """With the divergence's length as DESIGN §4 defines it (iP − iX, not the run of
    consecutive sessions), the shipped rules add layer 1 on 2007-10-05, two sessions
    before the 2007-10-09 peak of the 2007-2009 bear market, which is then hedged at its
    start. (With the old run-length definition they never added layer 1 in 2005-2009.)"""
    code, out, err = run(capsys, "backtest", "--from", "2005-01-03", "--to", "2009-12-31",
                         "--source", "snapshot")
    assert code == 0, err
    assert "1259 sessions" in out
    table = re.findall(r"^  (\d{4}-\d\d-\d\d)  (\w+)\s+(layer\d)\s+(.*)$", out, re.M)
    adds1 = [d for d, action, layer, _ in table if action == "add" and layer == "layer1"]
    n_trig = re.search(r"Layer-1 triggers \(layer1 added\): (\d+)", out)
    assert n_trig is not None and int(n_trig[1]) == len(adds1) >= 5
    assert adds1[0] == "2005-11-17" and "2007-10-05" in adds1
    assert re.search(r"2007-10-09\s+1565\.15\s+2007-11-26\s+2009-03-09\s+676\.53\s+56\.8 %", out)
    assert "2007-10-05 (35 sessions before); layer 1 on at the start" in out
    assert "preceded by a layer-1 trigger within 60 sessions: 1 of 1" in out
    # Unicorn's 2006-04-24 row is a partial-day count (DESIGN §4): rejected, so no breadth.
    assert "2005-01-03..2006-04-21    328 sessions  snapshot:unicorn: NYSE" in out
    assert "2006-04-24..2006-04-24      1 sessions  no breadth data" in out
    assert "2006-04-25..2009-12-31    930 sessions  snapshot:unicorn: NYSE" in out
    assert "2007-08-17, 2008-01-22, 2008-10-08" in out  # unscheduled moves left out
    assert "\r" not in err  # no progress bar off a terminal


def test_2005_2009_with_a_shorter_ad_divergence_adds_layer_1_ahead_of_the_bear(
        capsys, tmp_path):
    ad5 = rules_with(tmp_path, "ad5.yaml", "  ad_min_days: 10 ", "  ad_min_days: 5  ")
    code, out, err = run(capsys, "backtest", "--from", "2005-01-03", "--to", "2009-12-31",
                         "--source", "snapshot", "--rules", str(ad5))
    assert code == 0, err
    table = re.findall(r"^  (\d{4}-\d\d-\d\d)  (\w+)\s+(layer\d)\s+(.*)$", out, re.M)
    adds1 = [d for d, action, layer, _ in table if action == "add" and layer == "layer1"]
    # (The shipped exit waits for breadth to confirm, McClellan oscillator > 0, and 4 clear
    # sessions: the 2005-11 layer is still on in March 2006, so there is no add then.)
    assert adds1 == ["2005-11-17", "2007-01-12", "2007-05-18", "2007-10-05", "2008-04-25",
                     "2009-11-11"]
    assert "Layer-1 triggers (layer1 added): 6" in out
    # 2007-10-05: SPX fell 10.1 % within 60 sessions, VIX +6.26: not a false alarm.
    assert re.search(r"2007-10-05\s+1557\.59\s+16\.91\s+4\.1 %\s+10\.1 %\s+\+6\.10\s+\+6\.26\s+no",
                     out)
    assert "false alarms: 1 of 6" in out  # 2005-11-17: at most 3.0 % down in 60 sessions
    assert "2007-10-05 (35 sessions before); layer 1 on at the start" in out
    assert ("preceded by a layer-1 trigger within 60 sessions: 1 of 1; covered (layer 1 on at "
            "the start, or added within 60 sessions before it): 1 of 1") in out
    # Before 2008 there is neither VIX3M nor VIX6M: those layers cannot be priced.
    assert "no VX settlement and neither VIX3M nor VIX6M" in out
    assert re.search(r"layer1\s+2008-04-25\s+2008-08-13\s+VX/U8\s+2008-09-17\s+1\s+21\.68\s+"
                     r"23\.43\s+\$1,750\s+closed", out)


def test_files_written_to_out_match_the_printed_counts(capsys, tmp_path):
    out_dir = tmp_path / "report"
    code, out, err = run(capsys, "backtest", "--from", "2013-06-03", "--to", "2014-12-31",
                         "--source", "snapshot", "--out", str(out_dir))
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(FILES)

    # Unicorn's 2014-10-14 row is a partial-day count: TradingView's serves that session.
    assert "2013-06-03..2014-10-13    345 sessions  snapshot:unicorn: NYSE" in out
    assert "2014-10-14..2014-10-14      1 sessions  snapshot:tradingview: NYSE" in out

    page = (out_dir / "report.html").read_text(encoding="utf-8")
    pngs = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(pngs) == 4  # SPX with layers, breadth, drawdowns, condor equity
    assert all(base64.b64decode(p)[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert "http://" not in page and "https://" not in page  # self-contained
    assert "SYNTHETIC" not in page
    assert "snapshot:unicorn: NYSE" in page and "snapshot:tradingview: NYSE" in page
    assert "PROXY approximation" in page

    counts = re.search(r"Layer decisions: (\d+) add, (\d+) remove, (\d+) defer", out)
    assert counts is not None
    with (out_dir / "layer_actions.csv").open(encoding="utf-8") as fh:
        actions = Counter(r["action"] for r in csv.DictReader(fh))
    assert (actions["add"], actions["remove"], actions["defer"]) == tuple(
        int(x) for x in counts.groups())
    assert actions["add"] >= 2 and actions["remove"] >= 1  # the 2013-2014 layers went on and off

    with (out_dir / "decisions.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    condor = re.search(r"Condor: (\d+) go, (\d+) skip", out)
    assert condor is not None
    assert len(rows) == int(condor[1]) + int(condor[2])
    assert sum(r["condor"] == "go" for r in rows) == int(condor[1])
    assert rows[0]["session"] == "2013-06-03" and rows[-1]["session"] == "2014-12-31"

    record = json.loads((out_dir / "decisions.json").read_text(encoding="utf-8"))
    stats = record["stats"]
    assert len(record["sessions"]) == len(rows)
    assert stats["condor"]["go"] == int(condor[1])
    assert stats["layer_action_counts"]["add"] == actions["add"]
    n_trig = re.search(r"Layer-1 triggers \(layer1 added\): (\d+)", out)
    assert n_trig is not None and len(stats["triggers"]) == int(n_trig[1]) >= 1
    assert stats["hedge_pnl"]["proxy"] is True
    add = next(a for x in record["sessions"] for a in x["layer_actions"] if a["action"] == "add")
    assert add["checks"] and {c["name"] for c in add["checks"]} >= {"macd_divergence_days"}
    assert all(c["passed"] is True and c["operator"] for c in add["checks"])
    total = re.search(r"total: (-?\$[\d,]+) over", out)
    assert total is not None
    pnl = stats["hedge_pnl"]["total"]
    assert total[1] == (f"-${-pnl:,.0f}" if pnl < 0 else f"${pnl:,.0f}")
    assert [p["kind"] for p in stats["breadth_sources"]] == ["NYSE", "NYSE", "NYSE"]
    with (out_dir / "hedge_pnl.csv").open(encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) == len(stats["hedge_pnl"]["layers"]) == (
            actions["add"])


def test_pnl_rows_are_entry_and_exit_proxies_of_the_same_contract(store, calendar):
    from bot.backtest.summary import summarize
    from bot.engine.hedge import vx_proxy_price

    res = run_backtest(store, calendar, RULES, D(2021, 7, 1), D(2021, 12, 31),
                       capital=2_000_000)
    periods = summarize(res, calendar).periods
    closed = [p for p in periods if p.removed_on is not None]
    assert len(closed) >= 2 and closed[0].layer == "layer1"
    assert all(D(2021, 7, 1) <= p.added_on < p.removed_on <= D(2021, 12, 31) for p in closed)
    for p in closed:
        assert p.expiry is not None and p.exit_price is not None and p.pnl is not None
        row = res.frame.loc[pd.Timestamp(p.removed_on)]
        assert p.exit_price == pytest.approx(
            vx_proxy_price((p.expiry - p.removed_on).days, row["vix3m"], row["vix6m"]))
        entry = res.frame.loc[pd.Timestamp(p.added_on)]
        assert p.entry_price == pytest.approx(
            vx_proxy_price((p.expiry - p.added_on).days, entry["vix3m"], entry["vix6m"]))
        assert p.pnl == pytest.approx((p.exit_price - p.entry_price) * 1000 * p.quantity)


def test_bad_dates_are_one_line_errors(capsys):
    code, _, err = run(capsys, "backtest", "--from", "2010-01-04", "--to", "2009-01-02",
                       "--source", "snapshot")
    assert code == 2 and err == "alvh: --to 2009-01-02 is before --from 2010-01-04\n"
    code, _, err = run(capsys, "backtest", "--from", "1960-01-04", "--to", "2009-01-02",
                       "--source", "snapshot")
    assert code == 2 and err.count("\n") == 1 and "outside the NYSE calendar" in err
    code, _, err = run(capsys, "backtest", "--from", "1990-01-02", "--to", "1998-12-31",
                       "--source", "snapshot")
    assert code == 2 and err.count("\n") == 1 and "no SPX data between" in err
    with pytest.raises(SystemExit) as exc:
        main(["backtest", "--from", "2009-13-01", "--to", "2009-12-31"])
    assert exc.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == "alvh backtest: error: argument --from: expected a date YYYY-MM-DD, " \
                   "got '2009-13-01'"


def test_an_empty_store_says_what_to_do(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("ALVH_DATA_DIR", str(tmp_path))
    code, _, err = run(capsys, "backtest", "--from", "2020-01-02", "--to", "2020-12-31",
                       "--source", "store")
    assert code == 2
    assert err.splitlines()[-1] == ("alvh: the store has no SPX history: import some, or use "
                                    "--source snapshot")


# ------------------------------------------------------------------ no look-ahead


CUTS = [D(2005, 3, 15), D(2006, 6, 14), D(2007, 10, 11), D(2008, 9, 15), D(2010, 5, 6),
        D(2013, 8, 1), D(2014, 1, 29), D(2014, 10, 14), D(2018, 10, 12), D(2020, 3, 16),
        D(2021, 9, 28), D(2024, 8, 5), D(2025, 4, 8)]
"""Quiet days, layer-on days, a cooldown, a source change, crash days, a Monday after
an FOMC Sunday, mid-week days (the weekly MACD's unfinished week)."""
CHECKED = 250
"""Sessions before each cut whose decisions are replayed on the cut data."""


def _signature(ev):  # everything a decision consists of
    return (ev.session, ev.state_before, ev.state_after,
            tuple((a.decision, a.quote, a.size) for a in ev.actions),
            (ev.condor.go, ev.condor.condor) if ev.condor else None,
            tuple(w.name for w in ev.warnings), ev.notes)


def test_decisions_up_to_a_cut_do_not_depend_on_data_after_it(store, calendar):
    """For each cut: the frame computed from data up to the cut equals the full run's
    frame on every session up to it (warm-up included), and replaying the cut frame
    gives the full run's decisions and states. Replay is a fold over those rows, so
    equal rows and an equal starting state mean equal decisions; to keep this fast the
    decisions are replayed over the year before each cut, from the full run's state
    there (the first cut replays from the very start)."""
    start, end = D(2005, 1, 3), D(2025, 12, 31)
    full_frame = backtest_frame(store, calendar, RULES, start, end)
    full = replay(full_frame, RULES, calendar, capital=2_000_000, start=start, end=end)
    at = {ev.session: i for i, ev in enumerate(full)}
    assert len(CUTS) >= 10
    for cut in CUTS:
        cut_frame = backtest_frame(store, calendar, RULES, start, cut)
        assert cut_frame.index[-1] == pd.Timestamp(cut)
        pd.testing.assert_frame_equal(cut_frame, full_frame.loc[: pd.Timestamp(cut)])
        first = max(0, at[cut] - CHECKED)
        state = full[first - 1].state_after if first else None
        evs = replay(cut_frame, RULES, calendar, capital=2_000_000, start=full[first].session,
                     end=cut, state=state)
        upto = full[first : at[cut] + 1]
        assert len(evs) == len(upto) > 0
        assert [_signature(e) for e in evs] == [_signature(e) for e in upto], cut
    # The range does contain decisions worth comparing (on real NYSE breadth the
    # default rules add layers rarely: 8 times in 2005-2025).
    assert sum(a.decision.action == "add" for e in full for a in e.actions) >= 8


def test_a_store_truncated_at_the_cut_gives_the_same_backtest(snapshot_dir, calendar):
    """Stronger than slicing: the rows after the cut are deleted from a copy of the store."""
    cut = D(2021, 9, 30)  # layer1 and layer2 on, layer3 in its cooldown
    full_store = open_store(f"sqlite:///{snapshot_dir / STORE_NAME}")
    try:
        full = run_backtest(full_store, calendar, RULES, D(2021, 1, 4), D(2022, 6, 30),
                            capital=2_000_000)
    finally:
        full_store.close()
    with sqlite3.connect(snapshot_dir / STORE_NAME) as conn:
        conn.execute("delete from bars where session > ?", (cut.isoformat(),))
        conn.execute("delete from breadth where session > ?", (cut.isoformat(),))
    cut_store = open_store(f"sqlite:///{snapshot_dir / STORE_NAME}")
    try:
        short = run_backtest(cut_store, calendar, RULES, D(2021, 1, 4), D(2022, 6, 30),
                             capital=2_000_000)
    finally:
        cut_store.close()
    assert short.end == cut and "ends 2021-09-30" in " ".join(short.notes)
    upto = [e for e in full.evaluations if e.session <= cut]
    assert [_signature(e) for e in short.evaluations] == [_signature(e) for e in upto]
    assert any(a.decision.action == "add" for e in upto for a in e.actions)


# ------------------------------------------------------------------ unscheduled FOMC


def test_the_snapshot_store_marks_eight_unscheduled_moves(store):
    assert unscheduled_events(store, D(1999, 1, 1), D(2030, 1, 1)) == {"FOMC": UNSCHEDULED}


@pytest.mark.parametrize(("event", "before"), [
    (D(2008, 1, 22), (D(2008, 1, 17), D(2008, 1, 18))),   # Tuesday after MLK day
    (D(2008, 10, 8), (D(2008, 10, 6), D(2008, 10, 7))),
    (D(2020, 3, 15), (D(2020, 3, 12), D(2020, 3, 13))),   # Sunday: traded on Monday 03-16
])
def test_an_unscheduled_move_does_not_black_out_the_sessions_before_it(
        store, calendar, event, before):
    """Point in time, one rule: the backtest frame and a live evaluation of the same session
    (the frame ending on it, as ``run-once --date`` builds it) count to the next *scheduled*
    FOMC decision, though the store knows of the emergency move."""
    start, end = calendar.offset(before[0], -5), calendar.offset(before[1], 5)
    frame = backtest_frame(store, calendar, RULES, start, end)
    scheduled = sorted(e.date for e in store.events() if e.kind.value == "FOMC" and e.scheduled)
    for day in before:
        ts = pd.Timestamp(day)
        row = frame.loc[ts]
        assert "FOMC" not in row["blackout_kind"], (event, day)
        nxt = next(d for d in scheduled if d > day)
        assert row["sessions_to_fomc"] == len(calendar.sessions_between(
            calendar.next_session(day), calendar.session_on_or_after(nxt))), (event, day)
        live = indicator_frame(store, calendar, RULES, history_start(calendar, day, RULES), day)
        assert live.loc[ts, "sessions_to_fomc"] == row["sessions_to_fomc"]
        assert live.loc[ts, "blackout_kind"] == row["blackout_kind"]
    # From its own date on it is in the past, where the proximity never looks.
    assert frame.loc[pd.Timestamp(calendar.session_on_or_after(event)), "sessions_to_fomc"] > 1


def test_rules_file_errors_name_the_file_and_line(capsys, tmp_path):
    bad = Path(__file__).parent / "fixtures" / "rules" / "bad_condition.yaml"
    code, _, err = run(capsys, "backtest", "--from", "2020-01-02", "--to", "2020-03-31",
                       "--source", "snapshot", "--rules", str(bad))
    assert code == 2 and err.count("\n") == 1
    assert re.match(rf"alvh: rules file refused: {re.escape(str(bad))}:\d+: "
                    r"hedge\.layers\[1\]\.add_when: ", err)
    assert load_rules(default_rules_path()).sha256 == RULES.sha256


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_replaying_in_chunks_for_the_progress_bar_changes_nothing(store, calendar):
    start, end = D(2018, 1, 2), D(2019, 3, 29)  # > 2 chunks, layers on across a boundary
    frame = backtest_frame(store, calendar, RULES, start, end)
    plain = replay(frame, RULES, calendar, capital=2_000_000, start=start, end=end)
    tty = _Tty()
    chunked = replay_with_progress(frame, RULES, calendar, capital=2_000_000, start=start,
                                   end=end, progress=tty)
    assert "\r" in tty.getvalue() and f"{len(plain)}/{len(plain)}" in tty.getvalue()
    assert [_signature(e) for e in chunked] == [_signature(e) for e in plain]
    assert len(plain) > 2 * CHUNK_SESSIONS


def test_an_unwritable_out_is_a_one_line_error(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, _, err = run(capsys, "backtest", "--from", "2020-01-02", "--to", "2020-01-31",
                       "--source", "snapshot", "--out", str(blocker / "report"))
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"alvh: cannot write the report to --out {blocker / 'report'}: ")


# ------------------------------------------------------------------ messages people read


def test_condor_skips_say_what_was_true_in_summary_files_and_page(capsys, tmp_path):
    """October 2008: VIX far above condor_max_vix. Every rendering says "vix = … ≥
    condor_max_vix = 35" (what was true), never the rule "vix < condor_max_vix" as a reason,
    and the JSON gives each check as fields (issue 11)."""
    out_dir = tmp_path / "report"
    code, out, err = run(capsys, "backtest", "--from", "2008-09-02", "--to", "2008-12-31",
                         "--source", "snapshot", "--out", str(out_dir))
    assert code == 0, err
    tally = re.search(r"^\s+(\d+)  vix ≥ condor_max_vix = 35$", out, re.M)
    assert tally is not None and int(tally[1]) > 20
    page = (out_dir / "report.html").read_text(encoding="utf-8")
    assert "vix ≥ condor_max_vix = 35" in page
    for text in (out, page):
        assert "vix < condor_max_vix" not in text
    with (out_dir / "decisions.csv").open(encoding="utf-8") as fh:
        rows = {r["session"]: r for r in csv.DictReader(fh)}
    row = rows["2008-10-10"]
    vix = float(row["vix"])
    assert vix > 35 and row["condor"] == "skip"
    assert f"vix = {vix:g} ≥ condor_max_vix = 35" in row["condor_skip_reasons"].split("; ")
    sessions = json.loads((out_dir / "decisions.json").read_text(encoding="utf-8"))["sessions"]
    day = next(s for s in sessions if s["session"] == "2008-10-10")
    check = next(c for c in day["condor_checks"] if c["name"] == "vix")
    assert check == {
        "name": "vix", "value": vix, "operator": "<", "threshold": "condor_max_vix",
        "threshold_value": 35.0, "passed": False, "negated": False, "no_data": False,
        "missing": [], "reasons": [], "text": f"vix = {vix:g} < condor_max_vix = 35 ✘",
        "observed": f"vix = {vix:g} ≥ condor_max_vix = 35"}
    # The tally counts the sessions the files list with that reason.
    assert int(tally[1]) == sum(
        any(r.startswith("vix = ") and "≥ condor_max_vix" in r for r in s["condor_skip_reasons"])
        for s in sessions)
