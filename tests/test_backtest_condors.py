"""Condor outcomes in the backtest: entries per cycle, marks, exits, settlement, hedge allocation.

Hand-made cases pin each definition of ``bot.backtest.condors``; a backtest on
the shipped snapshot checks that the trades, the files and the totals agree
and that an expired trade's P&L is what the stored SPX open says.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bot.app.cli import main
from bot.backtest.condors import (
    Market,
    TradePolicy,
    allocate,
    condor_value,
    cycle_key,
    entries,
    follow,
    hedge_changes,
    settlement_value,
)
from bot.backtest.run import LayerPeriod, run_backtest
from bot.backtest.summary import summarize
from bot.engine.condor import CondorParams, build_condor
from bot.engine.evaluate import CondorDecision, Evaluation
from bot.engine.hedge import vx_proxy_price
from bot.engine.rules import load_default_rules
from bot.engine.state import LayerState
from bot.market.snapshot import STORE_NAME
from bot.store import open_store

D = dt.date
RULES = load_default_rules()
PARAMS = CondorParams(put_delta=0.16, call_delta=0.16, wing_width=50, strike_step=5, r=0.045,
                      q=0.013)


FIRST, EXPIRY = D(2024, 1, 2), D(2024, 2, 16)


def condor(spot: float = 5000.0, vix: float = 18.0, as_of: D = FIRST, expiry: D = EXPIRY,
           kind: str = "monthly", budget: float = 100_000.0):
    return build_condor(spot=spot, sigma=vix / 100, as_of=as_of, expiry=expiry,
                        kind=kind, params=PARAMS, max_loss_budget=budget)  # type: ignore[arg-type]


def market(calendar, start: D, end: D, close, vix, opens=None, vix3m=None, vix6m=None) -> Market:
    idx = pd.DatetimeIndex([pd.Timestamp(d) for d in calendar.sessions_between(start, end)])
    n = len(idx)

    def arr(v):
        return np.full(n, v, dtype=float) if np.isscalar(v) else np.asarray(v, dtype=float)

    frame = pd.DataFrame({"close": arr(close), "vix": arr(vix),
                          "vix3m": arr(np.nan if vix3m is None else vix3m),
                          "vix6m": arr(np.nan if vix6m is None else vix6m)}, index=idx)
    o = pd.Series(arr(close if opens is None else opens), index=idx)
    return Market.of(frame, o)


# ------------------------------------------------------------------ definitions


def test_settlement_value_of_the_four_legs_by_hand():
    k = condor()
    sp, lp, sc, lc = (k.short_put.strike, k.long_put.strike, k.short_call.strike,
                      k.long_call.strike)
    assert settlement_value(k, (sp + sc) / 2) == 0.0          # between the shorts
    assert settlement_value(k, sp - 20) == pytest.approx(20)  # inside the put spread
    assert settlement_value(k, lp - 100) == pytest.approx(50)  # beyond the long put: the wing
    assert settlement_value(k, sc + 7.5) == pytest.approx(7.5)
    assert settlement_value(k, lc + 1) == pytest.approx(50)


def test_condor_value_at_entry_is_the_credit():
    k = condor()
    assert condor_value(k, 5000.0, 0.18, (k.expiry - k.as_of).days, 0.045, 0.013) == \
        pytest.approx(k.credit, abs=1e-12)


def test_cycles_end_at_the_next_monthly_expiration(calendar):
    assert cycle_key(D(2024, 1, 2), "monthly_cycle", calendar) == D(2024, 1, 19)
    assert cycle_key(D(2024, 1, 18), "monthly_cycle", calendar) == D(2024, 1, 19)
    # The expiration session itself opens the next cycle (AM settlement: the old one is gone).
    assert cycle_key(D(2024, 1, 19), "monthly_cycle", calendar) == D(2024, 2, 16)
    # Good Friday 2025: April's options expired on Thursday 2025-04-17.
    assert cycle_key(D(2025, 4, 16), "monthly_cycle", calendar) == D(2025, 4, 17)
    assert cycle_key(D(2025, 4, 17), "monthly_cycle", calendar) == D(2025, 5, 16)
    assert cycle_key(D(2024, 12, 27), "monthly_cycle", calendar) == D(2025, 1, 17)
    assert cycle_key(D(2024, 1, 18), "weekly_cycle", calendar) == D(2024, 1, 15)


def _ev(day: D, go: bool, k=None) -> Evaluation:
    verdict = RULES.condor.enter_when.evaluate({"blackout": not go, "active_layers": 0,
                                                "vix": 18.0})
    return Evaluation(day, RULES.sha256, {}, LayerState(), LayerState(),
                      condor=CondorDecision(go, verdict, k))


def test_one_entry_per_cycle_on_its_first_go_session_that_can_be_built(calendar):
    zero = condor(budget=1.0)  # a budget below one condor's max loss: 0 contracts
    assert zero.contracts == 0
    evs = [_ev(D(2024, 1, 2), False), _ev(D(2024, 1, 3), True, zero),
           _ev(D(2024, 1, 4), True, condor(as_of=D(2024, 1, 4))),
           _ev(D(2024, 1, 5), True, condor(as_of=D(2024, 1, 5))),
           _ev(D(2024, 1, 19), True, condor(as_of=D(2024, 1, 19), expiry=D(2024, 3, 15))),
           _ev(D(2024, 1, 22), True, condor(as_of=D(2024, 1, 22), expiry=D(2024, 3, 15)))]
    opened, notes = entries(evs, TradePolicy(), calendar)
    assert [d for d, _ in opened] == [D(2024, 1, 4), D(2024, 1, 19)]
    assert notes == []
    only_zero = [_ev(D(2024, 1, 3), True, zero)]
    opened, notes = entries(only_zero, TradePolicy(), calendar)
    assert opened == [] and len(notes) == 1 and "2024-01-19" in notes[0]
    assert "less than one condor's max loss" in notes[0]


def test_held_to_expiration_settles_on_the_open_of_the_expiry_session(calendar):
    k = condor()
    m = market(calendar, D(2024, 1, 2), D(2024, 2, 23), close=5000.0, vix=18.0,
               opens=np.where([d == D(2024, 2, 16) for d in
                               calendar.sessions_between(D(2024, 1, 2), D(2024, 2, 23))],
                              k.short_put.strike - 12.5, 5000.0))
    path, exit_on, reason, value, settle, basis = follow(k, D(2024, 1, 2), m, TradePolicy(),
                                                         0.045, 0.013)
    assert (exit_on, reason, settle) == (D(2024, 2, 16), "expiration", k.short_put.strike - 12.5)
    assert value == pytest.approx(12.5)
    assert path[-1] == pytest.approx(k.credit - 12.5)
    assert len(path) == len(calendar.sessions_between(D(2024, 1, 2), D(2024, 2, 16)))
    assert "open (AM settlement" in basis


def test_weekly_condors_settle_on_the_close(calendar):
    k = condor(kind="weekly", expiry=D(2024, 1, 12))
    days = calendar.sessions_between(D(2024, 1, 2), D(2024, 1, 16))
    close = [5000.0 if d != D(2024, 1, 12) else k.short_call.strike + 3 for d in days]
    m = market(calendar, D(2024, 1, 2), D(2024, 1, 16), close=close, vix=18.0, opens=5000.0)
    _, exit_on, reason, value, settle, _ = follow(k, D(2024, 1, 2), m, TradePolicy(), 0.045,
                                                  0.013)
    assert (exit_on, reason, settle, value) == (D(2024, 1, 12), "expiration",
                                                k.short_call.strike + 3, pytest.approx(3))


def test_take_profit_and_stop_loss_are_checked_on_closes(calendar):
    k = condor()
    days = calendar.sessions_between(D(2024, 1, 2), D(2024, 2, 16))
    # VIX collapses on the 5th session: the condor's model value falls below half the credit.
    vix = [18.0] * 5 + [9.0] * (len(days) - 5)
    m = market(calendar, D(2024, 1, 2), D(2024, 2, 16), close=5000.0, vix=vix)
    tp = TradePolicy(take_profit=0.5)
    path, exit_on, reason, value, _, _ = follow(k, D(2024, 1, 2), m, tp, 0.045, 0.013)
    assert (reason, exit_on) == ("take_profit", days[5])
    assert k.credit - value >= 0.5 * k.credit and path[-1] == pytest.approx(k.credit - value)
    # Without the rule the same condor is held to expiration.
    assert follow(k, D(2024, 1, 2), m, TradePolicy(), 0.045, 0.013)[2] == "expiration"
    # SPX drops through the long put on the 3rd session: a stop at 50 % of the max loss.
    close = [5000.0] * 3 + [k.long_put.strike - 200] * (len(days) - 3)
    m = market(calendar, D(2024, 1, 2), D(2024, 2, 16), close=close, vix=18.0)
    _, exit_on, reason, value, _, _ = follow(k, D(2024, 1, 2), m, TradePolicy(stop_loss=0.5),
                                             0.045, 0.013)
    assert (reason, exit_on) == ("stop_loss", days[3])
    assert value - k.credit >= 0.5 * k.max_loss


def test_a_session_without_vix_keeps_the_mark_and_checks_nothing(calendar):
    k = condor()
    days = calendar.sessions_between(D(2024, 1, 2), D(2024, 2, 16))
    vix = [18.0, float("nan")] + [9.0] * (len(days) - 2)
    m = market(calendar, D(2024, 1, 2), D(2024, 2, 16), close=5000.0, vix=vix)
    path, exit_on, reason, *_ = follow(k, D(2024, 1, 2), m, TradePolicy(take_profit=0.5),
                                       0.045, 0.013)
    assert path[1] == 0.0 and reason == "take_profit" and exit_on == days[2]


def test_allocation_splits_each_session_by_risk_and_keeps_the_rest():
    hedge = np.array([0.0, 100.0, -30.0, 60.0, 10.0, 5.0])
    # trade A exposed on sessions 1..3, trade B (3x the risk) on 2..4; nothing on 5.
    shares, unallocated = allocate(hedge, [(0, 3, 1000.0), (1, 4, 3000.0)])
    assert shares[0] == pytest.approx(100 + (-30) * 0.25 + 60 * 0.25)
    assert shares[1] == pytest.approx((-30) * 0.75 + 60 * 0.75 + 10)
    assert list(unallocated) == [0.0, 0.0, 0.0, 0.0, 0.0, 5.0]
    assert shares.sum() + unallocated.sum() == pytest.approx(hedge.sum())


def test_allocation_adds_up_whatever_the_float_dust():
    """Risks like 4,512.37 and 3,901.1 do not cancel exactly in a running sum: a session after
    every exit must still count as "no condor exposed", and the shares must add up."""
    rng = np.random.default_rng(7)
    n = 400
    hedge = rng.normal(0, 300, n)
    exposures = []
    for _ in range(60):
        a = int(rng.integers(0, n - 40))
        exposures.append((a, a + int(rng.integers(5, 35)), float(rng.uniform(1e3, 1e5))))
    shares, unallocated = allocate(hedge, exposures)
    assert shares.sum() + unallocated.sum() == pytest.approx(hedge.sum(), abs=1e-6)
    covered = np.zeros(n, dtype=bool)
    for a, b, _ in exposures:
        covered[a + 1 : b + 1] = True
    assert np.array_equal(unallocated != 0, ~covered & (hedge != 0))


def test_hedge_marks_add_up_to_each_layers_pnl(calendar):
    days = calendar.sessions_between(D(2024, 1, 2), D(2024, 1, 31))
    v3 = np.linspace(15, 22, len(days))
    v6 = np.linspace(17, 21, len(days))
    m = market(calendar, D(2024, 1, 2), D(2024, 1, 31), close=5000.0, vix=15.0, vix3m=v3,
               vix6m=v6)
    expiry = D(2024, 5, 15)
    entry = vx_proxy_price((expiry - days[2]).days, v3[2], v6[2])
    exit_ = vx_proxy_price((expiry - days[15]).days, v3[15], v6[15])
    period = LayerPeriod("layer1", 0, days[2], days[15], None, "VX/K4", expiry, 2, entry, 1000.0,
                         days[15], exit_, "closed", "proxy", (exit_ - entry) * 1000.0 * 2)
    changes = hedge_changes([period], m)
    assert changes[:3].sum() == 0 and changes[16:].sum() == 0
    assert changes.sum() == pytest.approx(period.pnl)
    mid = vx_proxy_price((expiry - days[3]).days, v3[3], v6[3])
    assert changes[3] == pytest.approx((mid - entry) * 2000.0)


# ------------------------------------------------------------------ on the snapshot


@pytest.fixture(scope="module")
def store(tmp_path_factory, copy_snapshot):
    data = copy_snapshot(tmp_path_factory.mktemp("condor-data"))
    st = open_store(f"sqlite:///{data / STORE_NAME}")
    yield st
    st.close()


def test_trades_follow_the_go_signals_and_settle_on_the_stored_open(store, calendar):
    res = run_backtest(store, calendar, RULES, D(2018, 1, 2), D(2019, 12, 31), capital=2_000_000)
    c = summarize(res, calendar).condors
    go = {ev.session: ev for ev in res.evaluations if ev.condor and ev.condor.go}
    cycles = {cycle_key(d, "monthly_cycle", calendar) for d in go}
    assert len(c.trades) == len(cycles) > 20  # one a cycle that had a GO session
    opens = store.bars("SPX", D(2018, 1, 2), D(2019, 12, 31))["open"]
    for t in c.trades:
        k = go[t.entry].condor.condor
        assert (t.short_put, t.short_call, t.credit, t.contracts) == (
            k.short_put.strike, k.short_call.strike, k.credit, k.contracts)
        assert min(d for d in go if cycle_key(d, "monthly_cycle", calendar) ==
                   cycle_key(t.entry, "monthly_cycle", calendar)) == t.entry
        if t.exit_reason == "expiration":
            settle = float(opens.loc[pd.Timestamp(t.expiry)])
            assert t.settlement == settle
            assert t.pnl == pytest.approx((t.credit - settlement_value(k, settle)) * 100
                                          * t.contracts)
    # Totals: with hedge = every trade + every hedge dollar, allocated or not.
    periods = summarize(res, calendar).periods
    hedge = sum(p.pnl for p in periods if p.pnl is not None)
    assert hedge != 0
    assert c.without.total == pytest.approx(sum(t.pnl for t in c.trades))
    assert c.total_with_hedge == pytest.approx(c.without.total + hedge)
    assert float(c.equity_with_hedge.iloc[-1]) == pytest.approx(c.total_with_hedge)
    assert c.with_hedge.worst <= max(t.pnl_with_hedge for t in c.trades)


def test_the_cli_prints_the_trades_and_writes_them(capsys, tmp_path, monkeypatch, copy_snapshot):
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("ALVH_DATA_DIR", str(copy_snapshot(data)))
    monkeypatch.chdir(tmp_path)
    rules = tmp_path / "tp.yaml"
    text = (Path(__file__).parent.parent / "rules" / "alvh.yaml").read_text(encoding="utf-8")
    rules.write_text(text.replace("take_profit: null", "take_profit: 0.5"), encoding="utf-8")
    out_dir = tmp_path / "out"
    code = main(["backtest", "--from", "2008-01-02", "--to", "2008-12-31", "--source",
                 "snapshot", "--rules", str(rules), "--out", str(out_dir)])
    out = capsys.readouterr().out
    assert code == 0
    assert ("Condor trades: one condor on the first GO session of each monthly expiration "
            "cycle; take profit at 50% of the credit") in out
    assert "MODEL ESTIMATES" in out
    printed = re.findall(r"^  (\d{4}-\d\d-\d\d)  (\d{4}-\d\d-\d\d)  \d+/\d+ – \d+/\d+", out, re.M)
    with (out_dir / "condor_trades.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["entry"], r["expiry"]) for r in rows] == printed and len(rows) >= 8
    assert {r["exit"] for r in rows} >= {"take_profit", "expiration"}
    stats = json.loads((out_dir / "decisions.json").read_text(encoding="utf-8"))["stats"]
    ct = stats["condor_trades"]
    assert ct["model_estimates"] is True and len(ct["trades"]) == len(rows)
    total = re.search(r"^  total P&L\s+(-?\$[\d,]+)\s+(-?\$[\d,]+)$", out, re.M)
    assert total is not None
    usd = [f"-${-x:,.0f}" if x < 0 else f"${x:,.0f}"
           for x in (ct["without_hedge"]["total"], ct["total_with_hedge"])]
    assert list(total.groups()) == usd
    page = (out_dir / "report.html").read_text(encoding="utf-8")
    assert "Condor trades: what following the signals would have earned" in page
    assert "MODEL ESTIMATES" in page
