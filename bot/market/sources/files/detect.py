"""Which parser a history file needs, from its first line (``alvh data import``)."""

from __future__ import annotations

import csv
from typing import Literal

from bot.kernel.errors import SourceDataError
from bot.market.sources.body import decode_body
from bot.market.sources.files.breadth import BREADTH_HEADER, UNICORN_LINE, breadth_columns
from bot.market.sources.files.events import EVENT_HEADER
from bot.market.sources.files.prices import CBOE_HEADER, FRED_DATE_COLUMNS, OHLC_HEADER

Format = Literal["unicorn", "breadth", "cboe", "ohlc", "fred", "events"]


def detect_format(text: bytes | str, source: str = "import") -> Format:
    """Which parser a file needs, from its first line.

    ``alvh data import`` accepts any of the shipped formats; guessing wrong
    would produce a misleading column error, so an unknown first line is
    reported as such with the formats that are understood.
    """
    body = decode_body(text, source)
    first = next((line.strip() for line in body.splitlines() if line.strip()), "")
    if UNICORN_LINE.fullmatch(first):
        return "unicorn"
    cells = [c.strip() for c in next(csv.reader([first]))]
    lower = [c.lower() for c in cells]
    if lower[:5] == ["date", "open", "high", "low", "close"]:
        return "cboe" if cells == list(CBOE_HEADER) else "ohlc"
    if len(lower) == 2 and lower[0] in FRED_DATE_COLUMNS:
        return "fred"
    if {"date", "kind", "time_et"} <= set(lower):
        return "events"
    if breadth_columns(cells) is not None:
        return "breadth"
    raise SourceDataError(
        source,
        f"unrecognised format: first line {first[:80]!r}; expected Unicorn 'YYYYMMDD, n', "
        f"breadth {BREADTH_HEADER}, Cboe {','.join(CBOE_HEADER)}, {OHLC_HEADER}, "
        f"FRED observation_date,<ID> or events {EVENT_HEADER}",
    )
