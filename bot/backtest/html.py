"""The backtest's self-contained HTML page: Jinja2 template, charts embedded as base64 PNGs.

The page's layout and wording live in ``templates/report.html.j2``; this
module only prepares the values (rows of the tables, the charts) so the
template holds no arithmetic. Autoescaping is on, so a rules-file path or a
reason with ``<`` in it cannot break the page. The file can be mailed or
archived on its own: it loads nothing from the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jinja2

from bot.backtest import charts
from bot.backtest.condors import MODEL_NOTE
from bot.backtest.fmt import day, pct, price, pts, usd, yes_no
from bot.backtest.run import CHANGE_ACTIONS, BacktestResult
from bot.backtest.stats import HORIZONS
from bot.backtest.summary import PROXY_NOTE, Summary
from bot.backtest.text import EXIT_WORDS, figure_rows, strikes
from bot.kernel.models import is_synthetic

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1100px;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}
td.l,th.l{text-align:left}.proxy{background:#fff4e0;padding:.5em;border-left:4px solid #e90}
.synthetic{color:#b35900;font-weight:bold}img{max-width:100%}
pre{font-size:.8em;background:#f6f6f6;padding:.6em;overflow-x:auto}
"""

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("bot.backtest", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)
_ENV.filters.update(usd=usd, pct=pct)


def _rows(result: BacktestResult, s: Summary) -> dict[str, list[list[Any]]]:
    """Every table's rows, formatted (the template only lays them out)."""
    return {
        "sources": [[x.first, x.last, x.sessions, x.label] for x in s.source_periods],
        "blind": [[b.first, b.last, b.sessions, b.reason] for b in s.blind_windows],
        "layers": [[r.session, r.action, r.layer, r.detail] for r in s.layer_rows],
        "triggers": [[t.session, f"{t.close:.2f}", price(t.vix),
                      *(pct(t.max_drawdown[h]) + ("" if t.complete(h) else "*") for h in HORIZONS),
                      *(pts(t.vix_change[h]) for h in HORIZONS), yes_no(t.false_alarm)]
                     for t in s.triggers],
        "episodes": [[e.episode.peak, f"{e.episode.peak_close:.2f}", e.episode.start,
                      e.episode.trough, f"{e.episode.trough_close:.2f}", pct(e.episode.depth),
                      day(e.episode.recovered), day(e.trigger),
                      "—" if e.lead_sessions is None else e.lead_sessions,
                      "yes" if e.hedged_at_start else "no",
                      "yes" if e.layer1_at_start else "no",
                      "yes" if e.covered else "no"] for e in s.episodes],
        "periods": [[x.layer, x.added_on, day(x.removed_on), x.symbol or "—", day(x.expiry),
                     x.quantity, price(x.entry_price), price(x.exit_price), usd(x.pnl),
                     x.status, x.basis] for x in s.periods],
        "years": [[y.year, y.go, y.skip, y.refused] for y in s.condor_years],
        "refused": [[r.first, r.last, r.sessions, "; ".join(r.reasons)] for r in s.refused],
        "trades": [[t.entry, t.expiry, strikes(t), t.contracts, f"{t.credit:.2f}",
                    f"{t.max_loss:.2f}", t.exit_on, EXIT_WORDS[t.exit_reason],
                    price(t.settlement), usd(t.pnl), usd(t.hedge_pnl), usd(t.pnl_with_hedge),
                    t.basis] for t in s.condors.trades],
        "condor_figures": [list(r) for r in figure_rows(s.condors)],
    }


def render_html(result: BacktestResult, s: Summary, text: Sequence[str]) -> str:
    """The report page (``report.html``)."""
    c = s.action_counts
    return _ENV.get_template("report.html.j2").render(
        css=CSS, s=s, p=s.params, result=result, text=text,
        excluded=[d.isoformat() for ds in result.excluded_events.values() for d in ds
                  if s.start <= d <= s.end],
        charts={"spx": charts.chart_spx(result, s),
                "breadth": charts.chart_breadth(result, s),
                "drawdown": charts.chart_drawdown(result, s),
                "equity": charts.chart_equity(s)},
        window=result.rules.indicators.divergence.window,
        synthetic=any(is_synthetic(sp.source) for sp in s.source_periods),
        action_counts=", ".join(f"{c[a]} {a}" for a in CHANGE_ACTIONS),
        trigger_header=["session", "close", "VIX", *(f"max drawdown {h}" for h in HORIZONS),
                        *(f"ΔVIX {h}" for h in HORIZONS), "false alarm"],
        hedged_share=s.hedged_sessions / s.sessions if s.sessions else 0.0,
        proxy_note=PROXY_NOTE, model_note=MODEL_NOTE, rows=_rows(result, s),
        unallocated=float(s.condors.unallocated.sum()),
    )
