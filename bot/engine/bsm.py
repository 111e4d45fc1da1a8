"""Black–Scholes–Merton for European options on an index with a continuous dividend yield.

Pure functions, no condor in sight: :mod:`bot.engine.condor` picks and prices
strikes with them, and the backtest marks condors to model with them.

Units: spot and strike in index points, ``sigma`` a decimal annual volatility
(VIX 18.5 → 0.185), ``days`` calendar days to expiry (T = days / 365), ``r``
and ``q`` continuously compounded annual decimals. Prices are index points.

Formulas (DESIGN §4; Hull, *Options, Futures, and Other Derivatives*, ch. 17):
d1 = [ln(S/K) + (r − q + σ²/2)T]/(σ√T), d2 = d1 − σ√T; call = S e^{−qT} N(d1) −
K e^{−rT} N(d2), put = K e^{−rT} N(−d2) − S e^{−qT} N(−d1); call delta =
e^{−qT} N(d1), put delta = −e^{−qT} N(−d1).
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Literal

Right = Literal["call", "put"]

DAYS_PER_YEAR = 365.0
MAX_SIGMA = 3.0
"""Above 300 % a ``sigma`` is almost surely a VIX level passed without dividing by 100."""

_N = NormalDist()
_SQRT2 = math.sqrt(2.0)


def _cdf(x: float) -> float:
    """Standard normal CDF via erf: same value as NormalDist().cdf, a third of the cost."""
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


def year_fraction(days: float) -> float:
    """T in years for ``days`` calendar days; :class:`ValueError` unless ``days`` > 0."""
    if days <= 0:
        raise ValueError(f"days to expiry must be positive, got {days}")
    return days / DAYS_PER_YEAR


def check_inputs(spot: float, sigma: float) -> None:
    """:class:`ValueError` for a non-positive spot or a sigma outside (0, :data:`MAX_SIGMA`]."""
    if not spot > 0:
        raise ValueError(f"spot must be positive, got {spot}")
    if not 0 < sigma <= MAX_SIGMA:
        raise ValueError(
            f"sigma must be a decimal volatility in (0, {MAX_SIGMA}], got {sigma} "
            "(pass VIX/100, not the VIX level)"
        )


def bsm_d1(spot: float, strike: float, sigma: float, days: float, r: float, q: float) -> float:
    check_inputs(spot, sigma)
    if not strike > 0:
        raise ValueError(f"strike must be positive, got {strike}")
    t = year_fraction(days)
    return (math.log(spot / strike) + (r - q + sigma * sigma / 2) * t) / (sigma * math.sqrt(t))


def bsm_price(
    spot: float, strike: float, sigma: float, days: float, r: float, q: float, right: Right
) -> float:
    """European option value in index points (BSM with continuous dividend yield)."""
    d1 = bsm_d1(spot, strike, sigma, days, r, q)
    t = year_fraction(days)
    d2 = d1 - sigma * math.sqrt(t)
    disc_q = math.exp(-q * t)
    disc_r = math.exp(-r * t)
    if right == "call":
        return spot * disc_q * _cdf(d1) - strike * disc_r * _cdf(d2)
    return strike * disc_r * _cdf(-d2) - spot * disc_q * _cdf(-d1)


def bsm_delta(
    spot: float, strike: float, sigma: float, days: float, r: float, q: float, right: Right
) -> float:
    """Call delta e^{−qT}N(d1) (positive), put delta −e^{−qT}N(−d1) (negative)."""
    d1 = bsm_d1(spot, strike, sigma, days, r, q)
    disc_q = math.exp(-q * year_fraction(days))
    if right == "call":
        return disc_q * _cdf(d1)
    return -disc_q * _cdf(-d1)


def strike_for_delta(
    spot: float, sigma: float, days: float, r: float, q: float, target_delta: float
) -> float:
    """The (unrounded) strike whose BSM delta equals ``target_delta``.

    The sign picks the side: positive is a call, negative a put. Closed form
    (DESIGN §4): call d1 = N⁻¹(Δe^{qT}), put d1 = −N⁻¹(|Δ|e^{qT});
    K = S·exp(−d1·σ√T + (r − q + σ²/2)T). No root finding, so no tolerance to
    tune and no failure to converge.
    """
    check_inputs(spot, sigma)
    t = year_fraction(days)
    scaled = abs(target_delta) * math.exp(q * t)
    if target_delta == 0 or not 0 < scaled < 1:
        raise ValueError(
            f"target delta {target_delta} is not reachable: |delta| must be in "
            f"(0, {math.exp(-q * t):.6f}) for q={q}, T={t:.6f}"
        )
    d1 = _N.inv_cdf(scaled) if target_delta > 0 else -_N.inv_cdf(scaled)
    return spot * math.exp(-d1 * sigma * math.sqrt(t) + (r - q + sigma * sigma / 2) * t)
