"""The shipped snapshot: real history that lets the bot run with no network.

It is a *source* chosen explicitly (``--source snapshot`` / ``ALVH_SOURCE``),
never a silent fallback for a live run: a live run with a dead network must
say "no data", not quietly evaluate last spring's prices. The snapshot is
loaded into a store of its own (``snapshot.sqlite`` in the data directory) so
demo runs never mix with a live store's history, layer state or outbox.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.kernel.models import Parsed
from bot.kernel.sessions import SessionCalendar
from bot.market.importer import Item, keep_real_gaps, parse_files, write_items
from bot.market.sources.validate import trim
from bot.store import Store, open_store

log = logging.getLogger(__name__)

SNAPSHOT_DIR = Path(__file__).resolve().parents[1] / "data" / "snapshot"
SPX_SPLIT = dt.date(2018, 12, 31)
"""The arch file (1999–2018) is used through this date, the GSPC file after it:
their 1,006 overlapping closes agree to 0.0001 but volumes are defined differently."""

_FILES = (
    "spx/spx_daily_1999_2018.csv",
    "spx/spx_daily_2015_2026.csv",
    "vix/VIX_History.csv",
    "vix/VIX3M_History.csv",
    "vix/VIX6M_History.csv",
    "breadth/nyse-unicorn-1965-2015/NYSE_advn.csv",
    "breadth/nyse-unicorn-1965-2015/NYSE_decln.csv",
    "breadth/nyse-unicorn-1965-2015/NYSE_unchn.csv",
    "breadth/nyse-unicorn-1965-2015/NYSE_advv.csv",
    "breadth/nyse-unicorn-1965-2015/NYSE_declv.csv",
    "breadth/nyse-unicorn-2017-2020/nyse_advn.csv",
    "breadth/nyse-unicorn-2017-2020/nyse_decln.csv",
    "breadth/synthetic-1998-2026/synthetic_advn.csv",
    "breadth/synthetic-1998-2026/synthetic_decln.csv",
    "calendar/fomc_decisions.csv",
    "calendar/cpi_releases.csv",
)
STORE_NAME = "snapshot.sqlite"


def snapshot_paths(root: Path = SNAPSHOT_DIR) -> list[Path]:
    return [root / f for f in _FILES]


LAYOUT = 2
"""Bump when the way the files are composed changes (not only their bytes)."""


def fingerprint(root: Path = SNAPSHOT_DIR) -> str:
    """Changes whenever a shipped file or the composition changes: an upgrade reloads."""
    h = hashlib.sha256(f"layout {LAYOUT}".encode())
    for p in snapshot_paths(root):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def parse_snapshot(calendar: SessionCalendar, root: Path = SNAPSHOT_DIR) -> list[Item]:
    """Parse the shipped files; every row's source says it came from the snapshot.

    Synthetic breadth only fills the long stretches without NYSE rows; see
    :func:`bot.market.importer.keep_real_gaps`.
    """
    items, _skipped = parse_files(calendar, snapshot_paths(root))
    items = keep_real_gaps(items, calendar)
    out = []
    for item in items:
        parsed: Parsed[Any] = item.parsed
        if item.label == "spx_daily_2015_2026.csv":
            parsed = trim(parsed, SPX_SPLIT + dt.timedelta(days=1), None)
        source = "snapshot:" + parsed.source.removeprefix("file:")
        rows = tuple(replace(r, source=source) for r in parsed.rows)
        out.append(Item(item.label, Parsed(source, rows, parsed.dropped), item.series))
    return out


def open_snapshot_store(
    data_dir: Path, calendar: SessionCalendar, root: Path = SNAPSHOT_DIR
) -> Store:
    """Open ``snapshot.sqlite``, (re)loading the shipped files when they changed."""
    store = open_store(f"sqlite:///{data_dir / STORE_NAME}")
    marker = data_dir / (STORE_NAME + ".version")
    want = fingerprint(root)
    if marker.exists() and marker.read_text().strip() == want:
        return store
    log.info("snapshot: loading the shipped history into %s (once)", data_dir / STORE_NAME)
    for line in write_items(store, parse_snapshot(calendar, root)):
        log.info("snapshot: %s", line)
    marker.write_text(want + "\n")
    return store
