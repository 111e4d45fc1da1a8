"""Benchmark: one chart-and-text alert to 10,000 Telegram subscribers, on PostgreSQL.

Two runs against the strict fake Bot API (tests/fake_telegram.py, in a process of
its own: 1 message/s per chat, 30 messages/s overall, and with
``allow_paid_broadcast`` up to 1,000 messages/s counted apart):

* ``single``: one instance at Telegram's free 30 messages/s. Bound: messages / 30 s.
* ``paid``: paid broadcasts (``ALVH_TELEGRAM_PAID_BROADCAST``), two instances (two
  processes) sharing the fan-out through the database (rows picked with ``SELECT …
  FOR UPDATE SKIP LOCKED``, each pacing half of the 1,000/s). Bound: messages / 1,000 s.

Each prints delivered (distinct chat × part), duplicates, lost, 429s received, the
Stars the paid run cost, elapsed and its ratio to the bound. The outbox is a real
PostgreSQL database: ``ALVH_TEST_POSTGRES_URL`` (an admin URL, as for the tests'
PostgreSQL lane; ``eval "$(.ci/postgres.sh)"`` starts one) or ``--database``.

Run: .venv/bin/python bench/bench_scale.py [--chats 10000] [--runs single,paid]
(the single run takes messages/30 s: about 11 minutes for 10,000 chats).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import multiprocessing
import os
import resource
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_delivery import TOKEN, alert, subscribe
from fake_telegram import FakeTelegramProcess

from bot.delivery.channels.ratelimit import LocalPacer
from bot.delivery.channels.telegram import TelegramChannel
from bot.delivery.dispatch import DeliveryWorker
from bot.delivery.health import ChannelHealth
from bot.delivery.outbox import Outbox
from bot.store import open_store


def _database(admin: str) -> str:
    name = f"alvh_bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def _drop(admin: str, url: str) -> None:
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)"))
    engine.dispose()


async def _instance(url: str, base_url: str, *, paid: bool, share: int,
                    concurrency: int) -> dict[str, Any]:
    store = open_store(url)
    outbox = Outbox(store.engine, channels=("telegram",))
    pacer, health = LocalPacer(), ChannelHealth()
    pacer.set_share(share)
    channel = TelegramChannel.connect(TOKEN, base_url=base_url, pacer=pacer, health=health,
                                      paid_broadcast=paid, connection_pool_size=128)
    async with channel.bot:
        worker = DeliveryWorker(outbox, [channel], concurrency=concurrency, pacer=pacer,
                                health=health, poll_interval=0.2)
        await worker.drain()
    store.close()
    return {"parts": worker.stats.parts, "rate_limited": worker.stats.rate_limited,
            "paid_messages": channel.paid_messages, "cpu": time.process_time()}


def _child(url: str, base_url: str, paid: bool, share: int, concurrency: int,
           out: Any) -> None:
    logging.basicConfig(level=logging.ERROR)
    out.send(asyncio.run(_instance(url, base_url, paid=paid, share=share,
                                   concurrency=concurrency)))


def run(name: str, admin: str, chats: int, instances: int, paid: bool,
        concurrency: int) -> None:
    url = _database(admin)
    try:
        store = open_store(url)
        subscribe(store.engine, chats)
        Outbox(store.engine, channels=("telegram",)).enqueue([alert()])
        store.close()
        with FakeTelegramProcess() as fake:
            ctx = multiprocessing.get_context("spawn")
            pipes = [ctx.Pipe() for _ in range(instances)]
            procs = [ctx.Process(target=_child, args=(url, fake.base_url, paid, instances,
                                                      concurrency, there))
                     for _, there in pipes]
            started = time.monotonic()
            for p in procs:
                p.start()
            stats = [here.recv() for here, _ in pipes]
            elapsed = time.monotonic() - started
            for p in procs:
                p.join()
            report = fake.report()
        # Every child has exited and been waited for: the instances and the fake server.
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        fake_cpu = children.ru_utime + children.ru_stime - sum(s["cpu"] for s in stats)
    finally:
        _drop(admin, url)
    expected = 2 * chats
    per_part = collections.Counter((chat, method) for chat, method, _, _ in report.sent)
    sends = [c for c in report.calls if c[0] in ("sendPhoto", "sendMessage")]
    refused = sum(1 for c in sends if c[2] == 429)
    rate = TelegramChannel.PAID_MESSAGES_PER_SECOND if paid else \
        TelegramChannel.MESSAGES_PER_SECOND
    bound = expected / rate
    delivered = len(per_part)
    stars = report.paid_messages * TelegramChannel.STARS_PER_PAID_MESSAGE
    print(f"\n== {name}: {chats} chats x (photo + text) = {expected} messages, "
          f"{instances} instance(s), {'paid broadcast' if paid else 'free'} ==")
    print(f"delivered            {delivered} (distinct chat x part)")
    print(f"duplicates           {sum(n - 1 for n in per_part.values())}")
    print(f"lost                 {expected - delivered}")
    print(f"429s received        {refused} {report.limited}")
    print(f"parts per instance   {[s['parts'] for s in stats]}")
    print(f"paid messages        {report.paid_messages} ({stars:,.1f} Stars)")
    print(f"elapsed              {elapsed:.1f} s")
    print(f"bound ({expected}/{rate:g} s)  {bound:.1f} s")
    print(f"ratio                {elapsed / bound:.3f}")
    cores = os.cpu_count() or 1
    print(f"CPU seconds          instances {[round(s['cpu'], 1) for s in stats]}, fake Bot API "
          f"~{fake_cpu:.1f} (PostgreSQL not counted); {cores} cores x {elapsed:.1f} s = "
          f"{cores * elapsed:.1f} available")
    print(f"machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--runs", default="single,paid")
    parser.add_argument("--database", default=os.environ.get("ALVH_TEST_POSTGRES_URL"),
                        help="PostgreSQL admin URL (default: ALVH_TEST_POSTGRES_URL)")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    if not args.database:
        parser.error("needs a PostgreSQL server: set ALVH_TEST_POSTGRES_URL or --database")
    logging.basicConfig(level=logging.ERROR)
    for name in args.runs.split(","):
        if name == "single":
            run(name, args.database, args.chats, 1, False, 16)
        elif name == "paid":
            run(name, args.database, args.chats, 2, True, args.concurrency)
        else:
            parser.error(f"unknown run {name!r}: single or paid")


if __name__ == "__main__":
    main()
