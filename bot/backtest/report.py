"""Render a backtest: the terminal table, CSV and JSON decisions, a self-contained HTML page.

All renderings read one :class:`~bot.backtest.summary.Summary`, so the
numbers agree everywhere. Condor decisions are per session for ~250
sessions a year, far too many for a terminal: the table prints per-year
go/skip counts and a tally of skip reasons; every session is in the files.
The HTML embeds its charts as base64 PNGs (matplotlib's Agg canvas, no
pyplot state) so the file can be mailed or archived on its own.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import json
import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.backtest.run import CHANGE_ACTIONS, BacktestResult
from bot.backtest.stats import HORIZONS, drawdown_series
from bot.backtest.summary import MISSING, Summary, skip_reasons
from bot.engine.evaluate import Evaluation
from bot.engine.record import RunRecord
from bot.kernel.models import is_synthetic

PROXY_NOTE = (
    "Hedge P&L is a PROXY approximation: a backtest has no VX settlement history, so each "
    "layer's contract is priced on the day it goes on and the day it comes off by interpolating "
    "the VIX3M (93-day) and VIX6M (184-day) indices to that contract's days to expiry. Real VX "
    "futures trade at their own term-structure prices, with roll, spread and commissions not "
    "modelled. P&L = (exit - entry) x $1,000 x contracts."
)
FILES = ("report.html", "decisions.csv", "layer_actions.csv", "hedge_pnl.csv", "decisions.json")


def _pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None or math.isnan(x) else f"{100 * x:.{digits}f} %"


def _pts(x: float | None) -> str:
    return "—" if x is None or math.isnan(x) else f"{x:+.2f}"


def _usd(x: float | None) -> str:
    if x is None:
        return "—"
    return f"-${-x:,.0f}" if x < 0 else f"${x:,.0f}"


def _price(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _day(d: dt.date | None) -> str:
    return d.isoformat() if d else "—"


def layer1_name(result: BacktestResult) -> str:
    return result.rules.hedge.layers[0].name


# ------------------------------------------------------------------ text


def text_lines(result: BacktestResult, summary: Summary) -> list[str]:
    """The terminal report, line by line."""
    s, p = summary, summary.params
    rules = result.rules
    l1 = layer1_name(result)
    out = [
        f"alvh backtest {s.start}..{s.end}: {s.sessions} sessions, source {result.source}",
        f"rules: {rules.origin} (sha256 {rules.sha256[:12]}); capital {_usd(result.capital)}",
    ]
    out += [f"note: {n}" for n in s.notes]
    skipped = [d for k, ds in sorted(result.excluded_events.items()) for d in ds
               if s.start <= d <= s.end]
    if skipped:
        out.append("unscheduled FOMC moves, counted only from their own date (no blackout "
                   "before them): " + ", ".join(d.isoformat() for d in skipped))
    out += ["", *breadth_lines(summary, rules.indicators.divergence.window)]

    c = s.action_counts
    out += ["", "Layer decisions: " + ", ".join(f"{c[a]} {a}" for a in CHANGE_ACTIONS)]
    if s.layer_rows:
        out.append(f"  {'session':<10}  {'action':<15}  {'layer':<8}  detail")
        for r in s.layer_rows:
            out.append(f"  {r.session}  {r.action:<15}  {r.layer:<8}  {r.detail}")
    else:
        out.append("  (no layer was added, removed, deferred or blocked)")

    out += ["", f"Condor: {s.condor_go} go, {s.condor_skip} skip "
                "(every session is in decisions.csv / decisions.json)",
            f"  {'year':<6}{'go':>6}{'skip':>6}"]
    out += [f"  {y.year:<6}{y.go:>6}{y.skip:>6}" for y in s.condor_years]
    if s.skip_reasons:
        out.append("  skip reasons (a skip can have several):")
        out += [f"  {n:>6}  {k}" for k, n in s.skip_reasons]

    out += ["", f"Layer-1 triggers ({l1} added): {len(s.triggers)}"]
    if s.triggers:
        h = "".join(f"{'maxDD ' + str(x):>10}" for x in HORIZONS)
        v = "".join(f"{'ΔVIX ' + str(x):>9}" for x in HORIZONS)
        out.append(f"  {'session':<10}{'close':>10}{'VIX':>7}{h}{v}  false alarm")
        for t in s.triggers:
            dd = "".join(
                f"{_pct(t.max_drawdown[x]) + ('' if t.complete(x) else '*'):>10}"
                for x in HORIZONS
            )
            vc = "".join(f"{_pts(t.vix_change[x]):>9}" for x in HORIZONS)
            fa = {True: "yes", False: "no", None: "undetermined"}[t.false_alarm]
            out.append(f"  {t.session}{t.close:>10.2f}{_price(t.vix):>7}{dd}{vc}  {fa}")
        if any(not t.complete(max(HORIZONS)) for t in s.triggers):
            out.append("  * fewer sessions of data than the horizon after the trigger")
    out.append(
        f"  false alarms: {s.false_alarms} of {len(s.triggers)} (SPX max drawdown over the next "
        f"{p.false_alarm_horizon} sessions < {p.false_alarm_pct:g} %); {s.undetermined} "
        f"undetermined (fewer than {p.false_alarm_horizon} sessions after, threshold not reached)"
    )

    out += ["", f"SPX drawdowns of {p.drawdown_pct:g} % or more: {len(s.episodes)} "
                f"(peak = running max of the closes since {s.start}; an episode starts on the "
                f"first close {p.drawdown_pct:g} % below the peak and ends on a close back at "
                "the peak)"]
    if s.episodes:
        out.append(f"  {'peak':<10}{'close':>10}  {'start':<10}  {'trough':<10}{'close':>10}"
                   f"{'depth':>9}  {'recovered':<10}  trigger within "
                   f"{p.lead_sessions} sessions before the start")
        for e in s.episodes:
            ep = e.episode
            trig = (f"{e.trigger} ({e.lead_sessions} sessions before)" if e.trigger
                    else "none")
            hedged = "hedged" if e.hedged_at_start else "unhedged"
            out.append(f"  {ep.peak}{ep.peak_close:>10.2f}  {ep.start}  {ep.trough}"
                       f"{ep.trough_close:>10.2f}{_pct(ep.depth):>9}  {_day(ep.recovered):<10}  "
                       f"{trig}; {hedged} at the start")
    out.append(f"  preceded by a layer-1 trigger within {p.lead_sessions} sessions: "
               f"{s.preceded} of {len(s.episodes)}")

    share = s.hedged_sessions / s.sessions if s.sessions else 0.0
    by = ", ".join(f"{k} layer(s): {v}" for k, v in s.hedged_by_count.items())
    out += ["", f"Sessions hedged (at least one layer on after the close): {s.hedged_sessions} "
                f"of {s.sessions} ({_pct(share)}); {by}"]

    out += ["", "Hedge P&L, a proxy approximation:",
            *textwrap.wrap(PROXY_NOTE, 96, initial_indent="  ", subsequent_indent="  ")]
    if s.periods:
        out.append(f"  {'layer':<8}  {'added':<10}  {'removed':<10}  {'contract':<9}  "
                   f"{'expiry':<10}{'qty':>4}{'entry':>8}{'exit':>8}{'P&L':>11}  status")
        for per in s.periods:
            out.append(f"  {per.layer:<8}  {per.added_on}  {_day(per.removed_on):<10}  "
                       f"{per.symbol or '—':<9}  {_day(per.expiry):<10}{per.quantity:>4}"
                       f"{_price(per.entry_price):>8}{_price(per.exit_price):>8}"
                       f"{_usd(per.pnl):>11}  {per.status}")
    unpriced = f"; {s.unpriced} layer(s) unpriced (no VIX3M/VIX6M)" if s.unpriced else ""
    out.append(f"  total: {_usd(s.pnl_total)} over {len(s.periods)} layer period(s){unpriced}")
    return out


def breadth_lines(summary: Summary, window: int) -> list[str]:
    out = ["Breadth (A/D line) source by period:"]
    for sp in summary.source_periods:
        out.append(f"  {sp.first}..{sp.last}  {sp.sessions:>5} sessions  {sp.label}")
    out.append(
        f"A/D divergences are counted only inside one source period: a {window}-session window "
        "that spans a change of source (or a missing session) yields no divergence."
    )
    if summary.blind_windows:
        for b in summary.blind_windows:
            before = b.before or "no data"
            after = b.after or "no data"
            out.append(f"  no A/D divergence possible {b.first}..{b.last} ({b.sessions} "
                       f"sessions): {before} -> {after} on {b.change_on}")
    else:
        out.append("  (no change of source inside the range)")
    return out


# ------------------------------------------------------------------ files


def session_rows(evaluations: Sequence[Evaluation]) -> Iterable[dict[str, Any]]:
    """One flat row per session: the CSV and the JSON's ``sessions`` share these keys."""
    for ev in evaluations:
        v = ev.values
        c = ev.condor
        k = c.condor if c else None
        yield {
            "session": ev.session.isoformat(),
            "close": _jsonable(v.get("close")),
            "vix": _jsonable(v.get("vix")),
            "vix3m": _jsonable(v.get("vix3m")),
            "vix6m": _jsonable(v.get("vix6m")),
            "blackout": bool(v.get("blackout")),
            "blackout_kind": v.get("blackout_kind") or "",
            "breadth_source": v.get("breadth_source") or "",
            "ad_divergence_days": _jsonable(v.get("ad_divergence_days")),
            "macd_divergence_days": _jsonable(v.get("macd_divergence_days")),
            "layers_on": "+".join(a.name for a in ev.state_after.layers),
            "layer_actions": "; ".join(
                f"{a.decision.action} {a.decision.layer}" for a in ev.actions
                if a.decision.action in CHANGE_ACTIONS
            ),
            "condor": "go" if c is not None and c.go else "skip",
            "condor_skip_reasons": "; ".join(skip_reasons(ev)),
            "expiry": k.expiry.isoformat() if k else "",
            "short_put": k.short_put.strike if k else None,
            "long_put": k.long_put.strike if k else None,
            "short_call": k.short_call.strike if k else None,
            "long_call": k.long_call.strike if k else None,
            "credit": round(k.credit, 4) if k else None,
            "contracts": k.contracts if k else None,
            "warnings": "; ".join(w.name for w in ev.warnings),
        }


