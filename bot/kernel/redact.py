"""Keeping secrets out of logs, error texts and messages.

Every layer can come across a secret in a text it did not write (a library's
exception carrying a URL with a token, an SMTP reply echoing a login): the
helpers here are in the kernel so that any wing can scrub such text, and the
entry point can install one filter on every log handler.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable


def redact(text: str, *secrets: str | None) -> str:
    """Remove secrets from text that may end up in a log, the database or a message."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that removes secrets from every record it sees.

    Install it on the *handlers* (``handler.addFilter``) so it covers every
    logger: python-telegram-bot logs its API URL, token included, at DEBUG
    ("Set Bot API URL: …/bot<token>"), and httpx logs request URLs at INFO.
    """

    def __init__(self, secrets: Iterable[str | None]) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, *self._secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info))
            cleaned_tb = redact(text, *self._secrets)
            if cleaned_tb != text:
                # Formatters would render exc_info again, secret included: inline it instead.
                record.msg, record.args = f"{record.getMessage()}\n{cleaned_tb.rstrip()}", None
                record.exc_info = None
                record.exc_text = None
        return True
