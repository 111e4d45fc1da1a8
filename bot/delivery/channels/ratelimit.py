"""Pacing: when each message may leave, so that no service limit is ever tripped.

A channel declares its limits as :class:`~bot.delivery.channels.base.Rate`
values: one for the channel as a whole (Telegram: 30 messages/s) and one per
recipient (Telegram: 1 message/s to a private chat, 20/min to a group). The
pacer turns each into a minimum *spacing* between two messages, widened by a
small safety margin, instead of a bucket that allows bursts: Telegram counts
"per second" over any window, and the same spacing keeps a fan-out to 2,000
chats at an even 29 messages/s with no 429 at all.

Who goes first: every send asks :meth:`LocalPacer.acquire` with a priority.
Command replies (:data:`REPLY`) are granted before fan-out messages
(:data:`BROADCAST`) waiting for the same slot, so a user's ``/status`` is
answered within a slot or two even in the middle of a fan-out. A waiter held
back only by its own recipient's spacing never blocks others.

Flood control: :meth:`hold` stops one recipient for ``retry_after`` when the
service refused a message to them (a 429 for one chat delays that chat only).
A refusal that is not about a recipient holds the whole channel, and so do
refusals for several recipients that are a good share of everything sent in
the last moments (:attr:`LocalPacer.CHANNEL_HOLD_AFTER`,
:attr:`LocalPacer.CHANNEL_HOLD_SHARE`): that is the bot as a whole being
refused, not a few chats that happen to be flood-limited at the same time.

The pacer is an interface (:class:`Pacer`) so that replicas sharing one bot
(issue 14) can plug in a shared implementation; :class:`LocalPacer` is the
in-process one.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from bot.delivery.channels.base import Rate

log = logging.getLogger(__name__)

REPLY = 0
"""Priority of a command reply: someone is waiting for it."""
BROADCAST = 1
"""Priority of a fan-out message."""
GRID_TOLERANCE = 0.15
"""How late (a fraction of the spacing) a message may leave and still keep its lane's
grid of slots: this much lateness is one timer's wake-up, and it is covered by the
pacer's margin."""


class Limits(Protocol):
    """What the pacer needs of a channel: its name and its rates."""

    name: ClassVar[str]

    def overall_rate(self) -> Rate | None: ...

    def recipient_rate(self, recipient: str) -> Rate | None: ...


class Pacer(Protocol):
    """When may a message go: see the module docstring."""

    async def acquire(
        self, limits: Limits, recipient: str | None, *, priority: int = BROADCAST
    ) -> None:
        """Wait until one message to ``recipient`` on this channel may be sent now."""

    def hold(self, limits: Limits, recipient: str | None, seconds: float) -> None:
        """The service refused a message (429): let nothing through for ``seconds``."""

    def wait_for(self, limits: Limits, recipient: str | None) -> float:
        """Seconds from now until ``recipient`` may receive the next message."""


@dataclass
class _Lane:
    """One limit: the channel as a whole, or one recipient.

    ``spacing`` between two messages; and for rates of several per second a
    ``cap``: at most that many messages in any second, one fewer than the rate
    allows, so that a message delayed on its way (a stalled event loop, a busy
    network) and arriving together with the next ones still leaves the service
    counting no more than its limit in any second.
    """

    spacing: float
    cap: int = 0
    next_at: float = 0.0
    held_until: float = 0.0
    recent: collections.deque[float] = field(default_factory=collections.deque)

    def ready_at(self) -> float:
        ready = max(self.next_at, self.held_until)
        if self.cap and len(self.recent) >= self.cap:
            ready = max(ready, self.recent[0] + 1.0)
        return ready

    def advance(self, now: float) -> None:
        """A message went at ``now``: the next may go one spacing after its slot.

        Slots stay on a grid: a timer that fires a few milliseconds late does not
        push every later slot back (that drift alone costs a 2,000-chat fan-out
        seconds). A message later than :data:`GRID_TOLERANCE` of a spacing restarts
        the grid from now instead: keeping the grid then would let the next slots
        come closer together and put one message too many in some second; and lost
        slots are never made up in a burst.
        """
        late = now - self.next_at
        base = self.next_at if 0.0 <= late <= GRID_TOLERANCE * self.spacing else now
        self.next_at = base + self.spacing
        if self.cap:
            self.recent.append(now)
            while len(self.recent) > self.cap:
                self.recent.popleft()


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    limits: Limits = field(compare=False)
    recipient: str | None = field(compare=False)
    future: asyncio.Future[None] = field(compare=False)


