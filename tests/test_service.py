"""The service: fire times, catch-up, polling to the deadline, reload, health, lock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import exchange_calendars as xcals
import httpx
import pytest
import sqlalchemy as sa

from bot.app.health import HealthServer
from bot.app.lock import AlreadyRunning, DataDirLock
from bot.app.scheduler import due_sessions, next_fire
from bot.app.service import Service, ServiceConfig
from bot.engine.rules import default_rules_path, load_rules
from bot.kernel.alerts import Alert, Topic
from bot.kernel.sessions import ET
from bot.market.extras import Extras
from bot.market.snapshot import STORE_NAME
from bot.pipeline.reload import RulesWatcher
from bot.store import open_store

D = dt.date
DELAY = dt.timedelta(minutes=20)
LAST = D(2026, 2, 27)


class Clock:
    """A controllable clock; ``sleep`` advances it instead of waiting."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> dt.datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += dt.timedelta(seconds=seconds)


class Sink:
    """Collects published alerts; keyed, as the outbox is."""

    def __init__(self) -> None:
        self.alerts: dict[str, Alert] = {}
        self.published: list[Alert] = []

    async def publish(self, alerts: Sequence[Alert]) -> None:
        for a in alerts:
            self.published.append(a)
            self.alerts.setdefault(a.key, a)

    def pending(self) -> int:
        return 0


async def no_fetch(session: dt.date) -> tuple[list[str], Extras]:
    return [], Extras()


def make(store, calendar, clock, sink, *, rules_path: Path | None = None, source="snapshot",
         fetch=no_fetch, catchup=5):
    path = rules_path or default_rules_path()
    cfg = ServiceConfig(
        run_delay=DELAY, deadline=dt.timedelta(hours=4), poll_interval=dt.timedelta(minutes=15),
        catchup_sessions=catchup, capital=2_000_000, source=source, rules_poll_seconds=30,
    )
    return Service(cfg, store=store, calendar=calendar,
                   watcher=RulesWatcher(path, load_rules(path)), fetch=fetch, sink=sink,
                   clock=clock, sleep=clock.sleep)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, snapshot_dir):
    """The loaded snapshot in each store lane: a SQLite copy, then a PostgreSQL copy."""
    if request.param == "sqlite":
        st = open_store(f"sqlite:///{snapshot_dir / STORE_NAME}")
    else:
        st = open_store(request.getfixturevalue("postgres_snapshot_copy"))
    yield st
    st.close()


# ------------------------------------------------------------------ fire times


def test_fire_times_2025_2027_follow_the_exchange_calendar(calendar):
    """Independent check: exchange_calendars' own closes, in UTC, plus the delay."""
    xnys = xcals.get_calendar("XNYS", start="2024-12-01", end="2028-01-31")
    expected = [
        (ts.date(), xnys.session_close(ts).to_pydatetime() + DELAY)
        for ts in xnys.sessions_in_range("2025-01-01", "2027-12-31")
    ]
    got = []
    now = dt.datetime(2024, 12, 31, 23, 0, tzinfo=ET)
    while True:
        session, when = next_fire(calendar, now, DELAY)
        if session > D(2027, 12, 31):
            break
        got.append((session, when))
        now = when  # strictly after: the next one
    assert [s for s, _ in got] == [s for s, _ in expected]  # no holiday run, none missed
    assert all(a[1] == b[1] for a, b in zip(got, expected, strict=True))
    local = {s: w.astimezone(ET) for s, w in got}
    assert local[D(2025, 3, 7)].time() == dt.time(16, 20)  # before the March DST change
    assert local[D(2025, 3, 10)].time() == dt.time(16, 20)  # after it
    assert local[D(2025, 3, 10)].utcoffset() == dt.timedelta(hours=-4)
    assert local[D(2025, 11, 3)].utcoffset() == dt.timedelta(hours=-5)  # after November
    assert local[D(2025, 11, 28)].time() == dt.time(13, 20)  # day after Thanksgiving
    assert local[D(2026, 12, 24)].time() == dt.time(13, 20)
    assert D(2026, 11, 26) not in local and D(2027, 3, 26) not in local  # holidays
    assert len(got) > 740


def test_next_fire_before_and_after_the_fire_time(calendar):
    session, when = next_fire(calendar, dt.datetime(2026, 11, 25, 16, 19, tzinfo=ET), DELAY)
    assert (session, when) == (D(2026, 11, 25), dt.datetime(2026, 11, 25, 16, 20, tzinfo=ET))
    session, _ = next_fire(calendar, dt.datetime(2026, 11, 25, 16, 20, tzinfo=ET), DELAY)
    assert session == D(2026, 11, 27)
    assert due_sessions(calendar, dt.datetime(2026, 11, 30, 9, 0, tzinfo=ET), DELAY, 3) == [
        D(2026, 11, 24), D(2026, 11, 25), D(2026, 11, 27)
    ]


