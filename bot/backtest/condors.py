"""What following the condor signals would have earned: trades, marks, equity, hedge allocation.

The replay says "condor GO" on most sessions; a trader opens one condor a
cycle. This module applies the rules file's ``condor.backtest`` policy to the
replay's decisions and follows every trade to its exit. Definitions (the
report prints them):

- **Entry**: the first GO session of each expiration cycle whose condor the
  engine could build with at least one contract (``entry: monthly_cycle``: the
  cycle of session t ends at the first standard monthly expiration after t;
  ``weekly_cycle``: the ISO week). The condor is the one the alert showed that
  session: its strikes, its credit, its contracts for the max-loss budget.
- **Marks**: on each later session close the condor is valued by
  Black–Scholes–Merton with that session's SPX close as spot and its VIX as the
  volatility of every leg (:mod:`bot.engine.bsm`). A session without VIX keeps
  the previous mark and checks nothing.
- **Exits**: ``take_profit`` closes the condor on the first close where
  credit − mark ≥ take_profit × credit; ``stop_loss`` on the first close where
  mark − credit ≥ stop_loss × max loss; otherwise it is held to expiration.
  Monthly SPX options are AM-settled against the special opening quotation
  (SOQ), computed from each component's opening print: we approximate it by
  the index's **open** of the expiration session. Weekly SPXW options settle
  at the close. A condor still open when the data ends is marked, not closed.
- **P&L** (dollars) = (credit − exit value) × 100 × contracts; the exit value
  is the cost to close (a mark) or the settlement value of the four legs.
- **Hedge allocation**: each hedge layer is marked daily with the same proxy as
  its entry and exit (VIX3M/VIX6M interpolated to its contract's days to
  expiry); each session's change of the hedge marks is split over the condors
  exposed that session (entered before it, not yet exited), in proportion to
  their maximum loss in dollars. A change on a session with no condor exposed
  is *unallocated*: it is in the with-hedge totals and equity but in no trade.

Every price here is a **model estimate**: no skew (real put wings are dearer
than VIX says, so real credits and real losses are both larger), no bid/ask,
no commissions, no early assignment.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from bot.backtest.run import LayerPeriod
from bot.backtest.stats import proxy_exit_price
from bot.engine.bsm import bsm_price
from bot.engine.condor import SPX_MULTIPLIER, Condor
from bot.engine.evaluate import Evaluation
from bot.engine.expirations import spx_monthly_expiration
from bot.engine.rules import Rules
from bot.kernel.sessions import SessionCalendar

MODEL_NOTE = (
    "Condor prices are MODEL ESTIMATES: Black-Scholes-Merton with the session's SPX close as "
    "spot and its VIX as the volatility of every strike (no skew: real put wings are dearer, so "
    "real credits and real losses are both larger), no bid/ask, no commissions. Monthly SPX "
    "options are AM-settled on the special opening quotation (SOQ): approximated here by the "
    "SPX open of the expiration session. Weekly SPXW options settle at the close."
)

ExitReason = Literal["expiration", "take_profit", "stop_loss", "open"]


@dataclass(frozen=True, slots=True)
class TradePolicy:
    """The rules file's ``condor.backtest`` section."""

    entry: Literal["monthly_cycle", "weekly_cycle"] = "monthly_cycle"
    take_profit: float | None = None
    stop_loss: float | None = None

    @classmethod
    def of(cls, rules: Rules) -> TradePolicy:
        b = rules.condor.backtest
        return cls(b.entry, b.take_profit, b.stop_loss)

    def describe(self) -> str:
        what = ("one condor on the first GO session of each monthly expiration cycle"
                if self.entry == "monthly_cycle"
                else "one condor on the first GO session of each week")
        exits = []
        if self.take_profit is not None:
            exits.append(f"take profit at {self.take_profit:.0%} of the credit")
        if self.stop_loss is not None:
            exits.append(f"stop loss at {self.stop_loss:.0%} of the max loss")
        how = ("; " + " or ".join(exits) + " (checked on session closes), else held to "
               "expiration") if exits else ", held to expiration"
        return what + how


