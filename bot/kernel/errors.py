"""One small error hierarchy.

The split that matters to a scheduled bot is *temporary* (try again later: a
timeout, a 5xx, a 429) versus *permanent* (the answer is wrong and retrying
will not fix it: an HTML page instead of CSV, a bad rules file). Every error
says where it came from so a single log line is actionable.
"""

from __future__ import annotations


class AlvhError(Exception):
    """Base of every error the bot raises on purpose."""


class TemporaryError(AlvhError):
    """Worth retrying later: the same request may well succeed."""


class PermanentError(AlvhError):
    """Retrying will not help; report it and stop using the result."""


class ConfigError(PermanentError):
    """A setting or argument is missing or invalid."""


class OutsideCalendar(PermanentError, ValueError):
    """A date outside the session calendar's range (a ValueError, as it always was)."""


class SourceError(AlvhError):
    """A data source failed. ``source`` names it, ``reason`` says what was wrong."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class SourceUnavailable(SourceError, TemporaryError):
    """Network trouble, 5xx, 429, timeouts: the source may answer later."""


class SourceDataError(SourceError, PermanentError):
    """The source answered, but not with usable data (HTML, truncated, stale, ...)."""


class DataIncomplete(PermanentError):
    """The store lacks what an evaluation needs; never signal on it."""


class RulesError(PermanentError):
    """The rules file is invalid; the message names file, line and key."""
