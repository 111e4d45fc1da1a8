"""Logs: one zone, named, in both formats; no line per scheduler tick."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re

from bot.app.logs import setup_logging
from bot.app.service import Service, ServiceConfig
from bot.engine.rules import load_default_rules
from bot.kernel.sessions import ET
from bot.market.extras import fetch_nothing
from bot.pipeline.reload import RulesWatcher
from bot.store import open_store

TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (EST|EDT) (INFO|WARNING|ERROR) ")


class Sink:
    async def publish(self, alerts: object) -> None:
        return None

    def pending(self) -> int:
        return 0


async def test_a_running_scheduler_writes_no_line_per_tick(tmp_path, calendar, capsys):
    setup_logging("INFO", "text")
    store = open_store(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    capsys.readouterr()  # the migrations' lines: not the scheduler's
    cfg = ServiceConfig(
        run_delay=dt.timedelta(minutes=20), deadline=dt.timedelta(hours=4),
        poll_interval=dt.timedelta(minutes=10), catchup_sessions=5, capital=1e6,
        source="live", rules_poll_seconds=0.05, tick_seconds=0.05,
    )
    now = dt.datetime(2026, 2, 27, 10, 0, tzinfo=ET)
    svc = Service(cfg, store=store, calendar=calendar,
                  watcher=RulesWatcher(None, load_default_rules()), fetch=fetch_nothing,
                  sink=Sink(), clock=lambda: now)
    try:
        async with svc.running():
            await asyncio.sleep(1.0)  # about 20 watchdog ticks and 20 rules polls
    finally:
        store.close()
        logging.getLogger().handlers.clear()
    lines = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert not any("Running job" in x or "executed successfully" in x for x in lines), lines
    assert 1 <= len(lines) <= 6, lines  # start-up: the missed session, the next run
    assert all(TEXT_LINE.match(x) for x in lines), lines
    assert any("next evaluation: session 2026-02-27 at 2026-02-27T16:20:00-05:00" in x
               for x in lines)


def test_json_times_are_exchange_local_with_the_offset(capsys):
    setup_logging("INFO", "json")
    try:
        logging.getLogger("bot.test").info("hello")
    finally:
        logging.getLogger().handlers.clear()
    rec = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    ts = dt.datetime.fromisoformat(rec["ts"])
    assert ts.utcoffset() == dt.datetime.now(tz=ET).utcoffset()
    assert abs(ts - dt.datetime.now(tz=ET)) < dt.timedelta(seconds=30)


def test_records_go_to_the_stderr_of_the_moment_not_a_closed_one(monkeypatch):
    """A stream replaced after set-up (a redirect, a test's capture) and closed must not
    swallow the next records with a "Logging error"."""
    import io
    import sys

    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    setup_logging("INFO")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    monkeypatch.setattr(logging, "raiseExceptions", True)
    logging.getLogger("bot.test").info("after the swap")
    (line,) = second.getvalue().splitlines()  # not "--- Logging error ---" and a traceback
    assert TEXT_LINE.match(line) and line.endswith("bot.test: after the swap"), line