# ---------------------------------------------------------------- catch-up


async def test_catch_up_after_a_three_session_outage(store, calendar):
    sink = Sink()
    # The bot ran on 2026-02-23, then was down for three sessions.
    clock = Clock(dt.datetime(2026, 2, 23, 17, 0, tzinfo=ET))
    svc = make(store, calendar, clock, sink)
    assert await svc.run_session(D(2026, 2, 23)) == "evaluated"
    first = {a.key for a in sink.published}
    clock.now = dt.datetime(2026, 2, 27, 21, 0, tzinfo=ET)  # after the 27th's deadline
    done = await svc.catch_up()
    assert done == [(D(2026, 2, 24), "evaluated"), (D(2026, 2, 25), "evaluated"),
                    (D(2026, 2, 26), "evaluated"), (D(2026, 2, 27), "evaluated")]
    late = [a for a in sink.published if a.key not in first]
    assert late and all(a.late for a in late)
    assert {a.session for a in late} == {D(2026, 2, 24), D(2026, 2, 25), D(2026, 2, 26), LAST}
    assert all("Late: evaluated in a catch-up" in a.text for a in late)
    summaries = [a for a in late if a.topic is Topic.SUMMARY]
    assert len(summaries) == 4
    assert all(a.chart_png and a.chart_png[:8] == b"\x89PNG\r\n\x1a\n" for a in summaries)
    assert all(a.chart_png is None for a in late if a.topic is not Topic.SUMMARY)
    run = store.runs.get(D(2026, 2, 25))
    assert run is not None and run.late
    # Nothing is evaluated twice.
    assert await svc.catch_up() == []


async def test_catch_up_is_bounded_and_a_new_install_starts_small(store, calendar):
    sink = Sink()
    clock = Clock(dt.datetime(2026, 2, 27, 21, 0, tzinfo=ET))
    svc = make(store, calendar, clock, sink, catchup=2)
    assert await svc.catch_up() == [(LAST, "evaluated")]  # no earlier run: latest only


async def test_a_run_at_its_fire_time_is_not_late(store, calendar):
    sink = Sink()
    clock = Clock(dt.datetime(2026, 2, 27, 16, 22, tzinfo=ET))  # within late_after (5 min)
    svc = make(store, calendar, clock, sink)
    await svc.catch_up()
    assert sink.published and not any(a.late for a in sink.published)


async def test_a_run_started_well_after_its_fire_time_is_late(store, calendar):
    """Inside the deadline but 40 minutes after the fire time (the bot was down): late."""
    sink = Sink()
    clock = Clock(dt.datetime(2026, 2, 27, 17, 0, tzinfo=ET))
    svc = make(store, calendar, clock, sink)
    assert await svc.catch_up() == [(LAST, "evaluated")]
    assert sink.published and all(a.late for a in sink.published)


# ------------------------------------------------------- polling and deadline


async def test_polls_until_complete_then_signals(store, calendar):
    with store.engine.begin() as conn:
        rows = conn.execute(sa.text(
            "select * from breadth where session = '2026-02-27'")).mappings().all()
        conn.execute(sa.text("delete from breadth where session = '2026-02-27'"))
    calls: list[dt.datetime] = []
    clock = Clock(dt.datetime(2026, 2, 27, 16, 20, tzinfo=ET))

    async def fetch(session):
        calls.append(clock.now)
        if len(calls) == 3:  # the breadth arrives on the third poll
            with store.engine.begin() as conn:
                conn.execute(sa.text(
                    "insert into breadth values (:session, :advancers, :decliners, :unchanged,"
                    " :adv_volume, :dec_volume, :source, :fetched_at, :rejected)"), dict(rows[0]))
        return [], Extras()

    sink = Sink()
    svc = make(store, calendar, clock, sink, source="live", fetch=fetch)
    assert await svc.run_session(LAST) == "evaluated"
    assert len(calls) == 3 and clock.slept == [900.0, 900.0]
    assert not any(a.topic is Topic.OPS for a in sink.published)


async def test_deadline_without_data_sends_ops_and_no_signal(store, calendar):
    with store.engine.begin() as conn:
        conn.execute(sa.text("delete from bars where session = '2026-02-27' and symbol='VIX'"))
    clock = Clock(dt.datetime(2026, 2, 27, 16, 20, tzinfo=ET))
    sink = Sink()
    svc = make(store, calendar, clock, sink, source="live")
    assert await svc.run_session(LAST) == "incomplete"
    assert clock.now >= dt.datetime(2026, 2, 27, 20, 20, tzinfo=ET)  # waited to the deadline
    assert [a.topic for a in sink.published] == [Topic.OPS]
    assert "VIX: stale: newest row 2026-02-26" in sink.published[0].text
    assert store.runs.get(LAST) is None
    h = svc.health()
    assert not h.ok and "2026-02-27" in h.body["missed_sessions"]


