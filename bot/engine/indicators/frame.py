"""Every indicator the rules can name, one row per session, in one vectorised call.

The column names are the vocabulary of the rules language; ``FRAME_COLUMNS``
is the single list both sides agree on. Only the rows in ``sessions`` feed
the indicators: the caller chooses the history (at least 250 sessions before
the first date that matters, so EMA seeds have washed out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bot.engine.indicators._util import as_float, float_series, require_session_index
from bot.engine.indicators.breadth import ad_line
from bot.engine.indicators.divergence import divergence_measures
from bot.engine.indicators.events import EventDates, event_sessions, sessions_to_next_event
from bot.engine.indicators.momentum import (
    histogram_compression,
    macd,
    rsi,
    zero_cross_down,
    zero_cross_up,
)
from bot.engine.indicators.term import vix_term_ratio
from bot.engine.indicators.weekly import weekly_macd_asof
from bot.kernel.errors import ConfigError

EVENT_KINDS = ("FOMC", "CPI", "PPI")
"""Event kinds with a proximity column (``sessions_to_<kind in lower case>``)."""

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
    "ad_divergence",
    "ad_divergence_days",
    "ad_divergence_streak",
    "macd_divergence",
    "macd_divergence_days",
    "macd_divergence_streak",
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


def _divergence(
    close: pd.Series[float],
    x: pd.Series[float],
    params: IndicatorParams,
    segments: pd.Series[Any] | None,
) -> tuple[pd.Series[bool], pd.Series[int], pd.Series[int]]:
    """D_t, the divergence's length (iP − iX) and its streak (DESIGN.md §4)."""
    m = divergence_measures(
        close,
        x,
        window=params.divergence_window,
        tolerance=params.divergence_tolerance,
        min_separation=params.divergence_min_separation,
        segments=segments,
    )
    return m["divergence"], m["days"], m["streak"]


def _event_columns(
    events_by_kind: Mapping[str, EventDates],
    sessions: pd.DatetimeIndex,
    calendar: pd.DatetimeIndex,
) -> dict[str, pd.Series[float]]:
    """``sessions_to_<kind>`` per kind and their minimum (NaN only if all are)."""
    span = calendar[calendar >= sessions[0]]
    nearest = np.full(len(sessions), np.nan)
    columns: dict[str, pd.Series[float]] = {}
    for kind in EVENT_KINDS:
        ahead = float_series(np.full(len(sessions), np.nan), sessions)
        if kind in events_by_kind:
            on_sessions = event_sessions(events_by_kind[kind], calendar)
            ahead = sessions_to_next_event(span, on_sessions).reindex(sessions)
            nearest = np.fmin(nearest, as_float(ahead))
        columns[f"sessions_to_{kind.lower()}"] = ahead
    columns["sessions_to_event"] = float_series(nearest, sessions)
    return columns


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
) -> pd.DataFrame:
    """All indicator columns (``FRAME_COLUMNS``) on ``sessions``.

    ``sessions`` is a contiguous run of XNYS sessions (the rows);
    ``calendar_sessions`` is the XNYS calendar reaching past them (future
    sessions included), needed to know whether the last week has ended and
    how far the next event is. Inputs are aligned to ``sessions``: data
    outside it is ignored, a missing session is NaN. ``events_by_kind`` maps
    ``FOMC``/``CPI``/``PPI`` to event dates (non-sessions allowed); a kind
    not given has an all-NaN column. ``breadth_source`` is "" where unknown.
    """
    params = params or IndicatorParams()
    require_session_index(sessions, "sessions")
    calendar = require_session_index(calendar_sessions, "calendar_sessions")
    _require_contiguous(sessions, calendar)
    unknown = sorted(set(events_by_kind) - set(EVENT_KINDS))
    if unknown:
        raise ValueError(f"unknown event kind(s): {', '.join(unknown)}")

    close = _on(spx_close, sessions, "spx_close")
    frame = pd.DataFrame(index=sessions)
    frame["close"] = close
    m = macd(close, params.macd_fast, params.macd_slow, params.macd_signal)
    frame[["macd", "macd_signal", "macd_hist"]] = m
    frame["macd_cross_down"] = zero_cross_down(m["macd"])
    frame["macd_cross_up"] = zero_cross_up(m["macd"])
    frame["hist_compression"] = histogram_compression(m["macd_hist"], params.compression_k)
    weekly = weekly_macd_asof(
        close,
        calendar,
        params.weekly_macd_fast,
        params.weekly_macd_slow,
        params.weekly_macd_signal,
        params.weekly_compression_k,
    )
    for column in weekly.columns:
        frame[column] = weekly[column]
    frame["rsi"] = rsi(close, params.rsi_period)

    frame["advancers"] = _on(advancers, sessions, "advancers")
    frame["decliners"] = _on(decliners, sessions, "decliners")
    frame["ad_line"] = ad_line(frame["advancers"], frame["decliners"], sessions)
    source = _labels(breadth_source, sessions)
    (
        frame["ad_divergence"],
        frame["ad_divergence_days"],
        frame["ad_divergence_streak"],
    ) = _divergence(close, frame["ad_line"], params, source)
    (
        frame["macd_divergence"],
        frame["macd_divergence_days"],
        frame["macd_divergence_streak"],
    ) = _divergence(close, m["macd_hist"], params, None)

    frame["vix"] = _on(vix, sessions, "vix")
    frame["vix3m"] = _on(vix3m, sessions, "vix3m")
    frame["vix6m"] = _on(vix6m, sessions, "vix6m")
    frame["vix_term_ratio"] = vix_term_ratio(frame["vix"], frame["vix3m"])

    for column, values in _event_columns(events_by_kind, sessions, calendar).items():
        frame[column] = values
    frame["breadth_source"] = source
    return frame[list(FRAME_COLUMNS)]
