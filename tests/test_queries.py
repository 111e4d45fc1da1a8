"""What the Telegram commands show, from a real service over the snapshot store;
a restart in the middle of a run; the subscribers command; log output."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from bot.app.cli import main
from bot.app.logs import setup_logging
from bot.app.queries import EngineQueries
from bot.app.runtime import OutboxSink
from bot.app.service import Service, ServiceConfig
from bot.delivery.dispatch import DeliveryWorker
from bot.delivery.outbox import Outbox, Standing
from bot.engine.rules import default_rules_path, load_rules
from bot.kernel.alerts import Topic
from bot.kernel.sessions import ET
from bot.market.extras import Extras
from bot.market.snapshot import STORE_NAME
from bot.pipeline.reload import RulesWatcher
from bot.store import open_store

D = dt.date
LAST = D(2026, 2, 27)


async def no_fetch(session: dt.date) -> tuple[list[str], Extras]:
    return [], Extras()


class Crash(Exception):
    """Stands for the process dying between two steps."""


def service(store, calendar, sink, rules_path: Path, now: dt.datetime) -> Service:
    cfg = ServiceConfig(
        run_delay=dt.timedelta(minutes=20), deadline=dt.timedelta(hours=4),
        poll_interval=dt.timedelta(minutes=10), catchup_sessions=5, capital=2_000_000,
        source="snapshot",
    )
    return Service(cfg, store=store, calendar=calendar,
                   watcher=RulesWatcher(rules_path, load_rules(rules_path)), fetch=no_fetch,
                   sink=sink, clock=lambda: now)


@pytest.fixture
def store(snapshot_dir):
    st = open_store(f"sqlite:///{snapshot_dir / STORE_NAME}")
    yield st
    st.close()


def outbox_sink(store) -> OutboxSink:
    outbox = Outbox(store.engine, channels=("console",),
                    standing=[Standing("console", "console", frozenset(Topic))])
    return OutboxSink(outbox, DeliveryWorker(outbox, []))


async def test_a_restart_between_storing_alerts_and_recording_the_run_sends_once(
    store, calendar, tmp_path
):
    now = dt.datetime(2026, 2, 27, 17, 0, tzinfo=ET)
    first = outbox_sink(store)

    class CrashingSink(OutboxSink):
        async def publish(self, alerts):
            await super().publish(alerts)
            raise Crash  # stored in the outbox, then the process dies

    crashing = CrashingSink(first.outbox, first.worker)
    with pytest.raises(Crash):
        await service(store, calendar, crashing, default_rules_path(), now).run_session(LAST)
    assert store.runs.get(LAST) is None
    stored = first.outbox.counts()
    # The restarted process evaluates the session again: same keys, nothing new.
    second = outbox_sink(store)
    assert await service(store, calendar, second, default_rules_path(), now).run_session(
        LAST) == "evaluated"
    assert second.outbox.counts() == stored
    assert store.runs.get(LAST) is not None
    keys = [d.alert_key for d in second.outbox.queue.rows()]
    assert len(keys) == len(set(keys))  # one console delivery per alert, not two


async def test_commands_show_the_engine_state(store, calendar, tmp_path):
    rules_path = tmp_path / "alvh.yaml"
    rules_path.write_text(default_rules_path().read_text())
    now = dt.datetime(2026, 2, 27, 21, 0, tzinfo=ET)
    svc = service(store, calendar, outbox_sink(store), rules_path, now)
    q = EngineQueries()
    with pytest.raises(RuntimeError, match="still starting"):
        await q.status()
    q.attach(svc)
    assert await q.status() == "No session evaluated yet."
    await svc.run_session(LAST)
    status = await q.status()
    assert "Status after 2026-02-27" in status and "SPX: 6878.88" in status
    assert "Hedge layers: none" in status and "Condor: GO" in status
    why = await q.why()
    assert "layer1: not added" in why and "ad_divergence_days = 0 &gt; ad_min_days = 10 ✘" in why
    assert "thresholds.ad_min_days" in await q.rules()
    history = await q.history(5)
    assert "2026-02-27: condor go" in history
    cal = await q.calendar()
    assert "CPI 2026-03-11 08:30 ET, blackout from 2026-03-10" in cal
    assert "FOMC 2026-03-18 14:00 ET, blackout from 2026-03-16" in cal
    png = await q.chart()
    assert png is not None and png[:4] == b"\x89PNG"
    # /rundate: a session already done is not sent twice; a holiday is refused.
    assert "not sent twice" in await q.rundate(LAST)
    assert "not an NYSE session" in await q.rundate(D(2026, 2, 16))
    assert "has not closed yet" in await q.rundate(D(2026, 3, 2))
    assert "outside the session calendar" in await q.rundate(D(1900, 1, 2))
    # /preview: nothing pending, then an edit replayed against the running rules.
    assert "No pending edit" in await q.preview()
    rules_path.write_text(rules_path.read_text().replace("ad_min_days: 10 ", "ad_min_days: 5 "))
    preview = await q.preview()
    assert "thresholds.ad_min_days: 10 -&gt; 5" in preview
    assert "session(s) with different decisions" in preview
    rules_path.write_text("version: 1\nnonsense: [")
    assert "does not load" in await q.preview()
    await svc.tick()  # the watchdog's tick: the next run queued
    health = await q.health()
    assert "Health: ok" in health and "last_evaluated_session" in health


async def test_status_and_why_show_not_evaluable_with_the_reason(store, calendar, tmp_path):
    """Two breadth sessions missing in the window: /status and /why say the A/D divergence is
    not evaluable and why (never 0), and name the imputed sessions and breadth sources."""
    import sqlalchemy as sa

    with store.engine.begin() as conn:
        conn.execute(sa.text(
            "delete from breadth where session in ('2026-02-10', '2026-02-11')"))
    rules_path = tmp_path / "alvh.yaml"
    rules_path.write_text(default_rules_path().read_text())
    svc = service(store, calendar, outbox_sink(store), rules_path,
                  dt.datetime(2026, 2, 27, 21, 0, tzinfo=ET))
    q = EngineQueries(svc)
    await svc.run_session(LAST)
    why_text = ("2 imputed breadth sessions in the 63-session divergence window, at most 1 "
                "allowed: 2026-02-10, 2026-02-11")
    status = await q.status()
    assert f"A/D divergence length: not evaluable ({why_text})" in status
    assert f"A/D divergence streak: not evaluable ({why_text})" in status
    assert "MACD divergence length: 0" in status  # evaluable: a real 0
    assert ("Imputed breadth in the window (no accepted NYSE row; the A/D line carries flat): "
            "2026-02-10, 2026-02-11") in status
    assert "Breadth in the A/D divergence window: snapshot:tradingview" in status
    why = await q.why()
    assert (f"ad_divergence_days = not evaluable &gt; ad_min_days = 10 ✘ not evaluable "
            f"(ad_divergence_days: {why_text})") in why


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_subscribers_command(tmp_path, no_alvh_env, capsys):
    monkeypatch = no_alvh_env
    monkeypatch.setenv("ALVH_DATA_DIR", str(tmp_path))
    # The domain is case-insensitive, the local part is not (RFC 5321).
    assert run_cli("subscribers", "add", "Trader@Example.com", "hedge", "condor") == (
        0, "email Trader@example.com: condor,hedge\n")
    assert run_cli("subscribers", "add", "ops@example.com")[1] == (
        "email ops@example.com: summary\n")
    code, listing = run_cli("subscribers", "list")
    assert code == 0 and "Trader@example.com" in listing and "condor,hedge" in listing
    assert run_cli("subscribers", "remove", "Trader@example.com", "hedge")[1] == (
        "email Trader@example.com: condor\n")
    assert run_cli("subscribers", "remove", "ops@example.com")[1] == (
        "email ops@example.com: removed\n")
    assert main(["subscribers", "add", "x@example.com", "lambo"]) == 2
    assert "lambo" in capsys.readouterr().err
    assert main(["subscribers", "add", "not-an-address"]) == 2
    assert "no channel takes “not-an-address”" in capsys.readouterr().err
    assert main(["subscribers", "add", "x@example", "--channel", "email"]) == 2
    assert "not an email address" in capsys.readouterr().err
    assert main(["subscribers", "list", "--channel", "pigeon"]) == 2
    assert "unknown channel “pigeon”" in capsys.readouterr().err
    # Removing a topic from someone who is not subscribed adds no one.
    before = run_cli("subscribers", "list")[1]
    assert main(["subscribers", "remove", "ghost@example.com", "condor"]) == 2
    assert "email ghost@example.com: not a subscriber" in capsys.readouterr().err
    assert run_cli("subscribers", "list")[1] == before


def test_json_logs_and_secrets_redacted(capsys):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        setup_logging("INFO", "json", ["s3cr3t-token"])
        logging.getLogger("telegram.ext").info("Set Bot API URL: https://api/bots3cr3t-token")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["level"] == "INFO" and record["logger"] == "telegram.ext"
    assert "s3cr3t-token" not in line and "<redacted>" in record["msg"]


def test_a_delivery_is_claimed_by_one_process_only(store):
    a = outbox_sink(store).outbox
    b = Outbox(store.engine, channels=("console",),
                    standing=[Standing("console", "console", frozenset(Topic))])
    from bot.kernel.alerts import Alert

    alert = Alert(LAST, Topic.SUMMARY, "daily_summary", "", "t", "text", "<b>t</b>")
    a.enqueue([alert])
    (row,) = a.queue.rows()
    assert not b.queue.claim(row.id, late=False)  # not B's: another process left it
    assert a.queue.claim(row.id, late=False)  # A claims it...
    assert not a.queue.claim(row.id, late=False)  # ...once
    assert b.queue.recover() == 1  # A "died": B adopts the row
    assert not a.queue.claim(row.id, late=False)  # and A can no longer send it
    assert b.queue.claim(row.id, late=False)


def test_run_once_refuses_beside_a_running_bot(snapshot_dir, no_alvh_env, capsys):
    from bot.app.lock import DataDirLock

    monkeypatch = no_alvh_env
    monkeypatch.setenv("ALVH_DATA_DIR", str(snapshot_dir))
    with DataDirLock(snapshot_dir):  # stands for `alvh run`
        assert main(["run-once", "--source", "snapshot"]) == 1
    assert "one alvh run per data directory" in capsys.readouterr().err
    store = open_store(f"sqlite:///{snapshot_dir / STORE_NAME}")
    assert store.runs.get(LAST) is None  # nothing recorded, nothing stored
    assert Outbox(store.engine, channels=("console",)).counts() == {}  # no delivery rows
    store.close()


async def test_rundate_leaves_the_current_session_to_its_scheduled_run(store, calendar):
    now = dt.datetime(2026, 2, 27, 17, 0, tzinfo=ET)  # after the 16:20 fire, before the deadline
    q = EngineQueries(service(store, calendar, outbox_sink(store), default_rules_path(), now))
    reply = await q.rundate(LAST)
    assert "still in its normal run" in reply and "16:20" in reply
    assert store.runs.get(LAST) is None  # nothing evaluated behind the job's back
