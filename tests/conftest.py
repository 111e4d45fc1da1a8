"""Shared fixtures: the session calendar, a local HTTP server, a recording sleep."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from httpserver import LocalServer, RecordingSleep

from bot.sessions import SessionCalendar, get_calendar


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
