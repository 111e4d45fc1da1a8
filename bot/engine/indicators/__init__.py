"""Pure indicator functions over Series indexed by XNYS session date (DESIGN.md §4).

No I/O, no settings, no store: inputs in, Series/DataFrames out, so the same
code serves the live evaluation, backtests and rules previews.
"""

from bot.engine.indicators.breadth import (
    ad_line,
    breadth_window,
    imputed_sessions,
    missing_sessions,
    net_advances,
)
from bot.engine.indicators.divergence import (
    bearish_divergence,
    divergence_measures,
    divergence_streak,
)
from bot.engine.indicators.events import blackout, event_sessions, sessions_to_next_event
from bot.engine.indicators.frame import (
    EVENT_KINDS,
    FRAME_COLUMNS,
    NOT_EVALUABLE,
    IndicatorParams,
    compute_frame,
)
from bot.engine.indicators.mcclellan import mcclellan
from bot.engine.indicators.momentum import (
    ema,
    histogram_compression,
    macd,
    rsi,
    zero_cross_down,
    zero_cross_up,
)
from bot.engine.indicators.term import vix_term_ratio
from bot.engine.indicators.weekly import completed_weekly_closes, weekly_bars, weekly_macd_asof

__all__ = [
    "EVENT_KINDS",
    "FRAME_COLUMNS",
    "NOT_EVALUABLE",
    "IndicatorParams",
    "ad_line",
    "bearish_divergence",
    "blackout",
    "breadth_window",
    "completed_weekly_closes",
    "compute_frame",
    "divergence_measures",
    "divergence_streak",
    "ema",
    "event_sessions",
    "histogram_compression",
    "imputed_sessions",
    "macd",
    "mcclellan",
    "missing_sessions",
    "net_advances",
    "rsi",
    "sessions_to_next_event",
    "vix_term_ratio",
    "weekly_bars",
    "weekly_macd_asof",
    "zero_cross_down",
    "zero_cross_up",
]
