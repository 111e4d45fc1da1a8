"""Scheduling faults (issue 11): each one a test, with a paused process or a controllable clock.

1. A process paused past the fire time plus the deadline used to lose the only
   queued job and never schedule again while /healthz said ok.
2. (a) A run delay past midnight and a restart between midnight and the fire
   time skipped a session; (b) a long data deadline and one day whose data
   never completed kept the next session from ever being attempted.
3. Settings combinations that would skip a session are refused at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import exchange_calendars as xcals
import httpx
import pytest

from bot.app.scheduler import MIN_CLOSE_GAP, Timing, fire_time, next_fire, plan
from bot.app.service import Service, ServiceConfig
from bot.app.settings import Settings, load_settings
from bot.engine.rules import default_rules_path, load_rules
from bot.kernel.alerts import Alert, Topic
from bot.kernel.errors import ConfigError
from bot.kernel.sessions import ET, SessionCalendar
from bot.market.extras import fetch_nothing
from bot.market.snapshot import STORE_NAME
from bot.pipeline.reload import RulesWatcher
from bot.store import open_store

D = dt.date
HERE = Path(__file__).resolve().parent


class Clock:
    """A controllable clock; ``sleep`` advances it instead of waiting (and ends the test's
    run by cancelling it once the clock would pass ``until``)."""

    def __init__(self, now: dt.datetime, until: dt.datetime | None = None) -> None:
        self.now = now
        self.until = until

    def __call__(self) -> dt.datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if self.until is not None and self.now + dt.timedelta(seconds=seconds) > self.until:
            raise asyncio.CancelledError
        self.now += dt.timedelta(seconds=seconds)


class Sink:
    def __init__(self) -> None:
        self.published: list[Alert] = []

    async def publish(self, alerts: Sequence[Alert]) -> None:
        self.published += alerts

    def pending(self) -> int:
        return 0


@pytest.fixture
def store(snapshot_dir):
    st = open_store(f"sqlite:///{snapshot_dir / STORE_NAME}")
    yield st
    st.close()


def service(store, calendar, clock, sink, *, delay=20, deadline=240, catchup=5,
            source="live", poll_minutes=10) -> Service:
    cfg = ServiceConfig(
        run_delay=dt.timedelta(minutes=delay), deadline=dt.timedelta(minutes=deadline),
        poll_interval=dt.timedelta(minutes=poll_minutes), catchup_sessions=catchup,
        capital=2_000_000,
        source=source,
    )
    rules = load_rules(default_rules_path())
    return Service(cfg, store=store, calendar=calendar, watcher=RulesWatcher(None, rules),
                   fetch=fetch_nothing, sink=sink, clock=clock, sleep=clock.sleep)


@contextlib.asynccontextmanager
async def evaluated_2026_02_26(store, calendar) -> AsyncIterator[tuple[Service, Clock, Sink]]:
    """A snapshot service started at 16:21 ET on 2026-02-26 that has evaluated that
    session; stopped on exit."""
    sink = Sink()
    clock = Clock(dt.datetime(2026, 2, 26, 16, 21, tzinfo=ET))
    svc = service(store, calendar, clock, sink, source="snapshot")
    await svc.start()
    try:
        assert await svc._runner == [(D(2026, 2, 26), "evaluated")]
        yield svc, clock, sink
    finally:
        await svc.stop()


# ------------------------------------------------------------------ the calendar facts


def test_the_shortest_close_to_close_gap_is_21_hours():
    """MIN_CLOSE_GAP (what the settings check uses) against exchange_calendars' own closes."""
    xnys = xcals.get_calendar("XNYS", start="1990-01-02", end="2029-12-31")
    closes = xnys.schedule["close"]
    gaps = closes.diff().dropna()
    assert gaps.min().to_pytimedelta() == MIN_CLOSE_GAP == dt.timedelta(hours=21)
    shortest = closes.index[1:][gaps.to_numpy() == gaps.min().to_numpy()]
    assert pd_dates(shortest)[:1] and D(2026, 12, 24) in pd_dates(shortest)


def pd_dates(index) -> list[dt.date]:
    return [ts.date() for ts in index]


