"""``alvh data import``: history files into the store, all or nothing.

Every file is parsed before anything is written, so one bad file in a batch
leaves the store as it was. Rows the parsers dropped (holidays in real files,
Unicorn placeholders) are reported here, never stored as sessions.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.kernel.errors import ConfigError, SourceDataError
from bot.kernel.models import Bar, Breadth, Dropped, Event, Parsed, Symbol, is_synthetic
from bot.kernel.sessions import SessionCalendar
from bot.market.sources import files
from bot.store import Store

UNICORN_FIELDS = ("advn", "decln", "unchn", "advv", "declv")
_FIELD_RE = re.compile(r"(?i)(advn|decln|unchn|advv|declv|newhi|newlo|unchv)")
FRED_SERIES = {"SP500": Symbol.SPX, "VIXCLS": Symbol.VIX, "VXVCLS": Symbol.VIX3M}
_SYMBOLS = {s.value for s in Symbol}


@dataclass(frozen=True, slots=True)
class Item:
    label: str
    parsed: Parsed[Bar] | Parsed[Breadth] | Parsed[Event]
    series: str


def check_readable(paths: Iterable[Path]) -> None:
    """ConfigError for the first path that is not a readable file, before anything is
    opened or created (a mistyped name must not leave a new store behind)."""
    for path in paths:
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: OSError) -> ConfigError:
    if isinstance(exc, IsADirectoryError):
        return ConfigError(f"{path}: is a directory, not a data file")
    return ConfigError(f"{path}: cannot read ({exc.strerror})")


def read_text_file(path: Path) -> str:
    """A history file's text; a directory, an unreadable or a binary file is one clear error."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc) from None
    # What the file holds is data, refused like a bad row (exit 1); naming a file that cannot
    # be read is a bad argument (exit 2).
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceDataError(
            str(path), f"not a text file (byte 0x{raw[exc.start]:02x} at offset {exc.start} is "
            "not UTF-8); expected a CSV or a Unicorn text file") from None
    if "\x00" in text[:4096]:
        raise SourceDataError(str(path), "not a text file (it contains NUL bytes); expected a "
                              "CSV or a Unicorn text file")
    return text


def _symbol_for(path: Path, given: str | None, fmt: str) -> str:
    if given:
        sym = given.upper()
        if sym not in _SYMBOLS:
            raise ConfigError(f"--symbol {given!r}: expected one of {', '.join(sorted(_SYMBOLS))}")
        return sym
    stem = path.stem.upper()
    if fmt == "cboe":
        guess = stem.removesuffix("_HISTORY")
        if guess in _SYMBOLS:
            return guess
    if any(tag in stem for tag in ("SPX", "GSPC", "SP500")):
        return Symbol.SPX.value
    raise ConfigError(
        f"{path}: cannot tell which series this is; pass --symbol SPX|VIX|VIX3M|VIX6M"
    )


def _fred_symbol(path: Path, text: str, given: str | None) -> tuple[str, str]:
    header = text.lstrip("\ufeff").splitlines()[0].split(",")
    series_id = header[1].strip() if len(header) > 1 else ""
    if given:
        return _symbol_for(path, given, "fred"), series_id
    if series_id.upper() in FRED_SERIES:
        return FRED_SERIES[series_id.upper()].value, series_id
    raise ConfigError(f"{path}: unknown FRED series {series_id!r}; pass --symbol")


def _unicorn_groups(
    paths: Sequence[Path], skipped: list[str]
) -> dict[tuple[Path, str], dict[str, Path]]:
    groups: dict[tuple[Path, str], dict[str, Path]] = defaultdict(dict)
    for p in paths:
        m = _FIELD_RE.search(p.stem)
        if not m:
            raise ConfigError(
                f"{p}: a Unicorn file must say which series it is in its name "
                f"({', '.join(UNICORN_FIELDS)})"
            )
        field = m.group(1).lower()
        if field not in UNICORN_FIELDS:
            skipped.append(f"{p.name}: skipped, Unicorn series {field!r} is not used by the bot")
            continue
        key = (p.parent, p.stem[: m.start()].lower() + "*" + p.stem[m.end():].lower())
        if field in groups[key]:
            raise ConfigError(f"{p}: two {field} files in one group ({groups[key][field]})")
        groups[key][field] = p
    for fields in groups.values():
        for need in ("advn", "decln"):
            if need not in fields:
                some = next(iter(fields.values()))
                raise ConfigError(
                    f"{some}: breadth needs both advancers (advn) and decliners (decln) files; "
                    f"{need} is missing"
                )
    return groups


