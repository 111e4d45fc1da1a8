"""What the evaluation of a session gets from a fetch, kept apart from the sources.

The pipeline needs these types whatever the source; importing them from
here, not from :mod:`bot.market.fetch`, keeps a snapshot run from importing
every live source and the HTTP stack it never uses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.market.sources.cboe_options import OptionChain


@dataclass(slots=True)
class Extras:
    """Optional inputs that improve the decision but never block it."""

    settlements: dict[dt.date, float] | None = None
    chain: OptionChain | None = None
    etp_price: float | None = None
    """Close of the ETP hedge (VXX/UVXY) on D, when the rules hedge with one."""
    notes: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    """Series whose whole source chain failed (from the fetch report), for metrics."""


Fetcher = Callable[[dt.date], Awaitable[tuple[list[str], Extras]]]
"""Fetch what session D lacks into the store; returns report lines and the extras."""


async def fetch_nothing(session: dt.date) -> tuple[list[str], Extras]:
    """The snapshot's fetcher: the shipped history is all there is."""
    return [], Extras()
