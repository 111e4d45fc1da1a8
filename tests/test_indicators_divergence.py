"""Bearish divergence per DESIGN.md §4: the hand-checked example, length and streak, not
evaluable where a window cannot be judged, edge rules, a naive reference."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from _indicator_data import sessions, spx_closes, synthetic_breadth

from bot.engine.indicators import (
    ad_line,
    bearish_divergence,
    divergence_measures,
    divergence_streak,
    macd,
)


def _days(n: int) -> pd.DatetimeIndex:
    return sessions("2020-01-02", "2030-12-31")[:n]


def _hand_example() -> tuple[pd.Series[float], pd.Series[float], pd.DatetimeIndex]:
    """P = 4000 + 2t over 100 sessions; net advances +100 for t < 70, −50 after."""
    days = _days(100)
    t = np.arange(100)
    price = pd.Series(4000.0 + 2.0 * t, index=days)
    net = np.where(t < 70, 100.0, -50.0)
    adv = pd.Series(np.maximum(net, 0.0), index=days)
    dec = pd.Series(np.maximum(-net, 0.0), index=days)
    return price, ad_line(adv, dec, days), days


def test_hand_checked_example() -> None:
    """DESIGN.md §4's check by hand: first D at t = 74; at t = 99 length 30, streak 26;
    20 sessions have a length above 10 (t = 80..99) and 16 a streak above 10."""
    price, line, _ = _hand_example()
    flags = bearish_divergence(price, line)
    m = divergence_measures(price, line)
    length, streak = m["days"], m["streak"]
    assert int(np.flatnonzero(flags.to_numpy())[0]) == 74
    assert flags.iloc[74:].all()
    assert length.iloc[74] == 5 and streak.iloc[74] == 1
    assert length.iloc[99] == 30
    assert streak.iloc[99] == 26
    assert np.flatnonzero((length > 10).to_numpy()).tolist() == list(range(80, 100))
    assert int((streak > 10).sum()) == 16
    # Before the 63-session window is full: not evaluable, never 0; then 0 until t = 74.
    assert length.iloc[:62].isna().all() and streak.iloc[:62].isna().all()
    assert m["divergence"].iloc[:62].isna().all()
    assert (length.iloc[62:74] == 0).all() and (streak.iloc[62:74] == 0).all()


def test_measures_frame_agrees_with_the_single_functions() -> None:
    price, line, _ = _hand_example()
    m = divergence_measures(price, line)
    assert list(m.columns) == ["divergence", "days", "streak"]
    assert m["divergence"].fillna(False).astype(bool).equals(bearish_divergence(price, line))
    assert m["days"].iloc[62:].tolist() == [t - 69 if t >= 74 else 0 for t in range(62, 100)]
    assert m["streak"].iloc[62:].tolist() == divergence_streak(m["divergence"]).iloc[62:].tolist()


def test_length_is_the_distance_between_the_latest_maxima() -> None:
    """Length follows iP − iX, not the run: a session where SPX dips off its high
    breaks the streak but not the length once SPX is back at its high."""
    days = _days(40)
    t = np.arange(40)
    price = pd.Series(100.0 + t, index=days)
    price.iloc[35] = 120.0  # 10 % below the running high of 134: D fails on t = 35 only
    x = pd.Series(np.where(t <= 10, t, 10.0 - t), index=days)  # X peaks at t = 10
    m = divergence_measures(price, x, window=30, tolerance=0.01, min_separation=5)
    assert m["days"].iloc[29] == 19 and m["streak"].iloc[29] == 1  # first full window
    assert m["days"].iloc[34] == 24 and m["streak"].iloc[34] == 6
    assert m["days"].iloc[35] == 0 and m["streak"].iloc[35] == 0
    assert m["days"].iloc[36] == 26 and m["streak"].iloc[36] == 1


def test_a_nan_in_x_makes_every_window_holding_it_not_evaluable() -> None:
    price, line, _ = _hand_example()
    line.iloc[80] = math.nan
    m = divergence_measures(price, line)
    assert m["days"].iloc[74:80].tolist() == [5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert m["streak"].iloc[79] == 6
    # Every later window still holds t = 80: not evaluable, never 0 or False.
    assert m["days"].iloc[80:].isna().all() and m["streak"].iloc[80:].isna().all()
    assert m["divergence"].iloc[80:].isna().all()
    assert not bearish_divergence(price, line).iloc[80:].any()


def test_nan_price_in_window_blocks_it() -> None:
    price, line, _ = _hand_example()
    price.iloc[90] = math.nan
    m = divergence_measures(price, line)
    assert m["divergence"].iloc[74:90].all()
    assert m["days"].iloc[90:].isna().all()


def test_windows_the_caller_cannot_judge_are_not_evaluable_and_end_the_streak() -> None:
    price, line, days = _hand_example()
    judgeable = pd.Series(True, index=days)
    judgeable.iloc[85] = False  # e.g. too many imputed breadth sessions in that window
    m = divergence_measures(price, line, judgeable=judgeable)
    assert math.isnan(m["days"].iloc[85]) and math.isnan(m["streak"].iloc[85])
    assert m["divergence"].isna().iloc[85]
    assert m["streak"].iloc[84] == 11
    assert m["streak"].iloc[86] == 1  # an unknown day breaks the run
    assert m["days"].iloc[86] == 17  # the length does not depend on the run


def test_window_must_be_full() -> None:
    price, line, _ = _hand_example()
    assert not bearish_divergence(price.iloc[:62], line.iloc[:62], window=63).any()
    # With a short window the same data diverges early.
    assert bearish_divergence(price.iloc[:80], line.iloc[:80], window=20).iloc[74]


@pytest.mark.parametrize(("drop", "expected"), [(0.005, True), (0.015, False)])
def test_price_tolerance(drop: float, expected: bool) -> None:
    days = _days(40)
    t = np.arange(40)
    # Price peaks at t = 30 and then sits `drop` below the peak; X peaks at t = 10.
    price = pd.Series(np.where(t <= 30, 100.0 + t, 130.0 * (1 - drop)), index=days)
    x = pd.Series(-np.abs(t - 10.0), index=days)
    flags = bearish_divergence(price, x, window=20, tolerance=0.01, min_separation=5)
    assert bool(flags.iloc[35]) is expected


def test_most_recent_maxima_are_compared() -> None:
    days = _days(40)
    t = np.arange(40)
    price = pd.Series(np.minimum(100.0 + t, 133.0), index=days)  # high reached at 33, then flat
    x = pd.Series(np.where((t == 10) | (t == 31), 5.0, 0.0), index=days)  # X max at 10 and 31
    flags = bearish_divergence(price, x, window=30, min_separation=5)
    # t = 36: iP is the latest of the flat highs (36, not 33), iX = 31: 5 apart, holds.
    assert flags.iloc[36]
    assert divergence_measures(price, x, window=30, min_separation=5)["days"].iloc[36] == 5
    # t = 33: iX is the latest X top (31, not 10): 2 apart, does not hold.
    assert not flags.iloc[33]
    # t = 35: 4 apart, one short of the minimum separation.
    assert not flags.iloc[35]


def _reference(
    price: np.ndarray, x: np.ndarray, window: int, tolerance: float, sep: int
) -> tuple[np.ndarray, np.ndarray]:
    """A direct, loop-per-session reading of DESIGN.md §4 to compare against: D_t, iP − iX."""
    out = np.zeros(len(price), dtype=bool)
    span = np.zeros(len(price), dtype=float)
    for t in range(window - 1, len(price)):
        p_w = price[t - window + 1 : t + 1]
        x_w = x[t - window + 1 : t + 1]
        if np.isnan(p_w).any() or np.isnan(x_w).any():
            continue
        i_p = np.flatnonzero(p_w == p_w.max())[-1]
        i_x = np.flatnonzero(x_w == x_w.max())[-1]
        out[t] = p_w[-1] >= (1 - tolerance) * p_w.max() and x_w[-1] < x_w.max() and i_p - i_x >= sep
        span[t] = i_p - i_x
    return out, span


@pytest.mark.parametrize(("window", "tolerance", "sep"), [(63, 0.01, 5), (21, 0.02, 3)])
def test_vectorised_matches_reference_on_real_data(window: int, tolerance: float, sep: int) -> None:
    spx = spx_closes()
    adv, dec = synthetic_breadth()
    line = ad_line(adv, dec, spx.index)
    line.iloc[[700, 2500]] = math.nan  # NaNs must be handled the same way
    hist = macd(spx)["macd_hist"]
    for x in (line, hist):
        got = bearish_divergence(spx, x, window, tolerance, sep).to_numpy()
        want, span = _reference(spx.to_numpy(), x.to_numpy(), window, tolerance, sep)
        assert (got == want).all()
        assert want.sum() > 50  # a comparison that exercises many true cases
        days = divergence_measures(spx, x, window, tolerance, sep)["days"].to_numpy()
        assert np.array_equal(days[want], span[want])


def test_streak_counts_runs_and_nan_breaks_them() -> None:
    days = _days(9)
    flags = pd.Series([1.0, 1.0, math.nan, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0], index=days)
    assert divergence_streak(flags).tolist() == [1, 2, 0, 1, 2, 3, 0, 1, 2]
    nullable = pd.Series([True, pd.NA, True, True], index=days[:4], dtype="boolean")
    assert divergence_streak(nullable).tolist() == [1, 0, 1, 2]


@pytest.mark.parametrize(
    "kwargs", [{"window": 1}, {"tolerance": 1.0}, {"tolerance": -0.1}, {"min_separation": 63}]
)
def test_bad_parameters_are_refused(kwargs: dict[str, float]) -> None:
    price, line, _ = _hand_example()
    with pytest.raises(ValueError):
        bearish_divergence(price, line, **kwargs)  # type: ignore[arg-type]
