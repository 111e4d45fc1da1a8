"""The shipped snapshot: real history that lets the bot run with no network.

It is a *source* chosen explicitly (``--source snapshot`` / ``ALVH_SOURCE``),
never a silent fallback for a live run: a live run with a dead network must
say "no data", not quietly evaluate last spring's prices. The snapshot is
loaded into a store of its own (``snapshot.sqlite`` in the data directory) so
demo runs never mix with a live store's history, layer state or outbox; a
live store is seeded from the same files by ``alvh data backfill``.

NYSE breadth is composed from several real sources, in order of preference
per session (``PROVENANCE.md``): the Unicorn archive (1965-2015, the
2015-2016 gap file, the 2017-2020 sample), then TradingView's daily bars
(2003-2026), then single-session patches. A candidate that fails the breadth
screen (:mod:`bot.engine.breadth_screen`: a partial-day count) gives way to
the next source's row for that session; a session where every candidate fails
is stored rejected and counts as missing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.engine.breadth_screen import BreadthScreen
from bot.kernel.models import BREADTH, Breadth, Dropped, Parsed
from bot.kernel.sessions import SessionCalendar
from bot.store import Store, open_store

if TYPE_CHECKING:
    from bot.market.importer import Item

log = logging.getLogger(__name__)

SNAPSHOT_DIR = Path(__file__).resolve().parents[1] / "data" / "snapshot"
SPX_SPLIT = dt.date(2018, 12, 31)
"""The arch file (1999–2018) is used through this date, the GSPC file after it:
their 1,006 overlapping closes agree to 0.0001 but volumes are defined differently."""

PRICES_AND_EVENTS = (
    "spx/spx_daily_1999_2018.csv",
    "spx/spx_daily_2015_2026.csv",
    "vix/VIX_History.csv",
    "vix/VIX3M_History.csv",
    "vix/VIX6M_History.csv",
    "calendar/fomc_decisions.csv",
    "calendar/cpi_releases.csv",
    "calendar/ppi_releases.csv",
)
BREADTH_SOURCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("unicorn", (
        "breadth/nyse-unicorn-1965-2015/NYSE_advn.csv",
        "breadth/nyse-unicorn-1965-2015/NYSE_decln.csv",
        "breadth/nyse-unicorn-1965-2015/NYSE_unchn.csv",
        "breadth/nyse-unicorn-1965-2015/NYSE_advv.csv",
        "breadth/nyse-unicorn-1965-2015/NYSE_declv.csv",
    )),
    ("unicorn", ("breadth/nyse-unicorn-2015-2016/nyse_advn_decln_unchn.csv",)),
    ("unicorn", (
        "breadth/nyse-unicorn-2017-2020/nyse_advn.csv",
        "breadth/nyse-unicorn-2017-2020/nyse_decln.csv",
    )),
    ("tradingview", ("breadth/tradingview-2003-2026/nyse_advn_decln.csv",)),
    ("patch", ("breadth/patches/nyse_advn_decln_patches.csv",)),
)
"""Breadth files by preference: (label, files). A patch row carries its own source."""
STORE_NAME = "snapshot.sqlite"
PREFIX = "snapshot:"


def snapshot_paths(root: Path = SNAPSHOT_DIR) -> list[Path]:
    files = [*PRICES_AND_EVENTS, *(f for _, group in BREADTH_SOURCES for f in group)]
    return [root / f for f in files]


LAYOUT = 3
"""Bump when the way the files are composed changes (not only their bytes)."""


def fingerprint(root: Path = SNAPSHOT_DIR) -> str:
    """Changes whenever a shipped file or the composition changes: an upgrade reloads."""
    h = hashlib.sha256(f"layout {LAYOUT}".encode())
    for p in snapshot_paths(root):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def compose_breadth(candidates: Sequence[Parsed[Breadth]]) -> Parsed[Breadth]:
    """One row per session from ``candidates`` (most preferred first).

    Per session, oldest first, the first candidate that passes the breadth
    screen is kept; each one passed over is reported with why. When none
    passes, the most preferred is kept: the store records it as rejected.
    """
    by_day: dict[dt.date, list[Breadth]] = defaultdict(list)
    for parsed in candidates:
        for row in parsed.rows:
            by_day[row.session].append(row)
    screen = BreadthScreen()
    rows: list[Breadth] = []
    notes: list[Dropped] = []
    for day in sorted(by_day):
        options = by_day[day]
        chosen = options[0]
        for option in options:
            reason = screen.check(option.advancers, option.decliners)
            if reason is None:
                screen.accept(option.advancers, option.decliners)
                chosen = option
                break
            if option is not options[-1]:
                notes.append(Dropped(day, f"{option.source} row not used ({reason})"))
        rows.append(chosen)
    dropped = [d for p in candidates for d in p.dropped if d.date not in by_day]
    return Parsed(PREFIX + "breadth", tuple(rows),
                  tuple(sorted({*dropped, *notes}, key=lambda d: (d.date, d.reason))))


def _breadth_item(calendar: SessionCalendar, root: Path) -> Item:
    from bot.market.importer import Item, parse_files  # the parsers: only when (re)loading

    candidates: list[Parsed[Breadth]] = []
    for label, group in BREADTH_SOURCES:
        items, _ = parse_files(calendar, [root / f for f in group], source=label)
        for item in items:
            parsed: Parsed[Any] = item.parsed
            rows = tuple(replace(r, source=PREFIX + r.source.removeprefix("patch:"))
                         for r in parsed.rows)
            candidates.append(Parsed(PREFIX + label, rows, parsed.dropped))
    composed = compose_breadth(candidates)
    return Item("breadth (" + ", ".join(sorted({r.source for r in composed.rows})) + ")",
                composed, BREADTH)


def parse_snapshot(calendar: SessionCalendar, root: Path = SNAPSHOT_DIR) -> list[Item]:
    """Parse the shipped files; every row's source says it came from the snapshot."""
    from bot.market.importer import Item, parse_files
    from bot.market.sources.validate import trim

    items, _skipped = parse_files(calendar, [root / f for f in PRICES_AND_EVENTS])
    out = []
    for item in items:
        parsed: Parsed[Any] = item.parsed
        if item.label == "spx_daily_2015_2026.csv":
            parsed = trim(parsed, SPX_SPLIT + dt.timedelta(days=1), None)
        source = PREFIX + parsed.source.removeprefix("file:")
        rows = tuple(replace(r, source=source) for r in parsed.rows)
        out.append(Item(item.label, Parsed(source, rows, parsed.dropped), item.series))
    out.append(_breadth_item(calendar, root))
    return out


def open_snapshot_store(
    data_dir: Path, calendar: SessionCalendar, root: Path = SNAPSHOT_DIR
) -> Store:
    """Open ``snapshot.sqlite``, (re)loading the shipped files when they changed.

    A reload starts from empty market tables: rows of an earlier snapshot
    (the synthetic breadth of older versions) must not survive an upgrade.
    """
    store = open_store(f"sqlite:///{data_dir / STORE_NAME}")
    marker = data_dir / (STORE_NAME + ".version")
    want = fingerprint(root)
    if marker.exists() and marker.read_text().strip() == want:
        return store
    log.info("snapshot: loading the shipped history into %s (once)", data_dir / STORE_NAME)
    from bot.market.importer import write_items

    store.clear_market_data()
    items = parse_snapshot(calendar, root)
    for line in write_items(store, items):  # per file, with every dropped date: for debugging
        log.debug("snapshot: %s", line)
    log.info("snapshot: loaded %s rows of %s (`alvh data status --source snapshot` shows "
             "each series, its sources and the rows not used)",
             f"{sum(len(i.parsed.rows) for i in items):,}",
             ", ".join(dict.fromkeys(i.series for i in items)))
    marker.write_text(want + "\n")
    return store
