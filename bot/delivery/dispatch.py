"""The delivery worker: sends what the outbox holds, part by part, within each
channel's limits, for as long as the alert is worth sending.

Guarantees, and how they are kept:

* **Nothing lost.** The worker only ever sends rows of the outbox, which were
  committed before it saw them. Each *part* of a delivery (Telegram: the
  chart, then the text) is claimed (``sending``, committed) before the channel
  is called and recorded after, so a crash repeats at most the parts that were
  in flight and a retry resumes at the first part not yet sent. On start-up
  the rows an earlier process left ``pending`` or ``sending`` are adopted.
* **Transient is never terminal.** Timeouts, connection errors, 5xx and 429
  keep a delivery pending, retried with capped exponential backoff with
  jitter, until its alert is older than ``max_age``: then it is closed as
  ``expired`` and ``ops`` is told, by every channel that still works. Only
  permanent answers end a delivery early: the recipient is gone (Telegram
  403, SMTP 550: the subscriber is deactivated) or the message itself is
  refused (reported to ``ops``).
* **A channel that is down is probed, not hammered.** When the channel health
  (:mod:`bot.delivery.health`) says a channel is unreachable, one delivery at
  a time is tried, with backoff; the moment the channel is back (seen by the
  worker or by anyone else, e.g. Telegram's long polling) every waiting
  delivery is due again at once. A channel down for ``stalled_after`` is
  reported to ``ops``.
* **Limits are kept.** Every part waits for the channel's pacer
  (:mod:`bot.delivery.channels.ratelimit`): no recipient gets two messages
  closer than its limit, the channel stays under its overall rate, and a 429
  holds back that recipient only (or the whole channel when it is the bot as
  a whole that is refused). Command replies share the pacer and go first.
* **Late is said.** A delivery resumed after a restart, or whose first part
  leaves more than ``late_after`` after its alert was stored, goes out with
  ``late=True`` (the channel puts "⏱ delivered late" on top); the decision is
  recorded with the first part so every part of an alert looks the same.
* **One recipient's alerts arrive in order**: a later delivery to the same
  address waits while an earlier one is unfinished.
* **Graceful stop** lets the parts in flight finish and leaves the rest
  ``pending`` for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from typing import ParamSpec, TypeVar

from bot.delivery.channels.base import (
    Channel,
    DeliveryUnavailable,
    PartSent,
    Progress,
    RecipientGone,
    RetryLater,
)
from bot.delivery.channels.ratelimit import BROADCAST, LocalPacer, Pacer
from bot.delivery.health import ChannelHealth
from bot.delivery.outbox import Delivery, OpsReporter, Outbox
from bot.kernel.alerts import Alert, Topic
from bot.kernel.errors import PermanentError, TemporaryError

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


@dataclasses.dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry number n (n = failures so far, from 1): exponential,
    capped at ``maximum``, with jitter.

    The jitter (each delay drawn from ``[(1 - jitter) × d, d]``) spreads the
    retries of a fan-out that failed together, so they do not all come back
    at the same instant when the service does.
    """

    initial: float = 2.0
    factor: float = 2.0
    maximum: float = 300.0
    jitter: float = 0.5

    def ceiling(self, failures: int) -> float:
        """The delay before jitter."""
        exponent = min(max(0, failures - 1), 64)
        return float(min(self.maximum, self.initial * self.factor ** exponent))

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        ceiling = self.ceiling(failures)
        draw = (rng or random).random()
        return ceiling * (1.0 - self.jitter * draw)


@dataclasses.dataclass
class WorkerStats:
    sent: int = 0
    """Deliveries completed (every part sent)."""
    parts: int = 0
    """Parts sent, all deliveries together."""
    late: int = 0
    retried: int = 0
    rate_limited: int = 0
    failed: int = 0
    deactivated: int = 0
    resumed: int = 0
    expired: int = 0
    probes: int = 0


Observer = Callable[[str, str, float | None], None]
"""``(channel, outcome, seconds from alert to delivery or None)``: feeds the metrics."""


def _ignore(channel: str, outcome: str, latency: float | None) -> None:
    return None


