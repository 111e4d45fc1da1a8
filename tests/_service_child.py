"""Child process of the paused-process test: the real service, paused with SIGSTOP.

Usage: python tests/_service_child.py DATA_DIR PORT SESSION SECONDS_AHEAD

It runs the real :class:`bot.app.service.Service` (APScheduler, the watchdog,
the health server) on a copy of the snapshot store. Its clock is the real
clock shifted so that SESSION's fire time (its close, no delay) falls
SECONDS_AHEAD seconds after start-up: the process then lives through that
fire time in real time, and the test can pause it across it. The data
deadline is 3 s, the watchdog ticks every second. The previous session is
evaluated first, so SESSION is a normal scheduled run, not a new install's
first one. Alerts are printed one JSON line each; the run record is in the store.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import sys
import time
from pathlib import Path

from bot.app.health import HealthServer
from bot.app.scheduler import fire_time
from bot.app.service import Service, ServiceConfig
from bot.engine.rules import default_rules_path, load_rules
from bot.kernel.sessions import ET, get_calendar
from bot.market.extras import fetch_nothing
from bot.market.snapshot import STORE_NAME
from bot.pipeline.reload import RulesWatcher
from bot.store import open_store


class PrintSink:
    async def publish(self, alerts: object) -> None:
        for a in alerts:  # type: ignore[attr-defined]
            line = {"session": a.session.isoformat(), "kind": a.kind, "late": a.late}
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()

    def pending(self) -> int:
        return 0


async def main(data_dir: Path, port: int, session: dt.date, ahead: float) -> None:
    calendar = get_calendar()
    store = open_store(f"sqlite:///{data_dir / STORE_NAME}")
    rules = load_rules(default_rules_path())
    cfg = ServiceConfig(
        run_delay=dt.timedelta(0), deadline=dt.timedelta(seconds=3),
        poll_interval=dt.timedelta(seconds=1), catchup_sessions=5, capital=2_000_000,
        source="snapshot", tick_seconds=1.0, late_after=dt.timedelta(seconds=1),
        stalled_after=dt.timedelta(seconds=3), rules_poll_seconds=3600,
    )
    offset = dt.timedelta(0)

    def clock() -> dt.datetime:
        return dt.datetime.now(tz=ET) + offset

    sink = PrintSink()
    svc = Service(cfg, store=store, calendar=calendar, watcher=RulesWatcher(None, rules),
                  fetch=fetch_nothing, sink=sink, clock=clock)
    prev = calendar.previous_session(session)
    await svc.evaluator.evaluate(prev, late=False, sink=sink)
    fire = fire_time(calendar, session, cfg.run_delay)
    offset = fire - dt.datetime.now(tz=ET) - dt.timedelta(seconds=ahead)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with HealthServer("127.0.0.1", port, svc.health, svc.metrics.render):
        async with svc.running():
            real_fire = time.time() + ahead
            sys.stdout.write(json.dumps({"ready": True, "fire_epoch": real_fire}) + "\n")
            sys.stdout.flush()
            await stop.wait()
    store.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), dt.date.fromisoformat(sys.argv[3]),
                     float(sys.argv[4])))
