"""The daily chart: ~9 months of what the decision rests on, as one PNG.

Four stacked panels sharing the date axis, sized for a phone screen: SPX with
the hedge-layer periods shaded and upcoming events marked, the MACD
histogram with its divergence shaded, the A/D line with its divergence shaded,
its imputed sessions marked and the windows that are not evaluable hatched
(and a note when the breadth is the synthetic series), VIX against VIX3M.
Each divergence panel states the last session's length and streak (DESIGN.md
§4), or that it is not evaluable.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: servers, containers, CI

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes

from bot.engine.indicators import NOT_EVALUABLE
from bot.kernel.models import is_synthetic

log = logging.getLogger(__name__)

CHART_SESSIONS = 190
"""About nine months of sessions."""


def measures_text(row: pd.Series[Any], prefix: str) -> str:
    """``A/D divergence: length 30, streak 26`` (or none, or not evaluable) for one session."""
    label = {"ad": "A/D", "macd": "MACD"}[prefix]
    days = row.get(f"{prefix}_divergence_days")
    if days is None or pd.isna(days):
        why: Mapping[str, str] = row.get(NOT_EVALUABLE) or {}
        reason = why.get(f"{prefix}_divergence_days")
        return f"{label} divergence: not evaluable" + (f" ({reason})" if reason else "")
    if float(days) == 0:
        return f"{label} divergence: none"
    streak = row.get(f"{prefix}_divergence_streak", 0.0)
    return f"{label} divergence: length {float(days):.0f}, streak {float(streak):.0f}"


def _divergence_panel(ax: Axes, f: pd.DataFrame, prefix: str, low: float, high: float) -> None:
    """Shade where the divergence holds, hatch where it is not evaluable, state the last value."""
    x = f.index
    days = f[f"{prefix}_divergence_days"]
    ax.fill_between(x, low, high, where=(days.fillna(0) > 0).to_numpy(), color="tab:orange",
                    alpha=0.25, lw=0, label="divergence")
    unknown = days.isna().to_numpy()
    if unknown.any():
        ax.fill_between(x, low, high, where=unknown, facecolor="none", edgecolor="grey",
                        hatch="//", lw=0, label="not evaluable")
    ax.text(0.99, 0.95, measures_text(f.iloc[-1], prefix)[:90], transform=ax.transAxes,
            fontsize=7, va="top", ha="right")


def render_chart(
    frame: pd.DataFrame,
    *,
    layer_periods: Sequence[tuple[str, dt.date, dt.date | None]] = (),
    events: Sequence[tuple[str, dt.date]] = (),
    title: str = "",
) -> bytes:
    """PNG bytes for the last :data:`CHART_SESSIONS` rows of an indicator frame.

    ``layer_periods``: (layer name, on, off or None while active);
    ``events``: upcoming (kind, date) to mark on the SPX panel.
    """
    if frame.empty:
        raise ValueError("no sessions to chart")
    f = frame.tail(CHART_SESSIONS)
    x = f.index
    fig, axes = plt.subplots(4, 1, figsize=(8, 9), sharex=True, dpi=100,
                             gridspec_kw={"height_ratios": [3, 1.4, 1.4, 1.4]})
    spx, hist, ad, vix = axes
    try:
        spx.plot(x, f["close"], color="black", lw=1.2, label="SPX")
        end = x[-1]
        for i, (name, on, off) in enumerate(layer_periods):
            lo = max(pd.Timestamp(on), x[0])
            hi = pd.Timestamp(off) if off else end
            if hi < x[0]:
                continue
            spx.axvspan(lo, hi, color="tab:red", alpha=0.10 + 0.08 * (i % 3), lw=0)
            spx.text(lo, spx.get_ylim()[1], f" {name}", va="top", fontsize=7, color="tab:red")
        for kind, day in events:
            ts = pd.Timestamp(day)
            spx.axvline(ts, color="tab:blue", ls=":", lw=0.8)
            spx.text(ts, spx.get_ylim()[0], kind, rotation=90, fontsize=7, color="tab:blue",
                     va="bottom", ha="right")
        spx.set_title(title or f"ALVH · {x[-1].date()}", fontsize=11)
        spx.legend(loc="upper left", fontsize=8)
        spx.grid(alpha=0.3)

        colors = ["tab:green" if v >= 0 else "tab:red" for v in f["macd_hist"].fillna(0)]
        hist.bar(x, f["macd_hist"], color=colors, width=1.0)
        hist.axhline(0, color="grey", lw=0.6)
        _divergence_panel(hist, f, "macd", f["macd_hist"].min(), f["macd_hist"].max())
        hist.set_ylabel("MACD hist", fontsize=8)
        hist.grid(alpha=0.3)

        ad.plot(x, f["ad_line"], color="tab:purple", lw=1.0)
        _divergence_panel(ad, f, "ad", f["ad_line"].min(), f["ad_line"].max())
        if "ad_imputed" in f.columns and f["ad_imputed"].any():
            imputed = f["ad_imputed"].to_numpy(dtype=bool)
            ad.plot(x[imputed], f["ad_line"][imputed], "x", color="tab:red", ms=5,
                    label="imputed session")
        ad.set_ylabel("A/D line", fontsize=8)
        sources = {str(s) for s in f["breadth_source"].dropna() if s}
        if any(is_synthetic(s) for s in sources):
            ad.text(0.01, 0.95, "synthetic breadth (not NYSE)", transform=ad.transAxes,
                    fontsize=7, va="top", color="tab:red")
        ad.legend(loc="lower left", fontsize=7)
        ad.grid(alpha=0.3)

        vix.plot(x, f["vix"], color="tab:red", lw=1.0, label="VIX")
        vix.plot(x, f["vix3m"], color="tab:blue", lw=1.0, label="VIX3M")
        vix.legend(loc="upper left", fontsize=7)
        vix.grid(alpha=0.3)
        vix.xaxis.set_major_formatter(mdates.DateFormatter("%b %y"))  # type: ignore[no-untyped-call]
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)


def daily_chart(
    frame: pd.DataFrame | None,
    layers: Sequence[tuple[str, dt.date]],
    events: Sequence[tuple[str, dt.date]],
) -> bytes | None:
    """The summary's chart, or None: a chart that fails must never hold an alert back."""
    if frame is None or frame.empty:
        return None
    try:
        return render_chart(frame, layer_periods=[(n, on, None) for n, on in layers],
                            events=events)
    except Exception:
        log.exception("chart: rendering failed; the summary goes without it")
        return None