def _jsonable(v: object) -> object:
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _write_csv(path: Path, rows: Iterable[Mapping[str, Any]], header: Sequence[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(header))
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if r.get(k) is None else r[k] for k in header})


def stats_json(result: BacktestResult, s: Summary) -> dict[str, Any]:
    p = s.params
    return {
        "params": {"drawdown_pct": p.drawdown_pct, "lead_sessions": p.lead_sessions,
                   "false_alarm_pct": p.false_alarm_pct,
                   "false_alarm_horizon": p.false_alarm_horizon, "horizons": list(HORIZONS)},
        "layer_action_counts": dict(s.action_counts),
        "condor": {"go": s.condor_go, "skip": s.condor_skip,
                   "by_year": [{"year": y.year, "go": y.go, "skip": y.skip}
                               for y in s.condor_years],
                   "skip_reasons": dict(s.skip_reasons)},
        "layer1": layer1_name(result),
        "triggers": [
            {"session": t.session.isoformat(), "close": t.close, "vix": t.vix,
             "max_drawdown": {str(h): t.max_drawdown[h] for h in HORIZONS},
             "vix_change": {str(h): t.vix_change[h] for h in HORIZONS},
             "sessions_after": t.sessions_after, "false_alarm": t.false_alarm}
            for t in s.triggers
        ],
        "false_alarms": s.false_alarms,
        "undetermined": s.undetermined,
        "drawdown_episodes": [
            {"peak": e.episode.peak.isoformat(), "peak_close": e.episode.peak_close,
             "start": e.episode.start.isoformat(), "trough": e.episode.trough.isoformat(),
             "trough_close": e.episode.trough_close, "depth": e.episode.depth,
             "recovered": e.episode.recovered.isoformat() if e.episode.recovered else None,
             "trigger": e.trigger.isoformat() if e.trigger else None,
             "lead_sessions": e.lead_sessions, "hedged_at_start": e.hedged_at_start}
            for e in s.episodes
        ],
        "episodes_preceded": s.preceded,
        "sessions_hedged": s.hedged_sessions,
        "sessions_by_layers_on": {str(k): v for k, v in s.hedged_by_count.items()},
        "hedge_pnl": {"proxy": True, "note": PROXY_NOTE, "total": s.pnl_total,
                      "unpriced": s.unpriced, "layers": [_period_row(x) for x in s.periods]},
        "breadth_sources": [
            {"first": x.first.isoformat(), "last": x.last.isoformat(), "sessions": x.sessions,
             "source": x.source or None, "kind": x.kind} for x in s.source_periods
        ],
        "no_divergence_windows": [
            {"change_on": b.change_on.isoformat(), "before": b.before or None,
             "after": b.after or None, "first": b.first.isoformat(),
             "last": b.last.isoformat(), "sessions": b.sessions} for b in s.blind_windows
        ],
    }


