"""The hedge-layer state machine, driven by the shipped default rules."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from bot.engine.evaluate import state_rules
from bot.engine.rules import load_default_rules
from bot.engine.state import LayerState, step
from bot.kernel.sessions import get_calendar

CAL = get_calendar()
DAYS = CAL.sessions_between(dt.date(2024, 1, 2), dt.date(2024, 12, 31))
RULES = state_rules(load_default_rules())

NEUTRAL = {
    "close": 4800.0, "macd": 10.0, "macd_signal": 8.0, "macd_hist": 2.0, "rsi": 55.0,
    "macd_divergence_days": 0, "ad_divergence_days": 0, "vix": 14.0, "vix3m": 16.0,
    "vix_term_ratio": 0.875, "blackout": False, "blackout_kind": "",
}
BOTH = {"macd_divergence_days": 3, "ad_divergence_days": 12, "macd_hist": -1.0, "rsi": 45.0}
CLEAR = {"macd_divergence_days": 0, "ad_divergence_days": 0, "macd_hist": 3.0, "rsi": 60.0,
         "mcclellan_oscillator": 25.0}


def v(**over: object) -> dict[str, object]:
    return {**NEUTRAL, **over}


def run(seq, state=None, rules=RULES, start=0):
    """Step through ``seq`` (one values dict per session from DAYS[start]);
    return the final state and the decisions per session."""
    state = state or LayerState()
    log = []
    for day, values in zip(DAYS[start:], seq, strict=False):
        res = step(state, day, values, rules)
        state = res.state
        log.append((day, res.decisions))
    return state, log


QUIET = {"hold_exit", "keep", "not_added"}
"""Decisions that change nothing and only carry explanations."""


def actions(log, kind=None):
    return [(d, x.action, x.layer) for d, decs in log for x in decs
            if (kind is None and x.action not in QUIET) or x.action == kind]


def test_layer1_needs_both_signals_and_explains_itself():
    state, log = run([v(), v(macd_divergence_days=3), v(ad_divergence_days=12), v(**BOTH)])
    assert actions(log, "add") == [(DAYS[3], "add", "layer1")]
    (decision,) = log[3][1]
    assert any("macd_divergence_days = 3 >= macd_div_min_days = 1" in r for r in decision.reasons)
    assert any("ad_divergence_days = 12 > ad_min_days = 10" in r for r in decision.reasons)
    assert [a.name for a in state.layers] == ["layer1"]
    assert state.last_added == DAYS[3] and state.sessions_since_last_added == 0


def test_ad_divergence_of_exactly_ten_sessions_is_not_enough():
    _, log = run([v(**{**BOTH, "ad_divergence_days": 10})])
    assert actions(log, "add") == []


def test_cooldown_blocks_the_next_layer_then_lets_it_on():
    deteriorating = {**BOTH, "rsi": 35.0}  # layer 2 condition true from day 1
    _, log = run([v(**deteriorating)] * 7)
    adds = actions(log, "add")
    assert adds == [(DAYS[0], "add", "layer1"), (DAYS[5], "add", "layer2")]  # cooldown 5
    blocked = [x for _, decs in log[1:5] for x in decs if x.action == "blocked"]
    assert len(blocked) == 4 and "cooldown: 1 session(s)" in blocked[0].reasons[0]


def test_max_layers_caps_additions():
    capped = replace(RULES, max_layers=2)
    stress = {**BOTH, "rsi": 30.0, "vix_term_ratio": 1.2, "vix": 30.0, "vix3m": 25.0}
    state, log = run([v(**stress)] * 20, rules=capped)
    assert [a.name for a in state.layers] == ["layer1", "layer2"]
    blocked = [x for _, decs in log for x in decs if x.action == "blocked"]
    assert blocked and blocked[-1].layer == "layer3"
    assert "maximum of 2 layers reached" in blocked[-1].reasons[0]
    # With the file's own cap all three go on.
    state, _ = run([v(**stress)] * 20)
    assert [a.name for a in state.layers] == ["layer1", "layer2", "layer3"]


def test_blackout_defers_a_layer_without_both_triggers_and_fires_after():
    state, _ = run([v(**BOTH)])  # layer1 on
    # Later: MACD/A-D triggers gone; RSI falls below 40 during a CPI blackout.
    calm = {**CLEAR, "rsi": 45.0, "macd_hist": -2.0}
    weak = {**calm, "rsi": 35.0}
    seq = ([v(**calm)] * 5 + [v(**weak, blackout=True, blackout_kind="CPI")] * 2
           + [v(**weak)])
    state2, log2 = run(seq, state, start=1)
    kinds = actions(log2)
    defer_day = DAYS[6]
    assert kinds == [
        (defer_day, "defer", "layer2"), (DAYS[8], "add", "layer2")
    ]
    (add,) = [x for _, decs in log2 for x in decs if x.action == "add"]
    assert add.late_from == defer_day
    assert "deferred by a blackout since" in add.reasons[0]
    assert [a.name for a in state2.layers] == ["layer1", "layer2"]
    assert state2.deferred == ()


def test_blackout_override_when_both_triggers_are_on():
    _, log = run([v(**BOTH, blackout=True, blackout_kind="FOMC")])
    (add,) = [x for _, decs in log for x in decs if x.action == "add"]
    assert "blackout before FOMC, but both triggers are on" in add.reasons[0]


def test_deferral_is_cancelled_when_the_condition_clears():
    state, _ = run([v(**BOTH)])
    calm = {**CLEAR, "rsi": 45.0, "macd_hist": -2.0}
    weak = {**calm, "rsi": 35.0}
    seq = [v(**calm)] * 5 + [v(**weak, blackout=True, blackout_kind="CPI"), v(**calm)]
    state2, log2 = run(seq, state, start=1)
    assert [k for _, k, _ in actions(log2)] == ["defer", "cancel_deferral"]
    assert state2.deferred == () and [a.name for a in state2.layers] == ["layer1"]


def test_exit_needs_hysteresis_and_a_break_resets_it():
    state, _ = run([v(**BOTH)])
    # min_layer_sessions is 5; exit needs 4 consecutive sessions of remove_when.
    seq = [v(**BOTH)] * 5 + [v(**CLEAR)] * 3 + [v(**BOTH)] + [v(**CLEAR)] * 4
    state2, log2 = run(seq, state)
    removes = actions(log2, "remove")
    assert removes == [(DAYS[12], "remove", "layer1")]
    holds = [x for _, decs in log2 for x in decs if x.action == "hold_exit"]
    assert any("1/4 session(s) of hysteresis" in h.reasons[0] for h in holds)
    assert any("3/4 session(s) of hysteresis" in h.reasons[0] for h in holds)
    assert state2.layers == ()


def test_higher_layers_come_off_first():
    state, _ = run([v(**{**BOTH, "rsi": 35.0})] * 6)
    assert [a.name for a in state.layers] == ["layer1", "layer2"]
    # Layer 1's exit holds, layer 2's does not (RSI 45 < rsi_clear 50): layer 1 stays.
    half = {**CLEAR, "rsi": 45.0}
    state2, log2 = run([v(**half)] * 6, state)
    assert actions(log2, "remove") == []
    assert [a.name for a in state2.layers] == ["layer1", "layer2"]
    state3, log3 = run([v(**CLEAR)] * 5, state2)
    assert [x[1:] for x in actions(log3, "remove")] == [("remove", "layer2"), ("remove", "layer1")]
    assert state3.layers == ()


def test_missing_data_never_adds_a_layer():
    _, log = run([v(**{**BOTH, "ad_divergence_days": float("nan")})])
    assert actions(log, "add") == []


def test_state_round_trips_through_json():
    state, _ = run([v(**{**BOTH, "rsi": 35.0})] * 6 + [v(**CLEAR)])
    again = LayerState.from_json(state.to_json())
    assert again == state


def test_quiet_decisions_explain_why_nothing_happened():
    state, log = run([v(), v(**BOTH), v(**BOTH)])
    (quiet,) = log[0][1]
    assert quiet.action == "not_added" and quiet.layer == "layer1"
    assert "macd_divergence_days = 0 >= macd_div_min_days = 1 ✘" in quiet.reasons
    keep = [x for x in log[2][1] if x.action == "keep"]
    assert keep and keep[0].layer == "layer1" and keep[0].reasons[0] == (
        "exit condition does not hold"
    )
    assert [a.name for a in state.layers] == ["layer1"]


@pytest.mark.parametrize("n", [0, 3])
def test_step_is_pure(n):
    state, _ = run([v(**BOTH)] * (n + 1))
    a = step(state, DAYS[20], v(**CLEAR), RULES)
    b = step(state, DAYS[20], v(**CLEAR), RULES)
    assert a == b


def test_a_layer_missing_from_the_rules_comes_off_loudly():
    state, _ = run([v(**{**BOTH, "rsi": 35.0})] * 6)
    assert [a.name for a in state.layers] == ["layer1", "layer2"]
    only_layer1 = replace(RULES, layers=RULES.layers[:1])
    res = step(state, DAYS[30], v(**BOTH), only_layer1)
    (gone,) = [d for d in res.decisions if d.action == "remove"]
    assert gone.layer == "layer2" and "no longer in the rules file" in gone.reasons[0]
    assert [a.name for a in res.state.layers] == ["layer1"]


def test_a_deferral_dropped_by_a_lower_removal_is_announced():
    from bot.engine.state import Deferred

    # Layer 2 waits for a blackout to end, but layer 1 has come off meanwhile:
    # layer 2 can no longer be next, and the user who was told "deferred" hears why.
    waiting = LayerState(deferred=(Deferred("layer2", DAYS[5]),), last_added=DAYS[0],
                         sessions_since_last_added=9)
    res = step(waiting, DAYS[10], v(**{**CLEAR, "rsi": 35.0}), RULES)
    cancelled = [x for x in res.decisions if x.action == "cancel_deferral"]
    assert [x.layer for x in cancelled] == ["layer2"]
    assert "cancelled because a lower layer came off" in cancelled[0].reasons[0]
    assert res.state.deferred == ()
