"""The backtest's files: decisions as CSV and JSON, the layer actions, the hedge P&L, the page.

All renderings read one :class:`~bot.backtest.summary.Summary`, so the
numbers in the files are the numbers printed (a test checks they match):
the terminal lines come from :mod:`bot.backtest.text`, the HTML page from
:mod:`bot.backtest.html` (a Jinja2 template), the charts from
:mod:`bot.backtest.charts`.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from bot.backtest.condors import MODEL_NOTE, CondorOutcomes, Figures, Trade
from bot.backtest.html import render_html
from bot.backtest.run import CHANGE_ACTIONS, BacktestResult
from bot.backtest.stats import HORIZONS
from bot.backtest.summary import PROXY_NOTE, Summary, skip_reasons
from bot.engine.evaluate import Evaluation
from bot.engine.record import CheckRecord, RunRecord

FILES = ("report.html", "decisions.csv", "layer_actions.csv", "hedge_pnl.csv",
         "condor_trades.csv", "decisions.json")


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
                   "by_year": [{"year": y.year, "go": y.go, "skip": y.skip,
                                "refused": y.refused}
                               for y in s.condor_years],
                   "skip_reasons": dict(s.skip_reasons)},
        "layer1": result.layer1,
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
             "lead_sessions": e.lead_sessions, "hedged_at_start": e.hedged_at_start,
             "layer1_at_start": e.layer1_at_start, "covered": e.covered}
            for e in s.episodes
        ],
        "episodes_preceded": s.preceded,
        "episodes_covered": s.covered,
        "sessions_hedged": s.hedged_sessions,
        "sessions_by_layers_on": {str(k): v for k, v in s.hedged_by_count.items()},
        "hedge_pnl": {"proxy": True, "note": PROXY_NOTE, "total": s.pnl_total,
                      "unpriced": s.unpriced, "layers": [_period_row(x) for x in s.periods]},
        "condor_trades": condors_json(s.condors),
        "refused_sessions": s.refused_sessions,
        "refused_runs": [{"first": r.first.isoformat(), "last": r.last.isoformat(),
                          "sessions": r.sessions, "series": list(r.series),
                          "reasons": list(r.reasons)} for r in s.refused],
        "breadth_sources": [
            {"first": x.first.isoformat(), "last": x.last.isoformat(), "sessions": x.sessions,
             "source": x.source or None, "kind": x.kind} for x in s.source_periods
        ],
        "no_divergence_windows": [
            {"first": b.first.isoformat(), "last": b.last.isoformat(), "sessions": b.sessions,
             "reason": b.reason} for b in s.blind_windows
        ],
    }


def _figures_json(f: Figures) -> dict[str, Any]:
    return {"trades": f.trades, "closed": f.closed, "wins": f.wins, "win_rate": f.win_rate,
            "total": f.total, "average": f.average, "worst": f.worst,
            "max_drawdown": f.max_drawdown,
            "drawdown_peak": f.drawdown_peak.isoformat() if f.drawdown_peak else None,
            "drawdown_trough": f.drawdown_trough.isoformat() if f.drawdown_trough else None}


def condors_json(c: CondorOutcomes) -> dict[str, Any]:
    return {"model_estimates": True, "note": MODEL_NOTE, "policy": c.policy.describe(),
            "without_hedge": _figures_json(c.without), "with_hedge": _figures_json(c.with_hedge),
            "total_with_hedge": c.total_with_hedge,
            "hedge_unallocated": float(c.unallocated.sum()),
            "notes": list(c.notes), "trades": [_trade_row(t) for t in c.trades]}


def _trade_row(t: Trade) -> dict[str, Any]:
    return {
        "entry": t.entry.isoformat(), "expiry": t.expiry.isoformat(), "kind": t.kind,
        "long_put": t.long_put, "short_put": t.short_put, "short_call": t.short_call,
        "long_call": t.long_call, "contracts": t.contracts, "spot": t.spot, "vix": t.vix,
        "credit": t.credit, "max_loss": t.max_loss, "exit_on": t.exit_on.isoformat(),
        "exit": t.exit_reason, "exit_value": t.exit_value, "settlement": t.settlement,
        "pnl": t.pnl, "hedge_pnl": t.hedge_pnl, "pnl_with_hedge": t.pnl_with_hedge,
        "basis": t.basis,
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
    header = list(rows[0]) if rows else ["session", "condor", "condor_skip_reasons"]
    refused = {d.isoformat(): {"session": d.isoformat(), "condor": "refused",
                               "condor_skip_reasons": "; ".join(why)}
               for d, why in result.refused.items()}
    _write_csv(out_dir / "decisions.csv",
               sorted([*rows, *refused.values()], key=lambda r: str(r["session"])), header)
    _write_csv(
        out_dir / "layer_actions.csv",
        ({"session": r.session.isoformat(), "action": r.action, "layer": r.layer,
          "detail": r.detail, "reasons": " | ".join(r.reasons)} for r in summary.layer_rows),
        ["session", "action", "layer", "detail", "reasons"],
    )
    periods = [_period_row(x) for x in summary.periods]
    _write_csv(out_dir / "hedge_pnl.csv", periods,
               list(periods[0]) if periods else ["layer", "added_on", "pnl"])
    trades = [_trade_row(t) for t in summary.condors.trades]
    _write_csv(out_dir / "condor_trades.csv", trades,
               list(trades[0]) if trades else ["entry", "pnl"])
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
        "sessions": sorted(
            [*(_session_json(ev, row) for ev, row in zip(result.evaluations, rows, strict=True)),
             *({"session": d, "refused": r["condor_skip_reasons"].split("; ")}
               for d, r in refused.items())],
            key=lambda x: str(x["session"])),
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
    if ev.condor is not None:
        out["condor_checks"] = [CheckRecord.of(c).to_json() for c in ev.condor.verdict.checks]
    out["warnings"] = [w.name for w in ev.warnings]
    out["state_after"] = ev.state_after.to_json()
    if ev.notes:
        out["notes"] = list(ev.notes)
    return out


def write_text(out: TextIO, lines: Iterable[str]) -> None:
    for line in lines:
        out.write(line + "\n")
