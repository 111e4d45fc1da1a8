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
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
from collections.abc import Sequence
from typing import TextIO

from bot.app.delivery_status import delivery_health
from bot.app.health import HealthServer, Route, merged
from bot.app.lock import DataDirLock
from bot.app.metrics import Metrics
from bot.app.queries import EngineQueries
from bot.app.root import Root
from bot.app.service import Service, ServiceConfig
from bot.delivery.dispatch import DeliveryWorker
from bot.delivery.outbox import Outbox
from bot.engine.rules import Rules
from bot.kernel.alerts import Alert
from bot.kernel.errors import ConfigError
from bot.pipeline.reload import RulesWatcher
from bot.store import Store

log = logging.getLogger(__name__)

POLL_INTERVAL = dt.timedelta(minutes=10)
STOP_GRACE_SECONDS = 30.0


class OutboxSink:
    """Alerts into the outbox (one transaction), then a nudge to the worker."""

    def __init__(self, outbox: Outbox, worker: DeliveryWorker) -> None:
        self.outbox, self.worker = outbox, worker

    async def publish(self, alerts: Sequence[Alert]) -> None:
        new = await asyncio.to_thread(self.outbox.enqueue, alerts)
        if new:
            self.worker.wake()

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
    fatal: list[ConfigError] = []

    def on_fatal(exc: ConfigError) -> None:
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
        service = Service(
            cfg, store=store, calendar=root.calendar, watcher=watcher, fetch=fetch,
            sink=OutboxSink(delivery.outbox, delivery.worker), metrics=metrics,
            final_breadth=root.final_breadth(fetch),
        )
        log.info("alvh run: source %s, data %s, rules %s from %s", source,
                 settings.store_url_shown if source == "live" else "shipped snapshot",
                 rules.sha256[:12], choice.describe())
        for line in delivery.described + settings.missing():
            log.info("alvh run: %s", line)
        if source == "snapshot":
            end, _ = store.latest("SPX")
            log.warning("alvh run: snapshot mode: history ends %s; later sessions cannot be "
                        "evaluated and will be reported as missing data", end)
        health = merged(service.health, delivery_health(
            delivery.outbox.queue, delivery.health, delivery.worker.channel_names,
            pending_alert=dt.timedelta(minutes=settings.delivery_pending_alert_minutes)))
        queries.attach(service, health)
        routes: dict[str, Route] = {}
        if delivery.links is not None:
            from bot.app.unsubscribe import UnsubscribeEndpoint

            routes[delivery.links.PATH] = UnsubscribeEndpoint(delivery.subscribers,
                                                              delivery.links)
        await stack.enter_async_context(
            HealthServer(settings.http_host, settings.http_port, health, metrics.render, routes))
        await stack.enter_async_context(delivery.worker.running(grace=STOP_GRACE_SECONDS))
        if delivery.telegram_app is not None:
            from bot.app.telegram import polling

            await stack.enter_async_context(polling(delivery.telegram_app, on_fatal=on_fatal))
        await stack.enter_async_context(service.running())
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