# -------------------------------------------------------------- hot reload


async def test_rules_reload_broken_edit_then_fixed(tmp_path, store, calendar):
    path = tmp_path / "alvh.yaml"
    good = default_rules_path().read_text()
    path.write_text(good)
    sink = Sink()
    svc = make(store, calendar, Clock(dt.datetime(2026, 2, 27, 17, tzinfo=ET)), sink,
               rules_path=path)
    before = svc.watcher.rules.sha256
    assert await svc.check_rules() is None  # unchanged
    path.write_text(good.replace("ad_min_days: 10", "ad_min_days: ten"))
    res = await svc.check_rules()
    assert res is not None and not res.ok
    assert svc.watcher.rules.sha256 == before  # last good rules kept
    refused = sink.published[-1]
    assert refused.topic is Topic.OPS and refused.kind == "rules_refused"
    assert "alvh.yaml:" in refused.text and "thresholds.ad_min_days" in refused.text
    assert await svc.check_rules() is None  # reported once
    path.write_text(good.replace("ad_min_days: 10", "ad_min_days: 15"))
    res = await svc.check_rules()
    assert res is not None and res.ok
    assert ("thresholds.ad_min_days", 10, 15) in res.changes
    assert svc.watcher.rules.sha256 != before
    assert sink.published[-1].kind == "rules_reloaded"
    assert "thresholds.ad_min_days: 10 -> 15" in sink.published[-1].text


# ------------------------------------------------------------ health, lock


async def test_healthz_and_metrics_over_http(store, calendar):
    sink = Sink()
    clock = Clock(dt.datetime(2026, 2, 27, 21, 0, tzinfo=ET))
    svc = make(store, calendar, clock, sink)
    await svc.catch_up()
    await svc.tick()  # the watchdog's first tick: nothing due, the next run queued
    server = HealthServer("127.0.0.1", 0, svc.health, svc.metrics.render)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as c:
            r = await c.get("/healthz")
            m = await c.get("/metrics")
            nf = await c.get("/nope")
    finally:
        await server.stop()
    assert r.status_code == 200
    body = r.json()
    assert body["last_evaluated_session"] == "2026-02-27" and body["status"] == "ok"
    assert body["next_run"]["session"] == "2026-03-02"
    assert body["pending_deliveries"] == 0
    assert m.status_code == 200
    assert 'alvh_runs_total{outcome="late"} 1.0' in m.text
    assert 'alvh_alerts_total{topic="summary"}' in m.text
    assert nf.status_code == 404


def test_one_run_per_data_directory(tmp_path):
    with DataDirLock(tmp_path):
        with pytest.raises(AlreadyRunning, match="one alvh run per data directory"):
            DataDirLock(tmp_path).acquire()
    DataDirLock(tmp_path).acquire()  # released: free again



async def test_stop_is_prompt_while_the_catch_up_waits_for_data(store, calendar):
    """SIGTERM during a catch-up that polls for hours must still stop the bot."""
    import asyncio

    with store.engine.begin() as conn:
        conn.execute(sa.text("delete from bars where session = '2026-02-27' and symbol='VIX'"))
    now = dt.datetime(2026, 2, 27, 16, 30, tzinfo=ET)  # inside the deadline: it will poll
    cfg = ServiceConfig(
        run_delay=DELAY, deadline=dt.timedelta(hours=4), poll_interval=dt.timedelta(minutes=10),
        catchup_sessions=5, capital=2_000_000, source="live",
    )
    svc = Service(cfg, store=store, calendar=calendar,
                  watcher=RulesWatcher(default_rules_path(), load_rules(default_rules_path())),
                  fetch=no_fetch, sink=Sink(), clock=lambda: now)  # real asyncio.sleep
    await svc.start()
    await asyncio.sleep(0.5)  # the catch-up is now sleeping until the next poll
    task = svc._runner
    assert task is not None and not task.done()
    await asyncio.wait_for(svc.stop(), timeout=5)
    assert task.cancelled()


