"""The evaluation of one session end to end: store → freshness → indicators → decisions.

Uses the real shipped snapshot (loaded once into SQLite by the ``snapshot_db``
fixture) and, for the live path, the real fetchers against recorded bodies
served from 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import make_ctx
from httpserver import LocalServer, RecordingSleep

from bot.app.cli import main
from bot.engine.record import RunRecord
from bot.engine.rules import load_default_rules
from bot.kernel.sessions import ET, SessionCalendar
from bot.market.fetch import fetch_session
from bot.market.snapshot import SNAPSHOT_DIR, STORE_NAME
from bot.market.sources.cboe import cboe_path
from bot.market.sources.chain import Endpoints, default_chains
from bot.market.sources.fed import PATH as FED_PATH
from bot.market.sources.http import RetryPolicy
from bot.market.sources.wsj import PAGE as WSJ_PAGE
from bot.pipeline.evaluation import evaluate_day, indicator_frame, replay
from bot.store import open_store

D = dt.date
RECORDED = Path(__file__).parent / "fixtures" / "recorded"
LAST = D(2026, 2, 27)
RULES = load_default_rules()


@pytest.fixture
def store(snapshot_dir: Path):
    st = open_store(f"sqlite:///{snapshot_dir / STORE_NAME}")
    yield st
    st.close()


pytestmark = pytest.mark.usefixtures("no_alvh_env")


def test_last_snapshot_session_gives_an_explained_decision(store, calendar):
    res = evaluate_day(store, calendar, RULES, LAST, capital=2_000_000)
    assert res.freshness.complete, res.freshness.problems()
    ev = res.evaluation
    assert ev is not None and ev.rules_sha256 == RULES.sha256
    assert ev.values["close"] == pytest.approx(6878.88)
    assert ev.values["vix"] == pytest.approx(19.86)
    assert res.breadth_source == "snapshot:tradingview"  # real NYSE figures, not synthetic
    assert ev.condor is not None and ev.condor.go
    k = ev.condor.condor
    assert k is not None and k.short_put.strike < 6878.88 < k.short_call.strike
    assert k.long_put.strike == k.short_put.strike - 50
    assert k.long_call.strike == k.short_call.strike + 50
    assert all(c.describe().endswith("✔") for c in ev.condor.verdict.checks)


def _alerts(store, res):
    from bot.pipeline.evaluation import day_alerts

    return day_alerts(store, res, RULES.sha256, 2_000_000, chart=False)


def test_one_missing_breadth_session_is_imputed_and_every_alert_says_which(store, calendar):
    """DESIGN.md §4: a missing session is imputed (flat A/D line, net 0); a window with at
    most max_imputed_sessions (1) of them is evaluated on the bridged line, saying which."""
    with store.engine.begin() as conn:
        conn.execute(sa.text("delete from breadth where session = '2026-02-10'"))
    res = evaluate_day(store, calendar, RULES, LAST, capital=2_000_000)
    assert res.freshness.complete and res.evaluation is not None
    (breadth,) = [c for c in res.freshness.checks if c.series == "BREADTH"]
    assert breadth.imputed == (D(2026, 2, 10),)
    assert "1 session(s) imputed in the look-back (no accepted row): 2026-02-10" in (
        breadth.describe(LAST))
    v = res.evaluation.values
    assert v["ad_imputed_sessions"] == 1 and v["breadth_window_imputed"] == "2026-02-10"
    assert v["ad_divergence_days"] is not None and v["ad_divergence_days"] == v[
        "ad_divergence_days"]  # evaluated, not NaN
    alerts = _alerts(store, res)
    assert alerts
    for alert in alerts:
        assert ("Imputed breadth in the window (no accepted NYSE row; the A/D line carries "
                "flat): 2026-02-10") in alert.text, alert.kind
        assert "Breadth in the A/D divergence window: snapshot:tradingview" in alert.text


def test_too_many_imputed_sessions_make_the_ad_divergence_not_evaluable(store, calendar):
    with store.engine.begin() as conn:
        conn.execute(sa.text(
            "delete from breadth where session in ('2026-02-10', '2026-02-11')"))
    res = evaluate_day(store, calendar, RULES, LAST, capital=2_000_000)
    assert res.freshness.complete and res.evaluation is not None  # not a refusal
    ev = res.evaluation
    why = ("2 imputed breadth sessions in the 63-session divergence window, at most 1 "
           "allowed: 2026-02-10, 2026-02-11")
    assert ev.values["ad_divergence_days"] is None or ev.values["ad_divergence_days"] != (
        ev.values["ad_divergence_days"])
    assert ev.values["ad_divergence_days.why"] == why
    # The layer-1 condition needs it: it does not hold, and says why.
    (l1,) = [a for a in ev.actions if a.decision.layer == "layer1"]
    assert l1.decision.action != "add"
    assert any(f"ad_divergence_days = not evaluable > ad_min_days = 10 ✘ not evaluable "
               f"(ad_divergence_days: {why})" in r for r in l1.decision.reasons)
    summary = next(a for a in _alerts(store, res) if a.kind == "daily_summary")
    assert f"Divergence A/D not evaluable ({why})" in summary.text
    assert "Divergence A/D 0" not in summary.text and "none" not in summary.text.split(
        "Divergence A/D")[1].split(";")[0]
    record = RunRecord.of(ev)
    assert record.values["ad_divergence_days"] is None
    assert record.not_evaluable["ad_divergence_days"] == why
    assert RunRecord.from_json(json.loads(json.dumps(record.to_json()))) == record


def test_a_rejected_breadth_row_is_imputed_and_named_as_rejected(store, calendar):
    """The snapshot's Unicorn row of 2004-02-27 is a partial-day count (1,637 issues against a
    median of 3,064): the store rejects it, the frame imputes the session and says why."""
    from bot.engine.indicators import NOT_EVALUABLE

    frame = indicator_frame(store, calendar, RULES, D(2003, 1, 2), D(2004, 3, 31))
    day = pd.Timestamp("2004-02-27")
    assert bool(frame.loc[day, "ad_imputed"]) and pd.isna(frame.loc[day, "advancers"])
    why = frame.loc[day, NOT_EVALUABLE]["advancers"]
    assert why.startswith("imputed: the row was rejected (partial-day count: advancers + "
                          "decliners 1,637 < 80% of the 21-session median 3,064)")
    after = frame.loc["2004-03-01"]
    assert after["breadth_window_imputed"] == "2004-02-27 (rejected)"
    assert after["ad_imputed_sessions"] == 1 and not pd.isna(after["ad_divergence_days"])


def test_vix3m_before_its_history_is_not_evaluable_not_a_refusal(store, calendar):
    """DESIGN.md §4: a series whose history starts after t is not evaluable for t (shown so,
    never 0), not stale: 2009-09-17 is evaluated, and says why VIX3M is missing."""
    day = D(2009, 9, 17)
    res = evaluate_day(store, calendar, RULES, day, capital=2_000_000)
    assert res.evaluation is not None, res.freshness.problems()
    (vix3m,) = [c for c in res.freshness.checks if c.series == "VIX3M"]
    assert vix3m.ok and vix3m.starts == D(2009, 9, 18)
    assert vix3m.describe(day) == (
        "VIX3M: not evaluable for 2009-09-17 (its history starts 2009-09-18)")
    alerts = _alerts(store, res)
    summary = next(a for a in alerts if a.kind == "daily_summary")
    assert ("VIX3M not evaluable (no VIX3M history up to this session)  ratio not evaluable "
            "(no VIX3M history up to this session)") in summary.text
    # Before 2015 no CPI/PPI calendar is shipped: every alert says those blackouts cannot
    # be applied (a watched kind with no known event blacks nothing out).
    for alert in alerts:
        assert ("⚠ The CPI blackout cannot be applied: the CPI calendar starts 2015-01-16"
                in alert.text), alert.kind
        assert "⚠ The PPI blackout cannot be applied: the PPI calendar starts" in alert.text
    # With no VIX3M row at all, the series is missing data: refused.
    with store.engine.begin() as conn:
        conn.execute(sa.text("delete from bars where symbol = 'VIX3M'"))
    refused = evaluate_day(store, calendar, RULES, day, capital=2_000_000)
    assert refused.evaluation is None
    assert "VIX3M: no data at all" in refused.freshness.problems()


def test_the_session_itself_needs_its_own_breadth_row(store, calendar):
    with store.engine.begin() as conn:
        conn.execute(sa.text("delete from breadth where session = '2026-02-27'"))
    res = evaluate_day(store, calendar, RULES, LAST, capital=2_000_000)
    assert res.evaluation is None  # never imputed
    assert any(p.startswith("BREADTH: stale: newest row 2026-02-26") for p in
               res.freshness.problems())


def test_every_rules_name_is_a_column_of_the_frame(store, calendar):
    from bot.engine.rules.names import INDICATOR_NAMES

    frame = indicator_frame(store, calendar, RULES, D(2025, 1, 2), LAST)
    assert set(INDICATOR_NAMES) <= set(frame.columns)


def test_stale_data_refuses_to_signal(store, calendar):
    res = evaluate_day(store, calendar, RULES, D(2026, 3, 2), capital=2_000_000)
    assert res.evaluation is None
    assert any("SPX: stale: newest row 2026-02-27" in p for p in res.freshness.problems())


def test_state_is_carried_from_the_previous_run(store, calendar):
    prev = calendar.previous_session(LAST)
    first = evaluate_day(store, calendar, RULES, prev, capital=2_000_000)
    assert first.replayed_from is not None  # no run yet: state rebuilt from history
    assert first.evaluation is not None
    assert store.runs.record(RunRecord.of(first.evaluation), late=False)
    assert not store.runs.record(RunRecord.of(first.evaluation), late=False)  # idempotent
    second = evaluate_day(store, calendar, RULES, LAST, capital=2_000_000)
    assert second.replayed_from is None
    assert second.evaluation is not None
    assert second.evaluation.state_before == first.evaluation.state_after
    stored = store.runs.get(prev)
    assert stored is not None and stored.rules_sha256 == RULES.sha256
    assert stored.state == first.evaluation.state_after


def test_replay_has_no_look_ahead(store, calendar):
    """Decisions up to a cut are identical whether later data exists or not."""
    start, end = D(2021, 1, 4), D(2021, 12, 31)
    frame = indicator_frame(store, calendar, RULES, D(2017, 1, 3), end)
    full = replay(frame, RULES, calendar, capital=2_000_000, start=start, end=end)
    for cut in (D(2021, 8, 4), D(2021, 9, 28), D(2021, 10, 18)):
        part_frame = indicator_frame(store, calendar, RULES, D(2017, 1, 3), cut)
        part = replay(part_frame, RULES, calendar, capital=2_000_000, start=start, end=cut)
        assert len(part) == len([e for e in full if e.session <= cut])
        for a, b in zip(part, full, strict=False):
            assert a.actions == b.actions, a.session
            assert a.state_after == b.state_after
    assert any(a.decision.action == "add" for e in full for a in e.actions)


def test_live_fetch_fills_the_session_from_local_servers(store, calendar):
    """Yahoo, Cboe, WSJ and the Fed served from 127.0.0.1 in their real formats."""
    with store.engine.begin() as conn:
        conn.execute(sa.text("delete from bars where session = '2026-02-27'"))
        conn.execute(sa.text("delete from breadth where session = '2026-02-27'"))
    wsj = (RECORDED / "wsj_marketsdiary_2026-07-27.json").read_text()
    wsj = wsj.replace("Monday, July 27, 2026", "Friday, February 27, 2026")
    sleeps = RecordingSleep()
    with LocalServer() as srv:
        srv.route("/v8/finance/chart/^GSPC", RECORDED / "yahoo_chart_gspc_2026-02.json")
        for sym in ("VIX", "VIX3M", "VIX6M"):
            srv.route(cboe_path(sym), SNAPSHOT_DIR / "vix" / f"{sym}_History.csv")
        srv.route(WSJ_PAGE, wsj.encode())
        srv.route(FED_PATH, RECORDED / "fed_calendar_2026-10.json")

        async def go():
            async with httpx.AsyncClient(timeout=5) as client:
                ctx = make_ctx(client, calendar, sleeps,
                               now=dt.datetime(2026, 2, 27, 18, 0, tzinfo=ET))
                chains = default_chains(Endpoints.all_at(srv.url),
                                        calendar_dir=SNAPSHOT_DIR / "calendar")
                return await fetch_session(ctx, chains, store, LAST)

        import asyncio

        report = asyncio.run(go())
        ua = srv.requests_to("/v8/finance/chart/^GSPC")[0].headers["user-agent"]
    assert report.used["SPX"] == "yahoo" and report.used["BREADTH"] == "wsj"
    assert report.used["VIX"] == "cboe"
    # calendar.json, extended by the shipped file beyond its last meeting (the meetings
    # page is not served here).
    assert report.used["FOMC"] == "fed + file:fomc_decisions.csv (10 after 2026-10-28)"
    assert "Mozilla" in ua
    assert report.used["PPI"] == "file:ppi_releases.csv"  # no FRED key: the shipped calendar
    res = evaluate_day(store, calendar, RULES, LAST, capital=2_000_000)
    assert res.freshness.complete, res.freshness.problems()
    assert res.sources["SPX"] == "yahoo" and res.sources["BREADTH"] == "wsj"
    assert res.evaluation is not None
    assert res.evaluation.values["close"] == pytest.approx(6878.88)


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    from contextlib import redirect_stdout

    with redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_run_once_snapshot_dry_run_then_recorded_then_idempotent(snapshot_dir, monkeypatch):
    monkeypatch.setenv("ALVH_DATA_DIR", str(snapshot_dir))
    code, text = run_cli("run-once", "--source", "snapshot", "--dry-run")
    assert code == 0
    assert "alvh run-once 2026-02-27 (source snapshot; dry run" in text
    assert "CONDOR GO · 2026-02-27" in text and "Break-evens" in text
    assert "SYNTHETIC" not in text and "BREADTH snapshot:tradingview" in text
    store = open_store(f"sqlite:///{snapshot_dir / STORE_NAME}")
    assert store.runs.get(LAST) is None  # a dry run records nothing
    code, text = run_cli("run-once", "--source", "snapshot", "--json")
    assert code == 0
    record = json.loads(text)
    assert record["recorded"] is True and record["session"] == "2026-02-27"
    assert record["condor"]["go"] is True and record["condor"]["checks"]
    # Each condition as fields, not only a line of text (issue 11).
    vix = next(c for c in record["condor"]["checks"] if c["name"] == "vix")
    assert vix["operator"] == "<" and vix["threshold"] == "condor_max_vix"
    assert vix["threshold_value"] == 35 and vix["passed"] is True
    assert vix["value"] == pytest.approx(record["values"]["vix"])
    assert vix["text"].endswith("✔") and vix["observed"].startswith("vix = ")
    assert {a["topic"] for a in record["alerts"]} >= {"condor", "summary"}
    assert store.runs.get(LAST) is not None
    code, text = run_cli("run-once", "--source", "snapshot")
    assert code == 0 and "already evaluated" in text and "nothing sent" in text
    store.close()


def test_run_once_refuses_a_holiday(snapshot_dir, monkeypatch, capsys):
    monkeypatch.setenv("ALVH_DATA_DIR", str(snapshot_dir))
    assert main(["run-once", "--source", "snapshot", "--date", "2026-02-16"]) == 2
    assert "not an NYSE session" in capsys.readouterr().err


def test_indicators_command_prints_the_rules_vocabulary(snapshot_dir, monkeypatch):
    monkeypatch.setenv("ALVH_DATA_DIR", str(snapshot_dir))
    code, text = run_cli("indicators", "--from", "2018-12-20", "--to", "2018-12-31",
                         "--csv", "--source", "snapshot")
    assert code == 0
    frame = pd.read_csv(io.StringIO(text), index_col="session")
    for col in ("close", "macd", "macd_signal", "macd_hist", "rsi", "ad_line",
                "ad_divergence_days", "macd_divergence_days", "vix", "vix3m",
                "vix_term_ratio", "blackout"):
        assert col in frame.columns
    assert list(frame.index) == ["2018-12-20", "2018-12-21", "2018-12-24", "2018-12-26",
                                 "2018-12-27", "2018-12-28", "2018-12-31"]
    # DESIGN.md §4 pinned values.
    assert frame.loc["2018-12-24", "macd"] == pytest.approx(-77.496788, abs=1e-6)
    assert frame.loc["2018-12-31", "rsi"] == pytest.approx(41.709268, abs=1e-6)
    for col in ("ad_divergence_streak", "macd_divergence_streak", "mcclellan_oscillator",
                "summation_index", "ad_imputed_sessions", "not_evaluable"):
        assert col in frame.columns


def test_indicators_command_shows_not_evaluable_with_the_reason(snapshot_dir, monkeypatch):
    monkeypatch.setenv("ALVH_DATA_DIR", str(snapshot_dir))
    code, text = run_cli("indicators", "--from", "2009-09-16", "--to", "2009-09-18",
                         "--csv", "--source", "snapshot")
    assert code == 0
    frame = pd.read_csv(io.StringIO(text), index_col="session", keep_default_na=False)
    # VIX3M starts 2009-09-18: before, the cells say so (never 0 or blank) and why.
    assert list(frame["vix3m"]) == ["not evaluable", "not evaluable", "26.54"]
    assert list(frame["vix_term_ratio"][:2]) == ["not evaluable", "not evaluable"]
    assert "vix3m, vix_term_ratio: no VIX3M history up to this session" in (
        frame.loc["2009-09-17", "not_evaluable"])
    assert "vix3m" not in frame.loc["2009-09-18", "not_evaluable"]
    # No CPI calendar before 2015: not evaluable, and the blackout says it cannot apply.
    assert set(frame["sessions_to_cpi"]) == {"not evaluable"}
    assert set(frame["blackout_unapplied"]) == {"CPI, PPI"}
    code, table = run_cli("indicators", "--from", "2009-09-17", "--to", "2009-09-17",
                          "--source", "snapshot")
    assert code == 0 and "not evaluable" in table and "NaN" not in table
    assert "<NA>" not in table


def test_run_once_json_says_why_a_value_is_not_evaluable(snapshot_dir, monkeypatch):
    monkeypatch.setenv("ALVH_DATA_DIR", str(snapshot_dir))
    code, text = run_cli("run-once", "--source", "snapshot", "--date", "2009-09-17",
                         "--dry-run", "--json")
    assert code == 0
    record = json.loads(text)
    assert record["values"]["vix3m"] is None and record["values"]["vix_term_ratio"] is None
    assert record["not_evaluable"]["vix3m"] == "no VIX3M history up to this session"
    assert record["not_evaluable"]["sessions_to_cpi"] == "the CPI calendar starts 2015-01-16"


def test_calendar_for_indicators_is_exchange_based(calendar: SessionCalendar):
    # The CLI's default session: the last one closed, from the exchange calendar.
    assert calendar.last_closed_session(dt.datetime(2026, 11, 26, 12, tzinfo=ET)) == D(
        2026, 11, 25
    )


def test_a_first_live_run_asks_for_years_of_history(tmp_path, calendar):
    """An empty store gets the look-back and warm-up in one go, not the 15-session window."""
    import asyncio

    from bot.market.fetch import HISTORY_SESSIONS

    store = open_store(f"sqlite:///{tmp_path / 'live.sqlite'}")
    with LocalServer() as srv:
        srv.route("/v8/finance/chart/^GSPC", RECORDED / "yahoo_chart_gspc_2026-02.json")

        async def go():
            async with httpx.AsyncClient(timeout=5) as client:
                ctx = make_ctx(client, calendar, RecordingSleep(),
                               now=dt.datetime(2026, 2, 27, 18, tzinfo=ET),
                               policy=RetryPolicy(attempts=1, base_delay=0.01))
                return await fetch_session(ctx, default_chains(Endpoints.all_at(srv.url)),
                                           store, LAST)

        report = asyncio.run(go())
        (req,) = srv.requests_to("/v8/finance/chart/^GSPC")
    asked = dt.datetime.fromtimestamp(int(req.query["period1"][0]), tz=ET).date()
    assert asked == calendar.offset(LAST, -(HISTORY_SESSIONS - 1))
    assert report.used["SPX"] == "yahoo"
    store.close()


def test_a_rebuilt_state_is_announced_with_what_it_stepped_over(store, calendar):
    from bot.engine.compose import Context, compose
    from bot.kernel.alerts import Topic

    res = evaluate_day(store, calendar, RULES, D(2021, 10, 1), capital=2_000_000)
    assert res.evaluation is not None and res.replayed_from is not None
    assert "2021-07-23 layer1 add" in res.replayed and "2021-09-28 layer2 add" in res.replayed
    ctx = Context(D(2021, 10, 1), RULES.sha256, res.sources, res.breadth_source, 2_000_000,
                  replayed_from=res.replayed_from, replayed=res.replayed)
    summary = next(a for a in compose(ctx, res.evaluation) if a.topic is Topic.SUMMARY)
    assert "rebuilt by replaying the sessions from" in summary.text
    assert "no alerts were sent for them" in summary.text
    assert "2021-09-28 layer2 add" in summary.text


def test_run_record_checks_round_trip_and_old_records_still_load():
    """Checks are stored as fields; a run recorded before that (checks as lines) still loads."""
    from bot.engine.record import CheckRecord, VerdictRecord
    from bot.engine.rules import load_default_rules

    verdict = load_default_rules().condor.enter_when.evaluate(
        {"blackout": False, "active_layers": 3, "vix": 18.0})
    rec = VerdictRecord.of(verdict)
    assert VerdictRecord.from_json(json.loads(json.dumps(rec.to_json()))) == rec
    layers = next(c for c in rec.checks if c.name == "active_layers")
    assert (layers.value, layers.operator, layers.threshold_value, layers.passed) == (3, "<", 2,
                                                                                      False)
    assert layers.observed == "active_layers = 3 ≥ condor_max_layers = 2"
    old = VerdictRecord.from_json({"condition": "vix < condor_max_vix", "passed": False,
                                   "checks": ["vix = 40 < condor_max_vix = 35 ✘"]})
    assert old.checks == (CheckRecord("vix = 40 < condor_max_vix = 35 ✘", "", None, None, None,
                                      None, False),)
