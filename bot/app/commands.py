"""Command implementations behind ``bot.app.cli``.

Each takes the parsed arguments and the settings object, builds its
collaborators, and writes its human output to ``out``. Nothing here parses
the environment.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import TextIO

from bot.app.settings import Settings
from bot.delivery.dispatch import DeliveryWorker
from bot.engine.evaluate import Evaluation
from bot.engine.rules import Rules
from bot.kernel.alerts import Alert
from bot.kernel.errors import ConfigError
from bot.kernel.sessions import ET, SessionCalendar, get_calendar
from bot.market.fetch import Extras
from bot.store import Store, open_store


def dispatch(args: argparse.Namespace, settings: Settings, out: TextIO | None = None) -> int:
    out = out or sys.stdout  # looked up per call so redirection works
    if args.command == "data":
        if args.data_command == "import":
            return data_import(args, settings, out)
        if args.data_command == "status":
            return data_status(settings, out)
        if args.data_command == "check":
            return data_check(args, settings, out)
    if args.command == "rules":
        if args.rules_command == "diff":
            from bot.app.backtest_command import rules_diff

            return rules_diff(args, settings, out)
        return rules_check(args, settings, out)
    if args.command == "backtest":
        from bot.app.backtest_command import backtest

        return backtest(args, settings, out)
    if args.command == "run-once":
        return run_once(args, settings, out)
    if args.command == "run":
        return run(args, settings, out)
    if args.command == "subscribers":
        return subscribers(args, settings, out)
    if args.command == "indicators":
        return indicators(args, settings, out)
    raise ConfigError(f"unknown command {args.command!r}")


def _store(settings: Settings) -> Store:
    return open_store(settings.store_url)


def _session_arg(calendar: SessionCalendar, day: dt.date | None) -> dt.date:
    now = dt.datetime.now(tz=ET)
    if day is None:
        return calendar.last_closed_session(now)
    if not calendar.is_session(day):
        raise ConfigError(
            f"--date {day} is not an NYSE session (previous session: "
            f"{calendar.previous_session(day)})"
        )
    if calendar.close_time(day) > now:
        # Before the close a daily bar carries the live price as its "close".
        raise ConfigError(
            f"--date {day} has not closed yet (close {calendar.close_time(day):%H:%M %Z})"
        )
    return day


def data_status(settings: Settings, out: TextIO) -> int:
    from bot.market.history import status_report

    store = _store(settings)
    try:
        lines = status_report(store, get_calendar())
    finally:
        store.close()
    out.write(f"store: {settings.store_url_shown}\n")
    for line in lines:
        out.write(line.line() + "\n")
    return 0


def data_check(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.market.freshness import check_freshness

    calendar = get_calendar()
    session = _session_arg(calendar, args.date)
    store = _store(settings)
    try:
        result = check_freshness(store, calendar, session)
    finally:
        store.close()
    for c in result.checks:
        out.write(c.describe(session) + "\n")
    out.write(("complete" if result.complete else "NOT complete") + f" for {session}\n")
    return 0 if result.complete else 1


def data_import(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.market.importer import import_files

    store = _store(settings)
    try:
        report = import_files(
            store, get_calendar(), args.files, fmt=args.format, symbol=args.symbol,
            source=args.source,
        )
    finally:
        store.close()
    for line in report:
        out.write(line + "\n")
    return 0


def load_rules_from(settings: Settings, path: Path | None = None) -> Rules:
    from bot.engine.rules import load_default_rules, load_rules

    path = path or settings.rules_file
    return load_rules(path) if path is not None else load_default_rules()


def rules_check(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.engine.rules import default_rules_path
    from bot.engine.rules.check import check_command

    path = args.file or settings.rules_file or default_rules_path()
    code, text = check_command(path)
    out.write(text.rstrip("\n") + "\n")
    return code


def _open_for(source: str, settings: Settings, calendar: SessionCalendar) -> Store:
    if source == "snapshot":
        from bot.market.snapshot import open_snapshot_store

        return open_snapshot_store(settings.data_dir, calendar)
    return _store(settings)


def _fetch_live(
    store: Store, calendar: SessionCalendar, session: dt.date, settings: Settings, rules: Rules
) -> tuple[list[str], Extras]:
    import asyncio

    import httpx

    from bot.app.runtime import make_fetcher
    from bot.pipeline.reload import RulesWatcher

    async def go() -> tuple[list[str], Extras]:
        async with httpx.AsyncClient(timeout=settings.http_timeout_seconds) as client:
            live = settings.model_copy(update={"source": "live"})
            fetch = make_fetcher(live, store, calendar, client,
                                 RulesWatcher(settings.rules_file, rules))
            lines, extras = await fetch(session)
        return [f"# {line}" for line in lines], extras

    return asyncio.run(go())


def run_once(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    import json

    from bot.engine.compose import Context, data_alert
    from bot.engine.record import RunRecord
    from bot.pipeline.evaluation import day_alerts, evaluate_day

    calendar = get_calendar()
    rules = load_rules_from(settings)
    source = args.source or settings.source
    store = _open_for(source, settings, calendar)
    try:
        if args.date is None and source == "snapshot":
            last, _ = store.latest("SPX")
            if last is None:
                raise ConfigError("the snapshot store is empty")
            session = last
        else:
            session = _session_arg(calendar, args.date)
        extras = Extras()
        if source == "live":
            lines, extras = _fetch_live(store, calendar, session, settings, rules)
            for line in lines:
                out.write(line + "\n")
        previous = store.runs.get(session)
        if previous is not None and not args.dry_run:
            out.write(
                f"{session} was already evaluated at {previous.evaluated_at} "
                f"(rules {previous.rules_sha256[:12]}): nothing changed, nothing sent\n"
            )
            if args.json:
                out.write(json.dumps(previous.record.to_json(), indent=2, default=str) + "\n")
            return 0
        result = evaluate_day(
            store, calendar, rules, session, capital=settings.capital,
            settlements=extras.settlements,
            chain=extras.chain.quotes if extras.chain else None,
            etp_price=extras.etp_price,
        )
        if result.evaluation is None:
            ctx = Context(session, rules.sha256, result.sources, None, settings.capital)
            alert = data_alert(ctx, result.freshness)
            if args.json:
                out.write(json.dumps({"session": session.isoformat(), "complete": False,
                                      "problems": result.freshness.problems()}, indent=2) + "\n")
            else:
                out.write(alert.text + "\n")
            return 1
        ev = result.evaluation
        alerts = day_alerts(store, result, rules.sha256, settings.capital,
                            chart=not args.dry_run)
        recorded = False
        delivered = ""
        if not args.dry_run:
            # With --json, stdout carries the JSON only; console alerts go to stderr.
            console = sys.stderr if args.json else out
            recorded, delivered = _deliver(settings, store, ev, alerts, console)
        if args.json:
            record = RunRecord.of(ev).to_json()
            record["source"] = source
            record["data_sources"] = result.sources
            record["state_replayed_from"] = (
                result.replayed_from.isoformat() if result.replayed_from else None
            )
            record["alerts"] = [
                {"key": a.key, "topic": a.topic.value, "title": a.title, "text": a.text}
                for a in alerts
            ]
            record["recorded"] = recorded
            out.write(json.dumps(record, indent=2, default=str) + "\n")
            return 0
        if args.dry_run:
            out.write(f"# alvh run-once {session} (source {source}; dry run: nothing recorded, "
                      "nothing sent)\n")
            if result.replayed_from is not None:
                out.write(f"# layer state rebuilt by replaying from {result.replayed_from}\n")
            for a in alerts:
                out.write("\n" + a.text + "\n")
        else:
            out.write(f"# alvh run-once {session} (source {source}): recorded; {delivered}\n")
        return 0
    finally:
        store.close()


def _deliver(
    settings: Settings, store: Store, ev: Evaluation, alerts: list[Alert], console: TextIO
) -> tuple[bool, str]:
    """Outbox first, then the run, then one delivery pass (what ``alvh run`` does).

    Under the data-directory lock: beside a running ``alvh run`` this refuses
    (use ``/rundate``) instead of sharing its outbox.
    """
    import asyncio

    from bot.app.lock import DataDirLock
    from bot.app.runtime import build_delivery
    from bot.engine.record import RunRecord

    async def drain(worker: DeliveryWorker) -> None:
        try:
            async with asyncio.timeout(120):
                await worker.drain()
        except TimeoutError:
            await worker.stop()

    with DataDirLock(settings.data_dir):
        delivery = build_delivery(settings, store, console=console)
        new = delivery.outbox.enqueue(alerts)
        recorded = store.runs.record(RunRecord.of(ev), late=False)
        asyncio.run(drain(delivery.worker))
        left = delivery.outbox.queue.unfinished()
    return recorded, (f"{len(new)} alert(s) stored, {delivery.worker.stats.sent} delivery(ies) "
                      f"sent, {left} left for the next run")


def indicators(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    import pandas as pd

    from bot.pipeline.evaluation import history_start, indicator_frame

    if args.end < args.start:
        raise ConfigError(f"--to {args.end} is before --from {args.start}")
    calendar = get_calendar()
    rules = load_rules_from(settings)
    store = _open_for("snapshot" if args.source == "snapshot" else "live", settings, calendar)
    try:
        frame = indicator_frame(
            store, calendar, rules, history_start(calendar, args.start, rules), args.end
        )
    finally:
        store.close()
    frame = frame.loc[pd.Timestamp(args.start) : pd.Timestamp(args.end)]
    frame.index = pd.Index([ts.date().isoformat() for ts in frame.index], name="session")
    if frame.empty:
        raise ConfigError(f"no sessions between {args.start} and {args.end}")
    if args.csv:
        frame.to_csv(out, float_format="%.10g")
    else:
        with pd.option_context("display.max_columns", None, "display.width", 250,
                               "display.max_rows", None):
            out.write(frame.to_string(float_format=lambda x: f"{x:.4f}") + "\n")
    return 0


def run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.app.runtime import run_blocking

    if args.source:
        settings = settings.model_copy(update={"source": args.source})
    calendar = get_calendar()
    rules = load_rules_from(settings)
    store = _open_for(settings.source, settings, calendar)
    try:
        return run_blocking(settings, store, calendar, rules, out)
    finally:
        store.close()


def subscribers(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.delivery.outbox import Subscribers
    from bot.delivery.outbox.subscribers import parse_topics
    from bot.kernel.alerts import Topic

    store = _store(settings)
    try:
        subs = Subscribers(store.engine)
        cmd = args.subscribers_command
        if cmd == "list":
            rows = subs.all(args.channel)
            if not rows:
                out.write("no subscribers\n")
            for r in rows:
                state = "active" if r.active else f"inactive ({r.deactivated_reason})"
                shown = ",".join(sorted(t.value for t in r.topics)) or "-"
                out.write(f"{r.channel:<8} {r.address:<32} {shown:<40} {state}\n")
            return 0
        topics = parse_topics(args.topics) if args.topics else frozenset({Topic.SUMMARY})
        if cmd == "add":
            r = subs.subscribe("email", args.address, topics)
            out.write(f"{r.address}: " + ",".join(sorted(t.value for t in r.topics)) + "\n")
            return 0
        if not args.topics:
            if not subs.remove("email", args.address):
                raise ConfigError(f"{args.address}: not a subscriber")
            out.write(f"{args.address}: removed\n")
            return 0
        r = subs.unsubscribe("email", args.address, topics)
        out.write(f"{r.address}: " + (",".join(sorted(t.value for t in r.topics)) or "-") + "\n")
        return 0
    finally:
        store.close()
