"""The store: idempotent upserts and the reads the pipeline needs.

Every write is one transaction, so a batch is stored whole or not at all.
Re-fetching the same data is a no-op; a re-fetch that *disagrees* with what
is stored is logged with both values (then the newer value wins, because a
provider correcting a print is the common case) — except that synthetic
breadth never replaces real NYSE breadth, and a breadth row that fails the
screen never replaces one that passes it (:mod:`bot.store.breadth`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bot.kernel.models import Bar, Breadth, Event, EventKind
from bot.store import breadth as breadth_rows
from bot.store import schema as s
from bot.store.breadth import RejectedBreadth
from bot.store.compare import ChangeLog, differs
from bot.store.runs import Runs

log = logging.getLogger(__name__)

MIGRATION_LOCK_KEY = 0x616C7668_0001
"""PostgreSQL advisory-lock key held while migrating ("alvh" + 1)."""


def _now() -> str:
    return dt.datetime.now(tz=dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class WriteReport:
    """What an upsert did: inserted, changed (with both values logged), unchanged, kept."""

    inserted: int = 0
    changed: int = 0
    unchanged: int = 0
    kept: int = 0
    """Rows not written because a better source already holds that session."""
    rejected: int = 0
    """Breadth rows stored as rejected by the screen (never returned as breadth)."""
    refused: int = 0
    """Incoming breadth rows that failed the screen (see ``BreadthWrite.refused``)."""


@dataclass(frozen=True, slots=True)
class SeriesStatus:
    series: str
    first: dt.date | None
    last: dt.date | None
    rows: int
    sources: tuple[str, ...]
    """For breadth: accepted rows only (rejected ones: :meth:`Store.breadth_rejected`)."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def open_store(url: str) -> Store:
    """Open (creating and migrating as needed) the store at an SQLAlchemy URL.

    A plain ``postgresql://`` URL means psycopg 3 (the ``alvh[postgres]`` extra),
    not SQLAlchemy's default psycopg2, which the bot does not install.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = sa.create_engine(parsed, future=True)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    store = Store(engine)
    store.migrate()
    return store


class Store:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.runs = Runs(engine)
        """The evaluated sessions (see :mod:`bot.store.runs`)."""

    def close(self) -> None:
        self.engine.dispose()

    # ---------------------------------------------------------------- schema
    def schema_version(self) -> int:
        insp = sa.inspect(self.engine)
        if not insp.has_table("schema_version"):
            return 0
        with self.engine.connect() as conn:
            v = conn.execute(sa.select(sa.func.max(s.schema_version.c.version))).scalar()
        return int(v or 0)

    def migrate(self) -> list[int]:
        """Apply pending migrations, each atomically; return the versions applied.

        Under a database lock (PostgreSQL: an advisory lock), so two instances
        starting together on one empty database migrate it once: the second
        waits, then finds nothing left to do. SQLite is one file on one host,
        kept to one bot by the data-directory lock.
        """
        with self._migration_lock():
            return self._migrate()

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self.engine.dialect.name != "postgresql":
            yield
            return
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"),
                             {"key": MIGRATION_LOCK_KEY})
                conn.commit()

    def _migrate(self) -> list[int]:
        with self.engine.begin() as conn:
            s.schema_version.create(conn, checkfirst=True)
        current = self.schema_version()
        applied = []
        for version, description, step in s.MIGRATIONS:
            if version <= current:
                continue
            with self.engine.begin() as conn:
                step(conn)
                conn.execute(
                    s.schema_version.insert().values(
                        version=version, applied_at=_now(), description=description
                    )
                )
            # An upgrade is news (INFO); building a new store step by step is not: its
            # seven lines would bury a one-shot command's answer, so one line says it.
            log.log(logging.DEBUG if current == 0 else logging.INFO,
                    "store: applied migration %d (%s)", version, description)
            applied.append(version)
        if current == 0 and applied:
            log.info("store: created, schema version %d", applied[-1])
        if 5 in applied:
            self.rescreen_breadth()
        return applied

    # ---------------------------------------------------------------- writes
    def market_fingerprint(self) -> str:
        """A digest that changes whenever any market row does (bars, breadth, events).

        Row counts, the newest ``fetched_at`` and sums over every value column,
        per table: a write through the store changes ``fetched_at``, a breadth
        verdict or a row changed by hand changes a sum, a deletion a count.
        It is what a cache of results derived from the market data (the
        rebuilt layer state) checks before it is trusted.
        """
        parts: list[str] = []
        with self.engine.connect() as conn:
            for table in s.MARKET_TABLES:
                cols = [sa.func.count(), sa.func.max(table.c.fetched_at)]
                for c in table.c:
                    if isinstance(c.type, (sa.Float, sa.Integer, sa.Boolean)):
                        cols.append(sa.func.sum(sa.cast(c, sa.Float)))
                    elif c.name in ("rejected", "time_et"):
                        cols.append(sa.func.count(c))
                row = conn.execute(sa.select(*cols)).one()
                parts.append(f"{table.name}:" + ",".join(repr(v) for v in row))
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]

    def clear_market_data(self) -> None:
        """Delete every bar, breadth row and event (runs and the outbox stay).

        For a store that is a copy of shipped files (the snapshot's), before
        loading a new version of them.
        """
        with self.engine.begin() as conn:
            for table in s.MARKET_TABLES:
                conn.execute(table.delete())

    def _upsert(
        self,
        table: sa.Table,
        keys: Sequence[str],
        rows: list[dict[str, Any]],
        compare: Sequence[str],
        label: str,
    ) -> WriteReport:
        if not rows:
            return WriteReport()
        inserted = changed = unchanged = 0
        with self.engine.begin() as conn:
            existing: dict[tuple[Any, ...], Any] = {}
            # Fetch what is stored for the same keys, in chunks the backend accepts.
            date_col = "session" if "session" in table.c else "date"
            dates = sorted({r[date_col] for r in rows})
            q = sa.select(table).where(table.c[date_col].between(dates[0], dates[-1]))
            if "symbol" in keys:
                q = q.where(table.c.symbol.in_({r["symbol"] for r in rows}))
            if "kind" in keys:
                q = q.where(table.c.kind.in_({r["kind"] for r in rows}))
            for row in conn.execute(q).mappings():
                existing[tuple(row[k] for k in keys)] = row
            to_write: list[dict[str, Any]] = []
            changes = ChangeLog(label)
            for r in rows:
                key = tuple(r[k] for k in keys)
                old = existing.get(key)
                if old is None:
                    inserted += 1
                    to_write.append(r)
                    continue
                # A source that lacks a field (FRED has closes only) has no
                # opinion on it: keep the stored value instead of erasing it.
                for c in compare:
                    if r[c] is None and old[c] is not None:
                        r[c] = old[c]
                diffs = [c for c in compare if differs(old[c], r[c], c)]
                if not diffs:
                    unchanged += 1
                    continue
                changed += 1
                changes.note(key, old, r, diffs)
                to_write.append(r)
            changes.close()
            if to_write:
                self._write(conn, table, keys, to_write)
        return WriteReport(inserted, changed, unchanged)

    def _write(
        self, conn: sa.Connection, table: sa.Table, keys: Sequence[str], rows: list[dict[str, Any]]
    ) -> None:
        dialect = conn.dialect.name
        update_cols = [c.name for c in table.c if c.name not in keys]
        if dialect in ("sqlite", "postgresql"):
            from sqlalchemy.dialects import postgresql, sqlite

            insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
            stmt = insert(table)
            stmt = stmt.on_conflict_do_update(
                index_elements=list(keys),
                set_={c: stmt.excluded[c] for c in update_cols},
            )
            conn.execute(stmt, rows)  # executemany: one compiled statement
            return
        for r in rows:  # portable path for other backends
            cond = sa.and_(*(table.c[k] == r[k] for k in keys))
            res = conn.execute(table.update().where(cond).values(**r))
            if res.rowcount == 0:
                conn.execute(table.insert().values(**r))

    def upsert_bars(self, bars: Iterable[Bar]) -> WriteReport:
        now = _now()
        rows = [
            {
                "symbol": b.symbol, "session": b.session, "open": b.open, "high": b.high,
                "low": b.low, "close": b.close, "volume": b.volume, "source": b.source,
                "fetched_at": now,
            }
            for b in bars
        ]
        return self._upsert(
            s.bars, ("symbol", "session"), rows, ("open", "high", "low", "close", "volume"), "bar"
        )

    def upsert_breadth(self, rows_in: Iterable[Breadth]) -> WriteReport:
        """Store breadth rows through the screen (:mod:`bot.store.breadth`).

        Rows from the earliest one written on are screened again in session
        order, so an import of older history re-judges the later rows.
        A later duplicate of a session in ``rows_in`` wins.
        """
        now = _now()
        incoming = {b.session: breadth_rows.as_row(b, now) for b in rows_in}
        if not incoming:
            return WriteReport()
        return self._screen_breadth(incoming, min(incoming))

    def rescreen_breadth(self) -> WriteReport:
        """Screen every stored breadth row again (after a migration or a rule change)."""
        with self.engine.connect() as conn:
            first = conn.execute(sa.select(sa.func.min(s.breadth.c.session))).scalar()
        return WriteReport() if first is None else self._screen_breadth({}, first)

    def _screen_breadth(self, incoming: dict[dt.date, dict[str, Any]],
                        first: dt.date) -> WriteReport:
        changes = ChangeLog("breadth")
        with self.engine.begin() as conn:
            report, writes = breadth_rows.write_breadth(conn, incoming, first=first,
                                                        changes=changes)
            if writes:
                self._write(conn, s.breadth, ("session",), writes)
        changes.close()
        return WriteReport(report.inserted, report.changed, report.unchanged, report.kept,
                           report.rejected, report.refused)

    def upsert_events(self, evs: Iterable[Event]) -> WriteReport:
        now = _now()
        rows = [
            {
                "kind": e.kind.value, "date": e.date,
                "time_et": e.time_et.strftime("%H:%M") if e.time_et else None,
                "source": e.source, "fetched_at": now, "scheduled": e.scheduled,
            }
            for e in evs
        ]
        return self._upsert(s.events, ("kind", "date"), rows, ("time_et", "scheduled"), "event")

    # ----------------------------------------------------------------- reads
    def bars(
        self, symbol: str, start: dt.date | None = None, end: dt.date | None = None
    ) -> pd.DataFrame:
        """Bars indexed by session (DatetimeIndex), oldest first."""
        q = sa.select(s.bars).where(s.bars.c.symbol == symbol).order_by(s.bars.c.session)
        if start:
            q = q.where(s.bars.c.session >= start)
        if end:
            q = q.where(s.bars.c.session <= end)
        return self._frame(q, "session", ["open", "high", "low", "close", "volume", "source"])

    def breadth(self, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
        """Accepted breadth rows indexed by session: a rejected row is never returned,
        so its session is missing here exactly like one no source had."""
        q = sa.select(s.breadth).where(breadth_rows.ACCEPTED).order_by(s.breadth.c.session)
        if start:
            q = q.where(s.breadth.c.session >= start)
        if end:
            q = q.where(s.breadth.c.session <= end)
        cols = ["advancers", "decliners", "unchanged", "adv_volume", "dec_volume", "source"]
        return self._frame(q, "session", cols)

    def breadth_rejected(
        self, start: dt.date | None = None, end: dt.date | None = None
    ) -> list[RejectedBreadth]:
        """Stored breadth rows that failed the screen, oldest first, with the reason."""
        with self.engine.connect() as conn:
            return breadth_rows.rejected_rows(conn, start, end)

    def events(
        self,
        kinds: Iterable[EventKind] | None = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
    ) -> list[Event]:
        q = sa.select(s.events).order_by(s.events.c.date, s.events.c.kind)
        if kinds is not None:
            q = q.where(s.events.c.kind.in_([k.value for k in kinds]))
        if start:
            q = q.where(s.events.c.date >= start)
        if end:
            q = q.where(s.events.c.date <= end)
        with self.engine.connect() as conn:
            out = []
            for r in conn.execute(q).mappings():
                t = dt.time.fromisoformat(r["time_et"]) if r["time_et"] else None
                out.append(Event(EventKind(r["kind"]), r["date"], r["source"], t,
                                 bool(r["scheduled"])))
            return out

    def _frame(self, q: sa.Select[Any], index: str, cols: list[str]) -> pd.DataFrame:
        names = [index, *cols]
        q = q.with_only_columns(*(q.selected_columns[n] for n in names))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        # Column lists from the rows: a dict (or SQLAlchemy Row) per row costs more.
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
        df = pd.DataFrame(dict(zip(names, map(list, columns), strict=True)), columns=names)
        df.index = pd.DatetimeIndex(pd.to_datetime(df.pop(index)), name="session")
        for c in cols:
            if c != "source":
                df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
        return df

    def status(self) -> list[SeriesStatus]:
        """Per series: first and last session, row count, sources used.

        Bars and events are listed per symbol / kind; breadth is one series.
        """
        out = []
        with self.engine.connect() as conn:
            for table, key in ((s.bars, s.bars.c.symbol), (s.breadth, None),
                               (s.events, s.events.c.kind)):
                day = table.c.date if "date" in table.c else table.c.session
                where = [breadth_rows.ACCEPTED] if table is s.breadth else []
                q = sa.select(*([key] if key is not None else []),
                              sa.func.min(day), sa.func.max(day), sa.func.count()).where(*where)
                if key is not None:
                    q = q.group_by(key).order_by(key)
                for row in conn.execute(q).all():
                    name = str(row[0]) if key is not None else "BREADTH"
                    first, last, n = row[-3:]
                    sources = sa.select(table.c.source).distinct().where(*where)
                    if key is not None:
                        sources = sources.where(key == name)
                    found = tuple(sorted(conn.execute(sources).scalars()))
                    out.append(SeriesStatus(name, first, last, n, found))
        return out

    def _series(self, series: str) -> tuple[sa.Table, list[sa.ColumnElement[bool]]]:
        """The table behind a series name (``BREADTH`` or a bar symbol) and its filter."""
        if series == "BREADTH":
            return s.breadth, [breadth_rows.ACCEPTED]
        return s.bars, [s.bars.c.symbol == series]

    def first(self, series: str) -> dt.date | None:
        """The oldest session a series has (``BREADTH`` or a bar symbol); None when empty."""
        table, where = self._series(series)
        q = sa.select(sa.func.min(table.c.session)).where(*where)
        with self.engine.connect() as conn:
            value = conn.execute(q).scalar()
        if value is None or isinstance(value, dt.date):
            return value
        return dt.date.fromisoformat(str(value))

    def latest(
        self, series: str, on_or_before: dt.date | None = None
    ) -> tuple[dt.date | None, str | None]:
        """The newest session a series has (``BREADTH`` or a bar symbol) and its source."""
        table, where = self._series(series)
        q = (sa.select(table.c.session, table.c.source).where(*where)
             .order_by(table.c.session.desc()).limit(1))
        if on_or_before is not None:
            q = q.where(table.c.session <= on_or_before)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return (row[0], row[1]) if row else (None, None)

    @overload
    def sessions_present(self, series: str) -> list[dt.date]: ...

    @overload
    def sessions_present(
        self, series: str, *, with_source: Literal[True]
    ) -> list[tuple[dt.date, str]]: ...

    def sessions_present(
        self, series: str, *, with_source: bool = False
    ) -> list[dt.date] | list[tuple[dt.date, str]]:
        """The sessions a series has rows for (``BREADTH`` or a bar symbol), oldest first."""
        table, where = self._series(series)
        q = sa.select(table.c.session, table.c.source).where(*where).order_by(table.c.session)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        if with_source:
            return [(r[0], r[1]) for r in rows]
        return [r[0] for r in rows]
