"""SPX iron-condor construction: strikes by delta, premiums, and the figures the alert shows.

Units, everywhere in this module:

* strikes, premiums, credits, break-evens and max loss are **index points**
  (per unit of SPX, as options are quoted);
* dollars are points × :data:`SPX_MULTIPLIER` (100) **per contract**: a credit
  of 3.35 points is $335 per condor;
* ``max_loss_budget`` is in dollars; ``hedge_cost_per_condor`` is in points per
  condor contract (the caller allocates the hedge layers' cost to one condor);
* ``T`` is calendar days / 365 and ``sigma`` a decimal (VIX 18.5 → 0.185).

Strikes come from the Cboe chain when one is given and usable (listed strikes
nearest the target delta, priced at the bid/ask mid), otherwise from
Black–Scholes–Merton (:mod:`bot.engine.bsm`) with VIX as the volatility. VIX is
a 30-day at-the-money measure, so real put-side implied volatility is higher
and call-side lower: model strikes are an estimate, and the :class:`Condor`
says which source priced them so the alert can too.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.engine.bsm import Right, bsm_delta, bsm_price, check_inputs, strike_for_delta
from bot.engine.expirations import OPTION_ROOT, ExpiryKind

SPX_MULTIPLIER = 100.0
"""Dollars per index point per SPX option contract."""

PRICING_MODEL = "model (VIX as volatility)"
PRICING_CHAIN = "Cboe chain mid"

_GRID_TOLERANCE = 1e-9


# ----------------------------------------------------------------- strike grid


def round_strike_away(strike: float, right: Right, step: float) -> float:
    """Round to the strike grid away from spot: puts down, calls up.

    Away from spot keeps the rounded short strike at or below the target delta,
    never riskier than the rules asked for. A strike already on the grid (within
    float noise) stays put.
    """
    if not step > 0:
        raise ValueError(f"strike step must be positive, got {step}")
    units = strike / step
    nearest = round(units)
    if abs(units - nearest) < _GRID_TOLERANCE:
        return float(nearest * step)
    return float((math.floor(units) if right == "put" else math.ceil(units)) * step)


# ------------------------------------------------------------------- structures


@dataclass(frozen=True, slots=True)
class CondorParams:
    """Condor shape. Deltas are magnitudes (0.16 means put −0.16 / call +0.16).

    ``wing_width`` and ``strike_step`` are index points; ``r`` and ``q`` are
    annual decimals (continuously compounded rate and dividend yield). The
    defaults are placeholders: the rules file supplies the real values.
    """

    put_delta: float = 0.16
    call_delta: float = 0.16
    wing_width: float = 50.0
    strike_step: float = 5.0
    r: float = 0.04
    q: float = 0.013

    def __post_init__(self) -> None:
        for name in ("put_delta", "call_delta"):
            value = abs(getattr(self, name))
            if not 0 < value < 0.5:
                raise ValueError(f"{name} must be a magnitude in (0, 0.5), got {value}")
        if not self.strike_step > 0:
            raise ValueError(f"strike_step must be positive, got {self.strike_step}")
        if not self.wing_width > 0:
            raise ValueError(f"wing_width must be positive, got {self.wing_width}")
        steps = self.wing_width / self.strike_step
        if abs(steps - round(steps)) > _GRID_TOLERANCE:
            raise ValueError(
                f"wing_width {self.wing_width} is not a multiple of strike_step {self.strike_step}"
            )


class ChainQuote(Protocol):
    """What :func:`build_condor` needs from one option quote.

    :class:`bot.market.sources.cboe_options.OptionQuote` satisfies it; the protocol
    keeps this pure module independent of the source package.
    """

    @property
    def root(self) -> str: ...
    @property
    def expiry(self) -> dt.date: ...
    @property
    def right(self) -> str: ...
    @property
    def strike(self) -> float: ...
    @property
    def bid(self) -> float: ...
    @property
    def ask(self) -> float: ...
    @property
    def delta(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Leg:
    """One option of the condor. ``premium`` in points; ``delta`` as priced (model or chain)."""

    right: Right
    strike: float
    premium: float
    delta: float | None


@dataclass(frozen=True, slots=True)
class Condor:
    """A priced iron condor and the alert's figures: points, unless the name ends ``_dollars``."""

    as_of: dt.date
    expiry: dt.date
    kind: ExpiryKind
    dte: int
    spot: float
    sigma: float
    short_put: Leg
    long_put: Leg
    short_call: Leg
    long_call: Leg
    pricing: str
    """:data:`PRICING_MODEL` or :data:`PRICING_CHAIN`: which source priced the strikes."""
    pricing_note: str | None
    """Why the chain was not used, when one was given but refused."""
    credit: float
    break_even_low: float
    break_even_high: float
    max_loss: float
    credit_to_width: float
    hedge_cost: float
    credit_with_hedge: float
    break_even_low_with_hedge: float | None
    """``None`` when the hedge cost eats the whole credit: no price breaks even."""
    break_even_high_with_hedge: float | None
    max_loss_with_hedge: float
    pays_for_hedge: bool
    hedge_note: str | None
    """A plain sentence when the credit does not pay for the hedge."""
    max_loss_budget: float
    contracts: int
    contracts_note: str | None

    @property
    def put_width(self) -> float:
        return self.short_put.strike - self.long_put.strike

    @property
    def call_width(self) -> float:
        return self.long_call.strike - self.short_call.strike

    @property
    def widest_wing(self) -> float:
        return max(self.put_width, self.call_width)

    @property
    def credit_dollars(self) -> float:
        return self.credit * SPX_MULTIPLIER

    @property
    def max_loss_dollars(self) -> float:
        return self.max_loss * SPX_MULTIPLIER

    @property
    def credit_with_hedge_dollars(self) -> float:
        return self.credit_with_hedge * SPX_MULTIPLIER

    @property
    def max_loss_with_hedge_dollars(self) -> float:
        return self.max_loss_with_hedge * SPX_MULTIPLIER


