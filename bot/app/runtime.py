"""``alvh run``: the running bot, assembled from the composition root.

One asyncio process: the health server, the delivery worker, Telegram long
polling and the service (scheduler, catch-up, rules reload) are async context
managers entered on one ``AsyncExitStack``. Entering in that order and leaving
in reverse is what keeps shutdown safe by construction: the service stops
first (no new alerts), then polling, then the worker finishes the sends in
flight and parks the rest in the outbox, and health answers until the end.

Telegram does not have to be reachable to start: polling connects in the
background (:func:`bot.app.telegram.polling`), alerts wait in the outbox, and
``/healthz`` shows the channel down meanwhile. Only a rejected token stops the
bot, with one line (:class:`ConfigError`, exit 1).

On PostgreSQL several instances may share one database (:mod:`bot.app.cluster`):
each delivers, one leader runs the service and Telegram polling, and the others
stand by to take over. On SQLite the one instance is its own leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
from collections.abc import AsyncIterator, Sequence
from typing import TextIO

from bot.app.cluster import Cluster, LeadershipLost
from bot.app.delivery_status import delivery_health
from bot.app.health import Health, HealthServer, Route, merged
from bot.app.lock import DataDirLock
from bot.app.metrics import Metrics
from bot.app.queries import EngineQueries
from bot.app.root import Root
from bot.app.service import Service, ServiceConfig
from bot.delivery.channels.telegram import TelegramChannel
from bot.delivery.dispatch import DeliveryWorker
from bot.delivery.outbox import Outbox
from bot.engine.rules import Rules
from bot.kernel.alerts import Alert
from bot.kernel.errors import ConfigError
from bot.pipeline.reload import RulesWatcher
from bot.store import Store
from bot.store.instances import Instances
from bot.store.leader import leadership_for

log = logging.getLogger(__name__)

POLL_INTERVAL = dt.timedelta(minutes=10)
STOP_GRACE_SECONDS = 30.0


class OutboxSink:
    """Alerts into the outbox (one transaction), then a nudge to the worker.

    With Telegram paid broadcasts on, what each new alert costs is logged and kept
    for ``/healthz`` (chats × messages per alert × 0.1 Star).
    """

    RECENT = 10

    def __init__(
        self, outbox: Outbox, worker: DeliveryWorker, paid: TelegramChannel | None = None
    ) -> None:
        self.outbox, self.worker, self.paid = outbox, worker, paid
        self.costs: list[dict[str, object]] = []

    async def publish(self, alerts: Sequence[Alert]) -> None:
        new = await asyncio.to_thread(self.outbox.enqueue, alerts)
        if new:
            self.worker.wake()
        if self.paid is not None:
            for alert in alerts:
                if alert.key in new:
                    await asyncio.to_thread(self._cost, alert)

    def _cost(self, alert: Alert) -> None:
        channel = self.paid
        assert channel is not None  # noqa: S101 - only called with paid broadcasts on
        chats = sum(1 for d in self.outbox.queue.rows(alert.key) if d.channel == channel.name)
        messages = chats * channel.parts(alert)
        stars = channel.paid_cost(messages)
        log.info("paid broadcast: %s to %d chat(s): %d message(s), %.1f Stars", alert.key,
                 chats, messages, stars)
        self.costs = [*self.costs, {"alert": alert.key, "chats": chats, "messages": messages,
                                    "stars": round(stars, 1)}][-self.RECENT:]

    def paid_health(self) -> Health:
        channel = self.paid
        if channel is None:
            return Health(True, {})
        return Health(True, {"paid_broadcast": {
            "stars_per_message": channel.STARS_PER_PAID_MESSAGE,
            "messages_sent": channel.paid_messages,
            "stars_spent": round(channel.paid_cost(channel.paid_messages), 1),
            "recent_alerts": self.costs,
        }})

    def pending(self) -> int:
        return self.outbox.queue.unfinished()


async def run_service(
    root: Root, store: Store, rules: Rules, *, out: TextIO | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """``alvh run`` on ``store`` (the market store) until SIGTERM/SIGINT or ``stop``.

    Raises ``ConfigError`` (after a clean stop) when Telegram rejects the token.
    """
    settings = root.settings
    stop = stop or asyncio.Event()
    fatal: list[ConfigError | LeadershipLost] = []

    def on_fatal(exc: ConfigError | LeadershipLost) -> None:
        fatal.append(exc)
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    metrics = Metrics()
    source = root.source()
    cfg = ServiceConfig(
        run_delay=dt.timedelta(minutes=settings.run_delay_minutes),
        deadline=dt.timedelta(minutes=settings.data_deadline_minutes),
        poll_interval=POLL_INTERVAL, catchup_sessions=settings.catchup_sessions,
        capital=settings.capital, source=source,
        final_breadth_time=dt.time.fromisoformat(settings.breadth_final_time),
    )
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(root.http_client())
        delivery_store = root.open_delivery_store()
        stack.callback(delivery_store.close)
        # The bot's commands need the service, the service needs the outbox, and
        # the outbox needs the bot: the queries are attached once the service exists.
        queries = EngineQueries()
        delivery = root.delivery(delivery_store, console=out, metrics=metrics,
                                 queries=queries if settings.telegram_token else None)
        choice = root.rules_choice()
        watcher = RulesWatcher(rules.path or choice.path, rules)
        fetch = root.fetcher(source, store, client, lambda: watcher.rules)
        paid = next((c for c in delivery.channels
                     if isinstance(c, TelegramChannel) and c.paid_broadcast), None)
        sink = OutboxSink(delivery.outbox, delivery.worker, paid)
        service = Service(
            cfg, store=store, calendar=root.calendar, watcher=watcher, fetch=fetch,
            sink=sink, metrics=metrics, final_breadth=root.final_breadth(fetch),
        )
        log.info("alvh run: source %s, data %s, rules %s from %s", source,
                 settings.store_url_shown if source == "live" else "shipped snapshot",
                 rules.sha256[:12], choice.describe())
        said = " ".join(delivery.described)  # "telegram: off (ALVH_TELEGRAM_TOKEN not set)"
        for line in delivery.described + [m for m in settings.missing()
                                          if m.split()[0] not in said]:
            log.info("alvh run: %s", line)
        if source == "snapshot":
            end, _ = store.latest("SPX")
            log.warning("alvh run: snapshot mode: history ends %s; later sessions cannot be "
                        "evaluated and will be reported as missing data", end)
        shared = delivery_store.engine.dialect.name == "postgresql"

        @contextlib.asynccontextmanager
        async def lead() -> AsyncIterator[None]:
            """What only the leader runs: Telegram polling and the service."""
            async with contextlib.AsyncExitStack() as leading:
                if delivery.telegram_app is not None:
                    from bot.app.telegram import polling

                    await leading.enter_async_context(
                        polling(delivery.telegram_app, on_fatal=on_fatal))
                await leading.enter_async_context(service.running())
                yield

        pacer = delivery.pacer
        cluster = Cluster(
            leadership_for(delivery_store.engine),
            Instances(delivery_store.engine, delivery.outbox.boot) if shared else None,
            lead=lead, share=pacer.set_share if pacer is not None else (lambda n: None),
            on_lost=on_fatal, shared=shared,
        )

        def service_health() -> Health:
            # A standby runs no service: its schedule is the leader's business.
            return service.health() if cluster.role == "leader" else Health(True, {})

        health = merged(cluster.health, service_health, delivery_health(
            delivery.outbox.queue, delivery.health, delivery.worker.channel_names,
            pending_alert=dt.timedelta(minutes=settings.delivery_pending_alert_minutes)),
            sink.paid_health)
        queries.attach(service, health)
        routes: dict[str, Route] = {}
        if delivery.links is not None:
            from bot.app.unsubscribe import UnsubscribeEndpoint

            routes[delivery.links.PATH] = UnsubscribeEndpoint(delivery.subscribers,
                                                              delivery.links)
        await stack.enter_async_context(
            HealthServer(settings.http_host, settings.http_port, health, metrics.render, routes))
        await stack.enter_async_context(delivery.worker.running(grace=STOP_GRACE_SECONDS))
        if shared:
            log.info("alvh run: PostgreSQL: instances on this database share the delivery; "
                     "one leads (scheduler, evaluations, Telegram commands), the others "
                     "stand by")
        await stack.enter_async_context(cluster.running())
        await stop.wait()
        log.info("alvh run: stopping (finishing in-flight deliveries)")
    log.info("alvh run: stopped; %d deliveries pending for the next start",
             delivery.outbox.queue.unfinished())
    if fatal:
        raise fatal[0]
    return 0


def run_blocking(root: Root, store: Store, rules: Rules, out: TextIO | None = None) -> int:
    with DataDirLock(root.data_dir()):
        return asyncio.run(run_service(root, store, rules, out=out))
