"""The backtest report's charts: matplotlib's Agg canvas, PNGs as base64 for a self-contained page.

No pyplot state: each chart is its own :class:`~matplotlib.figure.Figure`, so
rendering in a thread or a test never touches a global figure manager.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.backtest.run import BacktestResult
from bot.backtest.stats import drawdown_series
from bot.backtest.summary import MISSING, Summary
from bot.kernel.models import is_synthetic

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
                   zorder=3, label=f"{result.layer1} trigger")
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
                   color="tab:green" if e.covered else "tab:red", alpha=0.08, lw=0)
        ax.annotate(f"-{100 * ep.depth:.0f} %", (_x(ep.trough), -100 * ep.depth),
                    fontsize=7, ha="center", va="top")
    ax.set_ylabel("% below running peak")
    ax.set_title(f"SPX drawdowns; episodes of {thr:g} % or more shaded "
                 "(green: covered by layer 1, red: not)")
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
                 "comparable across sources)\ngrey: A/D divergence not evaluable (synthetic "
                 "breadth or too many imputed sessions in the window)", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    _date_axis(ax)
    return _png(fig)


def chart_equity(summary: Summary) -> str:
    """The condor trades' equity (realized and marked), without and with the hedge layers."""
    c = summary.condors
    fig = Figure(figsize=(11, 3.4))
    fig.subplots_adjust(left=0.09, right=0.99, top=0.9, bottom=0.1)
    ax = fig.add_subplot()
    x = _xs(c.equity.index)
    ax.plot(x, c.equity.to_numpy(), color="tab:blue", lw=0.9, label="condors, without hedge")
    ax.plot(x, c.equity_with_hedge.to_numpy(), color="tab:red", lw=0.9,
            label="condors + hedge layers")
    for f, colour in ((c.without, "tab:blue"), (c.with_hedge, "tab:red")):
        if f.drawdown_peak and f.drawdown_trough:
            ax.axvspan(_x(f.drawdown_peak), _x(f.drawdown_trough), color=colour, alpha=0.08,
                       lw=0)
    ax.set_ylabel("P&L, $ (model estimates)")
    ax.set_title("Equity of the condor trades (marked to model each session); "
                 "shaded: maximum drawdown")
    ax.legend(loc="upper left", fontsize=8)
    _date_axis(ax)
    return _png(fig)
