"""Shared fixtures: the session calendar, a local HTTP server, a recording sleep, and the
two store lanes (a real SQLite file and a real PostgreSQL server).

The PostgreSQL lane needs a server: ``ALVH_TEST_POSTGRES_URL`` names one (an
SQLAlchemy URL with a role that may create databases; ``.ci/run`` starts one
and sets it). Each test gets a database of its own, dropped afterwards.
Without a server the lane is *skipped loudly* (each skip says why, and the
run ends with a banner counting them); with ``ALVH_REQUIRE_POSTGRES=1``, as
in CI, a missing or unreachable server fails the run instead."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from httpserver import LocalServer, RecordingSleep
from sqlalchemy.engine import make_url

from bot.kernel.sessions import ET, SessionCalendar, get_calendar
from bot.market.sources.base import SourceContext
from bot.market.sources.http import RetryPolicy


@pytest.fixture(scope="session")
def calendar() -> SessionCalendar:
    """Built once: constructing the XNYS calendar costs a few hundred ms."""
    return get_calendar()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A fresh :class:`httpserver.LocalServer` on 127.0.0.1 per test."""
    with LocalServer() as srv:
        yield srv


@pytest.fixture
def sleeps() -> RecordingSleep:
    """An injectable ``sleep`` that records the delays asked for and never waits."""
    return RecordingSleep()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A real httpx client with a short timeout, for talking to ``server``."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(2.0)) as c:
        yield c


@pytest.fixture(scope="session")
def snapshot_db(tmp_path_factory: pytest.TempPathFactory, calendar: SessionCalendar) -> Path:
    """The shipped snapshot loaded into SQLite once per test session (~5 s).

    Tests that write must copy it (see ``snapshot_dir``), never change it.
    """
    from bot.market.snapshot import STORE_NAME, open_snapshot_store

    data_dir = tmp_path_factory.mktemp("snapshot")
    open_snapshot_store(data_dir, calendar).close()
    return data_dir / STORE_NAME


@pytest.fixture(scope="session")
def copy_snapshot(snapshot_db: Path) -> Callable[[Path], Path]:
    """Copies the loaded snapshot store into a data directory; returns the directory."""

    def copy(dest: Path) -> Path:
        for f in snapshot_db.parent.iterdir():
            if f.is_file() and not f.name.endswith(("-wal", "-shm")):
                shutil.copy(f, dest / f.name)
        return dest

    return copy


@pytest.fixture
def snapshot_dir(tmp_path: Path, copy_snapshot: Callable[[Path], Path]) -> Path:
    """A data directory holding a private copy of the loaded snapshot store."""
    return copy_snapshot(tmp_path)


@pytest.fixture
def no_alvh_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ``ALVH_*`` variable from the machine leaks into a test's settings."""
    for key in [k for k in os.environ if k.startswith("ALVH_")]:
        monkeypatch.delenv(key)
    return monkeypatch


TEST_NOW = dt.datetime(2026, 10, 30, 18, 0, tzinfo=ET)
"""The clock sources see in tests unless a test pins another: every recorded session
has closed by then."""
TEST_POLICY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)


def make_ctx(
    client: httpx.AsyncClient,
    calendar: SessionCalendar,
    sleeps: RecordingSleep | None = None,
    *,
    now: dt.datetime = TEST_NOW,
    policy: RetryPolicy = TEST_POLICY,
) -> SourceContext:
    """A source context on a real client, with a recording sleep and a pinned clock."""
    return SourceContext(client, calendar, policy, sleeps or RecordingSleep(), lambda: now)


@pytest.fixture
def ctx(client: httpx.AsyncClient, calendar: SessionCalendar,
        sleeps: RecordingSleep) -> SourceContext:
    """:func:`make_ctx` on the ``client`` fixture, recording into ``sleeps``."""
    return make_ctx(client, calendar, sleeps)


# ------------------------------------------------------------------ store lanes

