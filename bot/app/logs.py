"""Logging set-up for the entry point: text for people, JSON lines for collectors.

Every time is exchange-local (America/New_York) with its zone named, in both
formats, so a log line and an alert about the same session read the same
clock: ``2026-02-27 16:20:00.123 EST`` (text), ``2026-02-27T16:20:00.123-05:00``
(JSON). APScheduler's per-execution lines ("Running job ...", "executed
successfully") are kept at WARNING: the rules poll and the watchdog would
write one every 30 s; the service logs what each job did when it did something.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Iterable
from typing import Literal, TextIO
from zoneinfo import ZoneInfo

from bot.kernel.models import ET_NAME
from bot.kernel.redact import RedactingFilter

LOG_ZONE = ZoneInfo(ET_NAME)

QUIET_LOGGERS = ("apscheduler.executors", "apscheduler.scheduler")
"""Libraries whose INFO lines repeat on every scheduler tick."""


def _local(record: logging.LogRecord) -> dt.datetime:
    return dt.datetime.fromtimestamp(record.created, tz=LOG_ZONE)


class TextFormatter(logging.Formatter):
    """``2026-02-27 16:20:00.123 EST INFO logger: message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        t = _local(record)
        return f"{t:%Y-%m-%d %H:%M:%S}.{t.microsecond // 1000:03d} {t:%Z}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": _local(record).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler on whatever ``sys.stderr`` is when a record is written, not the one at
    set-up: a stream replaced since (a test's capture, a redirect) may be closed, and
    writing there loses the record with a "Logging error" on the console."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Set by ``StreamHandler.__init__`` and ``setStream``; the live stream wins."""


def setup_logging(
    level: str = "INFO", fmt: Literal["text", "json"] = "text", secrets: Iterable[str] = ()
) -> None:
    """Root logging. Every secret value is redacted on the handler, whatever logger
    wrote the record (python-telegram-bot logs its API URL, token included)."""
    handler = StderrHandler()
    handler.addFilter(RedactingFilter(secrets))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO, and URLs can carry API keys.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # python-telegram-bot logs every non-JSON answer (nginx's 502 page during a Telegram
    # outage) at ERROR with a traceback; the delivery worker logs each such failure in
    # one line and the channel health says when Telegram is down.
    logging.getLogger("telegram.request").setLevel(logging.CRITICAL)
