"""Parsers for history files: Unicorn breadth, Cboe and OHLC price CSVs, FRED
downloads and the shipped event calendars.

The same functions serve three callers: live fetchers (Cboe, FRED, Stooq
bodies), ``alvh data import`` (user files) and the snapshot loader (shipped
files). So they are strict in one place: a file is either wholly usable or
rejected with a :class:`~bot.kernel.errors.SourceDataError` that names the line,
date or column at fault. Real files carry rows on NYSE holidays; those are
dropped *and reported* in :attr:`Parsed.dropped`, never silently.

Parsing is vectorised with pandas: the snapshot (~115,000 rows over all
files) is parsed at start-up, and per-row Python regexes would dominate it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from bot.kernel.errors import SourceDataError
from bot.kernel.models import Bar, Breadth, Dropped, Event, EventKind, Parsed
from bot.kernel.sessions import SessionCalendar

NOT_A_SESSION = "not an NYSE session"
PLACEHOLDER = "placeholder row: 0 advancers and 0 decliners"
NO_VALUE = "no value (left empty by the source)"

Format = Literal["unicorn", "cboe", "ohlc", "fred", "events"]

CBOE_HEADER = ("DATE", "OPEN", "HIGH", "LOW", "CLOSE")
OHLC_HEADER = "Date,Open,High,Low,Close[,Adj Close][,Volume]"
EVENT_HEADER = "date,kind,time_et[,scheduled,note]"
_FRED_DATE_COLUMNS = ("observation_date", "date")
_MISSING_FRED = frozenset({"", "."})


# -- text-level checks shared by every parser (also used by JSON sources) ----


def decode_body(body: bytes | str, source: str, kind: str = "CSV") -> str:
    """Bytes to text, refusing what is obviously not data.

    Sources that fail tend to answer 200 with an HTML error or consent page,
    so HTML is detected before any parsing rather than surfacing later as a
    confusing "missing column".
    """
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SourceDataError(source, f"body is not UTF-8 text ({exc.reason})") from None
    else:
        text = body.removeprefix("\ufeff")
    stripped = text.strip()
    if not stripped:
        raise SourceDataError(source, "empty body")
    head = stripped[:512].lower()
    if head.startswith(("<!doctype", "<html")) or "<html" in head:
        raise SourceDataError(source, f"HTML page instead of {kind}")
    if head.startswith("<?xml"):
        # CDNs and S3 answer errors such as AccessDenied as XML documents.
        raise SourceDataError(source, f"XML document instead of {kind}: {stripped[:120]!r}")
    return text


def load_json(body: bytes | str, source: str) -> object:
    """Parse a JSON body; a cut-off download is the usual reason it fails."""
    text = decode_body(body, source, kind="JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceDataError(
            source, f"truncated or invalid JSON ({exc.msg} at char {exc.pos} of {len(text)})"
        ) from None


# -- table reading ------------------------------------------------------------


def _read_table(text: str, source: str, *, header: bool, width: int | None = None) -> pd.DataFrame:
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


def _columns(frame: pd.DataFrame) -> list[str]:
    return [str(c).strip().strip('"').strip() for c in frame.columns]


def _line_no(pos: int, header: bool) -> int:
    """1-based line number of data row ``pos`` (blank lines are not counted)."""
    return pos + (2 if header else 1)


def _raw_line(frame: pd.DataFrame, pos: int) -> str:
    return ",".join(str(v) for v in frame.iloc[pos].tolist()).rstrip(",")


def _parse_dates(
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
        if pos == len(frame) - 1:
            raise SourceDataError(
                source, f"truncated file: last line {_raw_line(frame, pos)!r} has no valid date"
            )
        raise SourceDataError(source, f"bad date {raw.iloc[pos]!r} on line {_line_no(pos, header)}")
    index = pd.DatetimeIndex(parsed.to_numpy())
    if unique:
        dup = index.duplicated()
        if dup.any():
            raise SourceDataError(source, f"duplicate date {index[dup][0].date()}")
    return index


def _parse_numbers(
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
                source, f"truncated file: last line {_raw_line(frame, pos)!r} lacks {name}"
            )
        if value == "":
            raise SourceDataError(source, f"missing {name} on {day}")
        raise SourceDataError(source, f"non-numeric {name} {value!r} on {day}")
    return values, missing


def _session_mask(dates: pd.DatetimeIndex, source: str, calendar: SessionCalendar) -> np.ndarray:
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


def _dropped(dates: pd.DatetimeIndex, mask: np.ndarray, reason: str) -> list[Dropped]:
    return [Dropped(day, reason) for day in _pydates(dates[mask])]


def _pydates(dates: pd.DatetimeIndex) -> list[dt.date]:
    days: list[dt.date] = dates.to_numpy().astype("datetime64[D]").tolist()
    return days


# -- Unicorn breadth ----------------------------------------------------------

_UNICORN_LINE = re.compile(r"\d{8},\s*-?\d+(\.\d+)?")


def parse_unicorn(
    text: bytes | str, source: str, calendar: SessionCalendar
) -> Parsed[tuple[dt.date, int]]:
    """``YYYYMMDD, n`` lines, no header (one Unicorn series: advn, decln, ...).

    Non-session rows are dropped and reported; placeholder zeros are judged
    later, in :func:`breadth_from_unicorn`, where both counts are known.
    """
    body = decode_body(text, source)
    frame = _read_table(body, source, header=False, width=2)
    dates = _parse_dates(frame, 0, ("%Y%m%d",), source, header=False, pattern=r"\d{8}")
    values, _ = _parse_numbers(frame, 1, "value", dates, source)
    if (values < 0).any():
        pos = int(np.flatnonzero(values < 0)[0])
        raise SourceDataError(
            source, f"negative value {frame[1].iloc[pos]!r} on {dates[pos].date()}"
        )
    if not np.all(values == np.floor(values)):
        pos = int(np.flatnonzero(values != np.floor(values))[0])
        raise SourceDataError(
            source, f"non-integer value {frame[1].iloc[pos]!r} on {dates[pos].date()}"
        )
    keep = _session_mask(dates, source, calendar)
    order = np.argsort(dates.to_numpy(), kind="stable")
    dates, values, keep = dates[order], values[order], keep[order]
    days = _pydates(dates[keep])
    ints = values[keep].astype(np.int64).tolist()
    return Parsed(
        source, tuple(zip(days, ints, strict=True)), tuple(_dropped(dates, ~keep, NOT_A_SESSION))
    )


def breadth_from_unicorn(
    adv: Parsed[tuple[dt.date, int]],
    dec: Parsed[tuple[dt.date, int]],
    unch: Parsed[tuple[dt.date, int]] | None = None,
    advv: Parsed[tuple[dt.date, int]] | None = None,
    decv: Parsed[tuple[dt.date, int]] | None = None,
    *,
    source: str,
) -> Parsed[Breadth]:
    """Join the per-series Unicorn files by date into :class:`Breadth` rows.

    Every given series must cover exactly the same sessions: a date present in
    one file and absent from another is an error naming both, since silently
    inner-joining would hide a damaged file. Rows with 0 advancers *and* 0
    decliners are Unicorn's placeholders for days it never filled in (the
    2020 tail of the sample), not a market where nothing traded.
    """
    named: list[tuple[str, Parsed[tuple[dt.date, int]]]] = [("advancers", adv), ("decliners", dec)]
    for label, series in (
        ("unchanged", unch),
        ("advancing volume", advv),
        ("declining volume", decv),
    ):
        if series is not None:
            named.append((label, series))
    maps = {label: dict(p.rows) for label, p in named}
    base = maps["advancers"]
    for label, m in maps.items():
        if label == "advancers":
            continue
        only_adv = sorted(base.keys() - m.keys())
        only_other = sorted(m.keys() - base.keys())
        if only_adv:
            raise SourceDataError(source, f"{only_adv[0]} has advancers but no {label}")
        if only_other:
            raise SourceDataError(source, f"{only_other[0]} has {label} but no advancers")
    dropped: dict[dt.date, Dropped] = {}
    for _, p in named:
        for drop in p.dropped:
            dropped.setdefault(drop.date, drop)
    rows: list[Breadth] = []
    dec_map = maps["decliners"]
    unch_map, advv_map, decv_map = (
        maps.get("unchanged"),
        maps.get("advancing volume"),
        maps.get("declining volume"),
    )
    for day in sorted(base):
        a, d = base[day], dec_map[day]
        if a == 0 and d == 0:
            dropped.setdefault(day, Dropped(day, PLACEHOLDER))
            continue
        rows.append(
            Breadth(
                session=day,
                advancers=a,
                decliners=d,
                source=source,
                unchanged=unch_map[day] if unch_map is not None else None,
                adv_volume=float(advv_map[day]) if advv_map is not None else None,
                dec_volume=float(decv_map[day]) if decv_map is not None else None,
            )
        )
    return Parsed(source, tuple(rows), tuple(sorted(dropped.values(), key=lambda x: x.date)))


# -- price CSVs -----------------------------------------------------------------


def _header_error(source: str, expected: str, got: Sequence[str], missing: str) -> SourceDataError:
    return SourceDataError(
        source, f"missing column {missing!r}: expected header {expected}, got {','.join(got)}"
    )


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

    Values were checked finite by :func:`_parse_numbers`, so plain ``tolist``
    conversions suffice; this loop builds ~25,000 bars at start-up.
    """
    order = np.argsort(dates.to_numpy(), kind="stable")
    picked = order[keep[order]]
    days = _pydates(dates[picked])
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