POSTGRES_URL = os.environ.get("ALVH_TEST_POSTGRES_URL", "")
REQUIRE_POSTGRES = os.environ.get("ALVH_REQUIRE_POSTGRES") == "1"
_lane_skips: list[str] = []


def pytest_report_header(config: pytest.Config) -> str:
    if POSTGRES_URL:
        shown = make_url(POSTGRES_URL).render_as_string(hide_password=True)
        return f"store lanes: sqlite, postgresql ({shown})"
    return "store lanes: sqlite only (ALVH_TEST_POSTGRES_URL not set: postgresql lane SKIPPED)"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "PostgreSQL lane" in str(report.longrepr):
        _lane_skips.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _lane_skips:
        terminalreporter.write_sep(
            "!", f"PostgreSQL lane SKIPPED for {len(_lane_skips)} test(s): "
            "these ran on SQLite only", red=True, bold=True)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL server of the lane (an admin URL), checked once per session."""
    why = ""
    if not POSTGRES_URL:
        why = "ALVH_TEST_POSTGRES_URL is not set (.ci/run starts a server and sets it)"
    else:
        engine = sa.create_engine(POSTGRES_URL)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.OperationalError as exc:
            why = f"cannot reach {make_url(POSTGRES_URL).render_as_string()}: {exc.orig}"
        finally:
            engine.dispose()
    if why:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL lane required (ALVH_REQUIRE_POSTGRES=1) but {why}")
        pytest.skip(f"PostgreSQL lane: {why}")
    return POSTGRES_URL


def _admin_engine(url: str) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


def create_database(admin_url: str, *, template: str | None = None) -> str:
    """A new, empty (or templated) database on the lane's server; returns its URL."""
    name = f"alvh_t_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine(admin_url)
    try:
        with admin.connect() as conn:
            tmpl = f" TEMPLATE {template}" if template else ""
            conn.execute(sa.text(f"CREATE DATABASE {name}{tmpl}"))
    finally:
        admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    admin = _admin_engine(admin_url)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    finally:
        admin.dispose()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh database of this test's own on the lane's server."""
    url = create_database(postgres_server)
    try:
        yield url
    finally:
        drop_database(postgres_server, url)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store URL in each lane: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'alvh.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_lane(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs a test in both store lanes: ``_delivery.store_at(path)`` opens a SQLite file,
    or (PostgreSQL lane) a database of its own per path on the lane's server."""
    import _delivery

    if request.param == "sqlite":
        yield "sqlite"
        return
    server = request.getfixturevalue("postgres_server")
    made: dict[Path, str] = {}

    def database_of(path: Path) -> str:
        if path not in made:
            made[path] = create_database(server)
        return made[path]

    _delivery.LANE = database_of
    try:
        yield "postgresql"
    finally:
        _delivery.LANE = None
        for url in made.values():
            drop_database(server, url)


@pytest.fixture(scope="session")
def postgres_snapshot(postgres_server: str, snapshot_db: Path) -> Iterator[str]:
    """A PostgreSQL database holding the loaded snapshot, copied row for row from the
    SQLite snapshot store once per session; tests copy it (``CREATE DATABASE … TEMPLATE``)."""
    from bot.store import open_store
    from bot.store import schema as s

    url = create_database(postgres_server)
    target = open_store(url)
    source = sa.create_engine(f"sqlite:///{snapshot_db}")
    try:
        with source.connect() as src, target.engine.begin() as dst:
            for table in s.MARKET_TABLES:
                rows = [dict(r) for r in src.execute(sa.select(table)).mappings()]
                for start in range(0, len(rows), 5000):
                    dst.execute(table.insert(), rows[start:start + 5000])
    finally:
        source.dispose()
        target.close()
    try:
        yield str(make_url(url).database)
    finally:
        drop_database(postgres_server, url)


@pytest.fixture
def postgres_snapshot_copy(postgres_server: str, postgres_snapshot: str) -> Iterator[str]:
    """A fresh copy of the snapshot database, this test's own."""
    url = create_database(postgres_server, template=postgres_snapshot)
    try:
        yield url
    finally:
        drop_database(postgres_server, url)