def test_exchange_calendars_knows_the_2025_01_09_closure(calendar):
    """National day of mourning for President Carter: NYSE closed (the dependency floor)."""
    assert not calendar.is_session(D(2025, 1, 9))
    assert calendar.next_session(D(2025, 1, 8)) == D(2025, 1, 10)


# ------------------------------------------------------------------ fault 2(a)


def test_a_delay_past_midnight_keeps_the_session_before(calendar):
    """Delay 540 min: 2026-02-25 fires at 01:00 on the 26th; at 00:30 it is next, not skipped."""
    delay = dt.timedelta(minutes=540)
    now = dt.datetime(2026, 2, 26, 0, 30, tzinfo=ET)
    assert next_fire(calendar, now, delay) == (D(2026, 2, 25),
                                               dt.datetime(2026, 2, 26, 1, 0, tzinfo=ET))


async def test_restart_between_midnight_and_a_late_fire_time_evaluates_that_session(
        store, calendar):
    sink = Sink()
    clock = Clock(dt.datetime(2026, 2, 24, 16, 30, tzinfo=ET))
    svc = service(store, calendar, clock, sink, delay=540, source="snapshot")
    await svc.evaluator.evaluate(D(2026, 2, 24), late=False, sink=sink)  # the run before
    clock.now = dt.datetime(2026, 2, 26, 0, 30, tzinfo=ET)  # the restart
    await svc.tick()
    assert svc.next_run == (D(2026, 2, 25), dt.datetime(2026, 2, 26, 1, 0, tzinfo=ET))
    assert store.runs.get(D(2026, 2, 25)) is None  # not due yet
    clock.now = dt.datetime(2026, 2, 26, 1, 0, 30, tzinfo=ET)
    await svc.tick()
    assert svc._runner is not None
    assert await svc._runner == [(D(2026, 2, 25), "evaluated")]
    run = store.runs.get(D(2026, 2, 25))
    assert run is not None and not run.late


# ------------------------------------------------------------------ fault 2(b)


async def test_a_day_without_data_does_not_hold_up_the_next_session(store, calendar):
    """The snapshot ends 2026-02-27: 03-02 never completes. With a 24-hour deadline
    (possible in ServiceConfig, refused in settings) the wait for 03-02 stops when
    03-03 falls due, and 03-03 is attempted and reported in its turn."""
    sink = Sink()
    clock = Clock(dt.datetime(2026, 2, 27, 16, 21, tzinfo=ET))
    svc = service(store, calendar, clock, sink, deadline=1440, poll_minutes=240)
    await svc.tick()
    assert await svc._runner == [(D(2026, 2, 27), "evaluated")]
    clock.now = dt.datetime(2026, 3, 2, 16, 20, tzinfo=ET)
    clock.until = dt.datetime(2026, 3, 3, 18, 0, tzinfo=ET)  # stop the test in 03-03's wait
    await svc.tick()
    with pytest.raises(asyncio.CancelledError):
        await svc._runner
    assert svc.running_session is None
    ops = [a for a in sink.published if a.topic is Topic.OPS]
    assert [a.session for a in ops] == [D(2026, 3, 2)]  # reported when 03-03 fell due
    assert "the next session (2026-03-03) is due" in svc.missed_before[D(2026, 3, 2)]
    # 03-03 was attempted in its turn (retried the 2nd first, then polled for its own data).
    clock.until = None
    clock.now = dt.datetime(2026, 3, 4, 16, 30, tzinfo=ET)
    await svc._give_up(D(2026, 3, 3), ["SPX: no row"], False, "test")
    h = svc.health()
    assert not h.ok and "missed_sessions" in h.body["problems"]


# ------------------------------------------------------------------ fault 1, clock


