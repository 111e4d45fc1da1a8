"""NYSE breadth files: the Unicorn archive and breadth tables with a header.

Unicorn publishes each series (advancers, decliners, unchanged, volumes) as a
file of its own (``YYYYMMDD, n``); :func:`breadth_from_unicorn` joins them by
date. Other sources come as one table with a header (:func:`parse_breadth_csv`):
the Unicorn 2015-2016 gap file, TradingView's ``USI:ADVN.NY``/``USI:DECL.NY``
bars, a daily WSJ collector's export, single-session patch files. Rows on
non-sessions are dropped and reported; 0/0 placeholder rows too. Whether a
row is a plausible *final* count is the breadth screen's call, on write.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

from bot.engine.breadth_screen import PLACEHOLDER
from bot.kernel.errors import SourceDataError
from bot.kernel.models import Breadth, Dropped, Parsed
from bot.kernel.sessions import SessionCalendar
from bot.market.sources.body import decode_body
from bot.market.sources.files.table import (
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

UNICORN_LINE = re.compile(r"\d{8},\s*-?\d+(\.\d+)?")


def _counts(
    frame: pd.DataFrame, col: object, name: str, dates: pd.DatetimeIndex, source: str
) -> np.ndarray:
    """Issue counts: whole, non-negative numbers (a file with any other is refused)."""
    values, _ = parse_numbers(frame, col, name, dates, source)
    if (values < 0).any():
        pos = int(np.flatnonzero(values < 0)[0])
        raise SourceDataError(
            source, f"negative {name} {frame[col].iloc[pos]!r} on {dates[pos].date()}"
        )
    if not np.all(values == np.floor(values)):
        pos = int(np.flatnonzero(values != np.floor(values))[0])
        raise SourceDataError(
            source, f"non-integer {name} {frame[col].iloc[pos]!r} on {dates[pos].date()}"
        )
    return values.astype(np.int64)


def parse_unicorn(
    text: bytes | str, source: str, calendar: SessionCalendar
) -> Parsed[tuple[dt.date, int]]:
    """``YYYYMMDD, n`` lines, no header (one Unicorn series: advn, decln, ...).

    Non-session rows are dropped and reported; placeholder zeros are judged
    later, in :func:`breadth_from_unicorn`, where both counts are known.
    """
    body = decode_body(text, source)
    frame = read_table(body, source, header=False, width=2)
    dates = parse_dates(frame, 0, ("%Y%m%d",), source, header=False, pattern=r"\d{8}")
    values = _counts(frame, 1, "value", dates, source)
    keep = session_mask(dates, source, calendar)
    order = np.argsort(dates.to_numpy(), kind="stable")
    dates, values, keep = dates[order], values[order], keep[order]
    days = pydates(dates[keep])
    ints = values[keep].tolist()
    dropped = tuple(dropped_rows(dates, ~keep, NOT_A_SESSION))
    return Parsed(source, tuple(zip(days, ints, strict=True)), dropped)


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


# -- breadth tables with a header ---------------------------------------------------

BREADTH_COLUMNS: dict[str, tuple[str, ...]] = {
    "date": ("date",),
    "advancers": ("advancers", "advancing", "advances", "advn", "adv"),
    "decliners": ("decliners", "declining", "declines", "decln", "dec"),
    "unchanged": ("unchanged", "unchn", "unch"),
    "adv_volume": ("adv_volume", "advvol", "advv"),
    "dec_volume": ("dec_volume", "decvol", "declv"),
    "source": ("source",),
}
"""Accepted header names (case-insensitive) per field; the first three are required."""
BREADTH_HEADER = "date,advancers,decliners[,unchanged][,adv_volume,dec_volume][,source]"
_SOURCE_LABEL = 40
"""Longest per-row source label kept (the store's column holds 64 with a prefix)."""


def breadth_columns(names: list[str]) -> dict[str, int] | None:
    """Field -> column position for a breadth header, or None if it is not one."""
    lower = [n.strip().lower() for n in names]
    found: dict[str, int] = {}
    for field, aliases in BREADTH_COLUMNS.items():
        for alias in aliases:
            if alias in lower:
                found[field] = lower.index(alias)
                break
    if not {"date", "advancers", "decliners"} <= found.keys():
        return None
    return found


def source_label(text: str) -> str:
    """A short row label from a free-text source cell: its first word, lower case.

    ``"McClellan Financial Publications, market_breadth_data page ..."`` becomes
    ``mcclellan``, the name the live McClellan source writes too; the full
    text stays in the file (and in PROVENANCE.md for the shipped patches).
    """
    words = re.findall(r"[a-z0-9]+", text.lower())
    return words[0][:_SOURCE_LABEL] if words else "unnamed"


def parse_breadth_csv(
    text: bytes | str, source: str, calendar: SessionCalendar
) -> Parsed[Breadth]:
    """A breadth table with a header (see :data:`BREADTH_COLUMNS`), in any row order.

    TradingView's extra ``adv_open``/``adv_high``/... columns are ignored (the
    close of the daily bar is the day's count). With a ``source`` column each
    row is labelled ``<source>:<label>`` (:func:`source_label`), so a patch
    file names where each of its sessions came from.
    """
    body = decode_body(text, source)
    frame = read_table(body, source, header=True)
    got = columns(frame)
    col = breadth_columns(got)
    if col is None:
        missing = next(f for f in ("date", "advancers", "decliners")
                       if not any(a in [g.lower() for g in got] for a in BREADTH_COLUMNS[f]))
        raise header_error(source, BREADTH_HEADER, got, missing)
    names = list(frame.columns)
    dates = parse_days(frame, names[col["date"]], source)
    values = {
        f: _counts(frame, names[col[f]], f, dates, source)
        for f in ("advancers", "decliners", "unchanged") if f in col
    }
    volumes = {
        f: parse_numbers(frame, names[col[f]], f, dates, source)[0]
        for f in ("adv_volume", "dec_volume") if f in col
    }
    labels = ([f"{source}:{source_label(v)}" for v in frame[names[col["source"]]]]
              if "source" in col else [source] * len(frame))
    keep = session_mask(dates, source, calendar)
    rows: list[Breadth] = []
    dropped = dropped_rows(dates, ~keep, NOT_A_SESSION)
    days = pydates(dates)
    for pos in np.flatnonzero(keep).tolist():
        day = days[pos]
        adv, dec = int(values["advancers"][pos]), int(values["decliners"][pos])
        if adv == 0 and dec == 0:
            dropped.append(Dropped(day, PLACEHOLDER))
            continue
        unch = values.get("unchanged")
        advv, decv = volumes.get("adv_volume"), volumes.get("dec_volume")
        rows.append(Breadth(
            session=day, advancers=adv, decliners=dec, source=labels[pos],
            unchanged=int(unch[pos]) if unch is not None else None,
            adv_volume=float(advv[pos]) if advv is not None else None,
            dec_volume=float(decv[pos]) if decv is not None else None,
        ))
    rows.sort(key=lambda b: b.session)
    return Parsed(source, tuple(rows), tuple(sorted(dropped, key=lambda d: d.date)))
