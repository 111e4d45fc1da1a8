"""Which session a command means by ``--date`` (or by leaving it out)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from bot.kernel.errors import ConfigError
from bot.kernel.sessions import ET, SessionCalendar

if TYPE_CHECKING:
    from bot.store import Store


def session_arg(calendar: SessionCalendar, day: dt.date | None) -> dt.date:
    """``--date D`` checked against the calendar; without it, the last closed session.

    A session that has not closed yet is refused: before the close a daily
    bar carries the live price as its "close".
    """
    now = dt.datetime.now(tz=ET)
    if day is None:
        return calendar.last_closed_session(now)
    if not calendar.first <= day <= calendar.last:
        raise ConfigError(
            f"--date {day} is outside the NYSE session calendar ({calendar.first}.."
            f"{calendar.last})")
    if not calendar.is_session(day):
        raise ConfigError(
            f"--date {day} is not an NYSE session (previous session: "
            f"{calendar.previous_session(day)})"
        )
    if calendar.close_time(day) > now:
        raise ConfigError(
            f"--date {day} has not closed yet (close {calendar.close_time(day):%H:%M %Z})"
        )
    return day


def source_session(calendar: SessionCalendar, day: dt.date | None, source: str,
                   store: Store) -> dt.date:
    """:func:`session_arg`, except that without ``--date`` the shipped snapshot means its
    last session (the snapshot ends where it ends; the last closed session is past it)."""
    if day is None and source == "snapshot":
        last, _ = store.latest("SPX")
        if last is None:
            raise ConfigError("the snapshot store is empty")
        return last
    return session_arg(calendar, day)
