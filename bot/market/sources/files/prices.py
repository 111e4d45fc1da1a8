"""Daily price files: Cboe index histories, OHLC exports (Yahoo-style, Stooq), FRED.

Live fetchers (Cboe, FRED, Stooq bodies), ``alvh data import`` and the
snapshot loader share these parsers. Rows on NYSE holidays (Cboe computed VIX
on some) are dropped *and reported* in :attr:`Parsed.dropped`, never silently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bot.kernel.errors import SourceDataError
from bot.kernel.models import Bar, Dropped, Parsed
from bot.kernel.sessions import SessionCalendar
from bot.market.sources.body import decode_body
from bot.market.sources.files.table import (
    NO_VALUE,
    NOT_A_SESSION,
    columns,
    dropped_rows,
    header_error,
    parse_dates,
    parse_days,
    parse_numbers,
    pydates,
    read_table,
    session_mask,
)

CBOE_HEADER = ("DATE", "OPEN", "HIGH", "LOW", "CLOSE")
OHLC_HEADER = "Date,Open,High,Low,Close[,Adj Close][,Volume]"
FRED_DATE_COLUMNS = ("observation_date", "date")
_MISSING_FRED = frozenset({"", "."})


def _bars(
    symbol: str,
    source: str,
    dates: pd.DatetimeIndex,
    keep: np.ndarray,
    dropped: list[Dropped],
    close: np.ndarray,
    opens: np.ndarray | None = None,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
    volume: np.ndarray | None = None,
) -> Parsed[Bar]:
    """Bars for the ``keep`` rows, oldest first (files may be newest first).

    Values were checked finite by :func:`parse_numbers`, so plain ``tolist``
    conversions suffice; this loop builds ~25,000 bars at start-up.
    """
    # A close is a price or an index level: never zero or negative. (Opens, highs
    # and lows are not checked: old Cboe VIX rows carry 0 where there was none.)
    bad = np.flatnonzero(keep & (close <= 0))
    if bad.size:
        pos = int(bad[0])
        raise SourceDataError(
            source, f"{symbol} close {close[pos]:g} on {dates[pos].date()} (line {pos + 2}) "
            "is not a positive price")
    order = np.argsort(dates.to_numpy(), kind="stable")
    picked = order[keep[order]]
    days = pydates(dates[picked])
    n = len(days)

    def column(values: np.ndarray | None) -> list[float] | list[None]:
        if values is None:
            return [None] * n
        out: list[float] = values[picked].tolist()
        return out

    rows = tuple(
        Bar(symbol=symbol, session=d, close=c, source=source, open=o, high=h, low=lo, volume=v)
        for d, c, o, h, lo, v in zip(
            days,
            column(close),
            column(opens),
            column(high),
            column(low),
            column(volume),
            strict=True,
        )
    )
    return Parsed(source, rows, tuple(sorted(dropped, key=lambda d: d.date)))



def _session_bars(
    symbol: str,
    source: str,
    calendar: SessionCalendar,
    dates: pd.DatetimeIndex,
    close: np.ndarray,
    opens: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    volume: np.ndarray | None = None,
) -> Parsed[Bar]:
    """OHLC bars on the sessions among ``dates``; the other rows dropped and reported."""
    keep = session_mask(dates, source, calendar)
    dropped = dropped_rows(dates, ~keep, NOT_A_SESSION)
    return _bars(symbol, source, dates, keep, dropped, close, opens, high, low, volume)


def parse_cboe_csv(
    text: bytes | str, symbol: str, source: str, calendar: SessionCalendar
) -> Parsed[Bar]:
    """Cboe ``DATE,OPEN,HIGH,LOW,CLOSE`` history (``MM/DD/YYYY``)."""
    body = decode_body(text, source)
    frame = read_table(body, source, header=True)
    got = columns(frame)
    upper = [c.upper() for c in got]
    for name in CBOE_HEADER:
        if name not in upper:
            raise header_error(source, ",".join(CBOE_HEADER), got, name)
    col = {name: frame.columns[upper.index(name)] for name in CBOE_HEADER}
    dates = parse_days(frame, col["DATE"], source)
    vals = {n: parse_numbers(frame, col[n], n, dates, source)[0] for n in CBOE_HEADER[1:]}
    return _session_bars(symbol, source, calendar, dates, vals["CLOSE"], vals["OPEN"],
                         vals["HIGH"], vals["LOW"])


def parse_ohlc_csv(
    text: bytes | str, symbol: str, source: str, calendar: SessionCalendar
) -> Parsed[Bar]:
    """``Date,Open,High,Low,Close[,Adj Close][,Volume]`` in any row order.

    Yahoo-style exports (newest first, quoted values with thousands
    separators, ``M/D/YYYY``) and Stooq (ISO dates) both fit. ``Adj Close``
    is ignored: an index has no dividends to adjust for.
    """
    body = decode_body(text, source)
    frame = read_table(body, source, header=True)
    got = columns(frame)
    lower = [c.lower() for c in got]
    col: dict[str, object] = {}
    for name in ("date", "open", "high", "low", "close"):
        if name not in lower:
            raise header_error(source, OHLC_HEADER, got, name.capitalize())
        col[name] = frame.columns[lower.index(name)]
    dates = parse_days(frame, col["date"], source)
    vals = {
        n: parse_numbers(frame, col[n], n.capitalize(), dates, source)[0]
        for n in ("open", "high", "low", "close")
    }
    volume = None
    if "volume" in lower:
        volume = parse_numbers(
            frame, frame.columns[lower.index("volume")], "Volume", dates, source
        )[0]
    return _session_bars(symbol, source, calendar, dates, vals["close"], vals["open"],
                         vals["high"], vals["low"], volume)


def parse_fred_csv(
    text: bytes | str,
    symbol: str,
    source: str,
    calendar: SessionCalendar,
    *,
    series: str | None = None,
) -> Parsed[Bar]:
    """FRED ``observation_date,<ID>`` downloads (close only).

    FRED leaves holidays empty (or ``.`` in older downloads); it also leaves
    the odd *session* empty (VIXCLS on 1991-03-01). Both are dropped and
    reported: a missing session is a gap for the validator, never a zero.
    ``series`` pins the expected ID so a VIXCLS file cannot pass for SP500.
    """
    body = decode_body(text, source)
    frame = read_table(body, source, header=True)
    got = columns(frame)
    expected = f"observation_date,{series or '<SERIES_ID>'}"
    if len(got) != 2 or got[0].lower() not in FRED_DATE_COLUMNS:
        raise SourceDataError(source, f"unexpected header {','.join(got)}: expected {expected}")
    if series is not None and got[1].upper() != series.upper():
        raise SourceDataError(source, f"column {got[1]!r} is not {series!r}: expected {expected}")
    dates = parse_dates(
        frame, frame.columns[0], ("%Y-%m-%d",), source, header=True, pattern=r"\d{4}-\d{2}-\d{2}"
    )
    close, missing = parse_numbers(
        frame, frame.columns[1], got[1], dates, source, allow_missing=_MISSING_FRED
    )
    session = session_mask(dates, source, calendar)
    dropped = [
        *dropped_rows(dates, ~session, NOT_A_SESSION),
        *dropped_rows(dates, session & missing, NO_VALUE),
    ]
    return _bars(symbol, source, dates, session & ~missing, dropped, close)
