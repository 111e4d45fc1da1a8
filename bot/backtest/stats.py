"""Backtest statistics: what happened to SPX after the hedge signals, pure functions.

The backtest replays decisions; these functions judge them against what SPX
and VIX did next. They look *forward* on purpose (they grade the decisions,
they never feed them), so they live apart from the engine and take plain
Series. Every definition here is the one the report prints:

- **Forward maximum drawdown** over h sessions after session t: the largest
  fall of the close from its running peak, the peak starting at t's close:
  ``max over t < u <= t+h of 1 - P_u / max(P_t..P_u)``.
- **Drawdown episode** (threshold θ, default 10 %): the peak is the running
  maximum of the closes since the first session of the range; an episode
  *starts* on the first session whose close is at least θ below that peak,
  its trough is the lowest close until it ends, and it *ends* (recovers) on
  the first later session that closes at or above the peak. A new episode can
  only start after a recovery, so one bear market is one episode.
- **Preceded by a trigger**: a layer-1 trigger on one of the ``lead`` sessions
  before the episode's start, or on the start itself. **Covered**: preceded, or
  layer 1 on at the close of the start (the goal of the default rules).
- **False alarm**: a layer-1 trigger after which SPX's forward maximum
  drawdown over ``horizon`` sessions stays below ``threshold_pct``; when fewer
  than ``horizon`` sessions of data follow and the threshold has not been
  reached yet, the trigger is *undetermined*, not a false alarm.
- **Hedge P&L (proxy)**: ``(exit - entry) × multiplier × quantity``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bot.engine.hedge import vx_proxy_price

HORIZONS = (20, 60)
"""Sessions after a trigger over which the drawdown and the VIX change are measured."""
DEFAULT_DRAWDOWN_PCT = 10.0
DEFAULT_LEAD_SESSIONS = 60
DEFAULT_FALSE_ALARM_PCT = 5.0
"""Why 5 %: a 16-delta short put 45 days out with VIX at 15–20 sits roughly
5–7 % below spot, so a smaller fall never threatened the condor the layer protects."""
DEFAULT_FALSE_ALARM_HORIZON = 60


def _values(series: pd.Series[float]) -> tuple[list[dt.date], np.ndarray]:
    clean = series.dropna()
    days = [ts.date() for ts in pd.DatetimeIndex(clean.index)]
    return days, clean.to_numpy(dtype=float)


def drawdown_series(close: pd.Series[float]) -> pd.Series[float]:
    """Fraction below the running peak of the closes (0 at a new high)."""
    clean = close.dropna()
    return 1.0 - clean / clean.cummax()


def forward_max_drawdown(closes: Sequence[float] | np.ndarray, i: int, horizon: int) -> float:
    """Largest peak-to-trough fall over the ``horizon`` sessions after position ``i``.

    The peak starts at ``closes[i]``; fewer sessions are used when the data
    ends sooner (the caller knows how many there were). 0.0 when none follow.
    """
    window = np.asarray(closes[i : i + horizon + 1], dtype=float)
    if len(window) < 2:
        return 0.0
    peak = np.maximum.accumulate(window)
    return float(np.max(1.0 - window / peak))


@dataclass(frozen=True, slots=True)
class DrawdownEpisode:
    peak: dt.date
    peak_close: float
    start: dt.date
    """First session at least the threshold below the peak."""
    trough: dt.date
    trough_close: float
    recovered: dt.date | None
    """First session closing at or above the peak again; None if not within the data."""

    @property
    def depth(self) -> float:
        """Peak-to-trough fall as a fraction (0.2 = 20 %)."""
        return 1.0 - self.trough_close / self.peak_close


def drawdown_episodes(
    close: pd.Series[float], threshold_pct: float = DEFAULT_DRAWDOWN_PCT
) -> list[DrawdownEpisode]:
    """Peak-to-trough episodes of at least ``threshold_pct`` % (definition in the module doc)."""
    if not 0 < threshold_pct < 100:
        raise ValueError(f"drawdown threshold must be in (0, 100) %, got {threshold_pct}")
    days, c = _values(close)
    level = 1.0 - threshold_pct / 100.0
    out: list[DrawdownEpisode] = []
    if len(c) == 0:
        return out
    peak_i = 0
    start_i: int | None = None
    trough_i = 0
    for i in range(1, len(c)):
        if c[i] >= c[peak_i]:
            if start_i is not None:
                out.append(DrawdownEpisode(days[peak_i], float(c[peak_i]), days[start_i],
                                           days[trough_i], float(c[trough_i]), days[i]))
                start_i = None
            peak_i = i
        elif start_i is None:
            if c[i] <= level * c[peak_i]:
                start_i = trough_i = i
        elif c[i] < c[trough_i]:
            trough_i = i
    if start_i is not None:
        out.append(DrawdownEpisode(days[peak_i], float(c[peak_i]), days[start_i],
                                   days[trough_i], float(c[trough_i]), None))
    return out


@dataclass(frozen=True, slots=True)
class TriggerOutcome:
    """What SPX and VIX did after one layer-1 trigger."""

    session: dt.date
    close: float
    vix: float | None
    max_drawdown: Mapping[int, float]
    """Horizon (sessions) → forward maximum drawdown (fraction) over the sessions available."""
    vix_change: Mapping[int, float | None]
    """Horizon → VIX(t+h) − VIX(t) in points; None when t+h is beyond the data."""
    sessions_after: int
    """Sessions of data after the trigger (less than a horizon = a partial window)."""
    false_alarm: bool | None
    """None: undetermined (the window is not complete and the threshold not yet reached)."""

    def complete(self, horizon: int) -> bool:
        return self.sessions_after >= horizon


def trigger_outcomes(
    close: pd.Series[float],
    vix: pd.Series[float],
    triggers: Sequence[dt.date],
    *,
    horizons: Sequence[int] = HORIZONS,
    false_alarm_pct: float = DEFAULT_FALSE_ALARM_PCT,
    false_alarm_horizon: int = DEFAULT_FALSE_ALARM_HORIZON,
) -> list[TriggerOutcome]:
    """Forward drawdown, VIX change and the false-alarm verdict for each trigger."""
    if not 0 < false_alarm_pct < 100:
        raise ValueError(f"false-alarm threshold must be in (0, 100) %, got {false_alarm_pct}")
    days, c = _values(close)
    pos = {d: i for i, d in enumerate(days)}
    v_days, v_vals = _values(vix)
    vix_at = dict(zip(v_days, (float(v) for v in v_vals), strict=True))
    out: list[TriggerOutcome] = []
    for day in triggers:
        if day not in pos:
            raise ValueError(f"trigger {day} has no SPX close")
        i = pos[day]
        after = len(c) - 1 - i
        mdd = {h: forward_max_drawdown(c, i, h) for h in horizons}
        v0 = vix_at.get(day)
        chg: dict[int, float | None] = {}
        for h in horizons:
            v1 = vix_at.get(days[i + h]) if i + h < len(days) else None
            chg[h] = None if v0 is None or v1 is None else v1 - v0
        fa_mdd = forward_max_drawdown(c, i, false_alarm_horizon)
        verdict: bool | None
        if fa_mdd >= false_alarm_pct / 100.0:
            verdict = False
        elif after >= false_alarm_horizon:
            verdict = True
        else:
            verdict = None
        out.append(TriggerOutcome(day, float(c[i]), v0, mdd, chg, after, verdict))
    return out


@dataclass(frozen=True, slots=True)
class EpisodeOutcome:
    episode: DrawdownEpisode
    trigger: dt.date | None
    """The latest trigger within the lead window before the episode's start."""
    lead_sessions: int | None
    """Sessions from that trigger to the episode's start."""
    hedged_at_start: bool
    """At least one layer was on at the close of the episode's start."""
    layer1_at_start: bool = False
    """Layer 1 was on at the close of the episode's start (however long before it went on)."""

    @property
    def preceded(self) -> bool:
        return self.trigger is not None

    @property
    def covered(self) -> bool:
        """Layer 1 on at the start, or added within the lead window before it (issue 13's goal)."""
        return self.preceded or self.layer1_at_start


