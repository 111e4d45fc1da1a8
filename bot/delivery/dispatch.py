"""The delivery worker: sends what the outbox holds, within each channel's limits.

Guarantees, and how they are kept:

* **Nothing lost.** The worker only ever sends rows of the outbox, which were
  committed before it saw them. A delivery is marked ``sending`` (committed)
  before the channel is called and ``sent`` after; on start-up the rows an
  earlier process left ``pending`` or ``sending`` are adopted and sent. A crash
  between a send and its ``sent`` record repeats at most the deliveries that
  were in flight (at-least-once), never more.
* **Late is said.** A delivery resumed after a restart, or sent more than
  ``late_after`` after its alert was stored, goes out with ``late=True`` and
  the channel puts "⏱ delivered late" on top.
* **Limits are kept.** Each channel declares its rates (``Rate`` class
  attributes on the channel); a 429's ``retry_after`` holds back the whole
  channel for that long, as Telegram asks, and is not counted as a failure.
* **Failures are bounded.** Temporary failures back off exponentially and
  give up after ``max_attempts`` with an ``ops`` alert; a recipient who is
  gone (Telegram 403, SMTP 550) is deactivated at once and never retried.
* **One recipient's alerts arrive in order**: a later delivery to the same
  address waits while an earlier one is unfinished.
* **Graceful stop** lets the sends in flight finish and leaves the rest
  ``pending`` for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from typing import ParamSpec, TypeVar

from bot.delivery.channels.base import Channel, RecipientGone, RetryLater
from bot.delivery.channels.ratelimit import Limiter
from bot.delivery.outbox import Delivery, OpsReporter, Outbox
from bot.kernel.alerts import Alert, Topic
from bot.kernel.errors import PermanentError, TemporaryError

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


@dataclasses.dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry number n (n = failures so far, from 1)."""

    initial: float = 2.0
    factor: float = 2.0
    maximum: float = 300.0

    def delay(self, failures: int) -> float:
        return float(min(self.maximum, self.initial * self.factor ** max(0, failures - 1)))


@dataclasses.dataclass
class WorkerStats:
    sent: int = 0
    late: int = 0
    retried: int = 0
    rate_limited: int = 0
    failed: int = 0
    deactivated: int = 0
    resumed: int = 0


Observer = Callable[[str, str, float | None], None]
"""``(channel, outcome, seconds from alert to delivery or None)``: feeds the metrics."""


def _ignore(channel: str, outcome: str, latency: float | None) -> None:
    return None


