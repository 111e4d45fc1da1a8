"""``alvh run-once``: evaluate one session, then drain the outbox, as the service does.

The evaluation is :class:`bot.pipeline.session.SessionEvaluator`, the very
object the scheduler's job calls; delivery is the composition root's outbox
and worker. What differs from ``alvh run`` is only *when*: now, once, and
with the process ending after the outbox is drained (or after two minutes,
leaving the rest for the next start).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

from bot.app.commands import date_arg

if TYPE_CHECKING:
    import datetime as dt

    from bot.app.root import MarketSource, Root
    from bot.pipeline.session import SessionRun
    from bot.store import Store

DRAIN_SECONDS = 120.0


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    once = sub.add_parser("run-once", help="evaluate one session exactly as the scheduler does")
    once.add_argument("--date", type=date_arg, help="session (default: the last closed session; "
                      "with --source snapshot, the last session the snapshot covers)")
    once.add_argument("--source", choices=["live", "snapshot"], help="default: ALVH_SOURCE")
    once.add_argument("--dry-run", action="store_true",
                      help="print the alerts; record nothing, send nothing")
    once.add_argument("--json", action="store_true",
                      help="print indicators, decisions with explanations and state changes")


def run(args: argparse.Namespace, root: Root, out: TextIO) -> int:
    source = root.source(args.source)
    rules = root.load_rules()
    with root.market_store(source) as store:
        session = _session(args, root, source, store)
        if args.dry_run:
            run = asyncio.run(_evaluate(root, source, store, rules, session, sink=None))
            return _report(args, root, source, run, out, rules, delivered="")
        from bot.app.lock import DataDirLock

        # Beside a running `alvh run` this refuses (use /rundate) instead of sharing its outbox.
        with DataDirLock(root.data_dir()):
            delivery_store = root.open_delivery_store()
            try:
                # With --json, stdout carries the JSON only; console alerts go to stderr.
                console = sys.stderr if args.json else out
                delivery = root.delivery(delivery_store, console=console)
                sink = _Sink(delivery.outbox)
                run = asyncio.run(_evaluate(root, source, store, rules, session, sink=sink,
                                            drain=delivery.worker))
                left = delivery.outbox.queue.unfinished()
                delivered = (f"{len(sink.new)} alert(s) stored, {delivery.worker.stats.sent} "
                             f"delivery(ies) sent, {left} left for the next run")
            finally:
                delivery_store.close()
        return _report(args, root, source, run, out, rules, delivered=delivered)


class _Sink:
    """The outbox as the evaluator's sink, remembering which keys were new."""

    def __init__(self, outbox: Any) -> None:
        self.outbox = outbox
        self.new: list[str] = []

    async def publish(self, alerts: Any) -> None:
        self.new += await asyncio.to_thread(self.outbox.enqueue, alerts)

    def pending(self) -> int:
        return int(self.outbox.queue.unfinished())


def _session(args: argparse.Namespace, root: Root, source: MarketSource, store: Store) -> dt.date:
    from bot.app.commands._session import source_session

    return source_session(root.calendar, args.date, source, store)


async def _evaluate(
    root: Root, source: MarketSource, store: Store, rules: Any, session: dt.date, *,
    sink: _Sink | None, drain: Any = None,
) -> SessionRun:
    from bot.pipeline.session import SessionEvaluator

    async with contextlib.AsyncExitStack() as stack:
        # The snapshot fetches nothing: no HTTP client (nor the HTTP stack's import).
        client = (None if source == "snapshot"
                  else await stack.enter_async_context(root.http_client()))
        evaluator = SessionEvaluator(
            store, root.calendar, rules=lambda: rules,
            fetch=root.fetcher(source, store, client, lambda: rules),
            capital=root.settings.capital, cache=root.state_cache(),
        )
        run = await evaluator.evaluate(session, late=False, sink=sink, chart=sink is not None)
    if drain is not None and run.outcome == "evaluated":
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                await drain.drain()
        except TimeoutError:
            await drain.stop()
    return run


def _report(
    args: argparse.Namespace, root: Root, source: MarketSource, run: SessionRun, out: TextIO,
    rules: Any, *, delivered: str,
) -> int:
    from bot.engine.compose import Context, data_alert
    from bot.engine.record import RunRecord

    for line in run.fetched:
        out.write(f"# {line}\n")
    session = run.session
    if run.outcome == "already":
        prev = run.previous
        assert prev is not None  # noqa: S101 - set with "already"
        out.write(f"{session} was already evaluated at {prev.evaluated_at} "
                  f"(rules {prev.rules_sha256[:12]}): nothing changed, nothing sent\n")
        if args.json:
            out.write(json.dumps(prev.record.to_json(), indent=2, default=str) + "\n")
        return 0
    result = run.result
    assert result is not None  # noqa: S101 - set unless "already"
    if result.evaluation is None:
        ctx = Context(session, rules.sha256, result.sources, None, root.settings.capital,
                      rules_file=rules.label)
        if args.json:
            out.write(json.dumps({"session": session.isoformat(), "complete": False,
                                  "problems": result.freshness.problems()}, indent=2) + "\n")
        else:
            out.write(data_alert(ctx, result.freshness).text + "\n")
        return 1
    if args.json:
        record = RunRecord.of(result.evaluation).to_json()
        record["source"] = source
        record["data_sources"] = result.sources
        record["state_replayed_from"] = (
            result.replayed_from.isoformat() if result.replayed_from else None
        )
        record["alerts"] = [
            {"key": a.key, "topic": a.topic.value, "title": a.title, "text": a.text}
            for a in run.alerts
        ]
        record["recorded"] = run.recorded
        out.write(json.dumps(record, indent=2, default=str) + "\n")
        return 0
    if args.dry_run:
        out.write(f"# alvh run-once {session} (source {source}; dry run: nothing recorded, "
                  "nothing sent)\n")
        if result.replayed_from is not None:
            out.write(f"# layer state rebuilt by replaying from {result.replayed_from}\n")
        for a in run.alerts:
            out.write("\n" + a.text + "\n")
    else:
        out.write(f"# alvh run-once {session} (source {source}): recorded; {delivered}\n")
    return 0
