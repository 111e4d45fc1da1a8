"""The CSV machinery shared by every history-file parser.

Vectorised with pandas: the snapshot (~130,000 rows over all files) is parsed
at start-up, and per-row Python regexes would dominate it. Strict in one
place: a value that is not a date or a number is an error naming its line,
date or column; a cut-off last line is reported as a truncated file.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bot.kernel.errors import SourceDataError
from bot.kernel.models import Dropped
from bot.kernel.sessions import SessionCalendar

NOT_A_SESSION = "not an NYSE session"
NO_VALUE = "no value (left empty by the source)"


def read_table(text: str, source: str, *, header: bool, width: int | None = None) -> pd.DataFrame:
    """All cells as strings (padding kept); a row with too many fields is an error.

    Rows with too few fields come back padded with "" and are caught by the
    value checks, which can then say "truncated" when it is the last line.
    """
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            header=0 if header else None,
            names=list(range(width)) if width is not None else None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skipinitialspace=True,
            quotechar='"',
            engine="c",
        )
    except pd.errors.ParserError as exc:
        detail = str(exc).removeprefix("Error tokenizing data. C error: ").strip()
        raise SourceDataError(source, f"malformed CSV: {detail}") from None
    except pd.errors.EmptyDataError:
        raise SourceDataError(source, "empty body") from None
    if frame.empty:
        raise SourceDataError(source, "no data rows")
    return frame


def columns(frame: pd.DataFrame) -> list[str]:
    return [str(c).strip().strip('"').strip() for c in frame.columns]


def line_no(pos: int, header: bool) -> int:
    """1-based line number of data row ``pos`` (blank lines are not counted)."""
    return pos + (2 if header else 1)


def raw_line(frame: pd.DataFrame, pos: int) -> str:
    return ",".join(str(v) for v in frame.iloc[pos].tolist()).rstrip(",")


def parse_dates(
    frame: pd.DataFrame,
    col: object,
    formats: Sequence[str],
    source: str,
    *,
    header: bool,
    pattern: str,
    unique: bool = True,
) -> pd.DatetimeIndex:
    """Dates in one of ``formats``; the first failure names its line.

    ``pattern`` is a regex the raw text must match in full: ``to_datetime``
    alone accepts some cut values (a truncated last line) as other dates.
    """
    raw = frame[col].str.strip()
    ok_shape = raw.str.fullmatch(pattern).to_numpy(dtype=bool)
    parsed = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    for fmt in formats:
        todo = parsed.isna().to_numpy() & ok_shape
        if not todo.any():
            break
        parsed[todo] = pd.to_datetime(raw[todo], format=fmt, errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        pos = int(bad[0])
        if ok_shape[pos]:  # written as a date, but no such day (2026-02-30)
            raise SourceDataError(
                source, f"invalid date {raw.iloc[pos]!r} on line {line_no(pos, header)}: "
                "no such day")
        if pos == len(frame) - 1:
            raise SourceDataError(
                source, f"truncated file: last line {raw_line(frame, pos)!r} has no valid date"
            )
        raise SourceDataError(source, f"bad date {raw.iloc[pos]!r} on line {line_no(pos, header)}")
    index = pd.DatetimeIndex(parsed.to_numpy())
    if unique:
        dup = index.duplicated()
        if dup.any():
            raise SourceDataError(source, f"duplicate date {index[dup][0].date()}")
    return index


DAY_FORMATS = ("%Y-%m-%d", "%m/%d/%Y")
DAY_PATTERN = r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{4}"
"""ISO dates or US ``M/D/YYYY`` (Cboe, Yahoo exports): the two shapes price and breadth
files come in."""


def parse_days(frame: pd.DataFrame, col: object, source: str) -> pd.DatetimeIndex:
    """A header file's date column in ISO or ``M/D/YYYY`` form (see :func:`parse_dates`)."""
    return parse_dates(frame, col, DAY_FORMATS, source, header=True, pattern=DAY_PATTERN)


def parse_numbers(
    frame: pd.DataFrame,
    col: object,
    name: str,
    dates: pd.DatetimeIndex,
    source: str,
    *,
    allow_missing: frozenset[str] = frozenset(),
) -> tuple[np.ndarray, np.ndarray]:
    """Floats (thousands separators allowed) and a mask of allowed-missing cells."""
    raw = frame[col]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype="float64", copy=True)
    retry = np.isnan(values)
    if retry.any():
        # Only the cells the fast path refused pay for cleaning: padding and
        # thousands separators ("6,856.54"), or the source's empty marker.
        cells = raw[retry].str.strip()
        values[retry] = pd.to_numeric(
            cells.str.replace(",", "", regex=False), errors="coerce"
        ).to_numpy(dtype="float64")
        raw = raw.copy()
        raw[retry] = cells
    missing = np.zeros(len(raw), dtype=bool)
    if allow_missing:
        missing[retry] = raw[retry].isin(list(allow_missing)).to_numpy(dtype=bool)
        values[missing] = np.nan
    # "inf" and "1e999" parse as numbers; no price or count is infinite.
    bad = np.flatnonzero(~np.isfinite(values) & ~missing)
    if bad.size:
        pos = int(bad[0])
        value = raw.iloc[pos]
        day = dates[pos].date()
        if pos == len(frame) - 1 and value == "":
            raise SourceDataError(
                source, f"truncated file: last line {raw_line(frame, pos)!r} lacks {name}"
            )
        if value == "":
            raise SourceDataError(source, f"missing {name} on {day}")
        raise SourceDataError(source, f"non-numeric {name} {value!r} on {day}")
    return values, missing


def session_mask(dates: pd.DatetimeIndex, source: str, calendar: SessionCalendar) -> np.ndarray:
    """True where a date is an XNYS session; dates outside the calendar are errors."""
    first, last = dates.min().date(), dates.max().date()
    if first < calendar.first or last > calendar.last:
        raise SourceDataError(
            source,
            f"dates {first}..{last} fall outside the session calendar "
            f"({calendar.first}..{calendar.last})",
        )
    sessions = calendar.session_index(first, last)
    return np.asarray(dates.normalize().isin(sessions), dtype=bool)


def is_session(calendar: SessionCalendar, day: dt.date, source: str) -> bool:
    """``calendar.is_session`` that reports out-of-range dates as bad data, not a crash."""
    if not calendar.first <= day <= calendar.last:
        raise SourceDataError(
            source,
            f"date {day} is outside the session calendar ({calendar.first}..{calendar.last})",
        )
    return calendar.is_session(day)


def dropped_rows(dates: pd.DatetimeIndex, mask: np.ndarray, reason: str) -> list[Dropped]:
    return [Dropped(day, reason) for day in pydates(dates[mask])]


def pydates(dates: pd.DatetimeIndex) -> list[dt.date]:
    days: list[dt.date] = dates.to_numpy().astype("datetime64[D]").tolist()
    return days



def header_error(source: str, expected: str, got: Sequence[str], missing: str) -> SourceDataError:
    return SourceDataError(
        source, f"missing column {missing!r}: expected header {expected}, got {','.join(got)}"
    )