def _dropped_text(dropped: Sequence[Dropped]) -> str:
    if not dropped:
        return ""
    by_reason: dict[str, list[str]] = defaultdict(list)
    for d in dropped:
        by_reason[d.reason].append(str(d.date))
    parts = []
    for reason, dates in by_reason.items():
        more = f", ... ({len(dates) - 40} more)" if len(dates) > 40 else ""
        shown = ", ".join(dates[:40]) + more
        parts.append(f"    dropped {len(dates)} row(s), {reason}: {shown}")
    return "\n".join(parts)


def _parse_one(calendar: SessionCalendar, path: Path, fmt: str, symbol: str | None,
               source: str | None) -> Item | None:
    """One file of :func:`parse_files`, or None for a Unicorn file (those are parsed by
    groups of fields)."""
    text = read_text_file(path)
    name = f"file:{path.name}"
    kind = files.detect_format(text, name) if fmt == "auto" else fmt
    if kind == "unicorn":
        return None
    if kind == "breadth":
        return Item(path.name, files.parse_breadth_csv(text, source or name, calendar),
                    "BREADTH")
    if kind == "cboe":
        sym = _symbol_for(path, symbol, kind)
        return Item(path.name, files.parse_cboe_csv(text, sym, source or "cboe", calendar), sym)
    if kind == "ohlc":
        sym = _symbol_for(path, symbol, kind)
        return Item(path.name, files.parse_ohlc_csv(text, sym, source or name, calendar), sym)
    if kind == "fred":
        sym, series_id = _fred_symbol(path, text, symbol)
        return Item(path.name, files.parse_fred_csv(
            text, sym, source or "fred", calendar, series=series_id), sym)
    if kind == "events":
        return Item(path.name, files.parse_event_csv(text, source or name, calendar), "events")
    raise ConfigError(f"--format {kind!r} is not a known format")


def parse_files(
    calendar: SessionCalendar,
    paths: Sequence[Path],
    *,
    fmt: str = "auto",
    symbol: str | None = None,
    source: str | None = None,
) -> tuple[list[Item], list[str]]:
    """Parse every file (no writes); raise on the first unusable one."""
    items: list[Item] = []
    unicorn: list[Path] = []
    skipped: list[str] = []
    for path in paths:
        try:
            item = _parse_one(calendar, path, fmt, symbol, source)
        except SourceDataError as exc:  # "cboe: truncated file" must say which file
            name = f"file:{path.name}"
            if exc.source in (name, str(path)):
                raise
            raise SourceDataError(name, f"{exc.source}: {exc.reason}") from None
        if item is None:
            unicorn.append(path)
        else:
            items.append(item)
    for (_, _), group in sorted(_unicorn_groups(unicorn, skipped).items()):
        label = "+".join(group[f].name for f in UNICORN_FIELDS if f in group)
        src = source or ("synthetic" if any("synthetic" in p.name.lower() for p in group.values())
                         else "unicorn")
        parsed = {
            f: files.parse_unicorn(read_text_file(group[f]), src, calendar)
            for f in group
        }
        items.append(Item(label, files.breadth_from_unicorn(
            parsed["advn"], parsed["decln"], parsed.get("unchn"), parsed.get("advv"),
            parsed.get("declv"), source=src), "BREADTH"))
    return items, skipped


INSIDE_REAL = "inside a real NYSE breadth period (a gap there stays a gap)"
MAX_REAL_HOLE = 10
"""Synthetic breadth fills only stretches of more than this many sessions
without NYSE rows (e.g. 2015-11..2016-12 and after 2020-02 in the snapshot)."""


