"""Turning an evaluation into alerts (pipeline stage "compose").

One alert per topic and event, each in plain text and in Telegram HTML. Every
dynamic value goes through :func:`html.escape` on the HTML side: a layer
name or a rules-file condition is user-written text and must never be able to
break a message. Messages are written for a phone: the decision first, then
the figures, then the reasons.

Honest data (DESIGN.md §4): a value that cannot be computed is shown as "not
evaluable (why)", never as 0, "no" or "n/a"; every alert names the breadth
sources of the divergence window, the imputed sessions in it, and the
calendar kinds whose blackout cannot be applied.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from html import escape

from bot.engine.evaluate import Evaluation, LayerAction
from bot.engine.indicators.evaluable import NOT_EVALUABLE_TEXT, shown, why_key
from bot.engine.state import Value
from bot.kernel.alerts import Alert, Topic
from bot.kernel.models import Freshness, is_synthetic

ICON = {"add": "🛡", "remove": "✅", "defer": "⏸", "cancel_deferral": "↩"}
VERB = {
    "add": "ADDED", "remove": "REMOVED", "defer": "DEFERRED",
    "cancel_deferral": "DEFERRAL CANCELLED",
}
KIND = {"add": "layer_added", "remove": "layer_removed", "defer": "layer_deferred",
        "cancel_deferral": "layer_deferral_cancelled"}


@dataclass(frozen=True, slots=True)
class Context:
    """What every alert of one run shares."""

    session: dt.date
    rules_sha256: str
    sources: dict[str, str]
    breadth_source: str | None
    capital: float
    late: bool = False
    replayed_from: dt.date | None = None
    """The layer state was rebuilt by replaying from this session (no run before)."""
    replayed: tuple[str, ...] = ()
    """Changes in those replayed sessions, for which no alert was ever sent."""
    rules_file: str = ""
    """Which rules file the hash is of (its path, or "packaged default")."""
    caveats: tuple[str, ...] = ()
    """What every alert of the session must say about its data (see :func:`data_caveats`)."""


class _Doc:
    """Builds the same message as plain text and as escaped Telegram HTML."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.html: list[str] = []

    def title(self, s: str) -> None:
        self.text.append(s)
        self.html.append(f"<b>{escape(s)}</b>")

    def line(self, s: str = "", *, bold: str = "") -> None:
        self.text.append(f"{bold}{s}")
        self.html.append((f"<b>{escape(bold)}</b>" if bold else "") + escape(s))

    def code(self, s: str) -> None:
        self.text.append(f"  {s}")
        self.html.append(f"  <code>{escape(s)}</code>")

    def render(self) -> tuple[str, str]:
        return "\n".join(self.text), "\n".join(self.html)


def num(v: Value | None, digits: int = 2) -> str:
    if v is None or isinstance(v, str):
        return NOT_EVALUABLE_TEXT
    if isinstance(v, bool):
        return "yes" if v else "no"
    f = float(v)
    if math.isnan(f):
        return NOT_EVALUABLE_TEXT
    if f.is_integer():
        return f"{int(f)}"  # strikes, counts, day counts
    return f"{f:.{digits}f}"


def display(v: Mapping[str, Value], name: str, digits: int = 2) -> str:
    """``v[name]`` for a reader: the figure, or "not evaluable (why)"."""
    return shown(v, name) or num(v.get(name), digits)


def data_caveats(v: Mapping[str, Value]) -> tuple[str, ...]:
    """What every alert of a session says about its data: the breadth sources and imputed
    sessions of the divergence window, and each watched calendar kind that cannot be applied.
    """
    out = []
    sources = v.get("breadth_window_sources")
    if sources:
        out.append(f"Breadth in the A/D divergence window: {sources}")
    imputed = v.get("breadth_window_imputed")
    if imputed:
        out.append(f"⚠ Imputed breadth in the window (no accepted NYSE row; the A/D line "
                   f"carries flat): {imputed}")
    unapplied = v.get("blackout_unapplied")
    for kind in str(unapplied).split(", ") if unapplied else ():
        why = v.get(why_key(f"sessions_to_{kind.lower()}"))
        out.append(f"⚠ The {kind} blackout cannot be applied" + (f": {why}" if why else ""))
    return tuple(out)


def _divergence(v: Mapping[str, Value], prefix: str) -> str:
    """``length 30 (streak 26)``, ``none`` or ``not evaluable (why)``: DESIGN §4's two measures."""
    name = f"{prefix}_divergence_days"
    missing = shown(v, name)
    if missing:
        return missing
    days = v.get(name)
    if isinstance(days, int | float) and not isinstance(days, bool) and days == 0:
        return "none"
    return f"length {num(days)} (streak {display(v, f'{prefix}_divergence_streak')})"


def usd(v: float) -> str:
    return f"${v:,.0f}"


def _late(doc: _Doc, ctx: Context) -> None:
    if ctx.late:
        doc.line("⏱ Late: evaluated in a catch-up after the scheduled run.")


