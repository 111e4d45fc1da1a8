"""The backtest's statistics on hand-made series: every definition the report prints.

Drawdown episodes (running peak, start at the threshold, recovery at the
peak), the forward maximum drawdown, false alarms (and when a trigger is
still undetermined), triggers preceding episodes, the proxy P&L arithmetic
and the exit pricing of a layer (removed, held past its expiry, still open),
breadth-source runs and the sessions where a source change rules out a
divergence, and the terminal-only progress bar.
"""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pandas as pd
import pytest

from bot.backtest.progress import Progress
from bot.backtest.run import layer_periods
from bot.backtest.stats import (
    drawdown_episodes,
    drawdown_series,
    episodes_preceded,
    forward_max_drawdown,
    layer_pnl,
    proxy_exit_price,
    trigger_outcomes,
)
from bot.backtest.summary import MISSING, blind_windows, source_periods
from bot.engine.evaluate import CondorDecision, Evaluation, LayerAction
from bot.engine.hedge import HedgeQuote, HedgeSize, vx_proxy_price
from bot.engine.rules import Verdict
from bot.engine.state import ActiveLayer, LayerDecision, LayerState
from bot.kernel.sessions import SessionCalendar

D = dt.date


START = D(2020, 1, 2)


def series(values: list[float], calendar: SessionCalendar, start: D = START) -> pd.Series:
    days = calendar.session_index(start, calendar.offset(start, len(values) + 5))[: len(values)]
    return pd.Series(values, index=days, dtype=float)


# ------------------------------------------------------------------ drawdowns


def test_episodes_start_at_the_threshold_and_end_back_at_the_peak(calendar):
    #        0    1    2   3     4   5    6    7    8   9
    close = [100, 105, 97, 94.5, 90, 100, 106, 110, 98, 97]
    s = series(close, calendar)
    days = [ts.date() for ts in s.index]
    eps = drawdown_episodes(s, 10.0)
    assert len(eps) == 2
    first, second = eps
    # 94.5 is exactly 10 % below the 105 peak: the episode starts there.
    assert (first.peak, first.start, first.trough, first.recovered) == (
        days[1], days[3], days[4], days[6])
    assert first.depth == pytest.approx(1 - 90 / 105)
    # 98 is 10.9 % below 110; no recovery within the data.
    assert (second.peak, second.start, second.trough, second.recovered) == (
        days[7], days[8], days[9], None)
    assert second.depth == pytest.approx(1 - 97 / 110)


def test_a_dip_short_of_the_threshold_is_no_episode_and_one_bear_market_is_one(calendar):
    assert drawdown_episodes(series([100, 90.1, 99, 100.5], calendar), 10.0) == []
    # Two legs down with a rally that stays below the peak: still one episode.
    bear = series([100, 85, 95, 80, 99, 70, 101], calendar)
    eps = drawdown_episodes(bear, 10.0)
    assert len(eps) == 1 and eps[0].trough_close == 70 and eps[0].recovered is not None
    with pytest.raises(ValueError, match="threshold"):
        drawdown_episodes(bear, 0)


def test_drawdown_series_and_forward_max_drawdown():
    closes = np.array([100.0, 110, 99, 105, 90])
    assert forward_max_drawdown(closes, 0, 4) == pytest.approx(1 - 90 / 110)
    assert forward_max_drawdown(closes, 0, 2) == pytest.approx(0.10)
    assert forward_max_drawdown(closes, 3, 60) == pytest.approx(1 - 90 / 105)
    assert forward_max_drawdown(closes, 4, 20) == 0.0
    dd = drawdown_series(pd.Series(closes))
    assert list(np.round(dd.to_numpy(), 6)) == [0, 0, 0.1, round(1 - 105 / 110, 6), round(
        1 - 90 / 110, 6)]


def test_false_alarms_and_undetermined_triggers(calendar):
    # Trigger A (pos 0): a 3 % dip then 70 flat sessions -> false alarm at 5 %.
    # Trigger B (pos 75): an 8 % fall within 60 sessions -> not a false alarm.
    # Trigger C (pos 150): a 2 % dip and only 9 sessions after -> undetermined.
    values = [100.0, 97.0] + [100.0] * 73 + [100.0, 92.0] + [95.0] * 73
    values += [95.0, 93.1] + [94.0] * 8
    close = series(values, calendar, D(2010, 1, 4))
    vix = pd.Series(np.linspace(10, 40, len(values)), index=close.index)
    days = [ts.date() for ts in close.index]
    a, b, c = trigger_outcomes(close, vix, [days[0], days[75], days[150]],
                               false_alarm_pct=5.0, false_alarm_horizon=60)
    assert (a.false_alarm, b.false_alarm, c.false_alarm) == (True, False, None)
    assert a.max_drawdown[20] == pytest.approx(0.03)
    assert b.max_drawdown[60] == pytest.approx(0.08)
    assert c.sessions_after == 9 and not c.complete(20)
    step = 30 / (len(values) - 1)
    assert a.vix_change[20] == pytest.approx(20 * step)
    assert c.vix_change[20] is None
    # A lower threshold that C has already reached decides it.
    (c2,) = trigger_outcomes(close, vix, [days[150]], false_alarm_pct=2.0)
    assert c2.false_alarm is False