def keep_real_gaps(
    items: Sequence[Item], calendar: SessionCalendar, stored_real: Iterable[dt.date] = ()
) -> list[Item]:
    """Drop synthetic breadth rows that would patch a short hole in real NYSE data.

    A session missing inside a real period is a gap: the divergence windows
    that contain it yield nothing (one window's worth). A one-day synthetic
    patch would instead switch the A/D line's source twice, and a window may
    never mix sources, so it would blind the divergence on both sides of it.
    The dropped rows are reported like every other dropped row.
    """
    real = sorted(set(stored_real) | {
        r.session for item in items
        if item.series == "BREADTH" and not is_synthetic(item.parsed.source)
        for r in item.parsed.rows if isinstance(r, Breadth)})

    def in_hole(day: dt.date) -> bool:
        i = bisect.bisect_left(real, day)
        if i == 0 or i >= len(real) or real[i] == day:
            return False
        return len(calendar.sessions_between(real[i - 1], real[i])) - 2 <= MAX_REAL_HOLE

    return [_without(item, in_hole, INSIDE_REAL)
            if item.series == "BREADTH" and is_synthetic(item.parsed.source) else item
            for item in items]


def _without(item: Item, drop: Callable[[dt.date], bool], reason: str) -> Item:
    """``item`` without the rows whose session ``drop`` picks, reported with ``reason``."""
    p: Parsed[Any] = item.parsed
    keep = tuple(r for r in p.rows if not drop(r.session))
    gone = tuple(Dropped(r.session, reason) for r in p.rows if drop(r.session))
    return Item(item.label, Parsed(p.source, keep, p.dropped + gone), item.series)


NOT_CLOSED = "the session has not closed yet (a bar or breadth row before the close is not final)"


def drop_unclosed(items: Sequence[Item], last_closed: dt.date) -> list[Item]:
    """Drop price and breadth rows dated after ``last_closed``, with their reason.

    A row for a session still trading (or a future date typed by mistake) would
    become that session's data once it closes, and a stored series is not
    fetched again: the same rule as for every live source. Events (FOMC, CPI,
    PPI) are dated in the future by nature and are kept.
    """
    return [item if item.series == "events"
            else _without(item, lambda day: day > last_closed, NOT_CLOSED) for item in items]


def write_items(store: Store, items: Sequence[Item]) -> list[str]:
    report: list[str] = []
    for item in items:
        rows = item.parsed.rows
        if item.series == "BREADTH":
            res = store.upsert_breadth(r for r in rows if isinstance(r, Breadth))
        elif item.series == "events":
            res = store.upsert_events(r for r in rows if isinstance(r, Event))
        else:
            res = store.upsert_bars(r for r in rows if isinstance(r, Bar))
        span = ""
        if rows:
            first = getattr(rows[0], "session", None) or getattr(rows[0], "date", None)
            last = getattr(rows[-1], "session", None) or getattr(rows[-1], "date", None)
            span = f" {first}..{last}"
        report.append(
            f"{item.label}: {item.series} {len(rows)} rows{span} (source {item.parsed.source}): "
            f"{res.inserted} new, {res.changed} changed, {res.unchanged} unchanged"
            + (f", {res.kept} kept (the row already stored is the better one)"
               if res.kept else "")
            + (f"; {res.refused} refused by the breadth screen (`alvh data status` says why)"
               if res.refused else "")
        )
        extra = _dropped_text(item.parsed.dropped)
        if extra:
            report.append(extra)
    return report


def import_files(
    store: Store,
    calendar: SessionCalendar,
    paths: Sequence[Path],
    *,
    fmt: str = "auto",
    symbol: str | None = None,
    source: str | None = None,
    last_closed: dt.date | None = None,
) -> list[str]:
    """Import ``paths`` into ``store`` (all or nothing); the report, a line per file.

    ``last_closed``: rows of later sessions are dropped (see :func:`drop_unclosed`).
    """
    try:
        items, skipped = parse_files(calendar, paths, fmt=fmt, symbol=symbol, source=source)
    except SourceDataError as exc:
        raise SourceDataError(exc.source, exc.reason + " (nothing was imported)") from None
    stored = store.breadth()
    real = [ts.date() for ts, src in zip(stored.index, stored["source"], strict=True)
            if not is_synthetic(str(src))]
    if last_closed is not None:
        items = drop_unclosed(items, last_closed)
    return skipped + write_items(store, keep_real_gaps(items, calendar, real))