def parse_cboe_csv(
    text: bytes | str, symbol: str, source: str, calendar: SessionCalendar
) -> Parsed[Bar]:
    """Cboe ``DATE,OPEN,HIGH,LOW,CLOSE`` history (``MM/DD/YYYY``)."""
    body = decode_body(text, source)
    frame = _read_table(body, source, header=True)
    got = _columns(frame)
    upper = [c.upper() for c in got]
    for name in CBOE_HEADER:
        if name not in upper:
            raise _header_error(source, ",".join(CBOE_HEADER), got, name)
    col = {name: frame.columns[upper.index(name)] for name in CBOE_HEADER}
    dates = _parse_dates(
        frame,
        col["DATE"],
        ("%m/%d/%Y", "%Y-%m-%d"),
        source,
        header=True,
        pattern=r"\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{2}-\d{2}",
    )
    vals = {n: _parse_numbers(frame, col[n], n, dates, source)[0] for n in CBOE_HEADER[1:]}
    keep = _session_mask(dates, source, calendar)
    dropped = _dropped(dates, ~keep, NOT_A_SESSION)
    return _bars(
        symbol,
        source,
        dates,
        keep,
        dropped,
        vals["CLOSE"],
        vals["OPEN"],
        vals["HIGH"],
        vals["LOW"],
    )


