"""Parsers for history files, one module per format family.

* :mod:`.table`: the vectorised CSV machinery every parser shares;
* :mod:`.prices`: Cboe index histories, OHLC exports, FRED downloads;
* :mod:`.breadth`: NYSE breadth (Unicorn ``YYYYMMDD, n`` files, tables with a header);
* :mod:`.events`: event calendars (FOMC, CPI, PPI);
* :mod:`.detect`: which of them a file needs.

The same functions serve three callers: live fetchers (Cboe, FRED, Stooq
bodies), ``alvh data import`` (user files) and the snapshot loader (shipped
files). So they are strict in one place: a file is either wholly usable or
rejected with a :class:`~bot.kernel.errors.SourceDataError` that names the line,
date or column at fault. Real files carry rows on NYSE holidays; those are
dropped *and reported* in :attr:`~bot.kernel.models.Parsed.dropped`, never
silently. The names below are the package's public surface.
"""

from bot.engine.breadth_screen import PLACEHOLDER
from bot.market.sources.files.breadth import (
    BREADTH_HEADER,
    breadth_from_unicorn,
    parse_breadth_csv,
    parse_unicorn,
)
from bot.market.sources.files.detect import Format, detect_format
from bot.market.sources.files.events import EVENT_HEADER, parse_event_csv
from bot.market.sources.files.prices import (
    CBOE_HEADER,
    OHLC_HEADER,
    parse_cboe_csv,
    parse_fred_csv,
    parse_ohlc_csv,
)
from bot.market.sources.files.table import NO_VALUE, NOT_A_SESSION, is_session

__all__ = [
    "BREADTH_HEADER",
    "CBOE_HEADER",
    "EVENT_HEADER",
    "NOT_A_SESSION",
    "NO_VALUE",
    "OHLC_HEADER",
    "PLACEHOLDER",
    "Format",
    "breadth_from_unicorn",
    "detect_format",
    "is_session",
    "parse_breadth_csv",
    "parse_cboe_csv",
    "parse_event_csv",
    "parse_fred_csv",
    "parse_ohlc_csv",
    "parse_unicorn",
]
