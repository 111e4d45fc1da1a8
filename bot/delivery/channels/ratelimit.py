"""Token buckets for the service limits a channel declares.

Why a bucket that may go into debt: an alert that Telegram must split into
three messages costs three tokens, but it is sent as one unit (so the parts
arrive together). The bucket lets it through when one token is available and
charges all three, so the *next* sender waits for the debt to be repaid: the
average rate holds without ever splitting a delivery.

Waiters are served in arrival order (``asyncio.Lock`` is FIFO), so a busy
fan-out cannot starve any one recipient.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bot.delivery.channels.base import Channel, Rate

Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    def __init__(
        self,
        rate: Rate,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate.per_second <= 0 or rate.burst < 1:
            raise ValueError(f"bad rate {rate}")
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._tokens = rate.burst
        self._stamp = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    @property
    def last_used(self) -> float:
        return self._stamp

    def idle(self) -> bool:
        """Full again and nobody waiting: the bucket can be forgotten."""
        self._refill()
        return not self._lock.locked() and self._tokens >= self.rate.burst

    def pause(self, seconds: float) -> None:
        """Let nothing through for ``seconds`` (the service asked us to back off)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def acquire(self, cost: float = 1.0) -> None:
        """Wait for a token, then charge ``cost`` (possibly going into debt)."""
        async with self._lock:
            await self._until_ready()
            self.take(cost)

    async def ready(self) -> None:
        """Wait until a token is available, without taking it."""
        async with self._lock:
            await self._until_ready()

    def take(self, cost: float) -> None:
        """Charge ``cost`` now, whatever the balance."""
        self._refill()
        self._tokens -= cost

    async def _until_ready(self) -> None:
        while True:
            self._refill()
            wait = self._paused_until - self._clock()
            if wait <= 0:
                if self._tokens >= 1.0:
                    return
                wait = (1.0 - self._tokens) / self.rate.per_second
            await self._sleep(wait)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._stamp)
        self._tokens = min(self.rate.burst, self._tokens + elapsed * self.rate.per_second)
        self._stamp = now


class Limiter:
    """One overall bucket per channel and one per (channel, recipient)."""

    MAX_IDLE_BUCKETS = 1000
    """Past this many per-recipient buckets, idle ones are dropped (they are full anyway)."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._overall: dict[str, TokenBucket] = {}
        self._recipient: dict[tuple[str, str], TokenBucket] = {}

    async def acquire(self, channel: Channel, recipient: str, cost: int) -> None:
        """Wait until ``recipient`` and the channel as a whole may take ``cost`` messages.

        The recipient's limit is waited out first, so a sender held back by one
        chat does not sit on a token of the channel-wide budget; it is charged
        only once the channel-wide token is granted, i.e. at the moment of
        sending (charging it earlier would let a queue behind the global limit
        bunch one chat's messages together).
        """
        rate = channel.recipient_rate(recipient)
        bucket: TokenBucket | None = None
        if rate is not None:
            key = (channel.name, recipient)
            bucket = self._recipient.get(key)
            if bucket is None:
                self._prune()
                bucket = self._recipient[key] = self._bucket(rate)
            await bucket.ready()
        overall = self._overall_bucket(channel)
        if overall is not None:
            await overall.acquire(cost)
        if bucket is not None:
            bucket.take(cost)

    def pause(self, channel: Channel, seconds: float) -> None:
        """Flood control hit: hold the whole channel back, as Telegram asks."""
        overall = self._overall_bucket(channel)
        if overall is None:
            overall = self._overall[channel.name] = self._bucket(Rate(1e9, 1e9))
        overall.pause(seconds)

    def _overall_bucket(self, channel: Channel) -> TokenBucket | None:
        bucket = self._overall.get(channel.name)
        if bucket is None:
            rate = channel.overall_rate()
            if rate is None:
                return None
            bucket = self._overall[channel.name] = self._bucket(rate)
        return bucket

    def _bucket(self, rate: Rate) -> TokenBucket:
        return TokenBucket(rate, clock=self._clock, sleep=self._sleep)

    def _prune(self) -> None:
        if len(self._recipient) < self.MAX_IDLE_BUCKETS:
            return
        for key in [k for k, b in self._recipient.items() if b.idle()]:
            del self._recipient[key]