def episodes_preceded(
    episodes: Sequence[DrawdownEpisode],
    triggers: Sequence[dt.date],
    sessions: Sequence[dt.date],
    *,
    lead: int = DEFAULT_LEAD_SESSIONS,
    hedged: Mapping[dt.date, bool] | None = None,
    layer1_on: Mapping[dt.date, bool] | None = None,
) -> list[EpisodeOutcome]:
    """For each episode, the latest trigger at most ``lead`` sessions before its start.

    ``hedged``/``layer1_on`` (session → any layer / layer 1 on after its close)
    say whether the hedge was already on when the episode started.
    """
    if lead < 0:
        raise ValueError(f"lead must be >= 0 sessions, got {lead}")
    pos = {d: i for i, d in enumerate(sessions)}
    trig = sorted((pos[t], t) for t in triggers if t in pos)
    out = []
    for ep in episodes:
        s = pos[ep.start]
        inside = [(p, t) for p, t in trig if s - lead <= p <= s]
        best = inside[-1] if inside else None
        out.append(EpisodeOutcome(
            ep, best[1] if best else None, s - best[0] if best else None,
            bool(hedged.get(ep.start, False)) if hedged is not None else False,
            bool(layer1_on.get(ep.start, False)) if layer1_on is not None else False,
        ))
    return out


def layer_pnl(entry_price: float, exit_price: float, multiplier: float, quantity: int) -> float:
    """Dollars gained by ``quantity`` units bought at ``entry_price`` and sold at ``exit_price``."""
    return (exit_price - entry_price) * multiplier * quantity


def proxy_exit_price(
    expiry: dt.date, exit_day: dt.date, vix3m: float | None, vix6m: float | None
) -> float:
    """The VIX3M/VIX6M proxy for the *same* contract on the exit day (a proxy, not a price)."""
    return vx_proxy_price((expiry - exit_day).days, _finite(vix3m), _finite(vix6m))


def _finite(v: float | None) -> float | None:
    return None if v is None or math.isnan(v) else v
