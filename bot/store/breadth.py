"""NYSE breadth rows: written through the breadth screen, read without the rejected.

Why the screen runs here, on write, and not only in the sources: every way in
(``alvh data import``, the snapshot, each live source) then gets the same
rule, and a row inserted *before* others (an import of older history into a
live store) screens the later rows again, since their reference median has
changed. A rejected row is stored with its reason so ``alvh data status`` can
list it; :meth:`bot.store.Store.breadth` never returns it (the session counts
as missing, i.e. imputed by the indicators).

Two more rules on a session that already has a row: synthetic breadth never
replaces NYSE figures, and a row that fails the screen never replaces one
that passes it (a partial-day re-fetch must not erase the final count).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bot.engine.breadth_screen import MEDIAN_SESSIONS, BreadthScreen
from bot.kernel.models import Breadth, is_synthetic
from bot.store import schema as s
from bot.store.compare import ChangeLog, differs

log = logging.getLogger(__name__)

COMPARED = ("advancers", "decliners", "unchanged", "adv_volume", "dec_volume")
_SYNTHETIC = s.breadth.c.source.like("%synthetic%")
"""SQL twin of :func:`bot.kernel.models.is_synthetic`."""
ACCEPTED = s.breadth.c.rejected.is_(None)


@dataclass(frozen=True, slots=True)
class RejectedBreadth:
    """A stored breadth row that failed the screen, and why."""

    session: dt.date
    advancers: int
    decliners: int
    source: str
    reason: str


@dataclass(slots=True)
class BreadthWrite:
    """What a breadth write did (counted per session)."""

    inserted: int = 0
    changed: int = 0
    unchanged: int = 0
    kept: int = 0
    rejected: int = 0
    """Rows written (or left) rejected by the screen in this write."""
    flipped: int = 0
    """Stored rows whose accept/reject verdict changed because earlier rows changed."""
    refused: int = 0
    """Incoming rows that failed the screen (stored rejected, or not stored because the
    accepted row already there was kept): what an import must say it did not take."""


def as_row(b: Breadth, now: str) -> dict[str, Any]:
    return {
        "session": b.session, "advancers": b.advancers, "decliners": b.decliners,
        "unchanged": b.unchanged, "adv_volume": b.adv_volume, "dec_volume": b.dec_volume,
        "source": b.source, "fetched_at": now, "rejected": None,
    }


def screens_before(conn: sa.Connection, first: dt.date) -> dict[bool, BreadthScreen]:
    """The screen's reference just before ``first``, per segment (NYSE, synthetic).

    A synthetic series counts a different universe of stocks, so its totals
    never serve as the reference for NYSE figures, nor the other way round.
    """
    out: dict[bool, BreadthScreen] = {}
    for synthetic in (False, True):
        segment = _SYNTHETIC if synthetic else sa.not_(_SYNTHETIC)
        q = (sa.select(s.breadth.c.advancers, s.breadth.c.decliners)
             .where(s.breadth.c.session < first, ACCEPTED, segment)
             .order_by(s.breadth.c.session.desc()).limit(MEDIAN_SESSIONS))
        totals = [int(a) + int(d) for a, d in conn.execute(q).all()]
        out[synthetic] = BreadthScreen(reversed(totals))
    return out


def write_breadth(
    conn: sa.Connection,
    incoming: Mapping[dt.date, dict[str, Any]],
    *,
    first: dt.date,
    changes: ChangeLog,
) -> tuple[BreadthWrite, list[dict[str, Any]]]:
    """Merge ``incoming`` rows with what is stored from ``first`` on, screening in order.

    Returns the counts and the rows to upsert; verdict changes of rows that
    stay are applied here; revisions go to ``changes`` with both values.
    """
    screens = screens_before(conn, first)
    stored: dict[dt.date, Mapping[str, Any]] = {r["session"]: dict(r) for r in conn.execute(
        sa.select(s.breadth).where(s.breadth.c.session >= first)).mappings()}
    report = BreadthWrite()
    writes: list[dict[str, Any]] = []
    verdicts: list[dict[str, Any]] = []
    for day in sorted(stored.keys() | incoming.keys()):
        old, new = stored.get(day), incoming.get(day)
        chosen: Mapping[str, Any] | None = old
        if new is not None:
            chosen = _merge(old, new, screens, report, changes)
        assert chosen is not None  # noqa: S101 - a session comes from one of the two
        screen = screens[is_synthetic(str(chosen["source"]))]
        reason = screen.screen(int(chosen["advancers"]), int(chosen["decliners"]))
        if reason is not None:
            report.rejected += 1
            report.refused += chosen is new
        if chosen is new:
            writes.append({**new, "rejected": reason})
        elif old is not None and old["rejected"] != reason:
            report.flipped += 1
            verdicts.append({"day": day, "why": reason})
            log.warning("store: breadth %s (%s) is now %s", day, old["source"],
                        f"rejected: {reason}" if reason else "accepted")
    if verdicts:
        conn.execute(
            s.breadth.update().where(s.breadth.c.session == sa.bindparam("day"))
            .values(rejected=sa.bindparam("why")), verdicts)
    return report, writes


def _merge(
    old: Mapping[str, Any] | None,
    new: dict[str, Any],
    screens: Mapping[bool, BreadthScreen],
    report: BreadthWrite,
    changes: ChangeLog,
) -> Mapping[str, Any]:
    """Which row a session keeps when ``new`` arrives (see the module doc)."""
    if old is None:
        report.inserted += 1
        return new
    for c in COMPARED:  # a source without a field has no opinion on it
        if new[c] is None and old[c] is not None:
            new[c] = old[c]
    diffs = [c for c in COMPARED if differs(old[c], new[c], c)]
    if not diffs:
        report.unchanged += 1
        return old
    old_synthetic, new_synthetic = is_synthetic(str(old["source"])), is_synthetic(new["source"])
    if new_synthetic and not old_synthetic:
        report.kept += 1
        return old
    old_ok = screens[old_synthetic].check(int(old["advancers"]), int(old["decliners"])) is None
    new_ok = screens[new_synthetic].check(new["advancers"], new["decliners"]) is None
    if old_ok and not new_ok:
        report.kept += 1
        report.refused += 1
        log.warning("store: breadth %s from %s (%d adv, %d dec) fails the screen; the stored "
                    "row from %s (%d adv, %d dec) is kept", new["session"], new["source"],
                    new["advancers"], new["decliners"], old["source"], old["advancers"],
                    old["decliners"])
        return old
    report.changed += 1
    changes.note((new["session"],), old, new, diffs)
    return new


def rejected_rows(
    conn: sa.Connection, start: dt.date | None, end: dt.date | None
) -> list[RejectedBreadth]:
    q = sa.select(s.breadth).where(s.breadth.c.rejected.is_not(None)).order_by(
        s.breadth.c.session)
    if start:
        q = q.where(s.breadth.c.session >= start)
    if end:
        q = q.where(s.breadth.c.session <= end)
    return [RejectedBreadth(r["session"], int(r["advancers"]), int(r["decliners"]),
                            str(r["source"]), str(r["rejected"]))
            for r in conn.execute(q).mappings()]
