"""Black–Scholes–Merton: DESIGN §4 strike-for-delta vectors, a textbook price, parity, refusals."""

from __future__ import annotations

import math

import pytest

from bot.engine.bsm import Right, bsm_delta, bsm_price, strike_for_delta

# DESIGN.md §4 test vectors: S, sigma, days, r, q, target delta, strike before rounding.
VECTORS = [
    (4500.0, 0.18, 30, 0.050, 0.015, -0.20, 4327.109305),
    (4500.0, 0.15, 45, 0.045, 0.013, 0.16, 4767.064394),
    (2506.85, 0.2542, 45, 0.024, 0.020, -0.25, 2371.386213),
    (2506.85, 0.2542, 45, 0.024, 0.020, 0.25, 2673.884129),
]


@pytest.mark.parametrize(("spot", "sigma", "days", "r", "q", "target", "expected"), VECTORS)
def test_strike_for_delta_matches_design_vectors(
    spot: float, sigma: float, days: int, r: float, q: float, target: float, expected: float
) -> None:
    assert strike_for_delta(spot, sigma, days, r, q, target) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(("spot", "sigma", "days", "r", "q", "target", "expected"), VECTORS)
def test_round_trip_delta_at_the_unrounded_strike(
    spot: float, sigma: float, days: int, r: float, q: float, target: float, expected: float
) -> None:
    strike = strike_for_delta(spot, sigma, days, r, q, target)
    right: Right = "call" if target > 0 else "put"
    assert bsm_delta(spot, strike, sigma, days, r, q, right) == pytest.approx(target, abs=1e-12)


def test_bsm_price_textbook_value_and_parity() -> None:
    # Hull, Options, Futures and Other Derivatives: S=42, K=40, r=10 %, sigma=20 %,
    # T=0.5 -> call 4.76, put 0.81.
    days = 0.5 * 365
    call = bsm_price(42, 40, 0.2, days, 0.10, 0.0, "call")
    put = bsm_price(42, 40, 0.2, days, 0.10, 0.0, "put")
    assert call == pytest.approx(4.76, abs=0.005)
    assert put == pytest.approx(0.81, abs=0.005)
    # Put-call parity with a dividend yield: C - P = S e^{-qT} - K e^{-rT}.
    s, k, sig, d, r, q = 4500.0, 4400.0, 0.2, 30, 0.05, 0.015
    t = d / 365
    lhs = bsm_price(s, k, sig, d, r, q, "call") - bsm_price(s, k, sig, d, r, q, "put")
    assert lhs == pytest.approx(s * math.exp(-q * t) - k * math.exp(-r * t), abs=1e-9)


def test_bsm_rejects_a_vix_level_and_unreachable_deltas() -> None:
    with pytest.raises(ValueError, match="VIX/100"):
        strike_for_delta(4500, 18.5, 30, 0.05, 0.015, -0.2)
    with pytest.raises(ValueError, match="not reachable"):
        strike_for_delta(4500, 0.18, 30, 0.05, 0.015, 0.9995)
    with pytest.raises(ValueError, match="not reachable"):
        strike_for_delta(4500, 0.18, 30, 0.05, 0.015, 0.0)
    with pytest.raises(ValueError, match="positive"):
        bsm_price(4500, 4400, 0.18, 0, 0.05, 0.015, "call")