async def test_a_pause_past_fire_time_and_deadline_is_caught_up_by_the_watchdog(
        store, calendar):
    """The date job is gone (APScheduler drops a job paused past its grace); the
    watchdog's next tick still finds the session due, runs it late, and /healthz
    says overdue in between."""
    async with evaluated_2026_02_26(store, calendar) as (svc, clock, sink):
        assert svc.health().ok
        assert svc.health().body["next_run"]["session"] == "2026-02-27"
        # Paused from before the fire time until long after the deadline.
        clock.now = dt.datetime(2026, 2, 28, 9, 0, tzinfo=ET)
        svc._scheduler.remove_job("evaluate")  # what a misfire leaves behind
        before = svc.health()
        assert not before.ok
        assert set(before.body["problems"]) == {"overdue_sessions", "no_next_run",
                                                "watchdog_stalled"}
        assert before.body["overdue_sessions"] == ["2026-02-27"]
        await svc.tick()
        assert await svc._runner == [(D(2026, 2, 27), "evaluated")]
        run = store.runs.get(D(2026, 2, 27))
        assert run is not None and run.late
        assert all(a.late for a in sink.published if a.session == D(2026, 2, 27))
        after = svc.health()
        assert after.ok, after.body
        assert after.body["last_evaluated_session"] == "2026-02-27"
        assert after.body["next_run"]["session"] == "2026-03-02"


async def test_two_ticks_at_once_start_one_runner(store, calendar, monkeypatch):
    """On wake-up the date job and the watchdog tick together; both read the plan
    (in a thread) before either starts the runner: one runner, one evaluation."""
    async with evaluated_2026_02_26(store, calendar) as (svc, clock, _):
        clock.now = dt.datetime(2026, 2, 28, 9, 0, tzinfo=ET)
        started: list[asyncio.Task] = []
        real = asyncio.create_task

        def spy(coro, **kw):  # every task the service starts during the two ticks
            task = real(coro, **kw)
            started.append(task)
            return task

        monkeypatch.setattr(asyncio, "create_task", spy)
        await asyncio.gather(svc.tick(), svc.tick(D(2026, 2, 27)))
        monkeypatch.undo()
        runners = [t for t in started if t.get_name() == "evaluate"]
        assert len(runners) == 1
        assert await runners[0] == [(D(2026, 2, 27), "evaluated")]


async def test_sessions_beyond_the_catch_up_bound_are_reported_to_ops(store, calendar):
    sink = Sink()
    clock = Clock(dt.datetime(2026, 2, 13, 16, 21, tzinfo=ET))
    svc = service(store, calendar, clock, sink, catchup=2, source="snapshot")
    await svc.tick()
    assert await svc._runner == [(D(2026, 2, 13), "evaluated")]
    clock.now = dt.datetime(2026, 2, 27, 21, 0, tzinfo=ET)  # down for two weeks
    await svc.tick()
    assert await svc._runner == [(D(2026, 2, 26), "evaluated"), (D(2026, 2, 27), "evaluated")]
    skipped = [a for a in sink.published if a.kind == "sessions_skipped"]
    assert len(skipped) == 1
    text = skipped[0].text
    # 02-16 is Presidents Day: 02-17..02-25 are the seven sessions skipped.
    assert "7 session(s) skipped" in text and "2026-02-17..2026-02-25" in text
    assert "ALVH_CATCHUP_SESSIONS=2" in text
    for d in (D(2026, 2, 17), D(2026, 2, 25)):
        assert store.runs.get(d) is None
    assert svc.health().body["skipped_sessions"][0] == "2026-02-17"
    await svc.tick()  # told once
    assert len([a for a in sink.published if a.kind == "sessions_skipped"]) == 1


async def test_a_stalled_watchdog_and_no_next_run_fail_health(store, calendar):
    sink = Sink()
    clock = Clock(dt.datetime(2026, 2, 27, 16, 21, tzinfo=ET))
    svc = service(store, calendar, clock, sink, source="snapshot")
    await svc.start()
    try:
        await svc._runner
        assert svc.health().ok
        svc._scheduler.remove_job("evaluate")
        h = svc.health()
        assert list(h.body["problems"]) == ["no_next_run"]
        assert "session 2026-03-02 is due at 2026-03-02T16:20:00-05:00" in \
            h.body["problems"]["no_next_run"]
        await svc.tick()  # the watchdog queues it again
        assert svc.health().ok
        clock.now += dt.timedelta(minutes=6)  # and then stops ticking
        h = svc.health()
        assert list(h.body["problems"]) == ["watchdog_stalled"] and not h.ok
    finally:
        await svc.stop()


