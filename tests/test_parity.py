"""One engine, one answer: ``alvh run-once --date D`` and a backtest that covers D decide D alike.

The run-once side is the real evaluation path (:class:`SessionEvaluator`, the
object the scheduler's job and ``run-once`` call) on a copy of the shipped
snapshot: sessions are evaluated oldest first and recorded, so each run picks
up the layer state where the previous one left it and replays the sessions
between (refused ones skipped), as a bot started on those dates would; the
first one rebuilds the state from the store's first session. A few more are
evaluated through the ``alvh run-once --date D --dry-run --json`` command on
a store with no runs at all (the cold rebuild). The backtest side is one
``run_backtest`` over 1999–2026. For every session the two must agree on
everything a run records: the refusal and its words, or the indicator values,
the layer state before and after, every layer decision with its reasons and
sizing, the condor decision with its construction, the warnings and notes
(not the explanations of why nothing changed, which a replay skips).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
from contextlib import redirect_stdout

import pytest

from bot.app.cli import main
from bot.backtest.run import run_backtest
from bot.engine.record import RunRecord
from bot.engine.rules import load_default_rules
from bot.market.extras import fetch_nothing
from bot.market.snapshot import STORE_NAME
from bot.pipeline.session import SessionEvaluator
from bot.store import open_store

D = dt.date
RULES = load_default_rules()
FIRST, LAST = D(1999, 1, 4), D(2026, 2, 27)
COVID = (D(2020, 2, 28), D(2020, 3, 13))
"""Every session here: the crash, the 2020-03-03 emergency cut (no blackout before it)."""
CRISIS = (D(2007, 1, 3), D(2009, 12, 31))
COLD = (D(2002, 6, 20), D(2008, 10, 10), D(2013, 7, 22), D(2020, 3, 2), D(2026, 2, 27))
"""Cold rebuilds through the CLI: a refused session, the 2008 crash, a layer-1 add, the
session before the 2020-03-03 emergency cut, the snapshot's last session."""


def sample(calendar) -> list[dt.date]:
    days = calendar.sessions_between(FIRST, LAST)
    crisis = calendar.sessions_between(*CRISIS)
    out = set(days[::47]) | set(crisis[::11]) | set(calendar.sessions_between(*COVID))
    out |= {D(1999, 11, 26), D(2002, 6, 20), D(2004, 2, 27), D(2024, 1, 11), D(2025, 3, 3)}
    return sorted(out)


class _Sink:
    """The evaluator's sink without an outbox: the alerts are built and dropped."""

    async def publish(self, alerts) -> None:
        self.alerts = list(alerts)

    def pending(self) -> int:
        return 0


EXPLAINING = {"keep", "not_added", "hold_exit"}
"""Explanations of why nothing changed: a live run writes them for /why, a replay skips them
(they are not decisions)."""


def _record(ev) -> dict:
    out = json.loads(json.dumps(RunRecord.of(ev).to_json(), default=str))
    out["layer_decisions"] = [d for d in out["layer_decisions"] if d["action"] not in EXPLAINING]
    return out


@pytest.fixture(scope="module")
def backtest(tmp_path_factory, copy_snapshot, calendar):
    data = copy_snapshot(tmp_path_factory.mktemp("parity-bt"))
    store = open_store(f"sqlite:///{data / STORE_NAME}")
    try:
        res = run_backtest(store, calendar, RULES, FIRST, LAST, capital=2_000_000)
    finally:
        store.close()
    return {ev.session: ev for ev in res.evaluations}, dict(res.refused)


def test_run_once_and_the_backtest_decide_every_session_alike(
        backtest, tmp_path, copy_snapshot, calendar):
    decided, refused = backtest
    days = sample(calendar)
    assert len(days) >= 220
    data = copy_snapshot(tmp_path)
    store = open_store(f"sqlite:///{data / STORE_NAME}")
    evaluator = SessionEvaluator(store, calendar, rules=lambda: RULES, fetch=fetch_nothing,
                                 capital=2_000_000)
    seen = {"refused": 0, "decided": 0, "adds": 0, "removes": 0, "go": 0, "skip": 0}
    try:
        for day in days:
            run = asyncio.run(evaluator.evaluate(day, late=False, sink=_Sink(), chart=False))
            assert run.result is not None
            if run.result.evaluation is None:
                assert day in refused, f"{day}: run-once refused, the backtest decided"
                assert tuple(run.result.freshness.problems()) == refused[day], day
                seen["refused"] += 1
                continue
            assert day in decided, f"{day}: the backtest refused, run-once decided"
            assert _record(run.result.evaluation) == _record(decided[day]), day
            ev = decided[day]
            seen["decided"] += 1
            seen["adds"] += any(a.decision.action == "add" for a in ev.actions)
            seen["removes"] += any(a.decision.action == "remove" for a in ev.actions)
            seen["go" if ev.condor and ev.condor.go else "skip"] += 1
    finally:
        store.close()
    # The sample holds every kind of answer, not only quiet days.
    assert seen["refused"] >= 5 and seen["decided"] >= 200
    assert seen["go"] >= 100 and seen["skip"] >= 30
    assert seen["adds"] + seen["removes"] >= 1 or any(
        decided[d].state_after.layers for d in days if d in decided)


@pytest.mark.parametrize("day", COLD)
def test_a_cold_run_once_rebuilds_the_backtests_state(
        day, backtest, tmp_path, copy_snapshot, monkeypatch):
    decided, refused = backtest
    monkeypatch.setenv("ALVH_DATA_DIR", str(copy_snapshot(tmp_path)))
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["run-once", "--source", "snapshot", "--date", day.isoformat(),
                     "--dry-run", "--json"])
    record = json.loads(out.getvalue())
    if day in refused:
        assert code == 1 and record["complete"] is False
        assert tuple(record["problems"]) == refused[day]
        return
    assert code == 0
    record["layer_decisions"] = [d for d in record["layer_decisions"]
                                 if d["action"] not in EXPLAINING]
    expected = _record(decided[day])
    for key, value in expected.items():
        assert record[key] == value, (day, key)
