"""The store on a real SQLite file and a real PostgreSQL database: migrations, idempotent
upserts, logged disagreements."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3

import pytest
import sqlalchemy as sa

from bot.kernel.models import Bar, Breadth, Event, EventKind
from bot.store import open_store
from bot.store.schema import MIGRATIONS

D = dt.date


@pytest.fixture
def store(store_url):
    st = open_store(store_url)
    yield st
    st.close()


@pytest.fixture
def sqlite_store(tmp_path):
    st = open_store(f"sqlite:///{tmp_path / 'data' / 'alvh.sqlite'}")
    yield st
    st.close()


def test_every_migration_applies_once(store):
    assert store.schema_version() == MIGRATIONS[-1][0]
    assert store.migrate() == []  # re-opening applies nothing twice
    names = set(sa.inspect(store.engine).get_table_names())
    assert {"bars", "breadth", "events", "runs", "alerts", "deliveries", "subscribers"} <= names


def test_file_created_in_wal_mode_with_all_migrations(tmp_path, sqlite_store):
    store = sqlite_store
    path = tmp_path / "data" / "alvh.sqlite"
    assert path.exists()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in raw.execute("select name from sqlite_master where type='table'")}
    assert {"bars", "breadth", "events", "schema_version"} <= tables
    assert store.schema_version() == MIGRATIONS[-1][0]
    assert store.migrate() == []  # re-opening applies nothing twice


def test_a_new_store_says_so_in_one_line_an_upgrade_names_each_migration(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="bot.store.db")
    store = open_store(f"sqlite:///{tmp_path / 'new.sqlite'}")
    store.close()
    mine = [r for r in caplog.records if r.name == "bot.store.db"]
    info = [r.getMessage() for r in mine if r.levelno >= logging.INFO]
    assert info == [f"store: created, schema version {MIGRATIONS[-1][0]}"]
    debug = [r.getMessage() for r in mine if r.levelno == logging.DEBUG]
    assert sum("applied migration" in m for m in debug) == len(MIGRATIONS)


def test_bar_upsert_is_idempotent_and_reads_back(store):
    bars = [
        Bar("SPX", D(2024, 1, 2), 4742.83, "yahoo", 4745.2, 4754.33, 4722.67, 3.7e9),
        Bar("SPX", D(2024, 1, 3), 4704.81, "yahoo", 4725.07, 4729.29, 4699.71, 3.95e9),
    ]
    first = store.upsert_bars(bars)
    again = store.upsert_bars(bars)
    assert (first.inserted, first.changed) == (2, 0)
    assert (again.inserted, again.changed, again.unchanged) == (0, 0, 2)
    df = store.bars("SPX")
    assert list(df.index.date) == [D(2024, 1, 2), D(2024, 1, 3)]
    assert df.loc["2024-01-03", "close"] == pytest.approx(4704.81)
    assert df.loc["2024-01-02", "source"] == "yahoo"
    assert store.bars("VIX").empty


def test_tiny_float_noise_is_not_a_disagreement(store):
    store.upsert_bars([Bar("VIX", D(2024, 1, 2), 13.2, "cboe")])
    rep = store.upsert_bars([Bar("VIX", D(2024, 1, 2), 13.2000000001, "fred")])
    assert rep.unchanged == 1
    assert store.bars("VIX")["source"].iloc[0] == "cboe"  # first writer kept


def test_disagreeing_refetch_is_logged_with_both_values(store, caplog):
    store.upsert_bars([Bar("SPX", D(2024, 1, 2), 4742.83, "fred")])
    with caplog.at_level(logging.WARNING, logger="bot.store.db"):
        rep = store.upsert_bars([Bar("SPX", D(2024, 1, 2), 4743.00, "yahoo")])
    assert rep.changed == 1
    text = caplog.text
    assert "4742.83" in text and "4743.0" in text and "fred" in text and "yahoo" in text
    assert store.bars("SPX")["close"].iloc[0] == pytest.approx(4743.0)


def test_synthetic_breadth_never_replaces_real(store):
    real = Breadth(D(2010, 5, 6), 311, 2890, "unicorn", 20)
    synth = Breadth(D(2010, 5, 6), 50, 450, "synthetic")
    store.upsert_breadth([real])
    rep = store.upsert_breadth([synth])
    assert rep.kept == 1
    row = store.breadth().iloc[0]
    assert (row["advancers"], row["source"]) == (311, "unicorn")
    # ...but real data does replace synthetic.
    store.upsert_breadth([Breadth(D(2016, 1, 4), 60, 440, "synthetic")])
    store.upsert_breadth([Breadth(D(2016, 1, 4), 600, 2400, "wsj")])
    assert store.breadth().loc["2016-01-04", "source"] == "wsj"


def test_a_failing_batch_writes_nothing(store):
    good = Bar("SPX", D(2024, 1, 2), 1.0, "x")
    bad = Bar("SPX", D(2024, 1, 3), None, "x")  # type: ignore[arg-type]
    with pytest.raises(sa.exc.IntegrityError):
        store.upsert_bars([good, bad])
    assert store.bars("SPX").empty


def test_events_round_trip_and_status(store):
    store.upsert_events(
        [
            Event(EventKind.FOMC, D(2026, 12, 9), "fed", dt.time(14, 0)),
            Event(EventKind.CPI, D(2026, 12, 10), "fred", dt.time(8, 30)),
            Event(EventKind.FOMC, D(2000, 2, 2), "file", None),
        ]
    )
    fomc = store.events([EventKind.FOMC])
    assert [e.date for e in fomc] == [D(2000, 2, 2), D(2026, 12, 9)]
    assert fomc[0].time_et is None and fomc[1].time_et == dt.time(14, 0)
    assert store.events(start=D(2026, 12, 10))[0].kind is EventKind.CPI
    store.upsert_bars([Bar("SPX", D(2024, 1, 2), 1.0, "a"), Bar("SPX", D(2024, 1, 3), 1.0, "b")])
    status = {s.series: s for s in store.status()}
    assert status["SPX"].rows == 2 and status["SPX"].sources == ("a", "b")
    assert status["FOMC"].first == D(2000, 2, 2) and status["FOMC"].last == D(2026, 12, 9)
    assert status["BREADTH"].rows == 0
    assert store.latest("SPX") == (D(2024, 1, 3), "b")
    assert store.latest("SPX", on_or_before=D(2024, 1, 2)) == (D(2024, 1, 2), "a")
    assert store.latest("BREADTH") == (None, None)


def test_migrations_4_and_5_upgrade_a_store_made_before_them(tmp_path, caplog):
    """A store made by migrations 1-3 keeps its events (all marked scheduled) and its
    breadth, whose partial-day rows migration 5 marks rejected."""
    import sqlalchemy as sa

    from bot.kernel.sessions import get_calendar
    from bot.store import open_store

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = sa.create_engine(url)
    days = get_calendar().sessions_between(D(2025, 1, 2), D(2025, 2, 28))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                             "applied_at VARCHAR(40) NOT NULL, description VARCHAR(200) NOT NULL)"))
        conn.execute(sa.text("CREATE TABLE events (kind VARCHAR(8), date DATE, time_et "
                             "VARCHAR(5), source VARCHAR(64) NOT NULL, fetched_at VARCHAR(40) "
                             "NOT NULL, PRIMARY KEY (kind, date))"))
        conn.execute(sa.text("CREATE TABLE breadth (session DATE PRIMARY KEY, advancers INTEGER "
                             "NOT NULL, decliners INTEGER NOT NULL, unchanged INTEGER, "
                             "adv_volume FLOAT, dec_volume FLOAT, source VARCHAR(64) NOT NULL, "
                             "fetched_at VARCHAR(40) NOT NULL)"))
        conn.execute(sa.text("INSERT INTO events VALUES ('FOMC', '2020-03-15', NULL, 'file', 'x')"))
        conn.execute(
            sa.text("INSERT INTO breadth VALUES (:d, :a, :b, NULL, NULL, NULL, 'wsj', 'x')"),
            [{"d": d.isoformat(), "a": 1500 if d != days[30] else 218,
              "b": 1300 if d != days[30] else 287} for d in days])
        conn.execute(sa.text("INSERT INTO schema_version VALUES (:v, 'x', 'old')"),
                     [{"v": 1}, {"v": 2}, {"v": 3}])
    engine.dispose()
    caplog.set_level(logging.INFO, logger="bot.store.db")
    from bot.store.schema import runs

    # Migrations 2 and 3 were "applied": create what they made, so only 4 and 5 run now.
    store0 = sa.create_engine(url)
    with store0.begin() as conn:
        runs.create(conn)
        from bot.store.schema import OUTBOX_TABLES

        for t in OUTBOX_TABLES:
            t.create(conn)
    store0.dispose()
    store = open_store(url)
    try:
        upgraded = [r.getMessage() for r in caplog.records
                    if r.name == "bot.store.db" and r.levelno == logging.INFO]
        assert upgraded[:2] == ["store: applied migration 4 (events: scheduled flag (point in "
                                "time))", "store: applied migration 5 (breadth: rejected rows "
                                "kept with their reason)"]
        assert not any("created" in m for m in upgraded)
        (event,) = store.events()
        assert event.date.isoformat() == "2020-03-15" and event.scheduled is True
        assert store.schema_version() == MIGRATIONS[-1][0]
        (bad,) = store.breadth_rejected()
        assert (bad.session, bad.advancers, bad.decliners) == (days[30], 218, 287)
        assert "partial-day count: advancers + decliners 505 < 80% of the 21-session median " \
               "2,800" in bad.reason
        accepted = store.breadth()
        assert len(accepted) == len(days) - 1 and days[30] not in accepted.index.date
    finally:
        store.close()


def test_migrations_6_and_7_upgrade_an_older_outbox(tmp_path):
    """Deliveries made before part-by-part delivery count as "no part sent yet", and
    hold no lease (any replica may send them)."""
    import sqlalchemy as sa

    from bot.store import open_store

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    store = open_store(url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO alerts VALUES ('k', '2026-02-27', 'summary', 'd', '', "
                             "'t', 'x', '<b>x</b>', NULL, 0, '2026-02-27T21:20:00.000000+00:00')"))
        conn.execute(sa.text("ALTER TABLE deliveries DROP COLUMN parts_sent"))
        conn.execute(sa.text("ALTER TABLE deliveries DROP COLUMN fallback_at"))
        conn.execute(sa.text("ALTER TABLE deliveries DROP COLUMN lease_until"))
        conn.execute(sa.text("DROP TABLE instances"))
        conn.execute(sa.text("INSERT INTO deliveries (alert_key, channel, recipient, status, "
                             "attempts, failures, next_attempt_at, updated_at, late_delivery, "
                             "boot, resumed) VALUES ('k', 'telegram', '5', 'pending', 0, 0, "
                             "'x', 'x', 0, 'b', 0)"))
        conn.execute(sa.text("DELETE FROM schema_version WHERE version >= 6"))
    store.close()
    store = open_store(url)  # a store as version 5 left it: migrations 6 and 7 run
    try:
        assert store.schema_version() == 7
        with store.engine.connect() as conn:
            row = conn.execute(sa.text(
                "SELECT parts_sent, fallback_at, lease_until FROM deliveries")).one()
            assert conn.execute(sa.text("SELECT count(*) FROM instances")).scalar() == 0
        assert tuple(row) == (0, None, None)
    finally:
        store.close()


def test_unscheduled_events_keep_their_flag(tmp_path):
    import datetime as dt

    from bot.kernel.models import Event, EventKind
    from bot.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 's.sqlite'}")
    try:
        store.upsert_events([Event(EventKind.FOMC, dt.date(2020, 3, 15), "file", None, False),
                             Event(EventKind.FOMC, dt.date(2020, 3, 18), "file")])
        assert [e.scheduled for e in store.events()] == [False, True]
    finally:
        store.close()


def test_two_instances_starting_together_migrate_an_empty_database_once(postgres_url):
    """Two processes open one empty PostgreSQL database at the same moment: the advisory
    lock makes one migrate and the other find nothing left to do."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from bot.store import db\n"
        "engine = db.sa.create_engine(sys.argv[1])\n"
        "store = db.Store(engine)\n"
        "print(','.join(str(v) for v in store.migrate()))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, postgres_url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    applied = sorted(out.strip() for out, _ in outs)
    every = ",".join(str(m[0]) for m in MIGRATIONS)
    assert applied == ["", every]  # one migrated everything, the other nothing
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version FROM schema_version")).scalars().all()
    finally:
        engine.dispose()
    assert sorted(versions) == [m[0] for m in MIGRATIONS]