class DeliveryWorker:
    def __init__(
        self,
        outbox: Outbox,
        channels: Iterable[Channel],
        *,
        max_attempts: int = 5,
        concurrency: int = 16,
        backoff: Backoff | None = None,
        late_after: dt.timedelta = dt.timedelta(minutes=15),
        poll_interval: float = 1.0,
        limiter: Limiter | None = None,
        ops: OpsReporter | None = None,
        observer: Observer | None = None,
    ) -> None:
        if max_attempts < 1 or concurrency < 1:
            raise ValueError("max_attempts and concurrency must be at least 1")
        self._outbox = outbox
        self._queue = outbox.queue
        self._channels = {channel.name: channel for channel in channels}
        self._max_attempts = max_attempts
        self._concurrency = concurrency
        self._backoff = backoff or Backoff()
        self._late_after = late_after
        self._poll = poll_interval
        self._limiter = limiter or Limiter()
        self._ops = ops if ops is not None else OpsReporter(outbox)
        self._observe: Observer = observer or _ignore
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._sending: set[int] = set()
        self._alerts: OrderedDict[str, Alert] = OrderedDict()
        self._wake = asyncio.Event()
        self._stopping = False
        self._running = False
        self._stopped = asyncio.Event()
        self.stats = WorkerStats()

    @property
    def in_flight(self) -> int:
        """Deliveries being sent right now (marked ``sending``)."""
        return len(self._sending)

    def wake(self) -> None:
        """New alerts were enqueued: look now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until ``stop()``."""
        await self._loop(until_idle=False)

    async def drain(self) -> None:
        """Deliver until nothing is left unfinished (retries included), then return.

        For one-shot runs and tests; bound it with ``asyncio.timeout`` if needed.
        """
        await self._loop(until_idle=True)

    async def stop(self, grace: float = 30.0) -> None:
        """Finish the sends in flight (up to ``grace`` seconds) and park the rest.

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
        try:
            adopted = await _db(self._queue.recover)
            if adopted:
                self.stats.resumed += adopted
                log.info("delivery: resuming %d unfinished deliveries after a restart", adopted)
            names = list(self._channels)
            while not self._stopping:
                self._wake.clear()
                await self._fill(names)
                if until_idle and not self._tasks and not await _db(self._queue.unfinished, names):
                    return
                await self._wait(names)
        finally:
            self._running = False
            self._stopped.set()

    async def _fill(self, names: list[str]) -> None:
        free = self._concurrency - len(self._tasks)
        if free <= 0:
            return
        due = await _db(self._queue.due, names, free, set(self._tasks))
        if self._stopping:
            return  # stop() came while we were reading: leave these pending
        for delivery in due:
            task = asyncio.create_task(self._deliver(delivery), name=f"delivery-{delivery.id}")
            self._tasks[delivery.id] = task
            task.add_done_callback(functools.partial(self._finished, delivery.id))

    def _finished(self, delivery_id: int, _task: asyncio.Task[None]) -> None:
        task = self._tasks.pop(delivery_id, None)
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("delivery %d: worker task crashed", delivery_id, exc_info=task.exception())
        self._wake.set()

    async def _wait(self, names: list[str]) -> None:
        timeout = self._poll
        if len(self._tasks) < self._concurrency:
            now = self._queue.now()
            upcoming = await _db(self._queue.next_due_at, names, now)
            if upcoming is not None:
                timeout = min(timeout, max(0.0, (upcoming - now).total_seconds()))
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)
        except TimeoutError:
            pass

    # ------------------------------------------------------------------ one delivery
    async def _deliver(self, delivery: Delivery) -> None:
        channel = self._channels[delivery.channel]
        alert = await self._alert(delivery.alert_key)
        if alert is None:  # pragma: no cover - the foreign key makes this impossible
            return
        await self._limiter.acquire(channel, delivery.recipient, channel.cost(alert))
        if self._stopping:
            return  # parked: still pending in the outbox
        late = self._is_late(delivery, alert)
        outgoing = dataclasses.replace(alert, late=True) if late and not alert.late else alert
        if not await _db(self._queue.mark_sending, delivery.id):
            log.warning("delivery %d: claimed elsewhere, not sent here", delivery.id)
            return
        self._sending.add(delivery.id)
        try:
            try:
                await channel.send(delivery.recipient, outgoing)
            except Exception as exc:  # every outcome is recorded, none escapes
                await self._failed(channel, delivery, alert, exc)
            else:
                await _db(self._queue.mark_sent, delivery.id, late=late)
                self.stats.sent += 1
                self.stats.late += int(late)
                latency = (self._queue.now() - delivery.alert_created_at).total_seconds()
                self._observe(channel.name, "sent", latency)
        finally:
            self._sending.discard(delivery.id)

    def _is_late(self, delivery: Delivery, alert: Alert) -> bool:
        if alert.late or delivery.resumed:
            return True
        return self._queue.now() - delivery.alert_created_at > self._late_after

    async def _failed(
        self, channel: Channel, delivery: Delivery, alert: Alert, exc: Exception
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"
        shown = channel.shown_address(delivery.recipient)
        where = f"delivery {delivery.id} ({delivery.alert_key} → {channel.name}:{shown})"
        if isinstance(exc, RetryLater):
            self._limiter.pause(channel, exc.seconds)
            self.stats.rate_limited += 1
            self._observe(channel.name, "rate_limited", None)
            log.warning("%s: flood control, retrying in %.1f s", where, exc.seconds)
            await _db(
                self._queue.mark_retry,
                delivery.id,
                delay=exc.seconds,
                error=error,
                count_failure=False,
            )
            return
        if isinstance(exc, RecipientGone):
            self.stats.deactivated += 1
            self._observe(channel.name, "recipient_gone", None)
            log.info("%s: recipient gone, deactivated: %s", where, exc)
            await _db(self._queue.mark_recipient_gone, delivery.id, error=error)
            return
        if isinstance(exc, PermanentError):
            log.error("%s: refused: %s", where, exc)
            await self._give_up(channel, delivery, alert, error, count_failure=False)
            return
        if not isinstance(exc, TemporaryError):
            log.error("%s: unexpected error", where, exc_info=exc)
        failures = delivery.failures + 1
        if failures >= self._max_attempts:
            log.error("%s: giving up after %d failures: %s", where, failures, exc)
            await self._give_up(channel, delivery, alert, error, count_failure=True)
            return
        delay = self._backoff.delay(failures)
        self.stats.retried += 1
        self._observe(channel.name, "retried", None)
        log.warning("%s: %s; retry %d in %.1f s", where, exc, failures, delay)
        await _db(self._queue.mark_retry, delivery.id, delay=delay, error=error, count_failure=True)

    async def _give_up(
        self, channel: Channel, delivery: Delivery, alert: Alert, error: str, *, count_failure: bool
    ) -> None:
        self.stats.failed += 1
        self._observe(channel.name, "failed", None)
        await _db(self._queue.mark_failed, delivery.id, error=error, count_failure=count_failure)
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