async def test_a_missed_session_is_evaluated_late_before_the_next_one(store, calendar):
    """Layer 2 went on on 2021-09-28 in the snapshot history: that day's data is late here."""
    with store.engine.begin() as conn:
        vix = conn.execute(sa.text(
            "select * from bars where session = '2021-09-28' and symbol = 'VIX'")).mappings().one()
        conn.execute(sa.text("delete from bars where session = '2021-09-28' and symbol = 'VIX'"))
    sink = Sink()
    clock = Clock(dt.datetime(2021, 9, 27, 16, 20, tzinfo=ET))
    svc = make(store, calendar, clock, sink, source="live")
    assert await svc.run_session(D(2021, 9, 27)) == "evaluated"
    clock.now = dt.datetime(2021, 9, 28, 16, 20, tzinfo=ET)
    assert await svc.run_session(D(2021, 9, 28)) == "incomplete"
    assert not svc.health().ok
    # The VIX print arrives later; the next session's job first evaluates the 25th.
    with store.engine.begin() as conn:
        conn.execute(sa.text(
            "insert into bars values (:symbol, :session, :open, :high, :low, :close, :volume,"
            " :source, :fetched_at)"), dict(vix))
    clock.now = dt.datetime(2021, 9, 29, 16, 20, tzinfo=ET)
    assert await svc.run_session(D(2021, 9, 29)) == "evaluated"
    run28 = store.runs.get(D(2021, 9, 28))
    assert run28 is not None and run28.late
    added = [a for a in sink.published if a.kind == "layer_added" and a.session == D(2021, 9, 28)]
    assert [a.layer for a in added] == ["layer2"] and added[0].late
    await svc.tick()
    assert svc.health().ok and svc.missed == {}


async def test_an_edit_deleting_an_active_layer_is_refused(tmp_path, store, calendar):
    path = tmp_path / "alvh.yaml"
    good = default_rules_path().read_text()
    path.write_text(good)
    sink = Sink()
    svc = make(store, calendar, Clock(dt.datetime(2021, 9, 28, 17, tzinfo=ET)), sink,
               rules_path=path)
    assert await svc.run_session(D(2021, 9, 28)) == "evaluated"
    layers = store.runs.get(D(2021, 9, 28)).state.layers
    assert [a.name for a in layers] == ["layer1", "layer2"]
    start = good.index("    - name: layer3")
    end = good.index("# Early warnings")
    without3 = good[:start] + good[end:]
    path.write_text(without3)  # deleting layer3 (off) is fine
    res = await svc.check_rules()
    assert res is not None and res.ok
    start2 = without3.index("    - name: layer2")
    end2 = without3.index("# Early warnings")
    path.write_text(without3[:start2] + without3[end2:])  # deleting layer2 (on) is not
    res = await svc.check_rules()
    assert res is not None and not res.ok
    assert "layer2 is on and would no longer be in the rules" in res.message
    assert [x.name for x in svc.watcher.rules.hedge.layers] == ["layer1", "layer2"]
    assert sink.published[-1].kind == "rules_refused"


async def test_source_failures_are_counted_by_series(store, calendar):
    async def failing(session):
        return ["BREADTH: FAILED: wsj: HTTP 503"], Extras(failed={"BREADTH": "wsj: HTTP 503"})

    svc = make(store, calendar, Clock(dt.datetime(2026, 2, 27, 21, 0, tzinfo=ET)), Sink(),
               fetch=failing)
    assert await svc.run_session(LAST) == "evaluated"  # the snapshot has the breadth already
    assert 'alvh_source_failures_total{series="BREADTH"} 1.0' in svc.metrics.render().decode()


async def test_each_session_gets_an_evening_refetch_of_its_final_breadth(store, calendar):
    """WSJ revises breadth after the close: the live service fetches it again at the
    configured time (20:00 ET by default) on the day of each scheduled session."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    asked: list[dt.date] = []

    async def final(session: dt.date) -> list[str]:
        asked.append(session)
        return []

    path = default_rules_path()
    cfg = ServiceConfig(
        run_delay=DELAY, deadline=dt.timedelta(hours=4), poll_interval=dt.timedelta(minutes=15),
        catchup_sessions=5, capital=2_000_000, source="live",
        final_breadth_time=dt.time(20, 0),
    )
    clock = Clock(dt.datetime(2026, 11, 27, 9, 0, tzinfo=ET))  # the day after Thanksgiving
    svc = Service(cfg, store=store, calendar=calendar,
                  watcher=RulesWatcher(path, load_rules(path)), fetch=no_fetch, sink=Sink(),
                  clock=clock, sleep=clock.sleep, final_breadth=final)
    svc._scheduler = AsyncIOScheduler(timezone=ET)
    svc._scheduler.start(paused=True)
    try:
        session, _ = svc.schedule_next()
        job = svc._scheduler.get_job("breadth-final")
        assert session == D(2026, 11, 27)  # a 13:00 early close
        assert job is not None and list(job.args) == [session]
        assert job.trigger.run_date == dt.datetime(2026, 11, 27, 20, 0, tzinfo=ET)
        await job.func(*job.args)
        assert asked == [session]
        # Scheduled with the next session: at 21:00 on Monday that is Tuesday's.
        clock.now = dt.datetime(2026, 11, 30, 21, 0, tzinfo=ET)
        svc.schedule_next()
        job = svc._scheduler.get_job("breadth-final")
        assert list(job.args) == [D(2026, 12, 1)]
    finally:
        svc._scheduler.shutdown(wait=False)
