"""What /healthz says about delivery: backlog, retries, expiries, and each channel."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from _delivery import T0, Clock, make_alert, store_at

from bot.app.delivery_status import delivery_health
from bot.app.health import Health, merged
from bot.delivery.health import ChannelHealth
from bot.delivery.outbox import Outbox, Standing
from bot.kernel.alerts import Topic


def test_pending_too_long_or_expired_in_the_last_day_is_a_503(tmp_path: Path) -> None:
    clock = Clock()
    store = store_at(tmp_path / "a.sqlite")
    try:
        outbox = Outbox(store.engine, channels=("telegram",), clock=clock,
                        standing=[Standing("telegram", "1", frozenset(Topic))])
        channels = ChannelHealth(clock=clock)
        health = delivery_health(outbox.queue, channels, ["telegram"],
                                 pending_alert=dt.timedelta(minutes=30), clock=clock)
        assert health().ok and health().body["deliveries"]["pending"] == 0

        outbox.enqueue([make_alert()])
        (row,) = outbox.queue.rows()
        outbox.queue.claim(row.id, late=False)
        outbox.queue.mark_retry(row.id, delay=60, error="NetworkError: Bad Gateway (502)",
                                count_failure=True)
        channels.failed("telegram", "127.0.0.1:443: httpx.ConnectError")
        clock.now = T0 + dt.timedelta(minutes=29)
        early = health()
        assert early.ok  # waiting, not yet late: no page at 3 a.m. for a blip
        body = early.body
        assert body["deliveries"] | {"problems": None} == {
            "status": "ok", "pending": 1, "retrying": 1, "expired_last_day": 0,
            "oldest_pending_seconds": 29 * 60.0, "problems": None}
        assert body["channels"]["telegram"]["status"] == "down"
        assert "ConnectError" in body["channels"]["telegram"]["last_error"]

        clock.now = T0 + dt.timedelta(minutes=31)
        late = health()
        assert not late.ok
        assert late.body["deliveries"]["problems"] == [
            "a delivery has been pending for 31 min (limit 30 min)"]

        outbox.queue.expire(created_before=clock.now)
        expired = health()
        assert not expired.ok and expired.body["deliveries"]["expired_last_day"] == 1
        assert expired.body["deliveries"]["pending"] == 0
        clock.now += dt.timedelta(days=1, minutes=1)
        assert health().ok  # an expiry a day old is history, not an incident
    finally:
        store.close()


def test_the_service_and_delivery_answer_as_one() -> None:
    service = Health(True, {"status": "ok", "last_evaluated_session": "2026-02-27",
                            "pending_deliveries": 3})
    failing = Health(False, {"deliveries": {"status": "failing"}})
    both = merged(lambda: service, lambda: failing)()
    assert not both.ok and both.body["status"] == "failing"
    assert both.body["last_evaluated_session"] == "2026-02-27"  # the service's keys stay
    assert both.body["deliveries"] == {"status": "failing"}
    assert merged(lambda: service, lambda: Health(True, {}))().body["status"] == "ok"
