"""Hedge instrument choice, VX pricing (settlement or proxy) and layer sizing, by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.engine.hedge import (
    VX_MULTIPLIER,
    choose_hedge,
    choose_vx_expiry,
    size_layer,
    vx_proxy_price,
)
from bot.kernel.errors import DataIncomplete
from bot.kernel.sessions import SessionCalendar, get_calendar
from bot.market.sources.vx_settlement import parse_vx_settlements

D = dt.date
FIXTURES = Path(__file__).parent / "fixtures" / "vx_settlement"


@pytest.fixture(scope="module")
def cal() -> SessionCalendar:
    return get_calendar()


def test_vx_contract_nearest_the_middle_of_the_window(cal: SessionCalendar) -> None:
    # 3..6 months = 91.3..182.6 days; middle 137.0. From 2026-08-04:
    # X6 2026-11-18 is 106 days, Z6 2026-12-16 134, F7 2027-01-20 169 -> Z6.
    assert choose_vx_expiry(D(2026, 8, 4), cal) == D(2026, 12, 16)
    # A narrower window that only holds X6.
    assert choose_vx_expiry(D(2026, 8, 4), cal, 3.0, 3.8) == D(2026, 11, 18)
    with pytest.raises(ValueError, match="months_out_min"):
        choose_vx_expiry(D(2026, 8, 4), cal, 6, 3)
    with pytest.raises(ValueError, match="no VX monthly"):
        choose_vx_expiry(D(2026, 8, 4), cal, 3.0, 3.1)  # 91.3..94.3 days: none


def test_vx_future_priced_from_the_settlement(cal: SessionCalendar) -> None:
    settlements = parse_vx_settlements((FIXTURES / "settlement_2026-09-01.csv").read_bytes())
    quote = choose_hedge(
        kind="vx_future", as_of=D(2026, 9, 1), calendar=cal, settlements=settlements
    )
    # Z6 is 106 days out, F7 141, G7 169: F7 is nearest 137 days.
    assert quote.symbol == "VX/F7" and quote.expiry == D(2027, 1, 20)
    assert quote.days_to_expiry == 141
    assert quote.price == 20.4496
    assert quote.unit_cost == pytest.approx(20_449.6)
    assert quote.multiplier == VX_MULTIPLIER == 1000.0
    assert not quote.is_proxy and quote.priced_from == "Cboe settlement"


def test_vx_future_proxy_when_no_settlement(cal: SessionCalendar) -> None:
    # Z6 from 2026-08-04 is 134 days: 19.06 + (134-93)/(184-93) * (21.24-19.06) = 20.0421978.
    quote = choose_hedge(
        kind="vx_future",
        as_of=D(2026, 8, 4),
        calendar=cal,
        settlements={D(2026, 11, 18): 20.65},
        vix3m=19.06,
        vix6m=21.24,
    )
    assert quote.symbol == "VX/Z6"
    assert quote.is_proxy
    assert quote.price == pytest.approx(20.0421978, abs=1e-7)
    assert quote.unit_cost == pytest.approx(20_042.1978, abs=1e-4)
    assert quote.priced_from.startswith("proxy, no VX/Z6 settlement")
    assert "VIX3M 19.06 / VIX6M 21.24 interpolated to 134 days" in quote.priced_from


def test_proxy_interpolation_edges() -> None:
    assert vx_proxy_price(60, 19.0, 21.0) == 19.0  # shorter than VIX3M: flat
    assert vx_proxy_price(93, 19.0, 21.0) == 19.0
    assert vx_proxy_price(184, 19.0, 21.0) == 21.0
    assert vx_proxy_price(250, 19.0, 21.0) == 21.0  # longer than VIX6M: flat
    assert vx_proxy_price(138.5, 19.0, 21.0) == pytest.approx(20.0)  # halfway
    assert vx_proxy_price(150, None, 21.0) == 21.0
    assert vx_proxy_price(100, 19.5, None) == 19.5
    with pytest.raises(DataIncomplete):
        vx_proxy_price(100, None, None)


def test_proxy_with_one_index_says_which(cal: SessionCalendar) -> None:
    quote = choose_hedge(kind="vx_future", as_of=D(2026, 8, 4), calendar=cal, vix3m=19.06)
    assert quote.is_proxy and quote.price == 19.06
    assert quote.priced_from.endswith("VIX3M 19.06")


def test_etp_uses_the_callers_symbol_and_price(cal: SessionCalendar) -> None:
    quote = choose_hedge(
        kind="etp", as_of=D(2026, 8, 4), calendar=cal, etp_symbol="VXX", etp_price=45.12
    )
    assert (quote.symbol, quote.price, quote.unit_cost, quote.expiry) == ("VXX", 45.12, 45.12, None)
    assert not quote.is_proxy
    with pytest.raises(ValueError, match="etp_price"):
        choose_hedge(kind="etp", as_of=D(2026, 8, 4), calendar=cal, etp_symbol="VXX")
    with pytest.raises(ValueError, match="etp_symbol"):
        choose_hedge(kind="etp", as_of=D(2026, 8, 4), calendar=cal, etp_price=45.0)


# ------------------------------------------------------------------ sizing


def test_budget_too_small_for_one_contract() -> None:
    size = size_layer(1_000_000, 1.5, 20_449.6, 0, 5)
    assert size.quantity == 0 and size.cost == 0
    assert size.layer_budget == pytest.approx(15_000)
    assert size.limited_by == "budget"
    assert size.reason == "budget $15,000 < one contract $20,449.60"


def test_budget_buys_whole_contracts_only() -> None:
    size = size_layer(2_000_000, 1.5, 20_449.6, 0, 5)  # $30,000 budget
    assert size.quantity == 1 and size.cost == pytest.approx(20_449.6)
    assert size.reason is None
    assert size_layer(2_000_000, 2, 20_000, 0, 5).quantity == 2  # $40,000 exactly
    etp = size_layer(100_000, 2, 45.12, 0, 5)  # $2,000 / $45.12 = 44.3
    assert etp.quantity == 44 and etp.cost == pytest.approx(1985.28)


def test_cap_across_layers_limits_the_layer() -> None:
    # 3 % cap = $60,000; $40,000 already committed leaves $20,000 < one contract.
    size = size_layer(2_000_000, 2, 20_449.6, 40_000, 3)
    assert size.quantity == 0 and size.limited_by == "cap"
    assert size.cap_remaining == pytest.approx(20_000)
    assert size.reason == "cap reached: $20,000 left under the 3% cap < one contract $20,449.60"
    full = size_layer(2_000_000, 2, 20_449.6, 60_000, 3)
    assert full.quantity == 0
    assert (
        full.reason == "cap reached: $60,000 already committed of the $60,000 cap (3% of capital)"
    )
    # The cap binds but still leaves room: $1,000 / $45.12 = 22 shares.
    partial = size_layer(100_000, 2, 45.12, 2_000, 3)
    assert partial.quantity == 22 and partial.limited_by == "cap"
    assert partial.reason is not None and partial.reason.startswith("limited by the cap: $1,000")


def test_sizing_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="percentage"):
        size_layer(100_000, 150, 45.0, 0, 5)
    with pytest.raises(ValueError, match="unit cost"):
        size_layer(100_000, 2, 0.0, 0, 5)
    with pytest.raises(ValueError, match="capital"):
        size_layer(0, 2, 45.0, 0, 5)
    with pytest.raises(ValueError, match="committed"):
        size_layer(100_000, 2, 45.0, -1, 5)
