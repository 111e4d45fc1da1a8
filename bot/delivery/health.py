"""Is each channel's service reachable? One answer, fed by everyone who talks to it.

The delivery worker reports every send; the Telegram channel reports every Bot
API request, long polling included, so Telegram is seen down (or back) even
when no alert is being sent. ``/healthz`` shows the result, and the worker
uses it to stop hammering a service that is down: it then sends one delivery
at a time (a probe) until one succeeds, and resumes the whole queue the moment
the channel is back, whoever noticed first.

A channel with no answer yet is *unknown*; its first failure marks it down
(there is no evidence it works). After a success it takes
:attr:`ChannelHealth.DOWN_AFTER` failures in a row: one 502 in a stream of
successes is not an outage.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from bot.store.timestamps import Clock, utcnow

log = logging.getLogger(__name__)

Listener = Callable[[str, bool], None]
"""``(channel, up)``: called when a channel goes down or comes back (not on its
first success)."""


@dataclass
class ChannelState:
    up: bool | None = None
    """None until the first answer."""
    since: dt.datetime | None = None
    """When the current state began."""
    failures: int = 0
    """Failures in a row."""
    error: str | None = None
    """The last failure, as logs may show it (no secrets: channels redact)."""

    def as_json(self) -> dict[str, Any]:
        status = "unknown" if self.up is None else ("up" if self.up else "down")
        return {
            "status": status,
            "since": self.since.isoformat() if self.since else None,
            "consecutive_failures": self.failures,
            "last_error": self.error,
        }


class ChannelHealth:
    DOWN_AFTER: ClassVar[int] = 3

    def __init__(self, *, clock: Clock = utcnow) -> None:
        self._clock = clock
        self._states: dict[str, ChannelState] = {}
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` on every change; returns the function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def succeeded(self, channel: str) -> None:
        state = self._states.setdefault(channel, ChannelState())
        state.failures = 0
        if state.up is not True:
            was_down = state.up is False
            state.up, state.since = True, self._clock()
            if was_down:
                log.info("%s: reachable again", channel)
                self._tell(channel, True)

    def failed(self, channel: str, error: str) -> None:
        state = self._states.setdefault(channel, ChannelState())
        state.failures += 1
        state.error = error
        if state.up is not False and (state.up is None or state.failures >= self.DOWN_AFTER):
            state.up, state.since = False, self._clock()
            log.warning("%s: unreachable (%s); deliveries wait and are retried", channel, error)
            self._tell(channel, False)

    def is_down(self, channel: str) -> bool:
        state = self._states.get(channel)
        return state is not None and state.up is False

    def state(self, channel: str) -> ChannelState:
        return self._states.get(channel, ChannelState())

    def as_json(self, channels: list[str]) -> dict[str, Any]:
        return {name: self.state(name).as_json() for name in channels}

    def _tell(self, channel: str, up: bool) -> None:
        for listener in list(self._listeners):
            listener(channel, up)
