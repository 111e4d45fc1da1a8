"""UTC timestamps as fixed-width ISO strings, for the outbox and the instances tables.

Fixed width (always microseconds, always ``+00:00``) is what makes a plain
string comparison in SQL a time comparison, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(tz=dt.UTC)


def stamp(when: dt.datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("naive datetime: pass an aware one")
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds")


def parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)