def _footer(doc: _Doc, ctx: Context) -> None:
    doc.line("")
    if ctx.breadth_source and is_synthetic(ctx.breadth_source):
        doc.line("⚠ Breadth is the SYNTHETIC series (not NYSE data): A/D signals are indicative.")
    for caveat in ctx.caveats:
        doc.line(caveat)
    srcs = ", ".join(f"{k} {v}" for k, v in sorted(ctx.sources.items()) if v)
    if srcs:
        doc.line(f"Data: {srcs}")
    doc.line(f"Rules {ctx.rules_sha256[:12]}" + (f" · {ctx.rules_file}" if ctx.rules_file else ""))


def _checks(doc: _Doc, checks: Iterable[str]) -> None:
    for c in checks:
        doc.code(c)


def _make(ctx: Context, topic: Topic, kind: str, layer: str, title: str, doc: _Doc) -> Alert:
    text, html = doc.render()
    return Alert(ctx.session, topic, kind, layer, title, text, html, late=ctx.late)


def hedge_alert(ctx: Context, action: LayerAction) -> Alert | None:
    d = action.decision
    if d.action not in VERB:
        return None
    title = f"{ICON[d.action]} HEDGE {d.layer} {VERB[d.action]} · {ctx.session}"
    doc = _Doc()
    doc.title(title)
    _late(doc, ctx)
    if action.quote is not None and action.size is not None:
        q, z = action.quote, action.size
        expiry = f", expires {q.expiry}" if q.expiry else ""
        doc.line(f"{q.symbol}{expiry}: {z.quantity} × {num(q.price)} "
                 f"({usd(q.unit_cost)} each, {usd(z.cost)} in all)", bold="Buy ")
        doc.line(f"Priced from: {q.priced_from}")
        doc.line(f"Budget {usd(z.layer_budget)} per layer of {usd(ctx.capital)} capital")
        if z.reason:
            doc.line(f"⚠ {z.reason}")
    elif d.action == "add":
        doc.line("⚠ The hedge could not be priced: size it by hand.")
    if d.action == "defer":
        doc.line("Not added now because of the blackout; it fires after the blackout "
                 "if the condition still holds.")
    doc.line("Why:")
    _checks(doc, d.reasons)
    _footer(doc, ctx)
    return _make(ctx, Topic.HEDGE, KIND[d.action], d.layer, title, doc)


def condor_alert(ctx: Context, ev: Evaluation) -> Alert | None:
    cd = ev.condor
    if cd is None:
        return None
    v = ev.values
    market = f"SPX {display(v, 'close')}, VIX {display(v, 'vix')}"
    if cd.go and cd.condor is not None:
        k = cd.condor
        title = f"🦅 CONDOR GO · {ctx.session}"
        doc = _Doc()
        doc.title(title)
        _late(doc, ctx)
        doc.line(market)
        kind = "monthly SPX, AM-settled" if k.kind == "monthly" else "SPXW, PM-settled"
        doc.line(f"{k.expiry} ({kind}), {k.dte} days", bold="Expiry ")
        doc.line(f"{num(k.short_put.strike)}/{num(k.long_put.strike)}  ·  Calls "
                 f"{num(k.short_call.strike)}/{num(k.long_call.strike)}", bold="Puts ")
        doc.line(f"{num(k.credit)} pts ({usd(k.credit_dollars)}), credit/width "
                 f"{k.credit_to_width:.2f}", bold="Credit ")
        doc.line(f"{num(k.break_even_low)} / {num(k.break_even_high)}", bold="Break-evens ")
        doc.line(f"{num(k.max_loss)} pts ({usd(k.max_loss_dollars)}) per condor",
                 bold="Max loss ")
        doc.line(f"{k.contracts} for a {usd(k.max_loss_budget)} max-loss budget"
                 + (f" ({k.contracts_note})" if k.contracts_note else ""), bold="Contracts ")
        if k.hedge_cost > 0:
            low = num(k.break_even_low_with_hedge) if k.break_even_low_with_hedge else "none"
            high = num(k.break_even_high_with_hedge) if k.break_even_high_with_hedge else "none"
            doc.line(f"hedge cost {num(k.hedge_cost)} pts per condor: break-evens "
                     f"{low} / {high}, max loss {num(k.max_loss_with_hedge)} pts",
                     bold="With hedge ")
        else:
            doc.line("no hedge layer is on, nothing to allocate", bold="With hedge ")
        if k.hedge_note:
            doc.line(f"⚠ {k.hedge_note}")
        doc.line(f"Strikes priced by {k.pricing}"
                 + (": an estimate (real put IV is higher, call IV lower)"
                    if "model" in k.pricing else ""))
        if k.pricing_note:
            doc.line(k.pricing_note)
        kind_name = "condor_go"
    else:
        title = f"⛔ CONDOR SKIP · {ctx.session}"
        doc = _Doc()
        doc.title(title)
        _late(doc, ctx)
        doc.line(market)
        failing = [c.observed() for c in cd.verdict.checks if not c.passed]
        doc.line(cd.note or "No new condor today: " + (", ".join(failing) or "conditions"))
        kind_name = "condor_skip"
    doc.line("Why:")
    _checks(doc, (c.describe() for c in cd.verdict.checks))
    _footer(doc, ctx)
    return _make(ctx, Topic.CONDOR, kind_name, "", title, doc)