# ----------------------------------------------------------------- the figures


def _usd(amount: float) -> str:
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.0f}"


def contracts_for_budget(max_loss_budget: float, max_loss_points: float) -> tuple[int, str | None]:
    """How many condors fit a max-loss budget ($), and why none when none do.

    Floors: a budget of $999 with a $1,000 max loss is zero contracts, never one.
    """
    if not max_loss_points > 0:
        raise ValueError(f"max loss must be positive, got {max_loss_points} points")
    per_contract = max_loss_points * SPX_MULTIPLIER
    if max_loss_budget <= 0:
        return 0, "no max-loss budget set: 0 contracts"
    count = math.floor(max_loss_budget / per_contract + _GRID_TOLERANCE)
    if count == 0:
        return 0, (
            f"budget {_usd(max_loss_budget)} is less than one condor's max loss "
            f"{_usd(per_contract)}: 0 contracts"
        )
    return count, None


def _hedge_sentence(credit: float, hedge_cost: float) -> str:
    net = credit - hedge_cost
    return (
        f"The credit of {credit:.2f} points ({_usd(credit * SPX_MULTIPLIER)}) does not pay for "
        f"the hedge: its cost allocated to this condor is {hedge_cost:.2f} points "
        f"({_usd(hedge_cost * SPX_MULTIPLIER)}), so even if SPX expires between the short "
        f"strikes the condor nets {net:+.2f} points ({_usd(net * SPX_MULTIPLIER)}) per contract."
    )


