"""The vocabulary of the rules language, kept in one place.

The parser, the type checker, the README test and whoever builds the values
for an evaluation all read this table, so a name cannot be documented under
one spelling and computed under another. Indicator names are exactly the
indicator frame's columns; layer-state names come from the hedge state machine.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


class Kind(enum.StrEnum):
    """What a name holds; the type checker refuses to mix the two."""

    NUMBER = "number"
    BOOLEAN = "boolean"


class Context(enum.StrEnum):
    """Where in the rules file a condition sits.

    Some names only mean something in one place: how long *this* layer has been
    on exists only while deciding whether to take that layer off.
    """

    CONDOR_ENTER = "condor.enter_when"
    LAYER_ADD = "hedge.layers[].add_when"
    LAYER_REMOVE = "hedge.layers[].remove_when"
    BLACKOUT_OVERRIDE = "blackout.override_when"
    WARNING = "warnings[].when"


class Group(enum.StrEnum):
    """Who supplies the value: the indicator frame or the hedge state machine."""

    INDICATOR = "indicator"
    LAYER_STATE = "layer state"


@dataclass(frozen=True, slots=True)
class NameSpec:
    kind: Kind
    doc: str
    allowed: frozenset[Context]
    group: Group = Group.INDICATOR

    @property
    def where(self) -> str:
        """Human wording of ``allowed`` for docs and error messages."""
        if self.allowed == EVERYWHERE:
            return "any condition"
        return ", ".join(sorted(c.value for c in self.allowed))


EVERYWHERE: Final = frozenset(Context)
_LAYER_CONTEXTS: Final = frozenset(
    {Context.LAYER_ADD, Context.LAYER_REMOVE, Context.BLACKOUT_OVERRIDE}
)


def _num(doc: str) -> NameSpec:
    return NameSpec(Kind.NUMBER, doc, EVERYWHERE)


def _bool(doc: str) -> NameSpec:
    return NameSpec(Kind.BOOLEAN, doc, EVERYWHERE)


NAMES: Final[Mapping[str, NameSpec]] = MappingProxyType(
    {
        # --- SPX price and momentum (daily)
        "close": _num("SPX close of the session."),
        "macd": _num("Daily MACD line (EMA fast − EMA slow of the SPX close)."),
        "macd_signal": _num("Daily MACD signal line (EMA of the MACD line)."),
        "macd_hist": _num("Daily MACD histogram (line − signal)."),
        "macd_cross_down": _bool("Daily MACD line crossed below zero on this session."),
        "macd_cross_up": _bool("Daily MACD line crossed above zero on this session."),
        "hist_compression": _bool(
            "Daily |histogram| strictly fell for the last k sessions, same sign throughout."
        ),
        # --- SPX momentum (weekly, last completed week)
        "weekly_macd": _num("Weekly MACD line (last completed week)."),
        "weekly_macd_signal": _num("Weekly MACD signal line (last completed week)."),
        "weekly_macd_hist": _num("Weekly MACD histogram (last completed week)."),
        "weekly_macd_cross_down": _bool("Weekly MACD line crossed below zero (early warning)."),
        "weekly_macd_cross_up": _bool("Weekly MACD line crossed above zero."),
        "weekly_hist_compression": _bool(
            "Weekly |histogram| strictly fell for the last k weeks, same sign (early warning)."
        ),
        "rsi": _num("RSI of the SPX close, Wilder smoothing (0–100)."),
        # --- NYSE breadth
        "advancers": _num("NYSE issues advancing on the session."),
        "decliners": _num("NYSE issues declining on the session."),
        "ad_line": _num(
            "NYSE advance/decline line; its level depends on the start date, "
            "so compare it only with itself."
        ),
        "ad_imputed_sessions": _num(
            "Imputed NYSE breadth sessions (no accepted row; the A/D line carries flat) in the "
            "A/D divergence window ending at this session."
        ),
        "ad_divergence": _bool("Bearish A/D-line divergence against SPX holds on this session."),
        "ad_divergence_days": _num(
            "Length of the bearish A/D divergence: sessions from the A/D line's last high "
            "to SPX's last high in the window (iP − iX) while it holds, 0 when it does not."
        ),
        "ad_divergence_streak": _num(
            "Consecutive sessions the bearish A/D divergence has held (0 when it does not)."
        ),
        "macd_divergence": _bool(
            "Bearish MACD-histogram divergence against SPX holds on this session."
        ),
        "macd_divergence_days": _num(
            "Length of the bearish MACD-histogram divergence (iP − iX) while it holds, "
            "0 when it does not."
        ),
        "macd_divergence_streak": _num(
            "Consecutive sessions the bearish MACD divergence has held (0 when it does not)."
        ),
        "mcclellan_oscillator": _num(
            "McClellan Oscillator: EMA (smoothing 0.10) minus EMA (0.05) of NYSE net advances."
        ),
        "summation_index": _num(
            "McClellan Summation Index: running total of the oscillator, neutral at 1000."
        ),
        # --- volatility
        "vix": _num("Cboe VIX close."),
        "vix3m": _num("Cboe VIX3M close (3-month VIX)."),
        "vix6m": _num("Cboe VIX6M close (6-month VIX)."),
        "vix_term_ratio": _num("VIX / VIX3M; above 1 is backwardation (stress)."),
        # --- economic calendar
        "sessions_to_fomc": _num(
            "Sessions until the next FOMC decision known after the close (not evaluable when "
            "the calendar does not reach past the session)."
        ),
        "sessions_to_cpi": _num(
            "Sessions until the next CPI release (not evaluable when the calendar does not "
            "reach past the session)."
        ),
        "sessions_to_ppi": _num(
            "Sessions until the next PPI release (not evaluable when the calendar does not "
            "reach past the session)."
        ),
        "sessions_to_event": _num(
            "Smallest of the three sessions_to_* counts (not evaluable if any of them is)."
        ),
        "blackout": _bool(
            "An FOMC/CPI/PPI event is 1..N sessions ahead (N per kind: blackout.sessions_before)."
        ),
        # --- hedge state
        "active_layers": NameSpec(
            Kind.NUMBER, "Hedge layers currently on.", EVERYWHERE, Group.LAYER_STATE
        ),
        "sessions_since_last_layer_added": NameSpec(
            Kind.NUMBER,
            "Sessions since the most recent layer was added (not evaluable if none ever was).",
            EVERYWHERE,
            Group.LAYER_STATE,
        ),
        "layer_sessions_active": NameSpec(
            Kind.NUMBER,
            "Sessions the layer being considered has been on.",
            frozenset({Context.LAYER_REMOVE}),
            Group.LAYER_STATE,
        ),
        "layer_deferred": NameSpec(
            Kind.BOOLEAN,
            "The layer being considered was blocked by a blackout and waits to fire.",
            _LAYER_CONTEXTS,
            Group.LAYER_STATE,
        ),
    }
)

INDICATOR_NAMES: Final = tuple(n for n, s in NAMES.items() if s.group is Group.INDICATOR)
"""Names whose values are columns of the indicator frame."""

STATE_NAMES: Final = tuple(n for n, s in NAMES.items() if s.group is Group.LAYER_STATE)
"""Names whose values the hedge state machine supplies."""

KEYWORDS: Final = frozenset({"and", "or", "not", "true", "false"})
"""Reserved words; neither a threshold nor an indicator may use them."""