def warning_alerts(ctx: Context, ev: Evaluation) -> list[Alert]:
    out = []
    for w in ev.warnings:
        title = f"⚠ WARNING {w.name} · {ctx.session}"
        doc = _Doc()
        doc.title(title)
        _late(doc, ctx)
        doc.line("An early warning only: it adds no hedge layer by itself.")
        _checks(doc, (c.describe() for c in w.verdict.checks))
        _footer(doc, ctx)
        out.append(_make(ctx, Topic.WARNING, f"warning_{w.name}", "", title, doc))
    return out


def summary_alert(ctx: Context, ev: Evaluation, upcoming: Sequence[tuple[str, dt.date]]) -> Alert:
    v = ev.values
    title = f"📊 ALVH daily · {ctx.session}"
    doc = _Doc()
    doc.title(title)
    _late(doc, ctx)
    doc.line(f"{display(v, 'close')}  RSI {display(v, 'rsi', 1)}", bold="SPX ")
    doc.line(f"{display(v, 'macd')} / signal {display(v, 'macd_signal')} / hist "
             f"{display(v, 'macd_hist')}", bold="MACD ")
    doc.line(f"hist {display(v, 'weekly_macd_hist')}", bold="Weekly MACD ")
    doc.line(f"A/D {_divergence(v, 'ad')}; MACD {_divergence(v, 'macd')}", bold="Divergence ")
    doc.line(f"oscillator {display(v, 'mcclellan_oscillator')}, summation index "
             f"{display(v, 'summation_index')}", bold="McClellan ")
    doc.line(f"{display(v, 'vix')}  VIX3M {display(v, 'vix3m')}  ratio "
             f"{display(v, 'vix_term_ratio', 3)}", bold="VIX ")
    layers = ev.state_after.layers
    if layers:
        doc.line(", ".join(f"{a.name} since {a.added_on} ({a.quantity} {a.instrument})"
                           for a in layers), bold="Hedge layers ")
    else:
        doc.line("none", bold="Hedge layers ")
    if ev.state_after.deferred:
        doc.line(", ".join(f"{d.name} since {d.since}" for d in ev.state_after.deferred),
                 bold="Deferred ")
    if v.get("blackout"):
        doc.line(f"blackout before {v.get('blackout_kind')}", bold="Calendar ")
    if upcoming:
        doc.line(", ".join(f"{k} {d}" for k, d in upcoming), bold="Next events ")
    for a in ev.actions:
        if a.decision.action == "not_added":
            doc.line(f"{a.decision.layer} stays off:", bold="Next layer ")
            _checks(doc, a.decision.reasons[1:])
    if ev.condor is not None:
        doc.line("GO" if ev.condor.go and ev.condor.condor else "skip", bold="Condor ")
    changed = [a for a in ev.actions if a.decision.action in VERB]
    if changed:
        doc.line("; ".join(f"{a.decision.layer} {VERB[a.decision.action].lower()}"
                           for a in changed), bold="Today ")
    for note in ev.notes:
        doc.line(f"⚠ {note}")
    if ctx.replayed_from is not None:
        doc.line(f"⚠ The hedge-layer state was rebuilt by replaying the sessions from "
                 f"{ctx.replayed_from}; no alerts were sent for them"
                 + (": " + "; ".join(ctx.replayed) if ctx.replayed else "."))
    _footer(doc, ctx)
    return _make(ctx, Topic.SUMMARY, "daily_summary", "", title, doc)


def data_alert(ctx: Context, fresh: Freshness) -> Alert:
    title = f"🚫 NO SIGNAL · {ctx.session}: data incomplete"
    doc = _Doc()
    doc.title(title)
    doc.line("No trading signal is sent on stale, partial or gapped data.")
    for p in fresh.problems():
        doc.code(p)
    return _make(ctx, Topic.OPS, "data_incomplete", "", title, doc)


def compose(
    ctx: Context, ev: Evaluation, upcoming: Sequence[tuple[str, dt.date]] = (),
    chart: bytes | None = None,
) -> list[Alert]:
    """Every alert of one evaluation, hedge changes first (they matter most).

    ``chart`` (PNG) goes with the daily summary.
    """
    ctx = replace(ctx, caveats=ctx.caveats + data_caveats(ev.values))
    alerts: list[Alert] = []
    for action in ev.actions:
        a = hedge_alert(ctx, action)
        if a is not None:
            alerts.append(a)
    alerts.extend(warning_alerts(ctx, ev))
    c = condor_alert(ctx, ev)
    if c is not None:
        alerts.append(c)
    summary = summary_alert(ctx, ev, upcoming)
    alerts.append(replace(summary, chart_png=chart) if chart else summary)
    return alerts