@dataclass(frozen=True, slots=True)
class Trade:
    """One condor from its entry session to its exit. Points per condor unless ``$``."""

    entry: dt.date
    expiry: dt.date
    kind: str
    short_put: float
    long_put: float
    short_call: float
    long_call: float
    contracts: int
    spot: float
    vix: float
    credit: float
    max_loss: float
    exit_on: dt.date
    exit_reason: ExitReason
    exit_value: float
    """Points: the cost to close (a mark) or the four legs' settlement value."""
    settlement: float | None
    """The SPX price the condor settled against (None unless it expired)."""
    basis: str
    pnl: float
    """Dollars, all contracts, without the hedge."""
    hedge_pnl: float = 0.0
    """Dollars of hedge-layer P&L allocated to this trade."""

    @property
    def pnl_with_hedge(self) -> float:
        return self.pnl + self.hedge_pnl

    @property
    def closed(self) -> bool:
        return self.exit_reason != "open"

    @property
    def risk(self) -> float:
        """Dollars at risk: max loss × 100 × contracts (the allocation weight)."""
        return self.max_loss * SPX_MULTIPLIER * self.contracts


@dataclass(frozen=True, slots=True)
class Figures:
    """Trades, win rate, average and worst P&L, equity and its drawdown: one variant."""

    trades: int
    closed: int
    wins: int
    total: float
    average: float | None
    worst: float | None
    max_drawdown: float
    """Dollars: the largest fall of the equity curve below its running peak."""
    drawdown_peak: dt.date | None
    drawdown_trough: dt.date | None

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.closed if self.closed else None


@dataclass(frozen=True)
class CondorOutcomes:
    policy: TradePolicy
    trades: list[Trade]
    equity: pd.Series[float]
    """Dollars by session: condor P&L, realized and marked, without the hedge."""
    equity_with_hedge: pd.Series[float]
    hedge_by_session: pd.Series[float]
    """Dollars by session: the change of the hedge layers' marks."""
    unallocated: pd.Series[float]
    """Dollars by session: hedge changes with no condor exposed."""
    without: Figures
    with_hedge: Figures
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def total_with_hedge(self) -> float:
        """Dollars: every trade's P&L plus all the hedge layers' P&L (allocated or not)."""
        return self.with_hedge.total + float(self.unallocated.sum())

    def totals(self, start: dt.date, end: dt.date) -> tuple[float, float]:
        """(without, with hedge) P&L of the trades entered in ``start..end`` (the with-hedge
        figure adds the hedge P&L unallocated on those sessions)."""
        inside = [t for t in self.trades if start <= t.entry <= end]
        un = self.unallocated.loc[pd.Timestamp(start) : pd.Timestamp(end)].sum()
        return (sum(t.pnl for t in inside),
                sum(t.pnl_with_hedge for t in inside) + float(un))


# ------------------------------------------------------------------ entries


def cycle_key(session: dt.date, entry: str, calendar: SessionCalendar) -> dt.date:
    """The cycle a session belongs to: its next monthly expiration, or its week's Monday."""
    if entry == "weekly_cycle":
        return session - dt.timedelta(days=session.weekday())
    e = spx_monthly_expiration(session.year, session.month, calendar)
    if session < e:
        return e
    year, month = (session.year + 1, 1) if session.month == 12 else (session.year,
                                                                      session.month + 1)
    return spx_monthly_expiration(year, month, calendar)


def entries(
    evaluations: Sequence[Evaluation], policy: TradePolicy, calendar: SessionCalendar,
    cycles: Mapping[dt.date, dt.date] | None = None,
) -> tuple[list[tuple[dt.date, Condor]], list[str]]:
    """The sessions a condor is opened on, and why a cycle with GO sessions had none.

    ``cycles`` (session → cycle) saves recomputing :func:`cycle_key` in a sweep.
    """
    out: list[tuple[dt.date, Condor]] = []
    done: set[dt.date] = set()
    unbuilt: dict[dt.date, str] = {}
    for ev in evaluations:
        c = ev.condor
        if c is None or not c.go:
            continue
        key = (cycles[ev.session] if cycles is not None
               else cycle_key(ev.session, policy.entry, calendar))
        if key in done:
            continue
        if c.condor is None or c.condor.contracts < 1:
            why = (c.note or "no condor built") if c.condor is None else (
                c.condor.contracts_note or "0 contracts")
            unbuilt.setdefault(key, f"{ev.session}: {why}")
            continue
        done.add(key)
        unbuilt.pop(key, None)
        out.append((ev.session, c.condor))
    notes = [f"cycle ending {k}: GO but no condor opened ({why})"
             for k, why in sorted(unbuilt.items())]
    return out, notes