async def test_a_calendar_that_raises_fails_health_instead_of_crashing(store, calendar):
    """What exchange_calendars < 4.13 does under pandas 3: every schedule lookup raises."""

    class Broken(SessionCalendar):
        def __init__(self) -> None:
            self.__dict__.update(calendar.__dict__)

        def close_time(self, session):
            raise ValueError("NotSessionError: <exception str() failed>")

    sink = Sink()
    svc = service(store, Broken(), Clock(dt.datetime(2026, 2, 27, 17, 0, tzinfo=ET)), sink)
    svc.last_tick = svc.clock()
    h = svc.health()
    assert not h.ok
    assert h.body["problems"]["scheduler_error"] == (
        "ValueError: NotSessionError: <exception str() failed>")
    assert h.body["problems"]["no_next_run"] == "the schedule cannot be computed"


def test_no_next_run_when_the_calendar_ends():
    short = SessionCalendar(end=D(2026, 3, 6))
    timing = Timing(dt.timedelta(minutes=20), dt.timedelta(hours=4), 5)
    p = plan(short, dt.datetime(2026, 3, 6, 17, 0, tzinfo=ET), timing, recorded={D(2026, 3, 6)},
             first_run=D(2026, 3, 6), last_run=D(2026, 3, 6))
    assert p.next_run is None and p.due == ()


def test_plan_new_install_window_and_first_run(calendar):
    timing = Timing(dt.timedelta(minutes=20), dt.timedelta(hours=4), 3)
    now = dt.datetime(2026, 2, 27, 21, 0, tzinfo=ET)
    fresh = plan(calendar, now, timing, recorded=(), first_run=None, last_run=None)
    assert fresh.due == (D(2026, 2, 27),) and fresh.skipped == ()
    p = plan(calendar, now, timing, recorded={D(2026, 2, 25)}, first_run=D(2026, 2, 25),
             last_run=D(2026, 2, 25))
    assert p.due == (D(2026, 2, 26), D(2026, 2, 27)) and p.skipped == ()
    later = plan(calendar, dt.datetime(2026, 3, 9, 21, 0, tzinfo=ET), timing,
                 recorded={D(2026, 2, 25)}, first_run=D(2026, 2, 25), last_run=D(2026, 2, 25))
    assert later.due == (D(2026, 3, 5), D(2026, 3, 6), D(2026, 3, 9))
    assert later.skipped == (D(2026, 2, 26), D(2026, 2, 27), D(2026, 3, 2), D(2026, 3, 3),
                             D(2026, 3, 4))
    assert fire_time(calendar, D(2026, 3, 9), timing.delay) < later.now


