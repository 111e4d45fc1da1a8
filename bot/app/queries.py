"""What the Telegram commands show: the engine's state, rendered as Telegram HTML.

This is the real provider behind ``BotQueries``. Reads go to the store (runs,
indicators, events); nothing here sends or records anything except
``/rundate`` for a session that was never evaluated, which goes through the
service exactly like a catch-up (marked late, stored in the outbox first).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from html import escape
from typing import Any

from bot.app.health import Health
from bot.app.scheduler import fire_time
from bot.app.service import Service
from bot.engine.chart import render_chart
from bot.engine.compose import data_caveats, display
from bot.engine.rules import thresholds_summary
from bot.pipeline.evaluation import history_start, indicator_frame

PREVIEW_SESSIONS = 504
"""About two years of sessions replayed by /preview."""

STATUS_VALUES = (
    ("close", "SPX", 2), ("rsi", "RSI", 1), ("macd_hist", "MACD hist", 2),
    ("weekly_macd_hist", "weekly hist", 2),
    ("ad_divergence_days", "A/D divergence length", 0),
    ("ad_divergence_streak", "A/D divergence streak", 0),
    ("macd_divergence_days", "MACD divergence length", 0),
    ("macd_divergence_streak", "MACD divergence streak", 0),
    ("mcclellan_oscillator", "McClellan oscillator", 2),
    ("summation_index", "summation index", 2), ("vix", "VIX", 2),
    ("vix_term_ratio", "VIX/VIX3M", 3),
)
"""(name, label, digits) shown by /status; a value that is not evaluable says why."""


class EngineQueries:
    """Built before the service (the bot and the outbox come first); ``attach`` it then."""

    def __init__(self, service: Service | None = None) -> None:
        self._service = service
        self._health: Callable[[], Health] | None = None

    def attach(self, service: Service, health: Callable[[], Health] | None = None) -> None:
        """The running service, and the bot's whole health (``/healthz``: the service's
        and delivery's) for ``/health``; without it, the service's alone."""
        self._service = service
        self._health = health

    @property
    def service(self) -> Service:
        if self._service is None:
            raise RuntimeError("the engine is still starting")
        return self._service

    @property
    def _store(self) -> Any:
        return self.service.store

    async def status(self) -> str:
        run = await asyncio.to_thread(self._store.runs.last)
        if run is None:
            return "No session evaluated yet."
        rec = run.record
        values = rec.flat()
        lines = [f"<b>Status after {escape(run.session.isoformat())}</b>"]
        lines += [f"{escape(label)}: {escape(display(values, key, d))}"
                  for key, label, d in STATUS_VALUES]
        state = rec.state_after
        lines.append("Hedge layers: " + (", ".join(
            f"{escape(a.name)} since {escape(a.added_on.isoformat())} ({a.quantity} "
            f"{escape(a.instrument)})" for a in state.layers) or "none"))
        if state.deferred:
            lines.append("Deferred: " + ", ".join(
                f"{escape(d.name)} since {escape(d.since.isoformat())}" for d in state.deferred))
        lines.append("Condor: " + ("GO" if rec.condor and rec.condor.go else "skip"))
        lines += [escape(c) for c in data_caveats(values)]
        lines.append(await self.calendar(header=False))
        return "\n".join(lines)

    async def why(self) -> str:
        run = await asyncio.to_thread(self._store.runs.last)
        if run is None:
            return "No session evaluated yet."
        rec = run.record
        out = [f"<b>Why · {escape(run.session.isoformat())}</b> (rules "
               f"<code>{escape(run.rules_sha256[:12])}</code>)"]
        for d in rec.layer_decisions:
            out.append(f"<b>{escape(d.layer)}: {escape(d.action.replace('_', ' '))}</b>")
            out += [f"  <code>{escape(r)}</code>" for r in d.reasons]
        if rec.condor:
            out.append(f"<b>Condor: {'GO' if rec.condor.go else 'skip'}</b>")
            out += [f"  <code>{escape(c.text)}</code>" for c in rec.condor.verdict.checks]
        for w in rec.warnings:
            out.append(f"<b>Warning {escape(w.name)}</b>")
            out += [f"  <code>{escape(c.text)}</code>" for c in w.verdict.checks]
        out += [escape(c) for c in data_caveats(rec.flat())]
        return "\n".join(out)

    async def rules(self) -> str:
        rules = self.service.watcher.rules
        lines = [f"<b>Rules</b> <code>{escape(rules.sha256[:12])}</code>",
                 f"File: <code>{escape(rules.label)}</code>"]
        for key, value in thresholds_summary(rules).items():
            lines.append(f"<code>{escape(key)}</code>: {escape(str(value))}")
        return "\n".join(lines)

    async def chart(self) -> bytes | None:
        return await asyncio.to_thread(self._chart)

    def _chart(self) -> bytes | None:
        svc = self.service
        run = svc.store.runs.last()
        if run is None:
            return None
        rules = svc.watcher.rules
        frame = indicator_frame(svc.store, svc.calendar, rules,
                                history_start(svc.calendar, run.session, rules), run.session)
        layers = [(a.name, a.added_on, None) for a in run.state.layers]
        events = [(e.kind.value, e.date) for e in svc.store.events(
            start=run.session + dt.timedelta(days=1),
            end=run.session + dt.timedelta(days=45))]
        return render_chart(frame, layer_periods=layers, events=events)

    async def history(self, n: int) -> str:
        runs = await asyncio.to_thread(self._store.runs.recent, n)
        if not runs:
            return "No session evaluated yet."
        out = [f"<b>Last {len(runs)} session(s)</b>"]
        for r in runs:
            acts = [f"{d.layer} {d.action}" for d in r.record.changes]
            condor = "go" if r.record.condor and r.record.condor.go else "skip"
            late = " (late)" if r.late else ""
            out.append(f"{escape(r.session.isoformat())}{late}: condor {condor}"
                       + (f"; {escape(', '.join(acts))}" if acts else ""))
        return "\n".join(out)

    async def calendar(self, header: bool = True) -> str:
        svc = self.service
        today = svc.calendar.last_closed_session(svc.clock())
        events = await asyncio.to_thread(
            svc.store.events, None, today + dt.timedelta(days=1), today + dt.timedelta(days=90))
        rules = svc.watcher.rules
        lines = ["<b>Upcoming events</b>"] if header else ["Next events:"]
        if not events:
            lines.append("none known (set ALVH_FRED_API_KEY for CPI/PPI dates)")
        for e in events[:8]:
            width = rules.blackout.sessions(e.kind)
            session = svc.calendar.session_on_or_after(e.date)
            start = svc.calendar.offset(session, -width) if width else None
            bl = (f", blackout from {start}" if start else "")
            t = e.time_et.strftime("%H:%M ET") if e.time_et else ""
            lines.append(f"{escape(e.kind.value)} {escape(e.date.isoformat())} {t}{escape(bl)}")
        return "\n".join(lines)

    async def health(self) -> str:
        h = await asyncio.to_thread(self._health or self.service.health)
        lines = [f"<b>Health: {escape(str(h.body['status']))}</b>"]
        for key, value in h.body.items():
            if key != "status":
                lines.append(f"{escape(key)}: <code>{escape(str(value))}</code>")
        return "\n".join(lines)

    async def reload(self) -> str:
        res = await self.service.check_rules()
        if res is None:
            sha = self.service.watcher.rules.sha256[:12]
            return f"Rules unchanged (<code>{escape(sha)}</code>)."
        return f"<pre>{escape(res.message)}</pre>"

    async def rundate(self, date: dt.date) -> str:
        svc = self.service
        if not svc.calendar.first <= date <= svc.calendar.last:
            return f"{escape(date.isoformat())} is outside the session calendar."
        if not svc.calendar.is_session(date):
            return f"{escape(date.isoformat())} is not an NYSE session."
        if date > svc.latest_session():
            return f"{escape(date.isoformat())} has not closed yet."
        done = await asyncio.to_thread(svc.store.runs.get, date)
        if done is not None:
            return (f"{escape(date.isoformat())} was evaluated at {escape(done.evaluated_at)}; "
                    "its alerts were sent then and are not sent twice. /why shows the latest.")
        fire = fire_time(svc.calendar, date, svc.cfg.run_delay)
        if svc.clock() < fire + svc.cfg.deadline:
            return (f"{escape(date.isoformat())} is still in its normal run (from "
                    f"{escape(fire.strftime('%H:%M %Z'))}, waiting for data until the deadline); "
                    "/rundate is for sessions the bot missed.")
        outcome = await svc.run_session(date, late=True)
        return f"{escape(date.isoformat())}: {escape(outcome)}"

    async def preview(self) -> str:
        """The rules file on disk, if it differs from the running rules, replayed against them."""
        return await asyncio.to_thread(self._preview)

    def _preview(self) -> str:
        from bot.backtest.diff import preview_diff
        from bot.engine.rules import load_rules
        from bot.kernel.errors import RulesError

        svc = self.service
        running = svc.watcher.rules
        path = svc.watcher.path
        if path is None:
            return "The shipped default rules are running; there is no rules file to preview."
        try:
            pending = load_rules(path)
        except RulesError as exc:
            return f"The edit on disk does not load:\n<pre>{escape(str(exc))}</pre>"
        if pending.sha256 == running.sha256:
            return (f"No pending edit: {escape(str(path))} is the running rules "
                    f"(<code>{escape(running.sha256[:12])}</code>).")
        end = svc.latest_session()
        start = svc.calendar.offset(end, -PREVIEW_SESSIONS)
        result = preview_diff(svc.store, svc.calendar, running, pending, start, end,
                              capital=svc.cfg.capital)
        return f"<pre>{escape(result.short_text())}</pre>"