class EntryGate:
    """For a sweep's replay: price a GO session's condor only while its cycle has no entry.

    The entries are the same as with every condor priced (:func:`entries` takes
    the first GO session of a cycle whose condor has a contract), at a fraction
    of the cost: the other GO sessions' condors are never traded.
    """

    def __init__(self, cycles: Mapping[dt.date, dt.date]) -> None:
        self.cycles = cycles
        """Session → its cycle (:func:`cycle_key`), computed once per sweep."""
        self.done: set[dt.date] = set()

    def wants(self, session: dt.date) -> bool:
        return self.cycles[session] not in self.done

    def saw(self, evaluation: Evaluation) -> None:
        c = evaluation.condor
        if c is not None and c.condor is not None and c.condor.contracts >= 1:
            self.done.add(self.cycles[evaluation.session])


# ------------------------------------------------------------------ marks and exits


def condor_value(k: Condor, spot: float, sigma: float, days: int, r: float, q: float) -> float:
    """Points: what buying the condor back costs, by BSM (short legs minus long legs)."""
    return (bsm_price(spot, k.short_put.strike, sigma, days, r, q, "put")
            - bsm_price(spot, k.long_put.strike, sigma, days, r, q, "put")
            + bsm_price(spot, k.short_call.strike, sigma, days, r, q, "call")
            - bsm_price(spot, k.long_call.strike, sigma, days, r, q, "call"))


def settlement_value(k: Condor, price: float) -> float:
    """Points: the four legs' intrinsic value at the settlement price."""
    return (max(0.0, k.short_put.strike - price) - max(0.0, k.long_put.strike - price)
            + max(0.0, price - k.short_call.strike) - max(0.0, price - k.long_call.strike))


@dataclass(frozen=True, slots=True)
class Market:
    """The series a trade is followed on, as arrays over the replayed sessions."""

    days: list[dt.date]
    close: np.ndarray
    open: np.ndarray
    vix: np.ndarray
    vix3m: np.ndarray
    vix6m: np.ndarray
    pos: Mapping[dt.date, int]

    @classmethod
    def of(cls, frame: pd.DataFrame, opens: pd.Series[float]) -> Market:
        days = [ts.date() for ts in pd.DatetimeIndex(frame.index)]

        def col(name: str) -> np.ndarray:
            if name not in frame.columns:
                return np.full(len(days), np.nan)
            return frame[name].to_numpy(dtype=float)

        o = opens.reindex(frame.index).to_numpy(dtype=float)
        return cls(days, col("close"), o, col("vix"), col("vix3m"), col("vix6m"),
                   {d: i for i, d in enumerate(days)})


TradePath = tuple[list[float], dt.date, ExitReason, float, float | None, str]
"""(P&L per condor in points on each session from entry to exit, exit day, reason,
exit value, settlement price, basis)."""