class LocalPacer:
    """The in-process :class:`Pacer`."""

    MARGIN: ClassVar[float] = 0.02
    """Spacing is this much wider than the declared rate: arrival times jitter by
    a few milliseconds, and a service counting a strict 1-second window must never
    see 31 messages in it."""
    RECIPIENT_SLACK: ClassVar[float] = 0.2
    """Seconds added to a recipient's spacing: between the pacer's slot and the message
    reaching the service lie the event loop and the network, and when a busy fan-out
    (hundreds of messages a second) delays one message more than the next, two
    messages to one chat would otherwise arrive closer than its 1 s. Costs nothing in
    throughput: other chats fill the gap."""
    CHANNEL_HOLD_AFTER: ClassVar[int] = 3
    """Refusals for this many different recipients within ``CHANNEL_HOLD_WINDOW``
    seconds, making up at least ``CHANNEL_HOLD_SHARE`` of what was sent then,
    mean the whole bot is being throttled: hold the whole channel."""
    CHANNEL_HOLD_SHARE: ClassVar[float] = 0.25
    CHANNEL_HOLD_WINDOW: ClassVar[float] = 2.0
    MAX_IDLE_LANES: ClassVar[int] = 10_000

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 margin: float | None = None) -> None:
        self._clock = clock
        self._margin = self.MARGIN if margin is None else margin
        self._channels: dict[str, _Lane | None] = {}
        self._recipients: dict[tuple[str, str], _Lane] = {}
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._refusals: dict[str, collections.deque[tuple[float, str]]] = {}
        self._sent: dict[str, collections.deque[float]] = {}
        self.channel_holds = 0
        """How many times a whole channel was held (for tests and metrics)."""
        self.share = 1
        """Instances sharing each channel's overall rate (replicas on one database)."""
        self._limits: dict[str, Limits] = {}

    # ------------------------------------------------------------------ interface
    async def acquire(
        self, limits: Limits, recipient: str | None, *, priority: int = BROADCAST
    ) -> None:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(priority, next(self._seq), limits, recipient, loop.create_future())
        bisect.insort(self._waiters, waiter)
        self._grant()
        try:
            await waiter.future
        except asyncio.CancelledError:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            self._grant()
            raise

    def hold(self, limits: Limits, recipient: str | None, seconds: float) -> None:
        now = self._clock()
        until = now + max(0.0, seconds)
        channel = self._channel(limits)
        if recipient is None:
            self._hold_channel(limits, channel, until, "a refusal for the whole bot")
        else:
            lane = self._recipient(limits, recipient)
            if lane is not None:
                lane.held_until = max(lane.held_until, until)
            recent = self._refusals.setdefault(limits.name, collections.deque())
            recent.append((now, recipient))
            since = now - self.CHANNEL_HOLD_WINDOW
            while recent and recent[0][0] < since:
                recent.popleft()
            sent = sum(1 for at in self._sent.get(limits.name, ()) if at >= since)
            if (len({who for _, who in recent}) >= self.CHANNEL_HOLD_AFTER
                    and len(recent) >= self.CHANNEL_HOLD_SHARE * max(sent, 1)):
                self._hold_channel(limits, channel, until,
                                   f"{len(recent)} recipients refused within "
                                   f"{self.CHANNEL_HOLD_WINDOW:g} s")
                recent.clear()
        self._grant()

    def wait_for(self, limits: Limits, recipient: str | None) -> float:
        now = self._clock()
        lanes = [self._channel(limits)]
        if recipient is not None:
            lanes.append(self._recipient(limits, recipient))
        ready = max((lane.ready_at() for lane in lanes if lane is not None), default=now)
        return max(0.0, ready - now)

    def set_share(self, instances: int) -> None:
        """``instances`` replicas send through the same bot: each paces its part of every
        channel's overall rate (a recipient's messages come from one instance at a
        time, so per-recipient limits stay whole)."""
        instances = max(1, int(instances))
        if instances == self.share:
            return
        log.info("pacing: %d instance(s) share each channel's overall rate", instances)
        self.share = instances
        for name, lane in self._channels.items():
            limits = self._limits.get(name)
            if lane is not None and limits is not None:
                # In place: the lane keeps its slots and any flood-control hold.
                fresh = self._overall_lane(limits)
                if fresh is not None:
                    lane.spacing, lane.cap = fresh.spacing, fresh.cap

    # ------------------------------------------------------------------ internals
    def _hold_channel(self, limits: Limits, lane: _Lane | None, until: float, why: str) -> None:
        if lane is None:
            lane = self._channels[limits.name] = _Lane(0.0)
        if until > lane.held_until:
            log.warning("%s: flood control for the whole channel (%s): pausing every send "
                        "for %.0f s", limits.name, why, until - self._clock())
            lane.held_until = until
            self.channel_holds += 1

    def _lane(self, rate: Rate) -> _Lane:
        cap = math.ceil(rate.per_second) - 1 if rate.per_second >= 2 else 0
        return _Lane((1.0 + self._margin) / rate.per_second, cap)

    def _overall_lane(self, limits: Limits) -> _Lane | None:
        rate = limits.overall_rate()
        if rate is None:
            return None
        if self.share > 1:
            rate = Rate(rate.per_second / self.share, rate.burst)
        return self._lane(rate)

    def _channel(self, limits: Limits) -> _Lane | None:
        if limits.name not in self._channels:
            self._limits[limits.name] = limits
            self._channels[limits.name] = self._overall_lane(limits)
        return self._channels[limits.name]

    def _recipient(self, limits: Limits, recipient: str | None) -> _Lane | None:
        if recipient is None:
            return None
        key = (limits.name, recipient)
        lane = self._recipients.get(key)
        if lane is None:
            rate = limits.recipient_rate(recipient)
            if rate is None:
                return None
            if len(self._recipients) >= self.MAX_IDLE_LANES:
                self._prune()
            lane = self._recipients[key] = self._lane(rate)
            lane.spacing += self.RECIPIENT_SLACK
        return lane

    def _note_sent(self, channel: str, now: float) -> None:
        sent = self._sent.setdefault(channel, collections.deque())
        sent.append(now)
        while sent[0] < now - self.CHANNEL_HOLD_WINDOW:
            sent.popleft()

    def _prune(self) -> None:
        now = self._clock()
        for key in [k for k, lane in self._recipients.items() if lane.ready_at() < now]:
            del self._recipients[key]

    def _grant(self) -> None:
        """Grant every waiter whose lanes are free now, best priority first; then
        sleep until the earliest moment another one can go."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = self._clock()
        wake = math.inf
        for waiter in list(self._waiters):
            if waiter.future.done():  # cancelled meanwhile
                self._waiters.remove(waiter)
                continue
            channel = self._channel(waiter.limits)
            recipient = self._recipient(waiter.limits, waiter.recipient)
            ready = max((lane.ready_at() for lane in (channel, recipient) if lane is not None),
                        default=now)
            if ready > now:
                wake = min(wake, ready)
                continue
            self._waiters.remove(waiter)
            for lane in (channel, recipient):
                if lane is not None:
                    lane.advance(now)
            self._note_sent(waiter.limits.name, now)
            waiter.future.set_result(None)
        if self._waiters and wake < math.inf:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(0.0, wake - now), self._grant)