def _assemble(
    *,
    as_of: dt.date,
    expiry: dt.date,
    kind: ExpiryKind,
    spot: float,
    sigma: float,
    legs: tuple[Leg, Leg, Leg, Leg],
    pricing: str,
    pricing_note: str | None,
    hedge_cost: float,
    max_loss_budget: float,
) -> Condor:
    short_put, long_put, short_call, long_call = legs
    credit = (short_put.premium - long_put.premium) + (short_call.premium - long_call.premium)
    widest = max(short_put.strike - long_put.strike, long_call.strike - short_call.strike)
    max_loss = widest - credit
    if not max_loss > 0:
        raise ValueError(f"credit {credit:.4f} is not below the widest wing {widest}")
    net = credit - hedge_cost
    pays = net > 0
    contracts, contracts_note = contracts_for_budget(max_loss_budget, widest - net)
    return Condor(
        as_of=as_of,
        expiry=expiry,
        kind=kind,
        dte=(expiry - as_of).days,
        spot=spot,
        sigma=sigma,
        short_put=short_put,
        long_put=long_put,
        short_call=short_call,
        long_call=long_call,
        pricing=pricing,
        pricing_note=pricing_note,
        credit=credit,
        break_even_low=short_put.strike - credit,
        break_even_high=short_call.strike + credit,
        max_loss=max_loss,
        credit_to_width=credit / widest,
        hedge_cost=hedge_cost,
        credit_with_hedge=net,
        break_even_low_with_hedge=short_put.strike - net if pays else None,
        break_even_high_with_hedge=short_call.strike + net if pays else None,
        max_loss_with_hedge=widest - net,
        pays_for_hedge=pays,
        hedge_note=None if pays else _hedge_sentence(credit, hedge_cost),
        max_loss_budget=max_loss_budget,
        contracts=contracts,
        contracts_note=contracts_note,
    )


# ------------------------------------------------------------------ leg pickers


def _model_legs(
    spot: float, sigma: float, days: int, params: CondorParams
) -> tuple[Leg, Leg, Leg, Leg]:
    r, q, step, wing = params.r, params.q, params.strike_step, params.wing_width

    def leg(right: Right, strike: float) -> Leg:
        if not strike > 0:
            raise ValueError(f"{right} strike {strike} is not positive: wing too wide for spot")
        return Leg(
            right=right,
            strike=strike,
            premium=bsm_price(spot, strike, sigma, days, r, q, right),
            delta=bsm_delta(spot, strike, sigma, days, r, q, right),
        )

    put_k = strike_for_delta(spot, sigma, days, r, q, -abs(params.put_delta))
    call_k = strike_for_delta(spot, sigma, days, r, q, abs(params.call_delta))
    short_put = round_strike_away(put_k, "put", step)
    short_call = round_strike_away(call_k, "call", step)
    return (
        leg("put", short_put),
        leg("put", short_put - wing),
        leg("call", short_call),
        leg("call", short_call + wing),
    )


class ChainRefused(ValueError):
    """The chain cannot price this condor; the message says why (shown in the alert)."""


def _quote_problem(q: ChainQuote) -> str | None:
    if not (math.isfinite(q.bid) and math.isfinite(q.ask)):
        return f"bid/ask {q.bid}/{q.ask} not numbers"
    if q.bid <= 0:
        return f"bid {q.bid:.2f} ≤ 0"
    if q.ask < q.bid:
        return f"ask {q.ask:.2f} < bid {q.bid:.2f}"
    return None