def parse_ohlc_csv(
    text: bytes | str, symbol: str, source: str, calendar: SessionCalendar
) -> Parsed[Bar]:
    """``Date,Open,High,Low,Close[,Adj Close][,Volume]`` in any row order.

    Yahoo-style exports (newest first, quoted values with thousands
    separators, ``M/D/YYYY``) and Stooq (ISO dates) both fit. ``Adj Close``
    is ignored: an index has no dividends to adjust for.
    """
    body = decode_body(text, source)
    frame = _read_table(body, source, header=True)
    got = _columns(frame)
    lower = [c.lower() for c in got]
    col: dict[str, object] = {}
    for name in ("date", "open", "high", "low", "close"):
        if name not in lower:
            raise _header_error(source, OHLC_HEADER, got, name.capitalize())
        col[name] = frame.columns[lower.index(name)]
    dates = _parse_dates(
        frame,
        col["date"],
        ("%Y-%m-%d", "%m/%d/%Y"),
        source,
        header=True,
        pattern=r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{4}",
    )
    vals = {
        n: _parse_numbers(frame, col[n], n.capitalize(), dates, source)[0]
        for n in ("open", "high", "low", "close")
    }
    volume = None
    if "volume" in lower:
        volume = _parse_numbers(
            frame, frame.columns[lower.index("volume")], "Volume", dates, source
        )[0]
    keep = _session_mask(dates, source, calendar)
    dropped = _dropped(dates, ~keep, NOT_A_SESSION)
    return _bars(
        symbol,
        source,
        dates,
        keep,
        dropped,
        vals["close"],
        vals["open"],
        vals["high"],
        vals["low"],
        volume,
    )


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
    frame = _read_table(body, source, header=True)
    got = _columns(frame)
    expected = f"observation_date,{series or '<SERIES_ID>'}"
    if len(got) != 2 or got[0].lower() not in _FRED_DATE_COLUMNS:
        raise SourceDataError(source, f"unexpected header {','.join(got)}: expected {expected}")
    if series is not None and got[1].upper() != series.upper():
        raise SourceDataError(source, f"column {got[1]!r} is not {series!r}: expected {expected}")
    dates = _parse_dates(
        frame, frame.columns[0], ("%Y-%m-%d",), source, header=True, pattern=r"\d{4}-\d{2}-\d{2}"
    )
    close, missing = _parse_numbers(
        frame, frame.columns[1], got[1], dates, source, allow_missing=_MISSING_FRED
    )
    session = _session_mask(dates, source, calendar)
    dropped = [
        *_dropped(dates, ~session, NOT_A_SESSION),
        *_dropped(dates, session & missing, NO_VALUE),
    ]
    return _bars(symbol, source, dates, session & ~missing, dropped, close)


# -- event calendars ---------------------------------------------------------------


