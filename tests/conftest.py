"""Shared fixtures: the session calendar, a local HTTP server, a recording sleep."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from httpserver import LocalServer, RecordingSleep

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