def test_an_episode_is_preceded_by_the_latest_trigger_within_the_lead(calendar):
    close = series([100.0] * 100 + [89.0] * 5 + [101.0], calendar, D(2011, 1, 3))
    days = [ts.date() for ts in close.index]
    (ep,) = drawdown_episodes(close)
    assert ep.start == days[100]
    hedged = {days[100]: True}
    (out,) = episodes_preceded([ep], [days[30], days[90]], days, lead=60, hedged=hedged)
    assert out.preceded and out.trigger == days[90] and out.lead_sessions == 10
    assert out.hedged_at_start
    (late,) = episodes_preceded([ep], [days[30]], days, lead=60)
    assert not late.preceded and late.lead_sessions is None  # 70 sessions before: too early
    (edge,) = episodes_preceded([ep], [days[40]], days, lead=60)
    assert edge.trigger == days[40] and edge.lead_sessions == 60


# ------------------------------------------------------------------ hedge P&L


def test_proxy_pnl_arithmetic():
    assert layer_pnl(20.0, 25.5, 1000.0, 2) == pytest.approx(11_000)
    assert layer_pnl(18.0, 16.5, 1000.0, 1) == pytest.approx(-1_500)
    assert layer_pnl(18.0, 30.0, 1000.0, 0) == 0.0
    expiry = D(2024, 12, 18)
    mid = expiry - dt.timedelta(days=138)
    assert proxy_exit_price(expiry, mid, 20.0, 22.0) == pytest.approx(20 + 2 * 45 / 91)
    assert proxy_exit_price(expiry, expiry - dt.timedelta(days=60), 20.0, 22.0) == 20.0
    assert proxy_exit_price(expiry, mid, float("nan"), 22.0) == 22.0  # VIX3M missing: flat VIX6M


def _ev(day: D, state: LayerState, actions: tuple[LayerAction, ...] = ()) -> Evaluation:
    verdict = Verdict("true", True, [])
    return Evaluation(day, "sha", {}, state, state, actions, CondorDecision(True, verdict))


def _add(layer: str, index: int, day: D, expiry: D, price: float, qty: int) -> LayerAction:
    quote = HedgeQuote("vx_future", "VX/Z4", price, 1000.0, expiry, (expiry - day).days, True,
                       "proxy")
    size = HedgeSize(qty, price * 1000, qty * price * 1000, 30_000, 90_000, "budget", None)
    return LayerAction(LayerDecision("add", layer, index, ("why",)), quote, size)


