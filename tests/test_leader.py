"""Leadership on a real PostgreSQL server: one holder, takeover when it dies or is cut off."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from bot.store.leader import LeaderLock, SingleInstance, leadership_for


@pytest.fixture
def engines(postgres_url):
    made = [sa.create_engine(postgres_url) for _ in range(2)]
    yield made
    for e in made:
        e.dispose()


def test_sqlite_is_always_its_own_leader(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'a.sqlite'}")
    lead = leadership_for(engine)
    assert isinstance(lead, SingleInstance) and lead.try_acquire() and lead.held()
    with pytest.raises(ValueError, match="needs PostgreSQL"):
        LeaderLock(engine)


def test_one_leader_and_a_clean_handover(engines):
    a, b = LeaderLock(engines[0]), LeaderLock(engines[1])
    assert a.try_acquire() and a.held()
    assert not b.try_acquire() and not b.held()
    assert a.try_acquire()  # asking again while leader keeps it
    a.release()
    assert not a.held()
    assert b.try_acquire() and b.held()
    b.release()


def test_a_leader_cut_off_from_the_database_knows_it_and_a_standby_takes_over(engines):
    a, b = LeaderLock(engines[0]), LeaderLock(engines[1])
    assert a.try_acquire()
    with engines[1].connect() as admin:
        # The server drops the leader's session, as a network cut or a restart would.
        admin.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND granted AND pid <> pg_backend_pid()"))
        admin.commit()
    assert b.try_acquire()  # the lock went with the session
    assert not a.held()  # and the old leader notices on its next check
    assert not a.try_acquire()
    b.release()


def test_a_sigkilled_leader_is_replaced_within_one_poll(postgres_url, engines):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time, sqlalchemy as sa\n"
         "from bot.store.leader import LeaderLock\n"
         "lock = LeaderLock(sa.create_engine(sys.argv[1]))\n"
         "assert lock.try_acquire()\n"
         "print('leader', flush=True)\n"
         "time.sleep(600)\n", postgres_url],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "leader"
        standby = LeaderLock(engines[0])
        assert not standby.try_acquire()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        start = time.monotonic()
        while not standby.try_acquire():
            assert time.monotonic() - start < 10, "the lock outlived its holder"
            time.sleep(0.1)
        assert standby.held()
        standby.release()
    finally:
        if holder.poll() is None:
            holder.kill()
