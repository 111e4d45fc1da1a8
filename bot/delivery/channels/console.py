"""The console channel: alerts as plain text on a stream.

It is what a fresh clone with no Telegram token uses, so ``alvh run-once``
shows its alerts instead of dropping them, and it goes through the same
outbox and worker as the real channels (so a dry run exercises them too).
A terminal cannot show a picture, so a summary's chart is written as a PNG
file (``<data dir>/charts/<session>-<topic>-<kind>.png``) and the alert says
where.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import ClassVar, TextIO

from bot.delivery.channels.base import BaseChannel, DeliveryUnavailable, late_banner
from bot.kernel.alerts import Alert


class ConsoleChannel(BaseChannel):
    name: ClassVar[str] = "console"

    def __init__(self, stream: TextIO | None = None, chart_dir: Path | None = None) -> None:
        self._stream = stream
        self._chart_dir = chart_dir

    async def send(self, recipient: str, alert: Alert) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        lines = [f"=== [{alert.topic.value}] {alert.title} — session {alert.session} ==="]
        if alert.late:
            lines.append(late_banner(alert))
        lines.append(alert.text.rstrip())
        if alert.chart_png:
            lines.append(await asyncio.to_thread(self._save_chart, alert, alert.chart_png))
        try:
            stream.write("\n".join(lines) + "\n\n")
            stream.flush()
        except (OSError, ValueError) as exc:  # closed pipe or stream
            raise DeliveryUnavailable(f"console: {exc}") from None

    def _save_chart(self, alert: Alert, png: bytes) -> str:
        """Write the chart; the line that says where (or why it could not be)."""
        size = f"PNG, {len(png):,} bytes"
        if self._chart_dir is None:
            return f"[chart: {size}, not saved: no chart directory]"
        name = "-".join(p for p in (alert.session.isoformat(), alert.topic.value, alert.kind,
                                    alert.layer) if p)
        path = self._chart_dir / f"{name}.png"
        try:
            self._chart_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".png.tmp")
            tmp.write_bytes(png)
            tmp.replace(path)
        except OSError as exc:
            return f"[chart: {size}, not saved: {path}: {exc.strerror or exc}]"
        return f"[chart: {path} ({size})]"
