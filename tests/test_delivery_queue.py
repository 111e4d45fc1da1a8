"""The delivery queue's transitions, on SQLite and on PostgreSQL (the store lanes).

Part by part, each transition one committed statement: claim (the single
conditional UPDATE two replicas may race on), part recorded, unclaim, sent,
expired; and the reads /healthz is built from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from _delivery import T0, Clock, make_alert

from bot.delivery.outbox import Outbox, Subscribers
from bot.kernel.alerts import Topic
from bot.store import Store, open_store


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    st = open_store(store_url)
    yield st
    st.close()


def test_a_delivery_moves_part_by_part(store: Store) -> None:
    clock = Clock()
    Subscribers(store.engine, clock=clock).subscribe("telegram", "7", [Topic.HEDGE])
    outbox = Outbox(store.engine, channels=("telegram",), clock=clock)
    other = Outbox(store.engine, channels=("telegram",), clock=clock)  # another process
    outbox.enqueue([make_alert()])
    queue = outbox.queue
    (row,) = queue.due(["telegram"], 10, set())
    assert (row.parts_sent, row.fallback_at) == (0, None)

    assert not other.queue.claim(row.id, late=False)  # not its row
    assert queue.claim(row.id, late=True)
    assert not queue.claim(row.id, late=False)  # claimed once
    queue.mark_part_sent(row.id, parts_sent=1, fallback_at=None, delay=1.0)
    assert queue.due(["telegram"], 10, set()) == []  # the next part waits for its chat
    clock.now += dt.timedelta(seconds=1)
    (again,) = queue.due(["telegram"], 10, set())
    assert (again.status, again.parts_sent, again.late_delivery) == ("pending", 1, True)

    assert queue.claim(again.id, late=False)
    assert queue.get(again.id).late_delivery  # decided with the first part, kept
    queue.unclaim(again.id)  # stopped before sending it
    assert (queue.get(again.id).status, queue.get(again.id).attempts) == ("pending", 1)
    assert queue.claim(again.id, late=False)
    queue.mark_sent(again.id, parts_sent=2, fallback_at=1)
    done = queue.get(again.id)
    assert (done.status, done.parts_sent, done.fallback_at) == ("sent", 2, 1)
    assert done.sent_at == clock.now


def test_expiry_stats_and_resume(store: Store) -> None:
    clock = Clock()
    subs = Subscribers(store.engine, clock=clock)
    for chat in ("1", "2", "3"):
        subs.subscribe("telegram", chat, [Topic.HEDGE])
    outbox = Outbox(store.engine, channels=("telegram",), clock=clock)
    queue = outbox.queue
    outbox.enqueue([make_alert()])
    first, second, third = queue.rows()
    queue.claim(first.id, late=False)
    queue.mark_part_sent(first.id, parts_sent=1, fallback_at=None, delay=0)
    queue.claim(second.id, late=False)
    queue.mark_retry(second.id, delay=7200, error="telegram: NetworkError: Bad Gateway (502)",
                     count_failure=True)
    clock.now = T0 + dt.timedelta(hours=1)
    outbox.enqueue([make_alert(layer="L2")])

    stats = queue.stats(since=clock.now - dt.timedelta(days=1))
    assert (stats.pending, stats.retrying, stats.expired_since) == (6, 1, 0)
    assert stats.oldest_pending == T0
    assert queue.oldest_unfinished("telegram") == (make_alert().session, T0)

    assert queue.resume_now("telegram") == 1  # the one waiting 2 h is due at once
    assert queue.get(second.id).next_attempt_at == clock.now

    expired = queue.expire(created_before=T0 + dt.timedelta(minutes=30))
    (group,) = expired
    assert (group.alert_key, group.channel, group.count, group.partial) == (
        make_alert().key, "telegram", 3, 1)
    assert group.last_error == "telegram: NetworkError: Bad Gateway (502)"
    assert {d.status for d in queue.rows(make_alert().key)} == {"expired"}
    assert {d.status for d in queue.rows(make_alert(layer="L2").key)} == {"pending"}
    stats = queue.stats(since=clock.now - dt.timedelta(days=1))
    assert (stats.pending, stats.expired_since) == (3, 3)
    assert queue.expire(created_before=T0 + dt.timedelta(minutes=30)) == []  # once
    assert third.id in {d.id for d in queue.rows()}


def test_expiry_closes_claimed_rows_that_are_not_being_sent(store: Store) -> None:
    clock = Clock()
    subs = Subscribers(store.engine, clock=clock)
    for chat in ("1", "2"):
        subs.subscribe("telegram", chat, [Topic.HEDGE])
    outbox = Outbox(store.engine, channels=("telegram",), clock=clock)
    outbox.enqueue([make_alert()])
    waiting, sending = outbox.queue.rows()
    assert outbox.queue.claim(waiting.id, late=False)  # claimed, waiting for its slot
    assert outbox.queue.claim(sending.id, late=False)  # claimed, on the wire
    clock.now += dt.timedelta(hours=25)
    (group,) = outbox.queue.expire(clock.now - dt.timedelta(hours=24), in_flight={sending.id})
    assert group.count == 1
    assert outbox.queue.get(waiting.id).status == "expired"
    assert outbox.queue.get(sending.id).status == "sending"  # its outcome is recorded
    outbox.queue.unclaim(waiting.id)  # the worker gives back its claim: still expired
    assert outbox.queue.get(waiting.id).status == "expired"
