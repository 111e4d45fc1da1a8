"""Calendars that never silently run out: coverage per kind, the ops warning 20 sessions
before a kind runs out, and ``alvh calendar``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.app.cli import main
from bot.kernel.alerts import Topic
from bot.kernel.models import Event, EventKind
from bot.kernel.sessions import SessionCalendar
from bot.market.calendars import WARN_SESSIONS, coverage, running_out
from bot.store import Store, open_store

D = dt.date
LAST_CPI = D(2026, 12, 10)


@pytest.fixture
def store(tmp_path: Path):
    st = open_store(f"sqlite:///{tmp_path / 'c.sqlite'}")
    st.upsert_events([Event(EventKind.CPI, LAST_CPI, "file:cpi_releases.csv", dt.time(8, 30)),
                      Event(EventKind.FOMC, D(2028, 1, 26), "fed", dt.time(14, 0)),
                      Event(EventKind.PPI, D(2026, 6, 11), "fred", dt.time(8, 30))])
    yield st
    st.close()


def test_coverage_per_kind(store: Store, calendar: SessionCalendar) -> None:
    cov = {c.kind: c for c in coverage(store, calendar, D(2026, 11, 30))}
    assert (cov[EventKind.CPI].last, cov[EventKind.CPI].sessions_left) == (LAST_CPI, 8)
    assert cov[EventKind.CPI].line() == (
        "CPI   covered to 2026-12-10 (from file:cpi_releases.csv): 8 session(s) left")
    assert cov[EventKind.PPI].ended and "RUN OUT, its blackout cannot be applied" in (
        cov[EventKind.PPI].line())
    assert not cov[EventKind.FOMC].ended


def test_ops_hears_20_sessions_before_a_calendar_runs_out(store: Store,
                                                          calendar: SessionCalendar) -> None:
    twenty_before = calendar.offset(LAST_CPI, -WARN_SESSIONS)
    assert WARN_SESSIONS == 20
    early = running_out(store, calendar, calendar.previous_session(twenty_before))
    assert [a.layer for a in early] == ["PPI"]  # PPI has already run out; CPI not yet
    alerts = {a.layer: a for a in running_out(store, calendar, twenty_before)}
    cpi = alerts["CPI"]
    assert cpi.topic is Topic.OPS and cpi.title == "📅 CPI calendar runs out in 20 session(s)"
    assert "The last known CPI is on 2026-12-10" in cpi.text
    assert "blackouts before CPI cannot be applied" in cpi.text
    # The same key every day until the calendar is extended: the outbox sends it once.
    later = {a.layer: a for a in running_out(store, calendar, calendar.next_session(
        twenty_before))}
    assert later["CPI"].key == cpi.key
    store.upsert_events([Event(EventKind.CPI, D(2027, 1, 13), "fred", dt.time(8, 30))])
    assert "CPI" not in {a.layer for a in running_out(store, calendar, twenty_before)}


def test_alvh_calendar_lists_events_and_coverage(snapshot_dir, no_alvh_env, capsys) -> None:
    no_alvh_env.setenv("ALVH_DATA_DIR", str(snapshot_dir))
    assert main(["calendar", "--from", "2026-11-01", "--to", "2027-03-31",
                 "--source", "snapshot"]) == 0
    out = capsys.readouterr().out
    assert "2026-12-09  14:00  FOMC  snapshot:fomc_decisions.csv" in out
    assert "2027-01-27  14:00  FOMC  snapshot:fomc_decisions.csv" in out
    assert "2026-12-15  08:30  PPI   snapshot:ppi_releases.csv" in out
    assert "FOMC  covered to 2028-01-26" in out and "CPI   covered to 2026-12-10" in out
    assert main(["calendar", "--from", "2027-03-31", "--to", "2027-01-01"]) == 2
    assert "--to 2027-01-01 is before --from 2027-03-31" in capsys.readouterr().err
