"""The console channel: alerts as plain text on a stream.

It is what a fresh clone with no Telegram token uses, so ``alvh run-once``
shows its alerts instead of dropping them, and it goes through the same
outbox and worker as the real channels (so a dry run exercises them too).
"""

from __future__ import annotations

import sys
from typing import ClassVar, TextIO

from bot.delivery.channels.base import BaseChannel, DeliveryUnavailable, late_banner
from bot.kernel.alerts import Alert


class ConsoleChannel(BaseChannel):
    name: ClassVar[str] = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send(self, recipient: str, alert: Alert) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        lines = [f"=== [{alert.topic.value}] {alert.title} — session {alert.session} ==="]
        if alert.late:
            lines.append(late_banner(alert))
        lines.append(alert.text.rstrip())
        if alert.chart_png:
            lines.append(f"[chart: PNG, {len(alert.chart_png):,} bytes]")
        try:
            stream.write("\n".join(lines) + "\n\n")
            stream.flush()
        except (OSError, ValueError) as exc:  # closed pipe or stream
            raise DeliveryUnavailable(f"console: {exc}") from None