def chain_legs(
    chain: Sequence[ChainQuote], expiry: dt.date, kind: ExpiryKind, params: CondorParams
) -> tuple[Leg, Leg, Leg, Leg]:
    """Listed strikes for a condor: shorts nearest the target delta, longs a wing further out.

    Only the root of ``kind`` counts (``SPX`` AM-settled for monthly, ``SPXW``
    PM-settled for weekly): on a third Friday both list the same strikes with
    different settlement. A tie in delta distance goes to the strike further
    from spot. Every leg must have a usable two-sided quote (bid > 0, ask ≥ bid)
    and the long strikes must be listed; otherwise :class:`ChainRefused`.
    """
    root = OPTION_ROOT[kind]
    rows = [q for q in chain if q.root == root and q.expiry == expiry]
    label = f"{root} {expiry.isoformat()}"
    by_strike: dict[tuple[str, float], ChainQuote] = {(q.right, q.strike): q for q in rows}

    def pick_short(right: Right, target: float) -> ChainQuote:
        # Delta-less rows are unusable for the short; so are ones whose delta
        # has the wrong sign (a stale or broken greek).
        candidates = [
            (q.delta, q)
            for q in rows
            if q.right == right
            and q.delta is not None
            and math.isfinite(q.delta)
            and (q.delta < 0 if right == "put" else q.delta > 0)
        ]
        if not candidates:
            raise ChainRefused(f"the chain has no {label} {right}s with a delta")
        further_out = 1.0 if right == "put" else -1.0
        _, best = min(
            candidates, key=lambda c: (abs(abs(c[0]) - target), further_out * c[1].strike)
        )
        return best

    def pick_long(right: Right, strike: float) -> ChainQuote:
        quote = by_strike.get((right, strike))
        if quote is None:
            raise ChainRefused(f"the long {right} {strike:g} is not listed for {label}")
        return quote

    short_put = pick_short("put", abs(params.put_delta))
    short_call = pick_short("call", abs(params.call_delta))
    if not short_put.strike < short_call.strike:
        raise ChainRefused(
            f"chain deltas put the short put {short_put.strike:g} at or above "
            f"the short call {short_call.strike:g}"
        )
    long_put = pick_long("put", short_put.strike - params.wing_width)
    long_call = pick_long("call", short_call.strike + params.wing_width)

    picked: list[tuple[ChainQuote, Right]] = [
        (short_put, "put"),
        (long_put, "put"),
        (short_call, "call"),
        (long_call, "call"),
    ]
    legs: list[Leg] = []
    for quote, right in picked:
        problem = _quote_problem(quote)
        if problem is not None:
            raise ChainRefused(f"{label} {right} {quote.strike:g} quote refused: {problem}")
        legs.append(
            Leg(
                right=right,
                strike=quote.strike,
                premium=(quote.bid + quote.ask) / 2,
                delta=quote.delta,
            )
        )
    credit = (legs[0].premium - legs[1].premium) + (legs[2].premium - legs[3].premium)
    widest = max(legs[0].strike - legs[1].strike, legs[3].strike - legs[2].strike)
    if not 0 < credit < widest:
        raise ChainRefused(f"chain mids give a credit of {credit:.2f} for a {widest:g}-point wing")
    return legs[0], legs[1], legs[2], legs[3]


# --------------------------------------------------------------------- builder


def build_condor(
    *,
    spot: float,
    sigma: float,
    as_of: dt.date,
    expiry: dt.date,
    kind: ExpiryKind,
    params: CondorParams,
    hedge_cost_per_condor: float = 0.0,
    max_loss_budget: float = 0.0,
    chain: Sequence[ChainQuote] | None = None,
) -> Condor:
    """Price an iron condor for ``expiry`` and compute the alert's figures.

    ``sigma`` is VIX/100; it prices the model legs and is ignored for chain
    legs. With ``chain`` the listed strikes and mids are used when usable; when
    not, the model prices the condor and ``pricing_note`` says why, so a bad
    quote never silently becomes a bad alert.
    """
    check_inputs(spot, sigma)
    days = (expiry - as_of).days
    if days < 1:
        raise ValueError(f"expiry {expiry} must be after as_of {as_of}")
    if hedge_cost_per_condor < 0:
        raise ValueError(f"hedge cost must not be negative, got {hedge_cost_per_condor}")

    pricing_note: str | None = None
    legs: tuple[Leg, Leg, Leg, Leg] | None = None
    if chain is not None:
        try:
            legs = chain_legs(chain, expiry, kind, params)
        except ChainRefused as exc:
            pricing_note = f"Cboe chain not used ({exc}); strikes and premiums from the model."
    pricing = PRICING_CHAIN
    if legs is None:
        legs = _model_legs(spot, sigma, days, params)
        pricing = PRICING_MODEL
    return _assemble(
        as_of=as_of,
        expiry=expiry,
        kind=kind,
        spot=spot,
        sigma=sigma,
        legs=legs,
        pricing=pricing,
        pricing_note=pricing_note,
        hedge_cost=hedge_cost_per_condor,
        max_loss_budget=max_loss_budget,
    )