def test_layer_periods_price_exits_by_proxy_at_expiry_and_open_at_the_end(calendar):
    """Removed before expiry: proxy for the same contract; held past it: VIX at expiry;
    still on at the end: marked at the proxy and reported open."""
    expiry = D(2024, 12, 18)
    d0, d1, d2, d2b, d3 = D(2024, 8, 1), D(2024, 9, 3), D(2024, 12, 20), D(2024, 12, 23), D(
        2024, 12, 27)
    days = calendar.session_index(D(2024, 7, 1), D(2024, 12, 31))
    frame = pd.DataFrame({"vix": 15.0, "vix3m": 18.0, "vix6m": 20.0}, index=days)
    frame.loc[pd.Timestamp(d1), ["vix3m", "vix6m"]] = [24.0, 25.0]
    frame.loc[pd.Timestamp(expiry), "vix"] = 17.5
    l1 = ActiveLayer("layer1", d0, quantity=2, unit_cost=19_000, entry_price=19.0)
    l2 = ActiveLayer("layer2", d0, quantity=1, unit_cost=21_000, entry_price=21.0)
    l1b = ActiveLayer("layer1", d2b, quantity=1, unit_cost=20_000, entry_price=20.0)
    remove = LayerDecision("remove", "layer2", 1, ("gone",))
    evs = [
        _ev(d0, LayerState((l1, l2)), (_add("layer1", 0, d0, expiry, 19.0, 2),
                                       _add("layer2", 1, d0, expiry, 21.0, 1))),
        _ev(d1, LayerState((l1,)), (LayerAction(remove),)),
        _ev(d2, LayerState(), (LayerAction(LayerDecision("remove", "layer1", 0, ("gone",))),)),
        _ev(d2b, LayerState((l1b,)), (_add("layer1", 0, d2b, D(2025, 4, 16), 20.0, 1),)),
        _ev(d3, LayerState((l1b,))),
    ]
    periods = layer_periods(evs, frame, calendar)
    by = {(p.layer, p.added_on): p for p in periods}
    p2 = by[("layer2", d0)]
    want2 = vx_proxy_price((expiry - d1).days, 24.0, 25.0)
    assert p2.status == "closed" and p2.exit_on == d1
    assert p2.exit_price == pytest.approx(want2)
    assert p2.pnl == pytest.approx((want2 - 21.0) * 1000 * 1)
    p1 = by[("layer1", d0)]
    assert p1.status == "expired" and p1.exit_on == expiry and p1.exit_price == 17.5
    assert p1.pnl == pytest.approx((17.5 - 19.0) * 1000 * 2)
    p3 = by[("layer1", d2b)]
    assert p3.status == "open" and p3.removed_on is None and p3.exit_on == d3
    assert p3.pnl == pytest.approx((vx_proxy_price((D(2025, 4, 16) - d3).days, 18.0, 20.0)
                                    - 20.0) * 1000)


def test_an_unpriced_layer_has_no_pnl(calendar):
    d0 = D(2007, 7, 19)
    decision = LayerDecision("add", "layer1", 0, ("why",))
    state = LayerState((ActiveLayer("layer1", d0),))  # no price: quantity 0, entry 0
    frame = pd.DataFrame({"vix": [15.0]}, index=pd.DatetimeIndex([pd.Timestamp(d0)]))
    (p,) = layer_periods([_ev(d0, state, (LayerAction(decision),))], frame, calendar)
    assert p.status == "unpriced" and p.pnl is None and p.entry_price is None


# ------------------------------------------------------------------ breadth sources


def test_source_periods(calendar):
    labels = series([0.0] * 12, calendar, D(2016, 1, 4)).astype(object)
    labels[:] = ["nyse"] * 5 + ["synthetic"] * 4 + [MISSING] + ["synthetic"] * 2
    labels = labels.astype(str)
    days = [ts.date() for ts in labels.index]
    periods = source_periods(labels)
    assert [(p.source, p.first, p.last, p.sessions) for p in periods] == [
        ("nyse", days[0], days[4], 5), ("synthetic", days[5], days[8], 4),
        (MISSING, days[9], days[9], 1), ("synthetic", days[10], days[11], 2)]
    assert periods[1].kind.startswith("SYNTHETIC") and periods[0].kind == "NYSE"
    assert periods[2].label == "no breadth data"


def test_blind_windows_are_the_runs_the_frame_calls_not_evaluable(calendar):
    days = series([0.0] * 12, calendar, D(2016, 1, 4)).index
    frame = pd.DataFrame({"ad_divergence_days": [0.0, 3, np.nan, np.nan, 4, 0, 0, np.nan,
                                                 np.nan, np.nan, 7, 8]}, index=days)
    frame["not_evaluable"] = [{"ad_divergence_days": f"why {i}"} if pd.isna(v) else {}
                              for i, v in enumerate(frame["ad_divergence_days"])]
    d = [ts.date() for ts in days]
    wins = blind_windows(frame)
    assert [(w.first, w.last, w.sessions, w.reason) for w in wins] == [
        (d[2], d[3], 2, "why 2"), (d[7], d[9], 3, "why 7")]
    clipped = blind_windows(frame, start=d[3], end=d[8])
    assert [(w.first, w.last, w.sessions, w.reason) for w in clipped] == [
        (d[3], d[3], 1, "why 3"), (d[7], d[8], 2, "why 7")]


# ------------------------------------------------------------------ progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_only_on_a_terminal():
    tty, pipe = _Tty(), io.StringIO()
    for stream in (tty, pipe):
        bar = Progress(stream, 4, "replay")
        for _ in range(4):
            bar.update()
        bar.close()
    assert "\r" in tty.getvalue() and "100% 4/4" in tty.getvalue()
    assert pipe.getvalue() == ""
    Progress(None, 4, "x").update()  # no stream: nothing to do, no error
