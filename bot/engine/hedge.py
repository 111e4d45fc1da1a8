"""Hedge-layer instrument choice and sizing.

Units: a VX future moves $1,000 per VIX point (:data:`VX_MULTIPLIER`), so one
contract at 20.50 is $20,500 of notional and that is the ``unit_cost`` the
sizing budgets against. An ETP unit is one share at its price in dollars.
Capital, budgets and costs are dollars; ``*_pct`` arguments are percentages
(1.5 means 1.5 % of capital), as the rules file writes them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from bot.engine.expirations import vx_expirations, vx_symbol
from bot.kernel.errors import DataIncomplete
from bot.kernel.sessions import SessionCalendar

HedgeKind = Literal["vx_future", "etp"]

VX_MULTIPLIER = 1000.0
"""Dollars per VIX point per VX futures contract."""

DAYS_PER_MONTH = 365.25 / 12
"""Months out are measured in days so the choice does not jump at month ends."""

VIX3M_DAYS = 93
"""VIX3M is a 93-day constant-maturity index (Cboe)."""
VIX6M_DAYS = 184
"""VIX6M is a 184-day constant-maturity index (Cboe)."""

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class HedgeQuote:
    """The instrument a layer would use and what one unit costs."""

    kind: HedgeKind
    symbol: str
    price: float
    """Points for VX, dollars per share for an ETP."""
    multiplier: float
    expiry: dt.date | None
    days_to_expiry: int | None
    is_proxy: bool
    """True when no settlement price existed and the price is estimated."""
    priced_from: str
    """Plain words for the alert, e.g. "Cboe settlement" or "proxy: ...", never blank."""

    @property
    def unit_cost(self) -> float:
        """Dollars per contract (VX: price × $1,000) or per share (ETP)."""
        return self.price * self.multiplier


def choose_vx_expiry(
    as_of: dt.date,
    calendar: SessionCalendar,
    months_out_min: float = 3.0,
    months_out_max: float = 6.0,
) -> dt.date:
    """The VX monthly expiring ``months_out_min``..``months_out_max`` months after ``as_of``.

    Months are days / (365.25/12). Within the window the contract closest to
    the middle wins (4.5 months for 3..6): far enough out to decay slowly, near
    enough to respond to a volatility spike. A tie goes to the later contract.
    """
    if not 0 < months_out_min < months_out_max:
        raise ValueError(
            f"need 0 < months_out_min < months_out_max, got {months_out_min}..{months_out_max}"
        )
    lo = months_out_min * DAYS_PER_MONTH
    hi = months_out_max * DAYS_PER_MONTH
    window = vx_expirations(
        as_of + dt.timedelta(days=math.ceil(lo - _EPS)),
        as_of + dt.timedelta(days=math.floor(hi + _EPS)),
        calendar,
    )
    if not window:
        raise ValueError(
            f"no VX monthly expires {months_out_min}..{months_out_max} months after {as_of}"
        )
    middle = (lo + hi) / 2
    return min(window, key=lambda e: (abs((e - as_of).days - middle), -e.toordinal()))


def vx_proxy_price(days_to_expiry: float, vix3m: float | None, vix6m: float | None) -> float:
    """A VX price estimate from the constant-maturity indices, for when no settlement exists.

    Linear in days between VIX3M (93 days) and VIX6M (184 days), flat outside.
    A proxy, not a price: a future converges to the expected VIX at *its*
    expiry, which these indices only approximate. With one index missing the
    other is used flat.
    """
    if vix3m is None or vix6m is None:
        known = vix3m if vix3m is not None else vix6m
        if known is None:
            raise DataIncomplete("no VX settlement and neither VIX3M nor VIX6M to proxy it")
        return known
    if days_to_expiry <= VIX3M_DAYS:
        return vix3m
    if days_to_expiry >= VIX6M_DAYS:
        return vix6m
    weight = (days_to_expiry - VIX3M_DAYS) / (VIX6M_DAYS - VIX3M_DAYS)
    return vix3m + weight * (vix6m - vix3m)


def choose_hedge(
    *,
    kind: HedgeKind,
    as_of: dt.date,
    calendar: SessionCalendar,
    settlements: Mapping[dt.date, float] | None = None,
    vix3m: float | None = None,
    vix6m: float | None = None,
    months_out_min: float = 3.0,
    months_out_max: float = 6.0,
    etp_symbol: str | None = None,
    etp_price: float | None = None,
) -> HedgeQuote:
    """The instrument for a hedge layer and the price one unit costs.

    ``vx_future``: the VX monthly from :func:`choose_vx_expiry`, priced from
    ``settlements`` ({expiry: settlement price}, as parsed from Cboe) when it
    has that expiry, else from :func:`vx_proxy_price` and marked as a proxy.
    ``etp``: ``etp_symbol`` at ``etp_price`` dollars, both from the caller.
    """
    if kind == "etp":
        if not etp_symbol:
            raise ValueError("an ETP hedge needs etp_symbol (e.g. VXX)")
        if etp_price is None or not etp_price > 0:
            raise ValueError(f"an ETP hedge needs a positive etp_price, got {etp_price}")
        return HedgeQuote(
            kind="etp",
            symbol=etp_symbol,
            price=etp_price,
            multiplier=1.0,
            expiry=None,
            days_to_expiry=None,
            is_proxy=False,
            priced_from=f"{etp_symbol} close",
        )
    if kind != "vx_future":
        raise ValueError(f"unknown hedge kind {kind!r}; expected 'vx_future' or 'etp'")

    expiry = choose_vx_expiry(as_of, calendar, months_out_min, months_out_max)
    days = (expiry - as_of).days
    symbol = vx_symbol(expiry)
    settled = None if settlements is None else settlements.get(expiry)
    if settled is not None and settled > 0:
        return HedgeQuote(
            kind="vx_future",
            symbol=symbol,
            price=settled,
            multiplier=VX_MULTIPLIER,
            expiry=expiry,
            days_to_expiry=days,
            is_proxy=False,
            priced_from="Cboe settlement",
        )
    price = vx_proxy_price(days, vix3m, vix6m)
    if vix3m is not None and vix6m is not None:
        basis = f"VIX3M {vix3m:.2f} / VIX6M {vix6m:.2f} interpolated to {days} days"
    else:
        basis = f"VIX3M {vix3m:.2f}" if vix3m is not None else f"VIX6M {vix6m:.2f}"
    return HedgeQuote(
        kind="vx_future",
        symbol=symbol,
        price=price,
        multiplier=VX_MULTIPLIER,
        expiry=expiry,
        days_to_expiry=days,
        is_proxy=True,
        priced_from=f"proxy, no {symbol} settlement: {basis}",
    )


@dataclass(frozen=True, slots=True)
class HedgeSize:
    """How many units a layer buys, and why that many."""

    quantity: int
    unit_cost: float
    cost: float
    layer_budget: float
    cap_remaining: float
    limited_by: Literal["budget", "cap"]
    reason: str | None
    """Set when ``quantity`` is 0, and when the cap rather than the budget limited it."""


def _usd(amount: float) -> str:
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if abs(amount - round(amount)) < 0.005:
        return f"{sign}${amount:,.0f}"
    return f"{sign}${amount:,.2f}"


def size_layer(
    capital: float,
    budget_pct: float,
    unit_cost: float,
    committed_cost: float,
    max_total_pct: float,
) -> HedgeSize:
    """Units that fit both this layer's budget and the cap across all layers (floored).

    ``committed_cost`` is what the active layers already cost; the cap is on
    the total, so a third layer can be smaller than its own budget allows.
    Flooring means a budget of $19,999 buys no $20,000 contract: the alert says
    so rather than rounding risk up.
    """
    if not capital > 0:
        raise ValueError(f"capital must be positive, got {capital}")
    if not unit_cost > 0:
        raise ValueError(f"unit cost must be positive, got {unit_cost}")
    for name, pct in (("budget_pct", budget_pct), ("max_total_pct", max_total_pct)):
        if not 0 <= pct <= 100:
            raise ValueError(f"{name} is a percentage of capital in [0, 100], got {pct}")
    if committed_cost < 0:
        raise ValueError(f"committed cost must not be negative, got {committed_cost}")

    layer_budget = capital * budget_pct / 100
    cap = capital * max_total_pct / 100
    cap_remaining = cap - committed_cost
    allowed = min(layer_budget, cap_remaining)
    limited_by: Literal["budget", "cap"] = "cap" if cap_remaining < layer_budget else "budget"
    quantity = max(0, math.floor(allowed / unit_cost + _EPS)) if allowed > 0 else 0

    reason: str | None = None
    if limited_by == "cap" and cap_remaining <= _EPS:
        reason = (
            f"cap reached: {_usd(committed_cost)} already committed of the "
            f"{_usd(cap)} cap ({max_total_pct:g}% of capital)"
        )
    elif limited_by == "cap" and quantity == 0:
        reason = (
            f"cap reached: {_usd(cap_remaining)} left under the {max_total_pct:g}% cap "
            f"< one contract {_usd(unit_cost)}"
        )
    elif limited_by == "cap":
        reason = (
            f"limited by the cap: {_usd(cap_remaining)} left under the "
            f"{max_total_pct:g}% cap, below the layer budget {_usd(layer_budget)}"
        )
    elif quantity == 0:
        reason = f"budget {_usd(layer_budget)} < one contract {_usd(unit_cost)}"
    return HedgeSize(
        quantity=quantity,
        unit_cost=unit_cost,
        cost=quantity * unit_cost,
        layer_budget=layer_budget,
        cap_remaining=cap_remaining,
        limited_by=limited_by,
        reason=reason,
    )