class DeliveryWorker:
    POSTPONE_AFTER: float = 0.5
    """A delivery whose recipient may not get a message for longer than this (its
    per-chat spacing, a 429) is postponed rather than kept waiting in the pacer."""
    PROBE_MAX_SECONDS: float = 30.0
    """Longest wait between two probes of a channel that is down."""
    EXPIRE_EVERY: float = 30.0
    """Seconds between two looks for deliveries older than ``max_age`` (less when
    ``max_age`` is tiny, as in tests)."""

    def __init__(
        self,
        outbox: Outbox,
        channels: Iterable[Channel],
        *,
        concurrency: int = 16,
        backoff: Backoff | None = None,
        late_after: dt.timedelta = dt.timedelta(minutes=15),
        max_age: dt.timedelta = dt.timedelta(hours=24),
        stalled_after: dt.timedelta = dt.timedelta(minutes=30),
        poll_interval: float = 1.0,
        pacer: Pacer | None = None,
        health: ChannelHealth | None = None,
        ops: OpsReporter | None = None,
        observer: Observer | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if max_age <= dt.timedelta(0):
            raise ValueError("max_age must be positive")
        self._outbox = outbox
        self._queue = outbox.queue
        self._channels = {channel.name: channel for channel in channels}
        self._concurrency = concurrency
        self._backoff = backoff or Backoff()
        self._late_after = late_after
        self._max_age = max_age
        self._stalled_after = stalled_after
        self._poll = poll_interval
        self._pacer: Pacer = pacer or LocalPacer()
        self.health = health or ChannelHealth(clock=self._queue.now)
        self._ops = ops if ops is not None else OpsReporter(outbox)
        self._observe: Observer = observer or _ignore
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._sending: set[int] = set()
        self._alerts: OrderedDict[str, Alert] = OrderedDict()
        self._probing: dict[str, int] = {}
        self._probe_at: dict[str, float] = {}
        self._probe_failures: dict[str, int] = {}
        self._back: set[str] = set()
        self._reported_down: dict[str, dt.datetime] = {}
        self._next_expiry = 0.0
        self._next_renewal = 0.0
        self._expire_every = min(self.EXPIRE_EVERY, max_age.total_seconds() / 4)
        self._wake = asyncio.Event()
        self._stopping = False
        self._running = False
        self._stopped = asyncio.Event()
        self.stats = WorkerStats()

    @property
    def in_flight(self) -> int:
        """Parts being sent right now (their deliveries marked ``sending``)."""
        return len(self._sending)

    @property
    def channel_names(self) -> list[str]:
        return list(self._channels)

    def wake(self) -> None:
        """New alerts were enqueued: look now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until ``stop()``."""
        await self._loop(until_idle=False)

    async def drain(self) -> None:
        """Deliver until nothing is left unfinished (retries included), then return.

        For one-shot runs and tests; bound it with ``asyncio.timeout``: with a
        channel down it waits until the channel is back or the deliveries expire.
        """
        await self._loop(until_idle=True)

    async def stop(self, grace: float = 30.0) -> None:
        """Finish the parts in flight (up to ``grace`` seconds) and park the rest.

        A stopped worker stays stopped (a later ``run`` returns at once), so a
        stop that races the start of ``run`` still wins; make a new worker to
        deliver again.
        """
        self._stopping = True
        self._wake.set()
        for delivery_id, task in list(self._tasks.items()):
            if delivery_id not in self._sending:
                task.cancel()
        pending = list(self._tasks.values())
        if pending:
            _done, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        if self._running:
            await self._stopped.wait()

    @contextlib.asynccontextmanager
    async def running(self, grace: float = 30.0) -> AsyncIterator[DeliveryWorker]:
        """Deliver in the background for the ``async with`` block; on exit, :meth:`stop`."""
        task = asyncio.create_task(self.run(), name="delivery")
        try:
            yield self
        finally:
            await self.stop(grace=grace)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------------ loop
    async def _loop(self, *, until_idle: bool) -> None:
        if self._running:
            raise RuntimeError("the delivery worker is already running")
        self._running = True
        self._stopped.clear()
        unlisten = self.health.listen(self._channel_changed)
        try:
            adopted = await _db(self._queue.recover)
            if adopted:
                self.stats.resumed += adopted
                log.info("delivery: resuming %d unfinished deliveries after a restart", adopted)
            names = list(self._channels)
            while not self._stopping:
                self._wake.clear()
                await self._maintain(names)
                await self._fill(names)
                if until_idle and not self._tasks and not await _db(self._queue.unfinished, names):
                    return
                await self._wait(names)
        finally:
            unlisten()
            self._running = False
            self._stopped.set()

    def _channel_changed(self, channel: str, up: bool) -> None:
        if channel not in self._channels:
            return
        if up:
            self._back.add(channel)
            self._probe_at.pop(channel, None)
            self._probe_failures.pop(channel, None)
        else:
            self._probe_at[channel] = time.monotonic() + self._probe_delay(1)
        self._wake.set()

    async def _maintain(self, names: list[str]) -> None:
        """Renew this instance's leases, resume channels that came back, expire what is
        too old, report long outages."""
        if self._queue.shared and time.monotonic() >= self._next_renewal:
            self._next_renewal = time.monotonic() + self._queue.lease.total_seconds() / 3
            await _db(self._queue.renew, list(self._tasks))
        for channel in list(self._back):
            self._back.discard(channel)
            self._reported_down.pop(channel, None)
            resumed = await _db(self._queue.resume_now, channel)
            if resumed:
                log.info("delivery: %s is back; %d waiting deliveries due now", channel, resumed)
        if time.monotonic() >= self._next_expiry:
            self._next_expiry = time.monotonic() + self._expire_every
            await self._expire()
        for channel in names:
            await self._report_outage(channel)

    async def _expire(self) -> None:
        cutoff = self._queue.now() - self._max_age
        for group in await _db(self._queue.expire, cutoff, in_flight=set(self._sending)):
            self.stats.expired += group.count
            self._observe(group.channel, "expired", None)
            alert = await self._alert(group.alert_key)
            title = alert.title if alert is not None else group.alert_key
            log.error("delivery: “%s” (%s) expired undelivered for %d recipient(s) by %s "
                      "after %s; last error: %s", title, group.alert_key, group.count,
                      group.channel, self._max_age, group.last_error)
            if alert is not None and alert.topic is not Topic.OPS:
                await _db(self._ops.delivery_expired, alert, group.channel, group.count,
                          group.partial, self._max_age, group.last_error)
                self._wake.set()

    async def _report_outage(self, channel: str) -> None:
        state = self.health.state(channel)
        if state.up is not False or state.since is None:
            return
        if self._reported_down.get(channel) == state.since:
            return
        if self._queue.now() - state.since < self._stalled_after:
            return
        oldest = await _db(self._queue.oldest_unfinished, channel)
        self._reported_down[channel] = state.since
        if oldest is None:
            return
        waiting = await _db(self._queue.unfinished, [channel])
        log.error("delivery: %s unreachable since %s; %d deliveries waiting", channel,
                  state.since.isoformat(), waiting)
        await _db(self._ops.channel_down, channel, state.since, oldest[0], waiting, state.error)
        self._wake.set()

    async def _fill(self, names: list[str]) -> None:
        free = self._concurrency - len(self._tasks)
        if free <= 0:
            return
        up = [name for name in names if not self.health.is_down(name)]
        due = await _db(self._queue.due, up, free, set(self._tasks)) if up else []
        if self._stopping:
            return  # stop() came while we were reading: leave these pending
        for delivery in due:
            self._start(delivery, probe=False)
        now = time.monotonic()
        for name in names:
            if (not self.health.is_down(name) or name in self._probing
                    or now < self._probe_at.get(name, 0.0)
                    or len(self._tasks) >= self._concurrency):
                continue
            probe = await _db(self._queue.due, [name], 1, set(self._tasks))
            if probe and not self._stopping:
                self._probing[name] = probe[0].id
                self.stats.probes += 1
                self._start(probe[0], probe=True)

    def _start(self, delivery: Delivery, *, probe: bool) -> None:
        task = asyncio.create_task(self._deliver(delivery, probe=probe),
                                   name=f"delivery-{delivery.id}")
        self._tasks[delivery.id] = task
        task.add_done_callback(functools.partial(self._finished, delivery))

    def _finished(self, delivery: Delivery, task: asyncio.Task[None]) -> None:
        self._tasks.pop(delivery.id, None)
        if self._probing.get(delivery.channel) == delivery.id:
            del self._probing[delivery.channel]
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery %d: worker task crashed", delivery.id, exc_info=task.exception())
        self._wake.set()

    async def _wait(self, names: list[str]) -> None:
        timeout = self._poll
        if len(self._tasks) < self._concurrency:
            now = self._queue.now()
            up = [name for name in names if not self.health.is_down(name)]
            upcoming = await _db(self._queue.next_due_at, up, now) if up else None
            if upcoming is not None:
                timeout = min(timeout, max(0.0, (upcoming - now).total_seconds()))
            probes = [at for name, at in self._probe_at.items()
                      if self.health.is_down(name) and name not in self._probing]
            if probes:
                timeout = min(timeout, max(0.0, min(probes) - time.monotonic()))
        timeout = min(timeout, max(0.0, self._next_expiry - time.monotonic()))
        if self._queue.shared and self._tasks:
            timeout = min(timeout, max(0.0, self._next_renewal - time.monotonic()))
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)
        except TimeoutError:
            pass

    # ------------------------------------------------------------------ one part
    async def _deliver(self, delivery: Delivery, *, probe: bool) -> None:
        channel = self._channels[delivery.channel]
        alert = await self._alert(delivery.alert_key)
        if alert is None:  # pragma: no cover - the foreign key makes this impossible
            return
        wait = self._pacer.wait_for(channel, delivery.recipient)
        if wait > self.POSTPONE_AFTER:
            # The recipient (or the channel) cannot take a message for a while: come
            # back then rather than hold a worker slot and a claim meanwhile.
            await _db(self._queue.postpone, delivery.id, delay=wait)
            return
        late = delivery.late_delivery if delivery.parts_sent else self._is_late(delivery, alert)
        outgoing = dataclasses.replace(alert, late=True) if late and not alert.late else alert
        if not await _db(self._queue.claim, delivery.id, late=late):
            log.warning("delivery %d: claimed elsewhere, not sent here", delivery.id)
            return
        # Claimed first, paced second: between the pacer's slot and the request there is
        # then no database write, so messages leave exactly as spaced.
        try:
            await self._pacer.acquire(channel, delivery.recipient, priority=BROADCAST)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await _db(self._queue.unclaim, delivery.id)
            raise
        if self._stopping or self._queue.now() - delivery.alert_created_at > self._max_age:
            # Parked for the next start, or too old now: left pending, the next
            # expiry round closes it (and tells ops).
            await _db(self._queue.unclaim, delivery.id)
            return
        self._sending.add(delivery.id)
        try:
            progress = Progress(delivery.parts_sent, delivery.fallback_at)
            try:
                result = await channel.send_part(delivery.recipient, outgoing, progress)
            except Exception as exc:  # every outcome is recorded, none escapes
                await self._failed(channel, delivery, alert, exc, probe=probe)
            else:
                await self._part_sent(channel, delivery, alert, result, late=late)
        finally:
            self._sending.discard(delivery.id)

    def _probe_delay(self, failed_probes: int) -> float:
        """The backoff, capped at :attr:`PROBE_MAX_SECONDS`: one request is cheap, and
        the alerts waiting should go within seconds of the service coming back."""
        return min(self._backoff.delay(failed_probes, self._rng), self.PROBE_MAX_SECONDS)

    def _is_late(self, delivery: Delivery, alert: Alert) -> bool:
        if alert.late or delivery.resumed:
            return True
        return self._queue.now() - delivery.alert_created_at > self._late_after

    def _answered(self, channel: Channel) -> None:
        if not channel.reports_health:
            self.health.succeeded(channel.name)

    async def _part_sent(
        self, channel: Channel, delivery: Delivery, alert: Alert, result: PartSent, *, late: bool
    ) -> None:
        self._answered(channel)
        self.stats.parts += 1
        progress = result.progress
        if result.note is not None:
            shown = channel.shown_address(delivery.recipient)
            await _db(self._ops, alert, channel.name, shown, result.note)
            self._wake.set()
        if not result.done:
            delay = self._pacer.wait_for(channel, delivery.recipient)
            await _db(self._queue.mark_part_sent, delivery.id, parts_sent=progress.sent,
                      fallback_at=progress.fallback_at, delay=delay)
            return
        await _db(self._queue.mark_sent, delivery.id, parts_sent=progress.sent,
                  fallback_at=progress.fallback_at)
        self.stats.sent += 1
        self.stats.late += int(late)
        latency = (self._queue.now() - delivery.alert_created_at).total_seconds()
        self._observe(channel.name, "sent", latency)

    async def _failed(
        self, channel: Channel, delivery: Delivery, alert: Alert, exc: Exception, *, probe: bool
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"
        shown = channel.shown_address(delivery.recipient)
        part = f" part {delivery.parts_sent + 1}" if delivery.parts_sent else ""
        where = f"delivery {delivery.id}{part} ({delivery.alert_key} → {channel.name}:{shown})"
        if isinstance(exc, RetryLater):
            self._answered(channel)  # flood control, not an outage
            recipient = delivery.recipient if exc.recipient_only else None
            self._pacer.hold(channel, recipient, exc.seconds)
            self.stats.rate_limited += 1
            self._observe(channel.name, "rate_limited", None)
            log.warning("%s: flood control, retrying in %.1f s", where, exc.seconds)
            await _db(self._queue.mark_retry, delivery.id, delay=exc.seconds, error=error,
                      count_failure=False)
            return
        if isinstance(exc, RecipientGone):
            self._answered(channel)
            self.stats.deactivated += 1
            self._observe(channel.name, "recipient_gone", None)
            log.info("%s: recipient gone, deactivated: %s", where, exc)
            await _db(self._queue.mark_recipient_gone, delivery.id, error=error)
            return
        if isinstance(exc, PermanentError):
            self._answered(channel)
            log.error("%s: refused: %s", where, exc)
            await self._give_up(channel, delivery, alert, error)
            return
        if isinstance(exc, DeliveryUnavailable) and not exc.unreachable:
            self._answered(channel)
        elif isinstance(exc, TemporaryError):
            if not channel.reports_health:
                self.health.failed(channel.name, str(exc))
        else:
            log.error("%s: unexpected error (retried like a temporary one)", where, exc_info=exc)
        failures = delivery.failures + 1
        delay = self._backoff.delay(failures, self._rng)
        if probe and self.health.is_down(channel.name):
            count = self._probe_failures.get(channel.name, 0) + 1
            self._probe_failures[channel.name] = count
            self._probe_at[channel.name] = time.monotonic() + self._probe_delay(count)
        self.stats.retried += 1
        self._observe(channel.name, "retried", None)
        log.warning("%s: %s; retry %d in %.1f s", where, exc, failures, delay)
        await _db(self._queue.mark_retry, delivery.id, delay=delay, error=error, count_failure=True)

    async def _give_up(self, channel: Channel, delivery: Delivery, alert: Alert,
                       error: str) -> None:
        self.stats.failed += 1
        self._observe(channel.name, "failed", None)
        await _db(self._queue.mark_failed, delivery.id, error=error)
        if alert.topic is Topic.OPS:
            return  # an ops alert about an ops alert could loop
        await _db(
            self._ops.delivery_failed,
            alert,
            channel.name,
            channel.shown_address(delivery.recipient),
            delivery.attempts + 1,
            error,
        )
        self._wake.set()

    async def _alert(self, key: str) -> Alert | None:
        alert = self._alerts.get(key)
        if alert is None:
            alert = await _db(self._queue.alert, key)
            if alert is None:
                return None
            self._alerts[key] = alert
            while len(self._alerts) > 64:
                self._alerts.popitem(last=False)
        return alert


async def _db(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Database calls run in a thread so a slow disk never stalls the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)
