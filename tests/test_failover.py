"""Two ``alvh run`` processes on one PostgreSQL database (issue 14), tried from outside.

The leader waits for a session's data; the data arrives; the leader is SIGKILLed
before it gets to evaluate. The standby takes over within the election interval,
picks up the rules edited meanwhile, catches up the session and fans it out to 200
chats of the strict fake Bot API; it is SIGKILLed in the middle of that fan-out and
the first instance, restarted, finishes it. Every chat gets every part; nothing is
sent twice beyond the parts that were in flight at a kill.

The market data are the shipped snapshot plus **derived** recent sessions (real
figures of an earlier stretch moved onto the sessions since, as in
``test_backfill.py``), because the processes run on today's clock.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from _delivery import TOKEN
from fake_telegram import FakeTelegram
from test_backfill import SNAP_SPX_END, Derived

from bot.engine.rules import default_rules_path, load_rules
from bot.kernel.models import Bar, Breadth, Symbol
from bot.kernel.sessions import ET, SessionCalendar
from bot.store import open_store
from bot.store import schema as s

ADMIN = 4242
CHATS = range(9000, 9200)
TAKEOVER_WITHIN = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _derived_rows(derived: Derived, days: list[dt.date]) -> tuple[list[Bar], list[Breadth]]:
    spx, breadth = derived.spx(), derived.breadth()
    cboe = {name: derived.cboe(name) for name in ("VIX", "VIX3M", "VIX6M")}
    bars = [Bar(Symbol.SPX, d, spx[d][3], "derived-test", *spx[d][:3]) for d in days]
    for name, series in cboe.items():
        bars += [Bar(Symbol(name), d, series[d][3], "derived-test", *series[d][:3])
                 for d in days]
    rows = [Breadth(d, breadth[d][0], breadth[d][1], "derived-test") for d in days
            if d in breadth]
    return bars, rows


def _env(url: str, fake: FakeTelegram, data_dir: Path, port: int, rules: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALVH_")}
    dead = "http://127.0.0.1:9"  # nothing listens: the live sources fail at once
    env |= {
        "ALVH_DATABASE_URL": url, "ALVH_SOURCE": "live", "ALVH_DATA_DIR": str(data_dir),
        "ALVH_HTTP_PORT": str(port), "ALVH_RULES_FILE": str(rules),
        "ALVH_TELEGRAM_TOKEN": TOKEN, "ALVH_TELEGRAM_BASE_URL": fake.base_url,
        "ALVH_ADMIN_CHAT_IDS": str(ADMIN), "ALVH_TRADINGVIEW_URL": "ws://127.0.0.1:9",
        "ALVH_VX_SETTLEMENT_URL": f"{dead}/settlement.csv",
        "ALVH_CBOE_CHAIN_URL": f"{dead}/_SPX.json",
    }
    for key in ("YAHOO", "FRED_GRAPH", "FRED_API", "CBOE", "STOOQ", "WSJ", "MCCLELLAN", "FED"):
        env[f"ALVH_{key}_URL"] = dead
    return env


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    exe = str(Path(sys.executable).parent / "alvh")
    with log.open("ab") as out:
        return subprocess.Popen([exe, "run"], env=env, stdout=out, stderr=out)


def _health(port: int) -> dict[str, Any]:
    try:
        body: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
        return body
    except (httpx.HTTPError, ValueError):
        return {}


def _wait(predicate: Callable[[], bool], within: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > within:
            raise AssertionError(f"not within {within:g} s: {what}")
        time.sleep(0.2)
    return time.monotonic() - start


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


def _sending(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(s.deliveries)
                                    .where(s.deliveries.c.status == "sending")).scalar() or 0)
    finally:
        engine.dispose()


def test_the_standby_takes_over_catches_up_and_loses_no_alert(
        postgres_snapshot_copy: str, tmp_path: Path, calendar: SessionCalendar) -> None:
    url = postgres_snapshot_copy
    last = calendar.last_closed_session(dt.datetime.now(tz=ET) - dt.timedelta(minutes=20))
    target = calendar.sessions_between(calendar.next_session(SNAP_SPX_END), last)
    derived = Derived(calendar, target)
    store = open_store(url)
    bars, breadth = _derived_rows(derived, target[:-1])  # the last session's data is late
    store.upsert_bars(bars)
    store.upsert_breadth(breadth)
    from bot.delivery.outbox import Subscribers
    from bot.kernel.alerts import Topic

    subs = Subscribers(store.engine)
    for chat in CHATS:
        subs.subscribe("telegram", str(chat), [Topic.CONDOR, Topic.SUMMARY])
    rules = tmp_path / "alvh.yaml"
    shutil.copy(default_rules_path(), rules)
    procs: list[subprocess.Popen[bytes]] = []
    ports = {"a": _free_port(), "b": _free_port()}
    logs = {k: tmp_path / f"{k}.log" for k in ports}
    with FakeTelegram(token=TOKEN) as fake:
        envs = {k: _env(url, fake, tmp_path / k, ports[k], rules) for k in ports}
        try:
            a = _start(envs["a"], logs["a"])
            procs.append(a)
            _wait(lambda: _health(ports["a"]).get("role") == "leader", 60, "a leads")
            b = _start(envs["b"], logs["b"])
            procs.append(b)
            _wait(lambda: _health(ports["b"]).get("role") == "standby", 60, "b stands by")
            standby = httpx.get(f"http://127.0.0.1:{ports['b']}/healthz", timeout=2)
            assert standby.status_code == 200  # a standby is healthy
            _wait(lambda: _health(ports["a"]).get("evaluating") == last.isoformat(), 60,
                  f"a waits for {last}'s data")
            # The rules are edited, and the late data arrive, while a still waits.
            edited = rules.read_text().replace("  ad_min_days: 10 ", "  ad_min_days: 12 ")
            assert edited != rules.read_text()
            rules.write_text(edited)
            bars, breadth = _derived_rows(derived, [last])
            store.upsert_bars(bars)
            store.upsert_breadth(breadth)
            _kill(a)
            took = _wait(lambda: _health(ports["b"]).get("role") == "leader",
                         TAKEOVER_WITHIN, "b takes over")

            def delivered() -> int:
                return sum(1 for m in fake.sent if m.chat_id in CHATS)

            _wait(lambda: delivered() >= 60, 90, "b's fan-out under way")
            _kill(b)
            in_flight = _sending(url)
            a2 = _start(envs["a"], logs["a"])
            procs.append(a2)
            engine = store.engine

            def unfinished() -> int:
                with engine.connect() as conn:
                    return int(conn.execute(
                        sa.select(sa.func.count()).select_from(s.deliveries)
                        .where(s.deliveries.c.status.in_(("pending", "sending")))).scalar() or 0)

            _wait(lambda: unfinished() == 0 and delivered() > 0, 180, "every delivery sent")
            a2.send_signal(signal.SIGTERM)
            assert a2.wait(timeout=60) == 0
        finally:
            for proc in procs:
                _kill(proc)
        messages = [(m.chat_id, m.method, m.text) for m in fake.sent if m.chat_id in CHATS]
    run = store.runs.get(last)
    with store.engine.connect() as conn:
        statuses = collections.Counter(conn.execute(
            sa.select(s.deliveries.c.status).where(s.deliveries.c.channel == "telegram",
                                                   s.deliveries.c.recipient != str(ADMIN))
        ).scalars())
    store.close()
    logging.getLogger(__name__).warning(
        "failover: takeover %.1f s; %d messages to %d chats, %d distinct, %d duplicate(s), "
        "%d part(s) in flight at the second kill", took, len(messages), len(CHATS),
        len(set(messages)), len(messages) - len(set(messages)), in_flight)
    assert took <= TAKEOVER_WITHIN
    assert run is not None and run.late  # the standby caught the session up
    assert run.rules_sha256 == load_rules(rules).sha256  # with the rules edited meanwhile
    assert statuses == {"sent": 2 * len(CHATS)}  # condor and summary, every chat
    per_chat = collections.Counter(chat for chat, _, _ in messages)
    distinct = set(messages)
    duplicates = len(messages) - len(distinct)
    parts = {chat: sum(1 for c, _, _ in distinct if c == chat) for chat in CHATS}
    assert min(parts.values()) >= 2 and len(set(parts.values())) == 1  # every part, everyone
    assert duplicates <= in_flight, (duplicates, in_flight)
    assert sum(per_chat.values()) == len(distinct) + duplicates
