"""Logging set-up for the entry point: text for people, JSON lines for collectors."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Iterable
from typing import Literal

from bot.kernel.redact import RedactingFilter


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(
    level: str = "INFO", fmt: Literal["text", "json"] = "text", secrets: Iterable[str] = ()
) -> None:
    """Root logging. Every secret value is redacted on the handler, whatever logger
    wrote the record (python-telegram-bot logs its API URL, token included)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter(secrets))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO, and URLs can carry API keys.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # python-telegram-bot logs every non-JSON answer (nginx's 502 page during a Telegram
    # outage) at ERROR with a traceback; the delivery worker logs each such failure in
    # one line and the channel health says when Telegram is down.
    logging.getLogger("telegram.request").setLevel(logging.CRITICAL)