def follow(k: Condor, entry: dt.date, market: Market, policy: TradePolicy, r: float,
           q: float) -> TradePath:
    """Mark ``k`` on each close after ``entry`` until an exit; its P&L path in points."""
    i0 = market.pos[entry]
    path = [0.0]
    mark: float | None = None
    last_day = market.days[-1]
    pm = k.kind == "weekly"
    for i in range(i0 + 1, len(market.days)):
        day = market.days[i]
        if day >= k.expiry:
            if day > k.expiry:  # the expiry was not a session in the data (should not happen)
                break
            price = market.close[i] if pm else market.open[i]
            how = ("the close (PM-settled SPXW)" if pm
                   else "the open (AM settlement, SOQ approximated)")
            if math.isnan(price) and not pm:
                price, how = market.close[i], "the close (no open on record for the SOQ)"
            if math.isnan(price):
                break
            value = settlement_value(k, price)
            path.append(k.credit - value)
            return (path, day, "expiration", value, float(price),
                    f"settled at {price:.2f}, {how} of {day}")
        vix = market.vix[i]
        spot = market.close[i]
        if math.isnan(vix) or math.isnan(spot) or vix <= 0:
            path.append(path[-1])
            continue
        mark = condor_value(k, float(spot), float(vix) / 100.0, (k.expiry - day).days, r, q)
        pnl = k.credit - mark
        path.append(pnl)
        if policy.take_profit is not None and pnl >= policy.take_profit * k.credit:
            return (path, day, "take_profit", mark, None,
                    f"bought back at the model mark {mark:.2f} on {day} "
                    f"(profit ≥ {policy.take_profit:.0%} of the credit)")
        if policy.stop_loss is not None and -pnl >= policy.stop_loss * k.max_loss:
            return (path, day, "stop_loss", mark, None,
                    f"bought back at the model mark {mark:.2f} on {day} "
                    f"(loss ≥ {policy.stop_loss:.0%} of the max loss)")
    day = market.days[min(len(market.days) - 1, i0 + len(path) - 1)] if path else last_day
    value = k.credit - path[-1]
    return (path, day, "open", value, None,
            f"still open on {day}: marked at {value:.2f}, not closed")


# ------------------------------------------------------------------ hedge marks


def hedge_changes(periods: Sequence[LayerPeriod], market: Market) -> np.ndarray:
    """Dollars by session: the change of every priced layer's proxy mark.

    The marks start at the layer's entry price on its add session and end at
    its exit price on its exit session, so each layer's changes add up to its
    P&L exactly; a session without VIX3M/VIX6M keeps the previous mark.
    """
    out = np.zeros(len(market.days))
    for p in periods:
        if (p.pnl is None or p.entry_price is None or p.exit_price is None
                or p.multiplier is None or p.expiry is None or p.exit_on is None):
            continue
        a, b = market.pos.get(p.added_on), market.pos.get(p.exit_on)
        if a is None or b is None:
            continue
        scale = p.multiplier * p.quantity
        prev = p.entry_price
        for i in range(a + 1, b + 1):
            if i == b:
                mark = p.exit_price
            else:
                try:
                    mark = proxy_exit_price(p.expiry, market.days[i], market.vix3m[i],
                                            market.vix6m[i])
                except ValueError:
                    mark = prev
            out[i] += (mark - prev) * scale
            prev = mark
    return out


def allocate(
    hedge: np.ndarray, exposures: Sequence[tuple[int, int, float]]
) -> tuple[np.ndarray, np.ndarray]:
    """Split each session's hedge change over the trades exposed then, by their risk.

    ``exposures``: (entry position, exit position, risk in dollars) per trade;
    a trade is exposed on the sessions after its entry up to its exit. Returns
    each trade's share and, by session, what no trade was exposed to. Linear
    in sessions + trades (a prefix sum of change per dollar of risk).
    """
    n = len(hedge)
    weight = np.zeros(n + 1)
    count = np.zeros(n + 1, dtype=np.int64)
    for a, b, risk in exposures:
        weight[a + 1] += risk
        weight[b + 1] -= risk
        count[a + 1] += 1
        count[b + 1] -= 1
    weight = np.cumsum(weight)[:n]
    # Exposure by count, not by the running sum of dollars: +risk − risk leaves float dust.
    exposed = np.cumsum(count)[:n] > 0
    per_dollar = np.zeros(n)
    per_dollar[exposed] = hedge[exposed] / weight[exposed]
    prefix = np.concatenate([[0.0], np.cumsum(per_dollar)])
    shares = np.array([risk * (prefix[b + 1] - prefix[a + 1]) for a, b, risk in exposures])
    return shares, np.where(exposed, 0.0, hedge)


# ------------------------------------------------------------------ the whole thing


