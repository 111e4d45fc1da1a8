"""Condor construction: BSM test vectors, rounding, the alert's arithmetic, chain selection."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from bot.engine.bsm import bsm_price, strike_for_delta
from bot.engine.condor import (
    PRICING_CHAIN,
    PRICING_MODEL,
    Condor,
    CondorParams,
    build_condor,
    contracts_for_budget,
    round_strike_away,
)
from bot.engine.expirations import ExpiryKind
from bot.market.sources.cboe_options import OptionQuote, parse_spx_chain

D = dt.date
CHAIN_FILE = Path(__file__).parent / "fixtures" / "cboe_options" / "spx_chain_2026-08-18.json"



# ----------------------------------------------------------- rounding


def test_rounding_goes_away_from_spot() -> None:
    assert round_strike_away(4327.109305, "put", 5) == 4325.0
    assert round_strike_away(4767.064394, "call", 5) == 4770.0
    assert round_strike_away(2371.386213, "put", 5) == 2370.0
    assert round_strike_away(2673.884129, "call", 5) == 2675.0
    # Already on the grid (up to float noise): unchanged either way.
    assert round_strike_away(4325.0000000001, "call", 5) == 4325.0
    assert round_strike_away(4324.9999999999, "put", 5) == 4325.0


def test_model_condor_rounds_shorts_to_lower_risk() -> None:
    params = CondorParams(
        put_delta=0.20, call_delta=0.16, wing_width=50, strike_step=5, r=0.05, q=0.015
    )
    condor = build_condor(
        spot=4500,
        sigma=0.18,
        as_of=D(2026, 3, 2),
        expiry=D(2026, 4, 1),
        kind="weekly",
        params=params,
    )
    assert condor.dte == 30
    assert condor.pricing == PRICING_MODEL and condor.pricing_note is None
    assert condor.short_put.strike == 4325.0  # 4327.109305 rounded down
    assert condor.long_put.strike == 4275.0
    assert (
        condor.short_call.strike % 5 == 0
        and condor.long_call.strike == condor.short_call.strike + 50
    )
    unrounded_call = strike_for_delta(4500, 0.18, 30, 0.05, 0.015, 0.16)
    assert unrounded_call <= condor.short_call.strike < unrounded_call + 5
    # Away from spot means no riskier than asked for.
    assert condor.short_put.delta is not None and -0.20 < condor.short_put.delta < 0
    assert condor.short_call.delta is not None and 0 < condor.short_call.delta < 0.16
    assert condor.short_put.premium == pytest.approx(
        bsm_price(4500, 4325, 0.18, 30, 0.05, 0.015, "put")
    )
    assert 0 < condor.credit < 50


# --------------------------------------------------- hand-computed example


@dataclasses.dataclass(frozen=True)
class Q:
    root: str
    expiry: dt.date
    right: str
    strike: float
    bid: float
    ask: float
    delta: float | None


E = D(2026, 3, 20)


def hand_chain() -> list[Q]:
    return [
        Q("SPXW", E, "put", 4000, 9.9, 10.1, -0.30),
        Q("SPXW", E, "put", 3950, 5.9, 6.1, -0.16),
        Q("SPXW", E, "put", 3900, 3.4, 3.6, -0.10),
        Q("SPXW", E, "call", 4250, 8.9, 9.1, 0.25),
        Q("SPXW", E, "call", 4300, 4.9, 5.1, 0.16),
        Q("SPXW", E, "call", 4350, 2.9, 3.1, 0.10),
    ]


PARAMS = CondorParams(put_delta=0.16, call_delta=0.16, wing_width=50, strike_step=5, r=0.04, q=0.0)


def hand_condor(hedge: float = 0.0, budget: float = 10_000.0) -> Condor:
    return build_condor(
        spot=4120,
        sigma=0.16,
        as_of=D(2026, 2, 18),
        expiry=E,
        kind="weekly",
        params=PARAMS,
        hedge_cost_per_condor=hedge,
        max_loss_budget=budget,
        chain=hand_chain(),
    )


def test_credit_break_evens_and_max_loss_by_hand() -> None:
    c = hand_condor()
    assert c.pricing == PRICING_CHAIN
    assert (c.short_put.strike, c.long_put.strike) == (3950, 3900)
    assert (c.short_call.strike, c.long_call.strike) == (4300, 4350)
    # Mids 6.0 - 3.5 on the puts, 5.0 - 3.0 on the calls.
    assert c.credit == pytest.approx(4.5)
    assert c.credit_dollars == pytest.approx(450)
    assert c.break_even_low == pytest.approx(3945.5)
    assert c.break_even_high == pytest.approx(4304.5)
    assert c.max_loss == pytest.approx(45.5)
    assert c.max_loss_dollars == pytest.approx(4550)
    assert c.credit_to_width == pytest.approx(0.09)
    assert c.contracts == 2 and c.contracts_note is None  # floor(10,000 / 4,550)
    assert c.dte == 30


def test_with_hedge_cost_figures() -> None:
    c = hand_condor(hedge=1.5)
    assert c.credit_with_hedge == pytest.approx(3.0)
    assert c.break_even_low_with_hedge == pytest.approx(3947.0)
    assert c.break_even_high_with_hedge == pytest.approx(4303.0)
    assert c.max_loss_with_hedge == pytest.approx(47.0)
    assert c.max_loss_with_hedge_dollars == pytest.approx(4700)
    assert c.pays_for_hedge and c.hedge_note is None
    # The plain figures do not move.
    assert c.break_even_low == pytest.approx(3945.5) and c.max_loss == pytest.approx(45.5)
    # Sized on the worst case including the hedge: 9,399 / 4,700 -> 1.
    assert hand_condor(hedge=1.5, budget=9_399).contracts == 1


def test_credit_that_does_not_pay_for_the_hedge_says_so() -> None:
    c = hand_condor(hedge=5.0)
    assert not c.pays_for_hedge
    assert c.credit_with_hedge == pytest.approx(-0.5)
    assert c.break_even_low_with_hedge is None and c.break_even_high_with_hedge is None
    assert c.max_loss_with_hedge == pytest.approx(50.5)
    assert c.hedge_note is not None
    assert "does not pay for the hedge" in c.hedge_note
    assert "4.50 points ($450)" in c.hedge_note
    assert "5.00 points ($500)" in c.hedge_note
    assert "-0.50 points (-$50)" in c.hedge_note


def test_negative_hedge_cost_is_refused() -> None:
    with pytest.raises(ValueError, match="hedge cost"):
        hand_condor(hedge=-1.0)


# ----------------------------------------------------- contracts by budget


def test_contracts_by_budget_edges() -> None:
    assert contracts_for_budget(4550, 45.5) == (1, None)  # exactly one
    assert contracts_for_budget(13_650, 45.5) == (3, None)
    assert contracts_for_budget(13_649.99, 45.5)[0] == 2
    # 46.65 * 100 is 4665.000000000001 in floats: still one contract.
    assert contracts_for_budget(4665, 46.65) == (1, None)
    count, note = contracts_for_budget(4549, 45.5)
    assert (
        count == 0
        and note == "budget $4,549 is less than one condor's max loss $4,550: 0 contracts"
    )
    count, note = contracts_for_budget(0, 45.5)
    assert count == 0 and note is not None and "no max-loss budget" in note
    with pytest.raises(ValueError):
        contracts_for_budget(10_000, 0.0)


def test_zero_contracts_reported_on_the_condor() -> None:
    c = hand_condor(budget=4_000)
    assert c.contracts == 0
    assert c.contracts_note is not None and "$4,000" in c.contracts_note


# --------------------------------------------------------- chain selection


def test_delta_tie_goes_further_from_spot() -> None:
    chain = [
        Q("SPXW", E, "put", 3950, 5.9, 6.1, -0.25),
        Q("SPXW", E, "put", 3945, 5.4, 5.6, -0.125),
        Q("SPXW", E, "put", 3900, 3.4, 3.6, -0.05),
        Q("SPXW", E, "put", 3895, 3.2, 3.4, -0.04),
        Q("SPXW", E, "call", 4300, 4.9, 5.1, 0.25),
        Q("SPXW", E, "call", 4305, 4.6, 4.8, 0.125),
        Q("SPXW", E, "call", 4350, 2.9, 3.1, 0.05),
        Q("SPXW", E, "call", 4355, 2.7, 2.9, 0.04),
    ]
    params = dataclasses.replace(PARAMS, put_delta=0.1875, call_delta=0.1875)
    c = build_condor(
        spot=4120,
        sigma=0.16,
        as_of=D(2026, 2, 18),
        expiry=E,
        kind="weekly",
        params=params,
        chain=chain,
    )
    assert c.pricing == PRICING_CHAIN
    assert c.short_put.strike == 3945 and c.long_put.strike == 3895
    assert c.short_call.strike == 4305 and c.long_call.strike == 4355


@pytest.fixture(scope="module")
def recorded() -> tuple[float, tuple[OptionQuote, ...]]:
    chain = parse_spx_chain(CHAIN_FILE.read_bytes())
    return chain.spot, chain.quotes


FIX_AS_OF = D(2026, 8, 18)
FIX_EXPIRY = D(2026, 9, 18)
FIX_PARAMS = CondorParams(
    put_delta=0.16, call_delta=0.16, wing_width=50, strike_step=5, r=0.04, q=0.012
)


def fixture_condor(
    quotes: tuple[OptionQuote, ...] | list[OptionQuote], spot: float, kind: ExpiryKind = "weekly"
) -> Condor:
    return build_condor(
        spot=spot,
        sigma=0.139,
        as_of=FIX_AS_OF,
        expiry=FIX_EXPIRY,
        kind=kind,
        params=FIX_PARAMS,
        chain=quotes,
    )


def test_chain_picks_listed_strikes_nearest_the_target_delta(
    recorded: tuple[float, tuple[OptionQuote, ...]],
) -> None:
    spot, quotes = recorded
    c = fixture_condor(quotes, spot)
    assert c.pricing == PRICING_CHAIN and c.pricing_note is None
    assert (c.short_put.strike, c.long_put.strike) == (7410, 7360)
    assert (c.short_call.strike, c.long_call.strike) == (8050, 8100)
    assert c.short_put.delta == -0.1602 and c.short_call.delta == 0.16
    # Mids of the recorded bid/ask.
    assert c.short_put.premium == pytest.approx((31.85 + 32.4) / 2)
    assert c.long_put.premium == pytest.approx((26.15 + 26.8) / 2)
    assert c.short_call.premium == pytest.approx((22.8 + 23.2) / 2)
    assert c.long_call.premium == pytest.approx((15.15 + 15.55) / 2)
    assert c.credit == pytest.approx(13.3)
    # No other listed SPXW put/call of that expiry is nearer the target delta.
    same = [q for q in quotes if q.root == "SPXW" and q.expiry == FIX_EXPIRY]
    for q in same:
        assert q.delta is not None
        chosen = c.short_put if q.right == "put" else c.short_call
        assert chosen.delta is not None
        assert abs(abs(q.delta) - 0.16) >= abs(abs(chosen.delta) - 0.16)


def test_monthly_kind_uses_the_am_settled_spx_root(
    recorded: tuple[float, tuple[OptionQuote, ...]],
) -> None:
    spot, quotes = recorded
    c = fixture_condor(quotes, spot, kind="monthly")
    assert c.pricing == PRICING_CHAIN
    # The SPX root is on a 25-point grid with higher vols: different strikes.
    assert (c.short_put.strike, c.short_call.strike) == (7375, 8075)
    assert c.short_put.strike % 25 == 0 and c.long_put.strike == 7325


def _replace(
    quotes: tuple[OptionQuote, ...], symbol: str, bid: float, ask: float
) -> list[OptionQuote]:
    out = [dataclasses.replace(q, bid=bid, ask=ask) if q.symbol == symbol else q for q in quotes]
    assert out != list(quotes), f"{symbol} not in fixture"
    return out


@pytest.mark.parametrize(
    ("symbol", "bid", "ask", "reason"),
    [
        (
            "SPXW260918P07410000",
            0.0,
            32.4,
            "SPXW 2026-09-18 put 7410 quote refused: bid 0.00 ≤ 0",
        ),
        (
            "SPXW260918C08100000",
            15.6,
            15.5,
            "call 8100 quote refused: ask 15.50 < bid 15.60",
        ),
    ],
)
def test_bad_quotes_fall_back_to_the_model_and_say_why(
    recorded: tuple[float, tuple[OptionQuote, ...]],
    symbol: str,
    bid: float,
    ask: float,
    reason: str,
) -> None:
    spot, quotes = recorded
    c = fixture_condor(_replace(quotes, symbol, bid, ask), spot)
    assert c.pricing == PRICING_MODEL
    assert c.pricing_note is not None and reason in c.pricing_note
    assert "from the model" in c.pricing_note
    # The model's own strikes (sigma 0.139), not the chain's.
    assert c.short_put.strike == 7460 and c.short_call.strike == 8090


def test_unlisted_long_strike_falls_back(recorded: tuple[float, tuple[OptionQuote, ...]]) -> None:
    spot, quotes = recorded
    missing = [q for q in quotes if q.symbol != "SPXW260918P07360000"]
    c = fixture_condor(missing, spot)
    assert c.pricing == PRICING_MODEL
    assert c.pricing_note is not None and "long put 7360 is not listed" in c.pricing_note


def test_expiry_absent_from_chain_falls_back(
    recorded: tuple[float, tuple[OptionQuote, ...]],
) -> None:
    spot, quotes = recorded
    c = build_condor(
        spot=spot,
        sigma=0.139,
        as_of=FIX_AS_OF,
        expiry=D(2026, 9, 17),
        kind="weekly",
        params=FIX_PARAMS,
        chain=quotes,
    )
    assert c.pricing == PRICING_MODEL
    assert c.pricing_note is not None and "no SPXW 2026-09-17 puts" in c.pricing_note


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="multiple"):
        CondorParams(wing_width=52, strike_step=5)
    with pytest.raises(ValueError, match="put_delta"):
        CondorParams(put_delta=0.6)
    assert CondorParams(put_delta=-0.2).put_delta == -0.2  # sign ignored downstream
    with pytest.raises(ValueError, match="after"):
        build_condor(spot=4500, sigma=0.18, as_of=E, expiry=E, kind="weekly", params=PARAMS)