def _period_row(x: Any) -> dict[str, Any]:
    return {
        "layer": x.layer, "added_on": x.added_on.isoformat(),
        "removed_on": x.removed_on.isoformat() if x.removed_on else None,
        "deferred_since": x.late_from.isoformat() if x.late_from else None,
        "contract": x.symbol, "expiry": x.expiry.isoformat() if x.expiry else None,
        "quantity": x.quantity, "entry_price": x.entry_price, "multiplier": x.multiplier,
        "exit_on": x.exit_on.isoformat() if x.exit_on else None, "exit_price": x.exit_price,
        "pnl": x.pnl, "status": x.status, "basis": x.basis,
    }


def write_files(
    out_dir: Path, result: BacktestResult, summary: Summary, text: Sequence[str]
) -> list[Path]:
    """Write the report and the decisions into ``out_dir`` (created); the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = list(session_rows(result.evaluations))
    header = list(rows[0]) if rows else ["session"]
    _write_csv(out_dir / "decisions.csv", rows, header)
    _write_csv(
        out_dir / "layer_actions.csv",
        ({"session": r.session.isoformat(), "action": r.action, "layer": r.layer,
          "detail": r.detail, "reasons": " | ".join(r.reasons)} for r in summary.layer_rows),
        ["session", "action", "layer", "detail", "reasons"],
    )
    periods = [_period_row(x) for x in summary.periods]
    _write_csv(out_dir / "hedge_pnl.csv", periods,
               list(periods[0]) if periods else ["layer", "added_on", "pnl"])
    record = {
        "meta": {
            "start": summary.start.isoformat(), "end": summary.end.isoformat(),
            "sessions": summary.sessions, "source": result.source,
            "rules_origin": result.rules.origin, "rules_sha256": result.rules.sha256,
            "capital": result.capital, "notes": list(summary.notes),
            "excluded_events": {k: [d.isoformat() for d in v]
                                for k, v in result.excluded_events.items()},
        },
        "stats": stats_json(result, summary),
        "sessions": [_session_json(ev, row) for ev, row in zip(result.evaluations, rows,
                                                               strict=True)],
    }
    (out_dir / "decisions.json").write_text(
        json.dumps(record, allow_nan=False, default=str, ensure_ascii=False) + "\n",
        encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(result, summary, text), encoding="utf-8")
    return [out_dir / f for f in FILES]


def _session_json(ev: Evaluation, row: Mapping[str, Any]) -> dict[str, Any]:
    """The flat row plus the full explanation of every change (not the quiet keeps).

    The run record (the runs table's format) is only built for sessions
    with a change: it renders every value and check, and most sessions have none.
    """
    out = dict(row)
    changes = [a for a in ev.actions if a.decision.action in CHANGE_ACTIONS]
    out["layer_actions"] = [
        d.to_json() for d in RunRecord.of(ev).layer_decisions if d.action in CHANGE_ACTIONS
    ] if changes else []
    out["condor_skip_reasons"] = skip_reasons(ev)
    out["warnings"] = [w.name for w in ev.warnings]
    out["state_after"] = ev.state_after.to_json()
    if ev.notes:
        out["notes"] = list(ev.notes)
    return out


# ------------------------------------------------------------------ charts


MIN_LABELLED_SESSIONS = 20
"""Source periods shorter than this (one-day fills) are drawn but not labelled."""
LAYER_COLOURS = ("tab:red", "tab:orange", "tab:purple", "tab:brown", "tab:pink")


def _dates(values: np.ndarray) -> np.ndarray:
    """Matplotlib's float dates (typed axes want floats; no naive datetime is built)."""
    return np.asarray(mdates.date2num(values), dtype=float)  # type: ignore[no-untyped-call]


def _x(day: dt.date) -> float:
    return float(_dates(np.array([np.datetime64(day.isoformat(), "D")]))[0])


def _xs(index: pd.Index[Any]) -> np.ndarray:
    return _dates(pd.DatetimeIndex(index).to_numpy())


def _date_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.grid(alpha=0.3)


def _png(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def chart_spx(result: BacktestResult, summary: Summary) -> str:
    """SPX (log scale) with every layer's period shaded and the layer-1 triggers marked."""
    f = result.replayed
    fig = Figure(figsize=(11, 4.2))
    fig.subplots_adjust(left=0.07, right=0.99, top=0.9, bottom=0.1)
    ax = fig.add_subplot()
    ax.plot(_xs(f.index), f["close"].to_numpy(), color="black", lw=0.9, label="SPX close")
    ax.set_yscale("log")
    seen: set[str] = set()
    for per in summary.periods:
        colour = LAYER_COLOURS[per.index % len(LAYER_COLOURS)] if per.index >= 0 else "grey"
        label = f"{per.layer} on" if per.layer not in seen else None
        seen.add(per.layer)
        ax.axvspan(_x(per.added_on), _x(per.removed_on or summary.end), color=colour,
                   alpha=0.18, lw=0, label=label)
    if summary.triggers:
        ax.scatter([_x(t.session) for t in summary.triggers],
                   [t.close for t in summary.triggers], marker="v", color="tab:red", s=40,
                   zorder=3, label=f"{layer1_name(result)} trigger")
    defers = [r.session for r in summary.layer_rows if r.action == "defer"]
    if defers:
        closes = f["close"]
        ax.scatter([_x(d) for d in defers], [float(closes.loc[pd.Timestamp(d)]) for d in defers],
                   marker="o", facecolors="none", edgecolors="tab:blue", s=30, zorder=3,
                   label="deferred (blackout)")
    ax.set_title(f"SPX {summary.start}..{summary.end}: hedge layers shaded, triggers marked")
    ax.legend(loc="upper left", fontsize=8)
    _date_axis(ax)
    return _png(fig)


def chart_drawdown(result: BacktestResult, summary: Summary) -> str:
    """SPX below its running peak, the episode threshold, and the episodes."""
    dd = drawdown_series(result.replayed["close"])
    fig = Figure(figsize=(11, 3.2))
    fig.subplots_adjust(left=0.07, right=0.99, top=0.9, bottom=0.1)
    ax = fig.add_subplot()
    ax.fill_between(_xs(dd.index), -100 * dd.to_numpy(), 0, color="tab:blue", alpha=0.4, lw=0)
    thr = summary.params.drawdown_pct
    ax.axhline(-thr, color="tab:red", ls="--", lw=0.9, label=f"-{thr:g} %")
    for e in summary.episodes:
        ep = e.episode
        ax.axvspan(_x(ep.start), _x(ep.recovered or summary.end),
                   color="tab:green" if e.preceded else "tab:red", alpha=0.08, lw=0)
        ax.annotate(f"-{100 * ep.depth:.0f} %", (_x(ep.trough), -100 * ep.depth),
                    fontsize=7, ha="center", va="top")
    ax.set_ylabel("% below running peak")
    ax.set_title(f"SPX drawdowns; episodes of {thr:g} % or more shaded "
                 "(green: preceded by a layer-1 trigger, red: not)")
    ax.legend(loc="lower left", fontsize=8)
    _date_axis(ax)
    return _png(fig)


def chart_breadth(result: BacktestResult, summary: Summary) -> str:
    """The A/D line per breadth-source period (re-based at each change), periods labelled."""
    f = result.replayed
    net = (f["advancers"] - f["decliners"]).to_numpy()
    x = _xs(f.index)
    days = [ts.date() for ts in pd.DatetimeIndex(f.index)]
    fig = Figure(figsize=(11, 3.6))
    fig.subplots_adjust(left=0.07, right=0.99, top=0.85, bottom=0.1)
    ax = fig.add_subplot()
    labelled: set[str] = set()
    for sp in summary.source_periods:
        if sp.source == MISSING:
            ax.axvspan(_x(sp.first), _x(sp.last), color="black", alpha=0.3, lw=0)
            continue
        mask = np.array([sp.first <= d <= sp.last for d in days])
        synthetic = is_synthetic(sp.source)
        colour = "tab:orange" if synthetic else "tab:blue"
        label = sp.label if sp.label not in labelled else None
        labelled.add(sp.label)
        ax.plot(x[mask], np.cumsum(net[mask]), color=colour, lw=0.9, label=label,
                ls="--" if synthetic else "-")
        if sp.sessions >= MIN_LABELLED_SESSIONS:
            ax.annotate(sp.kind.split(" ")[0], (_x(sp.first), 0), fontsize=7, color=colour,
                        xytext=(2, 4), textcoords="offset points")
        ax.axvline(_x(sp.first), color="grey", lw=0.6, ls=":")
    for b in summary.blind_windows:
        ax.axvspan(_x(b.first), _x(b.last), color="grey", alpha=0.15, lw=0)
    ax.set_title("A/D line by breadth source, re-based to 0 at each change (levels are not "
                 "comparable across sources)\ngrey: no A/D divergence possible (window spans a "
                 "change of source)", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    _date_axis(ax)
    return _png(fig)


# ------------------------------------------------------------------ HTML


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1100px;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}
td.l,th.l{text-align:left}.proxy{background:#fff4e0;padding:.5em;border-left:4px solid #e90}
.synthetic{color:#b35900;font-weight:bold}img{max-width:100%}
pre{font-size:.8em;background:#f6f6f6;padding:.6em;overflow-x:auto}
"""


def _table(header: Sequence[str], rows: Iterable[Sequence[object]], left: int = 1) -> str:
    def cell(tag: str, i: int, v: object) -> str:
        cls = ' class="l"' if i < left else ""
        return f"<{tag}{cls}>{html.escape(str(v))}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(result: BacktestResult, s: Summary, text: Sequence[str]) -> str:
    """The self-contained report page."""
    p = s.params
    esc = html.escape
    window = result.rules.indicators.divergence.window
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>alvh backtest {s.start}..{s.end}</title><style>{_CSS}</style></head><body>",
        f"<h1>alvh backtest {s.start} .. {s.end}</h1>",
        f"<p>{s.sessions} sessions, source <b>{esc(result.source)}</b>; rules "
        f"<code>{esc(result.rules.origin)}</code> (sha256 {result.rules.sha256[:12]}); capital "
        f"{_usd(result.capital)}. Decisions come from the same engine as the daily job "
        "(indicators, rules, layer state machine, blackouts, condor construction).</p>",
    ]
    parts += [f"<p>Note: {esc(n)}</p>" for n in s.notes]
    skipped = [d.isoformat() for ds in result.excluded_events.values() for d in ds
               if s.start <= d <= s.end]
    if skipped:
        parts.append("<p>Unscheduled FOMC moves, counted only from their own date (nobody knew "
                     f"of them in advance, so no blackout before them): "
                     f"{esc(', '.join(skipped))}.</p>")

    parts += ["<h2>SPX and the hedge layers</h2>",
              f"<img alt='SPX with layer periods' src='data:image/png;base64,"
              f"{chart_spx(result, s)}'>"]

    parts += ["<h2>Breadth sources (A/D line)</h2>",
              f"<img alt='A/D line by breadth source' src='data:image/png;base64,"
              f"{chart_breadth(result, s)}'>",
              _table(["first session", "last session", "sessions", "source"],
                     ([sp.first, sp.last, sp.sessions, sp.label] for sp in s.source_periods),
                     left=4),
              f"<p>The A/D line is never compared across sources: a {window}-session "
              "divergence window that spans a change of breadth source (or a missing session) "
              "yields no divergence. Sessions where no A/D divergence was possible for that "
              "reason:</p>"]
    if s.blind_windows:
        parts.append(_table(["from", "to", "sessions", "change"],
                            ([b.first, b.last, b.sessions,
                              f"{b.before or 'no data'} → {b.after or 'no data'} on "
                              f"{b.change_on}"] for b in s.blind_windows), left=2))
    else:
        parts.append("<p>(no change of source inside the range)</p>")
    if any(is_synthetic(sp.source) for sp in s.source_periods):
        parts.append("<p class='synthetic'>Part of this range uses the SYNTHETIC breadth "
                     "series (counted over a stock universe, not NYSE figures).</p>")

    c = s.action_counts
    parts += ["<h2>Layer decisions</h2>",
              "<p>" + esc(", ".join(f"{c[a]} {a}" for a in CHANGE_ACTIONS)) + "</p>",
              _table(["session", "action", "layer", "detail"],
                     ([r.session, r.action, r.layer, r.detail] for r in s.layer_rows), left=4)]

    l1 = layer1_name(result)
    parts += [f"<h2>Layer-1 triggers ({esc(l1)} added): {len(s.triggers)}</h2>",
              _table(["session", "close", "VIX",
                      *(f"max drawdown {h}" for h in HORIZONS),
                      *(f"ΔVIX {h}" for h in HORIZONS), "false alarm"],
                     ([t.session, f"{t.close:.2f}", _price(t.vix),
                       *(_pct(t.max_drawdown[h]) + ("" if t.complete(h) else "*")
                         for h in HORIZONS),
                       *(_pts(t.vix_change[h]) for h in HORIZONS),
                       {True: "yes", False: "no", None: "undetermined"}[t.false_alarm]]
                      for t in s.triggers)),
              f"<p>False alarms: {s.false_alarms} of {len(s.triggers)} (SPX maximum drawdown "
              f"over the next {p.false_alarm_horizon} sessions below {p.false_alarm_pct:g} %); "
              f"{s.undetermined} undetermined. Max drawdown over h sessions: the largest fall "
              "of the close below its running peak, starting from the trigger's close. "
              "* = fewer than h sessions of data after the trigger.</p>"]

    parts += [f"<h2>SPX drawdowns of {p.drawdown_pct:g} % or more: {len(s.episodes)}</h2>",
              f"<img alt='SPX drawdowns' src='data:image/png;base64,"
              f"{chart_drawdown(result, s)}'>",
              f"<p>Peak = running maximum of the closes since {s.start}; an episode starts on "
              f"the first close at least {p.drawdown_pct:g} % below the peak, its trough is the "
              "lowest close until the close is back at the peak (recovery). Preceded = a "
              f"layer-1 trigger within the {p.lead_sessions} sessions before the start. "
              f"Preceded: {s.preceded} of {len(s.episodes)}.</p>",
              _table(["peak", "peak close", "start", "trough", "trough close", "depth",
                      "recovered", "trigger", "lead (sessions)", "hedged at start"],
                     ([e.episode.peak, f"{e.episode.peak_close:.2f}", e.episode.start,
                       e.episode.trough, f"{e.episode.trough_close:.2f}", _pct(e.episode.depth),
                       _day(e.episode.recovered), _day(e.trigger),
                       "—" if e.lead_sessions is None else e.lead_sessions,
                       "yes" if e.hedged_at_start else "no"] for e in s.episodes))]

    share = s.hedged_sessions / s.sessions if s.sessions else 0.0
    parts += ["<h2>Sessions hedged</h2>",
              f"<p>{s.hedged_sessions} of {s.sessions} sessions ({_pct(share)}) ended with at "
              "least one layer on.</p>",
              _table(["layers on", "sessions"], s.hedged_by_count.items())]

    parts += ["<h2>Hedge P&amp;L (proxy)</h2>", f"<p class='proxy'>{esc(PROXY_NOTE)}</p>",
              _table(["layer", "added", "removed", "contract", "expiry", "qty", "entry", "exit",
                      "P&L", "status", "exit priced by"],
                     ([x.layer, x.added_on, _day(x.removed_on), x.symbol or "—", _day(x.expiry),
                       x.quantity, _price(x.entry_price), _price(x.exit_price), _usd(x.pnl),
                       x.status, x.basis] for x in s.periods), left=5),
              f"<p>Total: {_usd(s.pnl_total)} over {len(s.periods)} layer period(s)"
              + (f"; {s.unpriced} unpriced" if s.unpriced else "") + ".</p>"]

    parts += [f"<h2>Condor: {s.condor_go} go, {s.condor_skip} skip</h2>",
              _table(["year", "go", "skip"],
                     ([y.year, y.go, y.skip] for y in s.condor_years)),
              "<p>Skip reasons (a skip can have several):</p>",
              _table(["reason", "sessions"], s.skip_reasons),
              "<p>Every session's decision is in <code>decisions.csv</code> and "
              "<code>decisions.json</code>.</p>"]
    parts += ["<h2>Printed summary</h2>", "<pre>" + esc("\n".join(text)) + "</pre>",
              "</body></html>"]
    return "\n".join(parts)


def write_text(out: TextIO, lines: Iterable[str]) -> None:
    for line in lines:
        out.write(line + "\n")