def parse_event_csv(text: bytes | str, source: str, calendar: SessionCalendar) -> Parsed[Event]:
    """The shipped calendars: ``date,kind,time_et[,scheduled,note]``.

    Events on non-sessions are *kept*: the 2020-03-15 emergency cut was a
    Sunday and still moved markets the next session; event proximity maps an
    event to the session on or after it. ``scheduled`` (``yes``/``no``,
    default yes) is kept on the event: an unscheduled action is known only
    from its own date. ``note`` is free text and ignored.
    """
    body = decode_body(text, source)
    frame = _read_table(body, source, header=True)
    got = [c.lower() for c in _columns(frame)]
    for name in ("date", "kind", "time_et"):
        if name not in got:
            raise _header_error(source, EVENT_HEADER, _columns(frame), name)
    col = {n: frame.columns[got.index(n)] for n in ("date", "kind", "time_et")}
    # Dates may repeat across kinds (a CPI and an FOMC on one day), not within one.
    dates = _parse_dates(
        frame,
        col["date"],
        ("%Y-%m-%d",),
        source,
        header=True,
        pattern=r"\d{4}-\d{2}-\d{2}",
        unique=False,
    )
    kinds = frame[col["kind"]].str.strip().str.upper()
    valid = {k.value for k in EventKind}
    bad_kind = np.flatnonzero(~kinds.isin(valid).to_numpy())
    if bad_kind.size:
        pos = int(bad_kind[0])
        if pos == len(frame) - 1 and kinds.iloc[pos] == "":
            raise SourceDataError(
                source, f"truncated file: last line {_raw_line(frame, pos)!r} lacks kind"
            )
        raise SourceDataError(
            source,
            f"unknown kind {frame[col['kind']].iloc[pos]!r} on line {_line_no(pos, True)}"
            f" (expected one of {', '.join(sorted(valid))})",
        )
    dup = pd.Series(list(zip(dates, kinds, strict=True))).duplicated().to_numpy()
    if dup.any():
        pos = int(np.flatnonzero(dup)[0])
        raise SourceDataError(source, f"duplicate date {dates[pos].date()} for {kinds.iloc[pos]}")
    _session_mask(dates, source, calendar)  # range check only
    if "scheduled" in got:
        flags = frame[frame.columns[got.index("scheduled")]].str.strip().str.lower().tolist()
    else:
        flags = ["yes"] * len(frame)
    events: list[Event] = []
    for pos, (day, kind, raw_time, flag) in enumerate(
        zip(
            _pydates(dates),
            kinds.tolist(),
            frame[col["time_et"]].str.strip().tolist(),
            flags,
            strict=True,
        )
    ):
        if flag not in ("yes", "no", ""):
            raise SourceDataError(
                source, f"bad scheduled {flag!r} on line {_line_no(pos, True)} (expected yes/no)"
            )
        events.append(
            Event(EventKind(kind), day, source, _time_of_day(raw_time, source, frame, pos),
                  scheduled=flag != "no")
        )
    events.sort(key=lambda e: (e.date, e.kind.value))
    return Parsed(source, tuple(events))


def _time_of_day(raw: str, source: str, frame: pd.DataFrame, pos: int) -> dt.time | None:
    if raw == "":
        return None
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", raw)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise SourceDataError(
            source, f"bad time_et {raw!r} on line {_line_no(pos, True)} (expected HH:MM)"
        )
    return dt.time(int(match[1]), int(match[2]))


# -- format detection -------------------------------------------------------------------


def detect_format(text: bytes | str, source: str = "import") -> Format:
    """Which parser a file needs, from its first line.

    ``alvh data import`` accepts any of the shipped formats; guessing wrong
    would produce a misleading column error, so an unknown first line is
    reported as such with the formats that are understood.
    """
    body = decode_body(text, source)
    first = next((line.strip() for line in body.splitlines() if line.strip()), "")
    if _UNICORN_LINE.fullmatch(first):
        return "unicorn"
    cells = [c.strip() for c in next(csv.reader([first]))]
    lower = [c.lower() for c in cells]
    if lower[:5] == ["date", "open", "high", "low", "close"]:
        return "cboe" if cells == list(CBOE_HEADER) else "ohlc"
    if len(lower) == 2 and lower[0] in _FRED_DATE_COLUMNS:
        return "fred"
    if {"date", "kind", "time_et"} <= set(lower):
        return "events"
    raise SourceDataError(
        source,
        f"unrecognised format: first line {first[:80]!r}; expected Unicorn 'YYYYMMDD, n', "
        f"Cboe {','.join(CBOE_HEADER)}, {OHLC_HEADER}, FRED observation_date,<ID> "
        f"or events {EVENT_HEADER}",
    )
