"""Every indicator the rules can name, one row per session, in one vectorised call.

The column names are the vocabulary of the rules language; ``FRAME_COLUMNS``
is the single list both sides agree on. Only the rows in ``sessions`` feed
the indicators: the caller chooses the history (at least 250 sessions before
the first date that matters, so EMA seeds have washed out, and 1,260 for the
weekly MACD).

Not evaluable is not zero (DESIGN.md §4): a value that cannot be computed for
a session is NaN (numbers) or NA (true/false, nullable ``boolean`` columns),
and the :data:`NOT_EVALUABLE` column says why, per name. Besides the
vocabulary the frame carries :data:`INFO_COLUMNS`: which sessions' breadth is
imputed and what each divergence window holds, for the alerts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from bot.engine.indicators._util import BoolArray, as_float, float_series, require_session_index
from bot.engine.indicators.breadth import (
    ad_line,
    breadth_window,
    imputed_sessions,
    net_advances,
    window_count,
)
from bot.engine.indicators.divergence import divergence_measures
from bot.engine.indicators.evaluable import Reasons, absent
from bot.engine.indicators.events import EventDates, event_sessions, sessions_to_next_event
from bot.engine.indicators.mcclellan import WARMUP_SESSIONS as MCCLELLAN_WARMUP
from bot.engine.indicators.mcclellan import mcclellan
from bot.engine.indicators.momentum import (
    histogram_compression,
    macd,
    rsi,
    zero_cross_down,
    zero_cross_up,
)
from bot.engine.indicators.term import vix_term_ratio
from bot.engine.indicators.weekly import WEEKLY_COLUMNS, weekly_macd_asof
from bot.kernel.errors import ConfigError
from bot.kernel.models import is_synthetic

EVENT_KINDS = ("FOMC", "CPI", "PPI")
"""Event kinds with a proximity column (``sessions_to_<kind in lower case>``)."""

WEEKLY_WARMUP_SESSIONS: Final = 1260
"""SPX sessions (5 years) the weekly MACD needs before it is evaluable (DESIGN.md §4:
with only 300 sessions its histogram is off by up to ~2 points and can flip sign)."""

FRAME_COLUMNS = (
    "close",
    "macd",
    "macd_signal",
    "macd_hist",
    "macd_cross_down",
    "macd_cross_up",
    "hist_compression",
    "weekly_macd",
    "weekly_macd_signal",
    "weekly_macd_hist",
    "weekly_macd_cross_down",
    "weekly_macd_cross_up",
    "weekly_hist_compression",
    "rsi",
    "advancers",
    "decliners",
    "ad_line",
    "ad_imputed_sessions",
    "ad_divergence",
    "ad_divergence_days",
    "ad_divergence_streak",
    "macd_divergence",
    "macd_divergence_days",
    "macd_divergence_streak",
    "mcclellan_oscillator",
    "summation_index",
    "vix",
    "vix3m",
    "vix6m",
    "vix_term_ratio",
    "sessions_to_fomc",
    "sessions_to_cpi",
    "sessions_to_ppi",
    "sessions_to_event",
    "breadth_source",
)

NOT_EVALUABLE: Final = "not_evaluable"
"""Column of ``{name: why}`` per session for every value that is not evaluable."""

INFO_COLUMNS: Final = (
    "ad_imputed",
    "mcclellan_trend_10",
    "mcclellan_trend_05",
    "breadth_window_sources",
    "breadth_window_imputed",
    NOT_EVALUABLE,
)
"""Not rules names: whether the session's breadth is imputed, McClellan's 10 % and
5 % Trends, the distinct breadth sources of the divergence window ending at the
session and its imputed sessions (both "" when none), and the reasons."""

@dataclass(frozen=True, slots=True)
class IndicatorParams:
    """Every period, window and tolerance the indicators use (DESIGN.md §4 defaults).

    Frozen and hashable so a frame can be cached per parameter set; the rules
    file supplies the values, so bad ones raise :class:`ConfigError`.
    """

    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    compression_k: int = 3
    weekly_macd_fast: int = 12
    weekly_macd_slow: int = 26
    weekly_macd_signal: int = 9
    weekly_compression_k: int = 3
    rsi_period: int = 14
    divergence_window: int = 63
    divergence_tolerance: float = 0.01
    divergence_min_separation: int = 5
    max_imputed_sessions: int = 1
    """Imputed breadth sessions a divergence window may hold and still be evaluated."""

    def __post_init__(self) -> None:
        for name in (
            "macd_fast",
            "macd_slow",
            "macd_signal",
            "compression_k",
            "weekly_macd_fast",
            "weekly_macd_slow",
            "weekly_macd_signal",
            "weekly_compression_k",
            "rsi_period",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.macd_fast >= self.macd_slow:
            raise ConfigError(f"macd_fast ({self.macd_fast}) must be < macd_slow")
        if self.weekly_macd_fast >= self.weekly_macd_slow:
            raise ConfigError(
                f"weekly_macd_fast ({self.weekly_macd_fast}) must be < weekly_macd_slow"
            )
        if self.divergence_window < 2:
            raise ConfigError(f"divergence_window must be >= 2, got {self.divergence_window}")
        if not 0.0 <= self.divergence_tolerance < 1.0:
            raise ConfigError(
                f"divergence_tolerance must be in [0, 1), got {self.divergence_tolerance}"
            )
        if (
            isinstance(self.max_imputed_sessions, bool)
            or not isinstance(self.max_imputed_sessions, int)
            or not 0 <= self.max_imputed_sessions < self.divergence_window
        ):
            raise ConfigError(
                "max_imputed_sessions must be an integer in [0, divergence_window), "
                f"got {self.max_imputed_sessions!r}"
            )
        if not 0 <= self.divergence_min_separation < self.divergence_window:
            raise ConfigError(
                "divergence_min_separation must be in [0, divergence_window), "
                f"got {self.divergence_min_separation}"
            )



def _on(series: pd.Series[Any], sessions: pd.DatetimeIndex, name: str) -> pd.Series[float]:
    if len(series):
        require_session_index(series.index, name)
    return float_series(as_float(series.reindex(sessions)), sessions)


def _labels(labels: pd.Series[Any], sessions: pd.DatetimeIndex) -> pd.Series[str]:
    if len(labels):
        require_session_index(labels.index, "breadth_source")
    aligned = labels.reindex(sessions)
    return aligned.astype(object).where(aligned.notna(), "").astype(str)


def _require_contiguous(sessions: pd.DatetimeIndex, calendar: pd.DatetimeIndex) -> None:
    """Rows must be every calendar session of their range: a skipped one would be bridged."""
    if len(sessions) == 0:
        raise ValueError("sessions is empty")
    lo = calendar.searchsorted(sessions[0], side="left")
    hi = calendar.searchsorted(sessions[-1], side="right")
    if not calendar[lo:hi].equals(sessions):
        raise ValueError(
            f"sessions must be every calendar session from {sessions[0].date()} "
            f"to {sessions[-1].date()}"
        )


def _nullable(flags: pd.Series[bool], unknown: BoolArray) -> pd.Series[Any]:
    """``flags`` as a nullable ``boolean`` column, NA where ``unknown``."""
    out = pd.array(flags.to_numpy(dtype=bool), dtype="boolean")
    out[unknown] = pd.NA
    return pd.Series(out, index=flags.index)


def _warming(values: pd.Series[float], k: int) -> BoolArray:
    """Rows where any of the last ``k`` values (this one included) is NaN."""
    return window_count(np.isnan(as_float(values)), k) > 0


def _divergence(
    frame: pd.DataFrame,
    prefix: str,
    x: pd.Series[float],
    params: IndicatorParams,
    judgeable: pd.Series[bool] | None = None,
) -> None:
    """``<prefix>_divergence``, ``_days`` (the length, iP − iX) and ``_streak`` (DESIGN.md §4)."""
    m = divergence_measures(
        frame["close"],
        x,
        window=params.divergence_window,
        tolerance=params.divergence_tolerance,
        min_separation=params.divergence_min_separation,
        judgeable=judgeable,
    )
    frame[f"{prefix}_divergence"] = m["divergence"]
    frame[f"{prefix}_divergence_days"] = m["days"]
    frame[f"{prefix}_divergence_streak"] = m["streak"]


def _momentum(
    frame: pd.DataFrame, close: pd.Series[float], calendar: pd.DatetimeIndex,
    params: IndicatorParams, why: Reasons,
) -> None:
    """Daily and weekly MACD, RSI and their events; warm-up is not evaluable, never false."""
    m = macd(close, params.macd_fast, params.macd_slow, params.macd_signal)
    frame[["macd", "macd_signal", "macd_hist"]] = m
    line_unknown = _warming(m["macd"], 2)
    frame["macd_cross_down"] = _nullable(zero_cross_down(m["macd"]), line_unknown)
    frame["macd_cross_up"] = _nullable(zero_cross_up(m["macd"]), line_unknown)
    frame["hist_compression"] = _nullable(
        histogram_compression(m["macd_hist"], params.compression_k),
        _warming(m["macd_hist"], params.compression_k + 1),
    )
    weekly = weekly_macd_asof(
        close, calendar, params.weekly_macd_fast, params.weekly_macd_slow,
        params.weekly_macd_signal, params.weekly_compression_k,
    )
    # Fewer than 5 years of SPX up to t: the weekly EMAs have not washed out their seed.
    have = np.cumsum(~np.isnan(as_float(close)))
    short = have < WEEKLY_WARMUP_SESSIONS
    why.add(WEEKLY_COLUMNS, short,
            f"SPX history too short for the weekly MACD (it needs {WEEKLY_WARMUP_SESSIONS:,} "
            "sessions, 5 years)")
    for column in WEEKLY_COLUMNS:
        values = weekly[column]
        if values.dtype == bool:
            frame[column] = _nullable(values, short)
        else:
            frame[column] = values.where(~short)
    frame["rsi"] = rsi(close, params.rsi_period)


def _breadth(
    frame: pd.DataFrame, advancers: pd.Series[Any], decliners: pd.Series[Any],
    source: pd.Series[str], rejected: pd.Series[Any], params: IndicatorParams, why: Reasons,
) -> None:
    """A/D line (bridged over imputed sessions), its divergence and the McClellan indicators."""
    sessions = require_session_index(frame.index, "sessions")
    window, most = params.divergence_window, params.max_imputed_sessions
    frame["advancers"] = _on(advancers, sessions, "advancers")
    frame["decliners"] = _on(decliners, sessions, "decliners")
    net = net_advances(frame["advancers"], frame["decliners"], sessions)
    imputed = imputed_sessions(net)
    frame["ad_line"] = ad_line(frame["advancers"], frame["decliners"], sessions)
    frame["ad_imputed"] = imputed
    before = absent(frame["ad_line"], "NYSE breadth")
    refused = rejected.reindex(sessions).fillna("").astype(str).to_numpy()
    why.add(("advancers", "decliners"), imputed.to_numpy() & (refused != ""),
            np.array([f"imputed: the row was rejected ({r}); the A/D line carries flat"
                      for r in refused], dtype=object))
    why.add(("advancers", "decliners"), imputed.to_numpy(),
            "imputed: no NYSE breadth row for this session (the A/D line carries flat)")
    why.add(("advancers", "decliners", "ad_line"), before != "", before)

    notes = {day: "rejected" for day, text in zip(sessions, refused, strict=True) if text}
    held = breadth_window(imputed, source, window, notes)
    frame["ad_imputed_sessions"] = held["imputed_count"].astype(np.float64)
    frame["breadth_window_sources"] = held["sources"]
    frame["breadth_window_imputed"] = held["imputed_dates"]
    count = held["imputed_count"].to_numpy()
    mixed = held["mixed"].to_numpy(dtype=bool)
    too_many = count > most
    _divergence(frame, "ad", frame["ad_line"], params,
                judgeable=pd.Series(~mixed & ~too_many, index=sessions))
    ad_names = ("ad_divergence", "ad_divergence_days", "ad_divergence_streak")
    started = np.cumsum(before == "")
    not_full = (started > 0) & (started < window)
    why.add(ad_names, before != "", before)
    if not_full.any():
        first = sessions[int(np.argmax(started > 0))].date()
        why.add(ad_names, not_full,
                f"NYSE breadth history starts {first}: the {window}-session divergence window "
                "is not full yet")
    why.add(ad_names, mixed,
            pd.Series(f"the {window}-session divergence window mixes NYSE and synthetic "
                      "breadth (", index=sessions).str.cat(held["sources"]).add(")").to_numpy())
    dates = held["imputed_dates"].to_numpy(dtype=object)
    why.add(ad_names, too_many, np.array(
        [f"{c} imputed breadth sessions in the {window}-session divergence window, at most "
         f"{most} allowed: {d}" if t else "" for c, d, t in zip(count, dates, too_many,
                                                                strict=True)],
        dtype=object))
    spx = np.cumsum(~frame["close"].isna().to_numpy())
    if (spx > 0).any():
        first_spx = sessions[int(np.argmax(spx > 0))].date()
        why.add(ad_names, (spx < window) & frame["ad_divergence_days"].isna().to_numpy(),
                f"SPX history starts {first_spx}: the {window}-session divergence window is "
                "not full yet")
    why.add(ad_names, frame["ad_divergence_days"].isna().to_numpy(),
            f"SPX closes missing in the {window}-session divergence window")

    segments = np.where(source.to_numpy() == "", "",
                        np.where([is_synthetic(s) for s in source], "synthetic", "nyse"))
    mc = mcclellan(net, pd.Series(segments, index=sessions))
    frame["mcclellan_oscillator"] = mc["oscillator"]
    frame["summation_index"] = mc["summation"]
    frame["mcclellan_trend_10"] = mc["trend_10"]
    frame["mcclellan_trend_05"] = mc["trend_05"]
    mc_names = ("mcclellan_oscillator", "summation_index", "mcclellan_trend_10",
                "mcclellan_trend_05")
    why.add(mc_names, before != "", before)
    why.add(mc_names, mc["oscillator"].isna().to_numpy(),
            f"the McClellan trends need {MCCLELLAN_WARMUP} sessions of one breadth segment "
            "(NYSE or synthetic) to settle")


def _event_columns(
    frame: pd.DataFrame,
    events_by_kind: Mapping[str, EventDates],
    unscheduled_by_kind: Mapping[str, EventDates],
    calendar: pd.DatetimeIndex,
    why: Reasons,
) -> None:
    """``sessions_to_<kind>`` per kind, point in time, and their minimum.

    A kind's calendar covers t from its first scheduled event up to its last:
    before the first (years of unknown releases would be counted across) and
    on or after the last (no known event after t) the count is not evaluable.
    """
    sessions = frame.index
    span = calendar[calendar >= sessions[0]]
    names = [f"sessions_to_{kind.lower()}" for kind in EVENT_KINDS]
    reasons = []
    for kind, name in zip(EVENT_KINDS, names, strict=True):
        text = np.full(len(sessions), "", dtype=object)
        dates = pd.DatetimeIndex(pd.to_datetime(list(events_by_kind.get(kind, ()))))
        if len(dates) == 0:
            frame[name] = np.nan
            text[:] = f"no {kind} calendar"
        else:
            late = [(d, on) for d in pd.to_datetime(list(unscheduled_by_kind.get(kind, ())))
                    for on in event_sessions([d], calendar)]
            on_sessions = event_sessions(dates, calendar)
            ahead = as_float(sessions_to_next_event(span, on_sessions, late).reindex(sessions))
            ahead = ahead.copy()
            first, last = dates.min(), dates.max()
            early = np.asarray(sessions < first, dtype=bool)
            text[np.isnan(ahead)] = (f"the {kind} calendar ends {last.date()}: no {kind} date "
                                     "known after this session")
            text[early] = f"the {kind} calendar starts {first.date()}"
            ahead[early] = np.nan
            frame[name] = ahead
        why.add((name,), text != "", text)
        reasons.append(text)
    counts = frame[names].to_numpy(dtype=np.float64)
    unknown = np.isnan(counts).any(axis=1)
    frame["sessions_to_event"] = np.where(unknown, np.nan, counts.min(axis=1, initial=np.inf))
    combined = np.array(["; ".join(r for r in row if r) for row in zip(*reasons, strict=True)],
                        dtype=object)
    why.add(("sessions_to_event",), unknown, combined)


FALLBACK_REASONS: Final[Mapping[str, str]] = {
    "macd": "SPX history too short for the MACD warm-up",
    "macd_signal": "SPX history too short for the MACD warm-up",
    "macd_hist": "SPX history too short for the MACD warm-up",
    "macd_cross_down": "SPX history too short for the MACD warm-up",
    "macd_cross_up": "SPX history too short for the MACD warm-up",
    "hist_compression": "SPX history too short for the MACD warm-up",
    "macd_divergence": "SPX history too short for the MACD-histogram divergence window",
    "macd_divergence_days": "SPX history too short for the MACD-histogram divergence window",
    "macd_divergence_streak": "SPX history too short for the MACD-histogram divergence window",
    "rsi": "SPX history too short for the RSI warm-up",
    **{c: "SPX history too short for the weekly MACD warm-up" for c in WEEKLY_COLUMNS},
    "vix_term_ratio": "VIX3M is not positive",
}
"""Reasons for NaN values that no specific check explained (warm-up at the start of data)."""


def compute_frame(
    *,
    spx_close: pd.Series[float],
    advancers: pd.Series[Any],
    decliners: pd.Series[Any],
    breadth_source: pd.Series[Any],
    vix: pd.Series[float],
    vix3m: pd.Series[float],
    vix6m: pd.Series[float],
    events_by_kind: Mapping[str, EventDates],
    sessions: pd.DatetimeIndex,
    calendar_sessions: pd.DatetimeIndex,
    params: IndicatorParams | None = None,
    unscheduled_by_kind: Mapping[str, EventDates] | None = None,
    rejected_breadth: pd.Series[Any] | None = None,
) -> pd.DataFrame:
    """All indicator columns (``FRAME_COLUMNS`` then ``INFO_COLUMNS``) on ``sessions``.

    ``sessions`` is a contiguous run of XNYS sessions (the rows);
    ``calendar_sessions`` is the XNYS calendar reaching past them (future
    sessions included), needed to know whether the last week has ended and
    how far the next event is. Inputs are aligned to ``sessions``: data
    outside it is ignored, a missing session is NaN (breadth: imputed).
    ``events_by_kind`` maps ``FOMC``/``CPI``/``PPI`` to the dates of
    scheduled events (known in advance; non-sessions allowed);
    ``unscheduled_by_kind`` to those known only from their own date (an
    emergency FOMC action), which never count for a session before them. A
    kind not given is not evaluable. ``breadth_source`` is "" where unknown.
    ``rejected_breadth`` (reason by session) names the sessions whose row was
    rejected as a partial-day count, so an imputed session says so.
    """
    params = params or IndicatorParams()
    require_session_index(sessions, "sessions")
    calendar = require_session_index(calendar_sessions, "calendar_sessions")
    _require_contiguous(sessions, calendar)
    unscheduled = unscheduled_by_kind or {}
    unknown = sorted((set(events_by_kind) | set(unscheduled)) - set(EVENT_KINDS))
    if unknown:
        raise ValueError(f"unknown event kind(s): {', '.join(unknown)}")

    why = Reasons(sessions)
    close = _on(spx_close, sessions, "spx_close")
    frame = pd.DataFrame(index=sessions)
    frame["close"] = close
    why.add(("close",), close.isna().to_numpy(), absent(close, "SPX"))
    _momentum(frame, close, calendar, params, why)
    source = _labels(breadth_source, sessions)
    rejected = rejected_breadth if rejected_breadth is not None else pd.Series(dtype=object)
    _breadth(frame, advancers, decliners, source, rejected, params, why)
    _divergence(frame, "macd", frame["macd_hist"], params)

    for name, series, label in (("vix", vix, "VIX"), ("vix3m", vix3m, "VIX3M"),
                                ("vix6m", vix6m, "VIX6M")):
        frame[name] = _on(series, sessions, name)
        why.add((name,), frame[name].isna().to_numpy(), absent(frame[name], label))
    frame["vix_term_ratio"] = vix_term_ratio(frame["vix"], frame["vix3m"])
    ratio_unknown = frame["vix_term_ratio"].isna().to_numpy()
    why.add_like(("vix_term_ratio",), "vix3m", ratio_unknown)
    why.add_like(("vix_term_ratio",), "vix", ratio_unknown)

    _event_columns(frame, events_by_kind, unscheduled, calendar, why)
    frame["breadth_source"] = source
    why.fallback(frame, FALLBACK_REASONS)
    frame[NOT_EVALUABLE] = why.column()
    return frame[[*FRAME_COLUMNS, *INFO_COLUMNS]]