# ------------------------------------------------------------------ fault 1, SIGSTOP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigstop_across_the_fire_time_then_sigcont(snapshot_dir):
    """`kill -STOP` the running service across a fire time for longer than the data
    deadline (3 s here), `kill -CONT`: the session is evaluated, late, and /healthz
    says so; nothing is lost and nothing runs twice."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALVH_")}
    env["PYTHONPATH"] = str(HERE)
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_service_child.py"), str(snapshot_dir), str(port),
         "2026-02-27", "8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        lines: list[dict] = []
        while True:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "child ended"
            lines.append(json.loads(line))
            if lines[-1].get("ready"):
                break
        fire = lines[-1]["fire_epoch"]
        before = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert before.status_code == 200, before.text
        assert before.json()["next_run"]["session"] == "2026-02-27"
        time.sleep(max(0.0, fire - 4 - time.time()))
        os.kill(proc.pid, signal.SIGSTOP)
        assert time.time() < fire, "stopped too late to cross the fire time (machine too busy)"
        time.sleep(max(0.0, fire + 6 - time.time()))  # fire time + deadline (3 s) + 3 s
        os.kill(proc.pid, signal.SIGCONT)
        body = None
        for _ in range(240):
            r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            body = r.json()
            if body["last_evaluated_session"] == "2026-02-27":
                break
            time.sleep(0.25)
        assert body is not None and body["last_evaluated_session"] == "2026-02-27", body
        assert body["next_run"]["session"] == "2026-03-02"
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    alerts = [json.loads(x) for x in out.splitlines() if x.strip()]
    on_27 = [a for a in alerts if a["session"] == "2026-02-27"]
    assert on_27 and all(a["late"] for a in on_27)
    assert len({a["kind"] for a in on_27}) == len(on_27)  # none twice
    st = open_store(f"sqlite:///{snapshot_dir / STORE_NAME}")
    try:
        run = st.runs.get(D(2026, 2, 27))
        assert run is not None and run.late
    finally:
        st.close()


# ------------------------------------------------------------------ settings combinations


@pytest.mark.parametrize(("env", "ok"), [
    ({}, True),
    ({"ALVH_RUN_DELAY_MINUTES": "540"}, True),
    ({"ALVH_RUN_DELAY_MINUTES": "600", "ALVH_DATA_DEADLINE_MINUTES": "660"}, True),
    ({"ALVH_RUN_DELAY_MINUTES": "600", "ALVH_DATA_DEADLINE_MINUTES": "661"}, False),
    ({"ALVH_DATA_DEADLINE_MINUTES": "1440"}, False),
    ({"ALVH_RUN_DELAY_MINUTES": "540", "ALVH_DATA_DEADLINE_MINUTES": "900"}, False),
])
def test_settings_combinations(no_alvh_env, env, ok):
    for k, v in env.items():
        no_alvh_env.setenv(k, v)
    if ok:
        s = load_settings(env_file=None)
        assert s.run_delay_minutes + s.data_deadline_minutes <= 1260
        return
    with pytest.raises(ConfigError) as exc:
        load_settings(env_file=None)
    msg = str(exc.value)
    assert "\n" not in msg
    assert "ALVH_RUN_DELAY_MINUTES" in msg and "ALVH_DATA_DEADLINE_MINUTES" in msg
    assert "at most 1260" in msg


def test_the_bad_combination_is_refused_at_start_with_one_line(no_alvh_env, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALVH_")}
    env |= {"ALVH_DATA_DEADLINE_MINUTES": "1440", "ALVH_DATA_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "bot", "run", "--source", "snapshot"], env=env,
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("alvh: configuration error: ALVH_RUN_DELAY_MINUTES=20 plus "
                               "ALVH_DATA_DEADLINE_MINUTES=1440")
    assert isinstance(Settings.model_fields["data_deadline_minutes"].default, int)


async def test_the_final_breadth_refetch_survives_a_missed_tick(store, calendar):
    """Paused across 20:00 ET (the date job lost): the next tick still re-fetches the
    session's final breadth, once, and not after the next session has closed."""
    asked: list[dt.date] = []

    async def final(session: dt.date) -> list[str]:
        asked.append(session)
        return [f"BREADTH final figures for {session}: unchanged"]

    cfg = ServiceConfig(
        run_delay=dt.timedelta(minutes=20), deadline=dt.timedelta(hours=4),
        poll_interval=dt.timedelta(minutes=10), catchup_sessions=5, capital=2_000_000,
        source="live", final_breadth_time=dt.time(20, 0),
    )
    clock = Clock(dt.datetime(2026, 2, 26, 19, 0, tzinfo=ET))
    svc = Service(cfg, store=store, calendar=calendar,
                  watcher=RulesWatcher(None, load_rules(default_rules_path())),
                  fetch=fetch_nothing, sink=Sink(), clock=clock, sleep=clock.sleep,
                  final_breadth=final)
    assert svc.final_breadth_due() is None  # before 20:00
    clock.now = dt.datetime(2026, 2, 27, 9, 30, tzinfo=ET)  # woke up the next morning
    assert svc.final_breadth_due() == D(2026, 2, 26)
    await svc.tick()
    await svc._final
    assert asked == [D(2026, 2, 26)]
    await svc.tick()  # once
    await svc.refetch_final_breadth(D(2026, 2, 26))  # the date job, late: nothing more
    assert asked == [D(2026, 2, 26)]
    clock.now = dt.datetime(2026, 2, 27, 16, 5, tzinfo=ET)  # 02-27 closed, 20:00 not yet
    assert svc.final_breadth_due() is None
    assert await svc._runner == [(D(2026, 2, 26), "evaluated")]  # the tick's evaluation, late