def _figures(pnls: Sequence[float], closed: Sequence[bool], equity: pd.Series[float]
             ) -> Figures:
    done = [p for p, c in zip(pnls, closed, strict=True) if c]
    values = equity.to_numpy(dtype=float)
    mdd, pk, tr = 0.0, None, None
    if len(values):
        dd = np.maximum.accumulate(values) - values
        t = int(np.argmax(dd))
        if dd[t] > 0:
            days = pd.DatetimeIndex(equity.index)
            mdd, pk, tr = float(dd[t]), days[int(np.argmax(values[: t + 1]))].date(), days[t].date()
    return Figures(
        trades=len(pnls), closed=len(done), wins=int(sum(p > 0 for p in done)),
        total=float(sum(pnls)),
        average=float(np.mean(done)) if done else None,
        worst=float(min(done)) if done else None,
        max_drawdown=mdd, drawdown_peak=pk, drawdown_trough=tr,
    )


PathCache = dict[tuple[dt.date, dt.date, float, float, float, float, float], TradePath]
"""Trade paths by (entry, expiry, strikes, credit): a sweep re-uses them across combinations."""


def condor_outcomes(
    evaluations: Sequence[Evaluation], replayed: pd.DataFrame, opens: pd.Series[float],
    periods: Sequence[LayerPeriod], rules: Rules, calendar: SessionCalendar,
    *, cache: PathCache | None = None, market: Market | None = None,
    policy: TradePolicy | None = None, cycles: Mapping[dt.date, dt.date] | None = None,
) -> CondorOutcomes:
    """Trades, equity curves and figures with and without the hedge (module doc).

    ``cache``, ``market`` and ``cycles`` let a sweep share the work that does
    not depend on the rules (``cache`` must belong to one policy and one ``r``/``q``).
    """
    policy = policy or TradePolicy.of(rules)
    market = market or Market.of(replayed, opens)
    r, q = rules.condor.risk_free_rate, rules.condor.dividend_yield
    opened, notes = entries(evaluations, policy, calendar, cycles)
    n = len(market.days)
    condor_daily = np.zeros(n)
    raw: list[tuple[Trade, int, int]] = []
    for day, k in opened:
        key = (day, k.expiry, k.short_put.strike, k.long_put.strike, k.short_call.strike,
               k.long_call.strike, k.credit)
        path = cache.get(key) if cache is not None else None
        if path is None:
            path = follow(k, day, market, policy, r, q)
            if cache is not None:
                cache[key] = path
        points, exit_on, reason, value, settle, basis = path
        scale = SPX_MULTIPLIER * k.contracts
        i0 = market.pos[day]
        for j in range(1, len(points)):
            condor_daily[i0 + j] += (points[j] - points[j - 1]) * scale
        trade = Trade(day, k.expiry, k.kind, k.short_put.strike, k.long_put.strike,
                      k.short_call.strike, k.long_call.strike, k.contracts, k.spot,
                      k.sigma * 100.0, k.credit, k.max_loss, exit_on, reason, value, settle,
                      basis, points[-1] * scale)
        raw.append((trade, i0, i0 + len(points) - 1))
    hedge = hedge_changes(periods, market)
    alloc, unallocated = allocate(hedge, [(a, b, t.risk) for t, a, b in raw])
    trades = [replace(t, hedge_pnl=float(alloc[j])) for j, (t, _, _) in enumerate(raw)]
    index = pd.DatetimeIndex(replayed.index)
    equity = pd.Series(np.cumsum(condor_daily), index=index, dtype=float)
    equity_h = pd.Series(np.cumsum(condor_daily + hedge), index=index, dtype=float)
    closed = [t.closed for t in trades]
    return CondorOutcomes(
        policy=policy, trades=trades, equity=equity, equity_with_hedge=equity_h,
        hedge_by_session=pd.Series(hedge, index=index, dtype=float),
        unallocated=pd.Series(unallocated, index=index, dtype=float),
        without=_figures([t.pnl for t in trades], closed, equity),
        with_hedge=_figures([t.pnl_with_hedge for t in trades], closed, equity_h),
        notes=tuple(notes),
    )
