"""The console channel: what a fresh clone with no tokens delivers to."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from _delivery import make_alert, store_at

from bot.delivery.channels import DeliveryUnavailable
from bot.delivery.channels.console import ConsoleChannel
from bot.delivery.dispatch import DeliveryWorker
from bot.delivery.outbox import Outbox, Standing
from bot.kernel.alerts import Topic


async def test_console_writes_plain_text() -> None:
    out = io.StringIO()
    await ConsoleChannel(out).send("console", make_alert(chart=b"12345", late=True))
    text = out.getvalue()
    assert text.startswith("=== [hedge] Layer 1 added — session 2026-03-02 ===\n")
    assert "⏱ delivered late — for the session of 2026-03-02" in text
    assert "Layer 1 added: buy 2 VX futures (plain)" in text
    assert "<b>" not in text
    assert "[chart: PNG, 5 bytes, not saved: no chart directory]" in text


async def test_the_chart_is_written_and_the_alert_says_where(tmp_path: Path) -> None:
    out = io.StringIO()
    png = b"\x89PNG\r\n\x1a\n" + bytes(100)
    await ConsoleChannel(out, chart_dir=tmp_path / "charts").send(
        "console", make_alert(chart=png))
    path = tmp_path / "charts" / "2026-03-02-hedge-layer_added-L1.png"
    assert path.read_bytes() == png
    assert f"[chart: {path} (PNG, 108 bytes)]" in out.getvalue()
    (tmp_path / "blocked").write_text("a file where the directory should be")
    await ConsoleChannel(out, chart_dir=tmp_path / "blocked").send(
        "console", make_alert(chart=png))
    assert f"not saved: {tmp_path / 'blocked'}" in out.getvalue()


async def test_a_closed_stream_is_a_temporary_failure() -> None:
    out = io.StringIO()
    out.close()
    with pytest.raises(DeliveryUnavailable):
        await ConsoleChannel(out).send("console", make_alert())


async def test_with_no_tokens_every_alert_goes_to_the_console_once(tmp_path: Path) -> None:
    store = store_at(tmp_path / "a.sqlite")
    out = io.StringIO()
    outbox = Outbox(store.engine, channels=("console",),
                    standing=[Standing("console", "console", frozenset(Topic))])
    alerts = [make_alert(), make_alert(Topic.OPS, "data_incomplete", "", title="Data late")]
    outbox.enqueue(alerts)
    outbox.enqueue(alerts)  # a re-run of the same session
    async with asyncio.timeout(10):
        await DeliveryWorker(outbox, [ConsoleChannel(out)], poll_interval=0.05).drain()
    store.close()
    text = out.getvalue()
    assert text.count("=== [hedge] Layer 1 added") == 1
    assert text.count("=== [ops] Data late") == 1
