"""How the backtest's renderings (terminal, HTML, CSV) print numbers: one place, one look.

``None`` and NaN print as an em dash, never as 0 (DESIGN §4: not evaluable is
not zero). These are also the Jinja filters of the HTML report.
"""

from __future__ import annotations

import datetime as dt
import math


def pct(x: float | None, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.123`` → ``12.3 %``."""
    return "—" if x is None or math.isnan(x) else f"{100 * x:.{digits}f} %"


def pts(x: float | None) -> str:
    """A signed change in points: ``+6.35``."""
    return "—" if x is None or math.isnan(x) else f"{x:+.2f}"


def usd(x: float | None) -> str:
    """Whole dollars with the sign before the symbol: ``-$35,837``."""
    if x is None or math.isnan(x):
        return "—"
    return f"-${-x:,.0f}" if x < 0 else f"${x:,.0f}"


def price(x: float | None) -> str:
    """A price or level to two decimals."""
    return "—" if x is None or math.isnan(x) else f"{x:.2f}"


def day(d: dt.date | None) -> str:
    return d.isoformat() if d else "—"


def yes_no(v: bool | None) -> str:
    """A three-valued verdict: ``yes``, ``no`` or ``undetermined``."""
    return {True: "yes", False: "no", None: "undetermined"}[v]
