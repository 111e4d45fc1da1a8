"""SPX option and VIX-futures expiration dates.

Expirations are derived from the XNYS session calendar rather than listed by
hand, because the bot must know them months ahead (a hedge 3–6 months out, a
condor 30–45 days out) and a hand-kept list silently goes stale. NYSE sessions
stand in for Cboe Options business days: both close on the same holidays
(Good Friday, Juneteenth, national days of mourning).

Day counts are *calendar* days, the unit of ``T = days / 365`` in the BSM
formulas (DESIGN.md §4), not sessions.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Literal

from bot.kernel.sessions import SessionCalendar

ExpiryKind = Literal["monthly", "weekly"]
"""``monthly``: AM-settled SPX on the third Friday. ``weekly``: PM-settled SPXW."""

EXPIRY_KINDS: tuple[ExpiryKind, ...] = ("monthly", "weekly")

OPTION_ROOT: dict[ExpiryKind, str] = {"monthly": "SPX", "weekly": "SPXW"}
"""OSI root of each kind: on a third Friday both roots list, with different settlements."""

VX_MONTH_CODES = "FGHJKMNQUVXZ"
"""Futures month codes, January (F) to December (Z)."""

_FRIDAY = 4
_VX_DAYS_BEFORE = 30


def third_friday(year: int, month: int) -> dt.date:
    first = dt.date(year, month, 1)
    offset = (_FRIDAY - first.weekday()) % 7
    return first + dt.timedelta(days=offset + 14)


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def spx_monthly_expiration(year: int, month: int, calendar: SessionCalendar) -> dt.date:
    """The standard (AM-settled) SPX expiration of a month.

    Third Friday; when that Friday is not a session (Good Friday 2025-04-18),
    the options expire on the preceding session (2025-04-17).
    """
    return calendar.session_on_or_before(third_friday(year, month))


def spx_expirations(
    start: dt.date, end: dt.date, kind: ExpiryKind, calendar: SessionCalendar
) -> list[dt.date]:
    """Expirations of ``kind`` with ``start <= expiry <= end``.

    SPXW now lists an expiration on every session (Monday–Friday dailies), so
    ``weekly`` is simply the session list; the name is kept because traders
    still call them weeklies.
    """
    if kind == "weekly":
        return calendar.sessions_between(start, end)
    if kind != "monthly":
        raise ValueError(f"unknown expiry kind {kind!r}; expected one of {EXPIRY_KINDS}")
    out: list[dt.date] = []
    year, month = start.year, start.month
    while dt.date(year, month, 1) <= end:
        expiry = spx_monthly_expiration(year, month, calendar)
        if start <= expiry <= end:
            out.append(expiry)
        year, month = _add_months(year, month, 1)
    return out


@functools.lru_cache(maxsize=256)
def _year_expirations(
    year: int, kind: ExpiryKind, calendar: SessionCalendar
) -> tuple[dt.date, ...]:
    """A year of expirations, computed once: a backtest asks for them every session."""
    return tuple(spx_expirations(dt.date(year, 1, 1), dt.date(year, 12, 31), kind, calendar))


def choose_expiry(
    as_of: dt.date, target_dte: int, kind: ExpiryKind, calendar: SessionCalendar
) -> dt.date:
    """The listed expiration nearest ``target_dte`` calendar days after ``as_of``.

    Only expirations strictly after ``as_of`` count (a condor is never opened
    into an expiry that settles today). On a tie the later one wins: more time
    means more credit for the same deltas and is the conventional choice.
    """
    if target_dte < 1:
        raise ValueError(f"target_dte must be at least 1 calendar day, got {target_dte}")
    # Monthlies are at most ~35 days apart, so this window always holds the
    # nearest one on either side of the target.
    horizon = as_of + dt.timedelta(days=target_dte + 40)
    candidates = [
        e for year in range(as_of.year, horizon.year + 1)
        for e in _year_expirations(year, kind, calendar)
        if as_of < e <= horizon
    ]
    if not candidates:
        raise ValueError(f"no {kind} SPX expiration found after {as_of}")
    target = as_of + dt.timedelta(days=target_dte)
    return min(candidates, key=lambda e: (abs((e - target).days), -e.toordinal()))


def vx_expiration(year: int, month: int, calendar: SessionCalendar) -> dt.date:
    """Final settlement date of the VX (monthly VIX future) contract of a month.

    The rule, as quoted to us (Cboe Futures Exchange contract specification):
    "the Wednesday that is 30 days prior to the third Friday of the calendar
    month immediately following the month in which the contract expires. If the
    third Friday of the month subsequent to expiration of the applicable VX
    futures contract is a Cboe Options holiday, the Final Settlement Date for
    the contract shall be 30 days prior to the Cboe Options business day
    immediately preceding that Friday. ... If the Final Settlement Date is a
    Cboe Options holiday, the Final Settlement Date shall be the business day
    immediately preceding." (Cboe's newer wording, "if that Wednesday or the
    Friday that is 30 days following that Wednesday is a Cboe Options holiday,
    ... the business day immediately preceding that Wednesday", yields the same
    dates for every holiday on the current calendar: Good Friday 2025 and
    Juneteenth 2026 both move the settlement to the Tuesday.)

    The contract's month code is the month in which it settles: 30 days before
    a day between the 15th and the 21st always lands in the previous month.
    """
    ref_year, ref_month = _add_months(year, month, 1)
    reference = calendar.session_on_or_before(third_friday(ref_year, ref_month))
    settle = reference - dt.timedelta(days=_VX_DAYS_BEFORE)
    return calendar.session_on_or_before(settle)


def vx_expirations(start: dt.date, end: dt.date, calendar: SessionCalendar) -> list[dt.date]:
    """VX monthly final settlement dates with ``start <= expiry <= end``."""
    out: list[dt.date] = []
    year, month = start.year, start.month
    while dt.date(year, month, 1) <= end:
        expiry = vx_expiration(year, month, calendar)
        if start <= expiry <= end:
            out.append(expiry)
        year, month = _add_months(year, month, 1)
    return out


def vx_symbol(expiry: dt.date) -> str:
    """Cboe's settlement-file symbol of a VX monthly, e.g. ``VX/Z6``.

    One-digit year as in the settlement CSV (``VX/F7`` = January 2027); weekly
    contracts carry a week number (``VX35/U6``) and are not produced here.
    """
    return f"VX/{VX_MONTH_CODES[expiry.month - 1]}{expiry.year % 10}"
