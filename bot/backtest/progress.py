"""A progress bar for long replays, drawn only on a terminal.

A dependency for one line of feedback is not worth it. The bar writes to the
stream it is given (stderr from the CLI) and only when that stream is a TTY,
so piped output, CSV redirection, logs and tests never see a control
character.
"""

from __future__ import annotations

import time
from typing import TextIO

WIDTH = 30
MIN_INTERVAL = 0.1
"""Seconds between redraws: a terminal does not need more than ~10 frames a second."""


class Progress:
    """``Progress(stream, total, label)``; ``update(n)`` after each step, ``close()`` at the end."""

    def __init__(self, stream: TextIO | None, total: int, label: str) -> None:
        self.enabled = stream is not None and _isatty(stream) and total > 0
        self.stream = stream
        self.total = total
        self.label = label
        self.done = 0
        self._last = 0.0

    def update(self, n: int = 1) -> None:
        self.done = min(self.total, self.done + n)
        now = time.monotonic()
        due = now - self._last >= MIN_INTERVAL or self.done == self.total
        if self.enabled and self.stream is not None and due:
            self._last = now
            self._draw(self.stream)

    def _draw(self, stream: TextIO) -> None:
        filled = WIDTH * self.done // self.total
        pct = 100 * self.done // self.total
        stream.write(f"\r{self.label} [{'#' * filled}{'.' * (WIDTH - filled)}] "
                     f"{pct:3d}% {self.done}/{self.total}")
        stream.flush()

    def close(self) -> None:
        if self.enabled and self.stream is not None:
            self.stream.write("\r" + " " * (len(self.label) + WIDTH + 30) + "\r")
            self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real file
        return False
