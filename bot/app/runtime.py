"""Assembly of the running bot from settings (part of the entry point).

This is the one place, besides ``commands``, that looks at ``Settings``: it
decides which channels exist (Telegram with a token, email with an SMTP host,
the console otherwise), builds the outbox, the delivery worker, the Telegram
application, the service and the health server, and wires SIGTERM to a clean
stop. Everything it builds receives plain values.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

from bot.app.health import HealthServer
from bot.app.lock import DataDirLock
from bot.app.metrics import Metrics
from bot.app.queries import EngineQueries
from bot.app.service import Service, ServiceConfig
from bot.app.settings import Settings
from bot.delivery.channels.base import Channel
from bot.delivery.channels.console import ConsoleChannel
from bot.delivery.dispatch import DeliveryWorker
from bot.delivery.outbox import Outbox, Subscribers
from bot.delivery.outbox.ops import OpsReporter
from bot.engine.rules import Rules
from bot.kernel.alerts import Alert, Topic
from bot.kernel.sessions import SessionCalendar
from bot.market.fetch import Fetcher, LiveFetcher, fetch_nothing
from bot.market.snapshot import SNAPSHOT_DIR
from bot.market.sources.chain import Sources
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


@dataclass
class Delivery:
    outbox: Outbox
    worker: DeliveryWorker
    channels: list[Channel]
    described: list[str] = field(default_factory=list)
    telegram_app: Any = None


def build_delivery(
    settings: Settings, store: Store, *, console: TextIO | None = None,
    queries: Any = None, metrics: Metrics | None = None,
) -> Delivery:
    """Channels from the settings; the console whenever nothing else is configured."""
    channels: list[Channel] = []
    described: list[str] = []
    names: list[str] = []
    app = None
    if settings.telegram_token is not None:
        from bot.app.telegram_bot import Access, build_application
        from bot.delivery.channels.telegram import TelegramChannel

        base = settings.telegram_base_url.rstrip("/")
        file_base = base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base
        access = Access(
            mode=settings.access_mode, invite_code=settings.invite_code,
            allowlist=frozenset(settings.allowlist_chat_ids),
            admins=frozenset(settings.admin_chat_ids),
        )
        if queries is not None:
            app = build_application(
                settings.telegram_token, subscribers=Subscribers(store.engine), queries=queries,
                access=access, base_url=base, base_file_url=file_base,
            )
            bot_obj = app.bot
        else:
            from telegram import Bot

            bot_obj = Bot(settings.telegram_token.get_secret_value(), base_url=base,
                          base_file_url=file_base)
        names.append("telegram")
        described.append("Telegram: on (long polling)" if app else "Telegram: sending only")
        channels.append(TelegramChannel(bot_obj))
    else:
        described.append("Telegram: off (ALVH_TELEGRAM_TOKEN not set)")
    if settings.smtp_host:
        from bot.delivery.channels.email import EmailChannel

        sender = settings.smtp_from or settings.smtp_user or f"alvh@{settings.smtp_host}"
        channels.append(EmailChannel(
            settings.smtp_host, settings.smtp_port, sender=sender,
            security=settings.smtp_security, user=settings.smtp_user,
            password=settings.smtp_password,
        ))
        names.append("email")
        described.append(f"email: on via {settings.smtp_host}:{settings.smtp_port}")
    else:
        described.append("email: off (ALVH_SMTP_HOST not set)")
    console_topics: list[Topic] = []
    if not names:
        names.append("console")
        console_topics = list(Topic)
        described.append("console: every alert is printed here")
    elif not settings.admin_chat_ids:
        names.append("console")
        console_topics = [Topic.OPS]
        described.append("console: ops alerts (ALVH_ADMIN_CHAT_IDS not set)")
    if "console" in names:
        channels.append(ConsoleChannel(console))
    outbox = Outbox(store.engine, admin_chat_ids=settings.admin_chat_ids, channels=names,
                    console_topics=console_topics)
    observer = None
    if metrics is not None:
        m = metrics

        def observer(channel: str, outcome: str, latency: float | None) -> None:
            m.deliveries.labels(channel, outcome).inc()
            if latency is not None:
                m.delivery_latency.observe(latency)
            m.pending.set(outbox.queue.unfinished())

    worker = DeliveryWorker(outbox, channels, ops=OpsReporter(outbox), observer=observer)
    return Delivery(outbox, worker, channels, described, app)


def etp_symbol(rules: Rules) -> str | None:
    inst = rules.hedge.instrument
    return inst.etp_symbol if inst.kind == "etp" else None


def make_fetcher(
    settings: Settings, store: Store, calendar: SessionCalendar, client: httpx.AsyncClient,
    watcher: RulesWatcher,
) -> Fetcher:
    """The fetcher of the configured source: nothing for the snapshot, the chains live."""
    if settings.source == "snapshot":
        return fetch_nothing
    sources = Sources(client, calendar, fred_api_key=settings.fred_api_key,
                      stooq_api_key=settings.stooq_api_key)
    return LiveFetcher(sources, store, shipped_calendar_dir=SNAPSHOT_DIR / "calendar",
                       etp_symbol=lambda: etp_symbol(watcher.rules))


async def run_service(
    settings: Settings, store: Store, calendar: SessionCalendar, rules: Rules,
    *, out: TextIO | None = None, stop: asyncio.Event | None = None,
) -> int:
    """``alvh run`` until SIGTERM/SIGINT (or ``stop`` is set)."""
    out = out or sys.stdout
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    metrics = Metrics()
    async with httpx.AsyncClient(timeout=settings.http_timeout_seconds) as client:
        cfg = ServiceConfig(
            run_delay=dt.timedelta(minutes=settings.run_delay_minutes),
            deadline=dt.timedelta(minutes=settings.data_deadline_minutes),
            poll_interval=POLL_INTERVAL, catchup_sessions=settings.catchup_sessions,
            capital=settings.capital, source=settings.source,
        )
        # The bot's commands need the service, the service needs the outbox, and
        # the outbox needs the bot: the queries are attached once the service exists.
        queries = EngineQueries()
        delivery = build_delivery(settings, store, console=out, metrics=metrics,
                                  queries=queries if settings.telegram_token else None)
        watcher = RulesWatcher(settings.rules_file, rules)
        service = Service(
            cfg, store=store, calendar=calendar, watcher=watcher,
            fetch=make_fetcher(settings, store, calendar, client, watcher),
            sink=OutboxSink(delivery.outbox, delivery.worker), metrics=metrics,
        )
        queries.attach(service)
        health = HealthServer(settings.http_host, settings.http_port, service.health,
                              metrics.render)
        log.info("alvh run: source %s, data %s, rules %s", settings.source,
                 settings.store_url_shown if settings.source == "live" else "shipped snapshot",
                 rules.sha256[:12])
        for line in delivery.described + settings.missing():
            log.info("alvh run: %s", line)
        if settings.source == "snapshot":
            end, _ = store.latest("SPX")
            log.warning("alvh run: snapshot mode: history ends %s; later sessions cannot be "
                        "evaluated and will be reported as missing data", end)
        await health.start()
        worker_task = asyncio.create_task(delivery.worker.run(), name="delivery")
        if delivery.telegram_app is not None:
            from bot.app.telegram_bot import start_bot

            await start_bot(delivery.telegram_app)
        try:
            await service.start()
            await stop.wait()
            log.info("alvh run: stopping (finishing in-flight deliveries)")
        finally:
            await service.stop()
            if delivery.telegram_app is not None:
                from bot.app.telegram_bot import stop_bot

                await stop_bot(delivery.telegram_app)
            await delivery.worker.stop(grace=STOP_GRACE_SECONDS)
            worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker_task
            await health.stop()
        log.info("alvh run: stopped; %d deliveries pending for the next start",
                 delivery.outbox.queue.unfinished())
    return 0


def run_blocking(
    settings: Settings, store: Store, calendar: SessionCalendar, rules: Rules,
    out: TextIO | None = None,
) -> int:
    with DataDirLock(settings.data_dir):
        return asyncio.run(run_service(settings, store, calendar, rules, out=out))
