"""``alvh backtest --sweep KEY=V1,V2,… [--split DATE]``: every combination of thresholds replayed.

Each combination is the rules file with some values replaced
(:func:`bot.engine.rules.load_rules_variant`), replayed through the same
engine as a backtest, and graded with the same definitions
(:mod:`bot.backtest.stats`, :mod:`bot.backtest.condors`): one row per
combination. With ``--split DATE`` each figure is given for the sessions
before DATE and from DATE on, side by side, so a choice tuned on one part of
history can be seen to hold (or not) on the other. The replay itself always
runs over the whole range, so the state at the split is the one history made.

What makes it fast: the indicator frame is computed once per distinct
``indicators`` section (thresholds, layers, blackout widths and the condor
policy do not change it; different blackout widths only recompute the two
blackout columns), the grading's rule-independent parts (drawdown episodes,
the market arrays, the trade paths) are shared, and a sweep's replay prices
only the condors it trades (:class:`~bot.backtest.condors.EntryGate`).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import itertools
import json
import math
import multiprocessing as mp
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import pandas as pd

from bot.backtest.condors import (
    CondorOutcomes,
    EntryGate,
    Market,
    PathCache,
    TradePolicy,
    condor_outcomes,
    cycle_key,
)
from bot.backtest.fmt import pct, usd
from bot.backtest.progress import Progress
from bot.backtest.run import (
    LayerPeriod,
    Replayed,
    backtest_frame,
    layer_periods,
    replay_range,
    resolve_range,
    spx_opens,
)
from bot.backtest.stats import (
    DrawdownEpisode,
    TriggerOutcome,
    drawdown_episodes,
    episodes_preceded,
    trigger_outcomes,
)
from bot.backtest.summary import StatsParams, layer1_triggers, session_states
from bot.engine.rules import Rules, RulesFileError, load_rules_variant, parse_value
from bot.engine.state import LayerState, Value
from bot.kernel.errors import ConfigError
from bot.kernel.sessions import SessionCalendar
from bot.market.freshness import FreshnessIndex, window_start
from bot.pipeline.evaluation import frame_rows, frame_start, load_series, with_blackout
from bot.store import Store

MAX_COMBINATIONS = 1000
"""A typo like ``--sweep x=1,2,…,500 --sweep y=…`` should not start a day-long run."""


@dataclass(frozen=True, slots=True)
class Axis:
    """One ``--sweep KEY=V1,V2,…``: the key and its values as read and as typed."""

    key: str
    values: tuple[object, ...]
    texts: tuple[str, ...]


def parse_axis(arg: str) -> Axis:
    """``KEY=V1,V2,…`` → :class:`Axis`; a malformed one is a :class:`ConfigError`, one line."""
    key, sep, rest = arg.partition("=")
    key = key.strip()
    texts = tuple(t.strip() for t in rest.split(","))
    if not sep or not key or not rest.strip() or any(not t for t in texts):
        raise ConfigError(f"--sweep {arg!r}: expected KEY=V1,V2,… (e.g. ad_min_days=5,10,15)")
    if len(set(texts)) != len(texts):
        raise ConfigError(f"--sweep {key}: a value is listed twice ({rest})")
    try:
        values = tuple(parse_value(t, f"--sweep {key}") for t in texts)
    except RulesFileError as exc:
        raise ConfigError(str(exc).splitlines()[0]) from None
    return Axis(key, values, texts)


def variants(
    raw: bytes, name: str, axes: Sequence[Axis], path: Path | None = None
) -> list[tuple[tuple[str, ...], Rules]]:
    """Every combination of the axes' values as validated rules, in the order given."""
    if len({a.key for a in axes}) != len(axes):
        raise ConfigError("--sweep: the same key is swept twice")
    n = math.prod(len(a.values) for a in axes)
    if n > MAX_COMBINATIONS:
        raise ConfigError(f"--sweep: {n} combinations (at most {MAX_COMBINATIONS})")
    out = []
    for combo in itertools.product(*(range(len(a.values)) for a in axes)):
        overrides = {a.key: a.values[i] for a, i in zip(axes, combo, strict=True)}
        try:
            rules = load_rules_variant(raw, name, overrides, path=path)
        except RulesFileError as exc:
            shown = ", ".join(f"{k}={a.texts[i]}" for (k, a, i) in
                              zip(overrides, axes, combo, strict=True))
            # The value came from the command line: not the rules file's line.
            problem = exc.problems[0]
            what = f"{problem.key}: " if problem.key else ""
            raise ConfigError(f"--sweep {shown}: {what}{problem.message.splitlines()[0]}"
                              ) from None
        out.append((tuple(a.texts[i] for a, i in zip(axes, combo, strict=True)), rules))
    return out


@dataclass(frozen=True, slots=True)
class Figures:
    """What one combination did over one stretch of sessions (the columns of a row)."""

    sessions: int
    episodes: int
    covered: int
    """Drawdown episodes with layer 1 on at the start or added within the lead before it."""
    triggers: int
    false_alarms: int
    undetermined: int
    hedged: int
    refused: int
    """Sessions the freshness rule refused (as run-once would): no decision."""
    hedge_pnl: float
    unpriced: int
    condor_pnl: float
    condor_pnl_with_hedge: float
    trades: int

    @property
    def hedged_share(self) -> float | None:
        return self.hedged / self.sessions if self.sessions else None


@dataclass(frozen=True, slots=True)
class Row:
    values: tuple[str, ...]
    """The swept values, as typed, in the order of the axes."""
    rules_sha256: str
    whole: Figures
    before: Figures | None = None
    after: Figures | None = None


@dataclass(frozen=True)
class SweepResult:
    origin: str
    axes: list[Axis]
    start: dt.date
    end: dt.date
    split: dt.date | None
    params: StatsParams
    rows: list[Row]
    frames: int
    """Indicator frames computed (one per distinct ``indicators`` section)."""
    notes: tuple[str, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Shared:
    """What every combination grades against: nothing in here depends on the rules."""

    sessions: list[dt.date]
    """Sessions with an SPX close (the episodes' positions)."""
    days: list[dt.date]
    """Every session of the range."""
    close: pd.Series[float]
    vix: pd.Series[float]
    episodes: list[DrawdownEpisode]
    market: Market
    opens: pd.Series[float]
    cycles: dict[str, dict[dt.date, dt.date]]
    caches: dict[tuple[object, ...], PathCache]


def _figures(
    done: Replayed, rules: Rules, shared: _Shared, outcomes: CondorOutcomes,
    params: StatsParams, triggers: list[dt.date], periods: list[LayerPeriod], lo: dt.date,
    hi: dt.date, trig_outcomes: list[TriggerOutcome], states: Mapping[dt.date, LayerState],
) -> Figures:
    inside = [d for d in states if lo <= d <= hi]
    layer1 = rules.hedge.layers[0].name
    hedged = {d: bool(st.layers) for d, st in states.items()}
    l1 = {d: any(a.name == layer1 for a in st.layers) for d, st in states.items()}
    eps = episodes_preceded([e for e in shared.episodes if lo <= e.start <= hi], triggers,
                            shared.sessions, lead=params.lead_sessions, hedged=hedged,
                            layer1_on=l1)
    trig = [t for t in trig_outcomes if lo <= t.session <= hi]
    pers = [p for p in periods if lo <= p.added_on <= hi]
    without, with_hedge = outcomes.totals(lo, hi)
    return Figures(
        sessions=len(inside), episodes=len(eps), covered=sum(e.covered for e in eps),
        triggers=len(trig), false_alarms=sum(t.false_alarm is True for t in trig),
        undetermined=sum(t.false_alarm is None for t in trig),
        hedged=sum(hedged[d] for d in inside),
        refused=sum(1 for d in done.refused if lo <= d <= hi),
        hedge_pnl=sum(p.pnl for p in pers if p.pnl is not None),
        unpriced=sum(p.pnl is None for p in pers),
        condor_pnl=without, condor_pnl_with_hedge=with_hedge,
        trades=sum(lo <= t.entry <= hi for t in outcomes.trades),
    )


def _grade(
    done: Replayed, rules: Rules, shared: _Shared, calendar: SessionCalendar,
    params: StatsParams, start: dt.date, end: dt.date, split: dt.date | None,
) -> tuple[Figures, Figures | None, Figures | None]:
    evs = done.evaluations
    triggers = layer1_triggers(evs)
    trig_outcomes = trigger_outcomes(shared.close, shared.vix, triggers,
                                     false_alarm_pct=params.false_alarm_pct,
                                     false_alarm_horizon=params.false_alarm_horizon)
    periods = layer_periods(evs, done.frame, calendar)
    policy = TradePolicy.of(rules)
    key = (policy, rules.condor.risk_free_rate, rules.condor.dividend_yield)
    replayed = done.frame.loc[pd.Timestamp(start) : pd.Timestamp(end)]
    outcomes = condor_outcomes(
        evs, replayed, shared.opens, periods, rules, calendar, policy=policy,
        cache=shared.caches.setdefault(key, {}), market=shared.market,
        cycles=shared.cycles[policy.entry])
    states = session_states(evs, shared.days)

    def fig(lo: dt.date, hi: dt.date) -> Figures:
        return _figures(done, rules, shared, outcomes, params, triggers, periods, lo, hi,
                        trig_outcomes, states)

    whole = fig(start, end)
    if split is None:
        return whole, None, None
    return whole, fig(start, split - dt.timedelta(days=1)), fig(split, end)


def run_sweep(
    store: Store, calendar: SessionCalendar, raw: bytes, name: str, axes: Sequence[Axis],
    start: dt.date, end: dt.date, *, capital: float, split: dt.date | None = None,
    params: StatsParams | None = None, path: Path | None = None,
    progress: TextIO | None = None, workers: int | None = None,
) -> SweepResult:
    """Replay and grade every combination (module doc). Bad input is a :class:`ConfigError`.

    ``workers`` (default: the machine's cores, at most :data:`MAX_WORKERS`) replay
    combinations side by side in forked processes; everything they read (frames,
    freshness, shared grading) is built before the fork and nothing touches the
    store after it. The rows come back in the order of the combinations.
    """
    params = params or StatsParams()
    t0 = time.perf_counter()
    combos = variants(raw, name, axes, path)
    rng = resolve_range(store, calendar, start, end)
    if split is not None and not rng.start < split <= rng.end:
        raise ConfigError(f"--split {split} is not inside the replayed range "
                          f"{rng.start}..{rng.end}")
    base = min(frame_start(store) or rng.start, rng.start)
    data = load_series(store, min(base, window_start(calendar, base)), rng.end)
    fresh = FreshnessIndex.from_store(store, calendar, base, rng.end, frames=data)
    bases: dict[str, pd.DataFrame] = {}
    frames: dict[tuple[str, str], pd.DataFrame] = {}
    rows_of: dict[tuple[str, str], dict[dt.date, dict[str, Value]]] = {}
    keys: list[tuple[str, str]] = []
    for _, rules in combos:
        ikey = rules.indicators.model_dump_json()
        if ikey not in bases:
            bases[ikey] = backtest_frame(store, calendar, rules, rng.start, rng.end, data=data)
        fkey = (ikey, rules.blackout.sessions_before.model_dump_json())
        if fkey not in frames:
            frames[fkey] = with_blackout(bases[ikey], rules)
            rows_of[fkey] = dict(frame_rows(frames[fkey]))
        keys.append(fkey)
    shared = _share(store, calendar, frames[keys[0]], rng.start, rng.end, params)
    fresh.refused(rng.start, rng.end)  # computed once, before any fork
    job = _Job(combos, keys, frames, rows_of, fresh, shared, calendar, params, capital, base,
               rng.start, rng.end, split)
    results: list[tuple[Row, float, float] | None] = [None] * len(combos)
    bar = Progress(progress, len(combos), "sweep")
    n = min(workers or os.cpu_count() or 1, MAX_WORKERS, len(combos))
    try:
        if n > 1 and "fork" in mp.get_all_start_methods():
            global _JOB
            _JOB = job
            with mp.get_context("fork").Pool(n) as pool:
                for i, result in pool.imap_unordered(_run_one, range(len(combos))):
                    results[i] = result
                    bar.update()
            _JOB = None
        else:
            for i in range(len(combos)):
                results[i] = job.run(i)
                bar.update()
    finally:
        bar.close()
    done = [r for r in results if r is not None]
    return SweepResult(
        origin=name, axes=list(axes), start=rng.start, end=rng.end, split=split, params=params,
        rows=[r[0] for r in done], frames=len(bases), notes=rng.notes,
        timings={"total": time.perf_counter() - t0, "replay": sum(r[1] for r in done),
                 "grading": sum(r[2] for r in done), "workers": float(n)},
    )


MAX_WORKERS = 4
"""A sweep is CPU-bound Python: more processes than cores only add switching."""


@dataclass(frozen=True)
class _Job:
    """Everything one combination's replay and grading read, built before any fork."""

    combos: list[tuple[tuple[str, ...], Rules]]
    keys: list[tuple[str, str]]
    frames: dict[tuple[str, str], pd.DataFrame]
    rows_of: dict[tuple[str, str], dict[dt.date, dict[str, Value]]]
    fresh: FreshnessIndex
    shared: _Shared
    calendar: SessionCalendar
    params: StatsParams
    capital: float
    base: dt.date
    start: dt.date
    end: dt.date
    split: dt.date | None

    def run(self, i: int) -> tuple[Row, float, float]:
        """Replay and grade combination ``i``: (its row, replay seconds, grading seconds)."""
        texts, rules = self.combos[i]
        key = self.keys[i]
        policy = TradePolicy.of(rules)
        t1 = time.perf_counter()
        done = replay_range(None, self.calendar, rules, self.start, self.end,
                            capital=self.capital, frame=self.frames[key], fresh=self.fresh,
                            rows=self.rows_of[key], base=self.base,
                            condors=EntryGate(self.shared.cycles[policy.entry]))
        t2 = time.perf_counter()
        whole, before, after = _grade(done, rules, self.shared, self.calendar, self.params,
                                      self.start, self.end, self.split)
        return Row(texts, rules.sha256, whole, before, after), t2 - t1, time.perf_counter() - t2


_JOB: _Job | None = None
"""The job a forked worker runs (set just before the fork, inherited, never pickled)."""


def _run_one(i: int) -> tuple[int, tuple[Row, float, float]]:
    assert _JOB is not None  # noqa: S101 - set before the pool forks
    return i, _JOB.run(i)


def _share(store: Store, calendar: SessionCalendar, frame: pd.DataFrame, start: dt.date,
           end: dt.date, params: StatsParams) -> _Shared:
    replayed = frame.loc[pd.Timestamp(start) : pd.Timestamp(end)]
    close = replayed["close"]
    days = [ts.date() for ts in pd.DatetimeIndex(replayed.index)]
    opens = spx_opens(store, start, end)
    return _Shared(
        sessions=[ts.date() for ts in pd.DatetimeIndex(close.dropna().index)], days=days,
        close=close, vix=replayed["vix"], episodes=drawdown_episodes(close, params.drawdown_pct),
        market=Market.of(replayed, opens), opens=opens,
        cycles={e: {d: cycle_key(d, e, calendar) for d in days}
                for e in ("monthly_cycle", "weekly_cycle")},
        caches={},
    )


# ------------------------------------------------------------------ rendering


COLUMNS = ("covered", "layer-1 adds", "false alarms", "hedged", "hedge P&L", "condor P&L",
           "with hedges")


def _cells(f: Figures) -> tuple[str, ...]:
    fa = f"{f.false_alarms}" + (f" (+{f.undetermined}?)" if f.undetermined else "")
    return (f"{f.covered}/{f.episodes}", str(f.triggers), fa, pct(f.hedged_share),
            usd(f.hedge_pnl), usd(f.condor_pnl), usd(f.condor_pnl_with_hedge))


def sweep_lines(result: SweepResult) -> list[str]:
    """The sweep table: one row per combination; with a split, ``before | after`` per cell."""
    r, p = result, result.params
    out = [f"alvh backtest --sweep {r.start}..{r.end}: {len(r.rows)} combination(s) of "
           f"{r.origin}; {r.frames} indicator frame(s) computed"]
    out += [f"note: {n}" for n in r.notes]
    out += [
        f"covered: SPX drawdowns of {p.drawdown_pct:g} % or more with layer 1 on at their start "
        f"or added within the {p.lead_sessions} sessions before it",
        f"false alarms: layer-1 adds after which SPX fell less than {p.false_alarm_pct:g} % "
        f"within {p.false_alarm_horizon} sessions ((+n?): too recent to tell)",
        "hedged: share of sessions ending with a hedge layer on; hedge P&L: VIX3M/VIX6M proxy; "
        "condor P&L: model estimates (Black-Scholes with VIX), one condor a cycle as the rules "
        "file's condor.backtest says; with hedges: condor P&L plus the hedge P&L",
    ]
    if r.split is not None:
        before = r.rows[0].before.sessions if r.rows and r.rows[0].before else 0
        after = r.rows[0].after.sessions if r.rows and r.rows[0].after else 0
        out.append(f"each cell: before {r.split} ({before} sessions) | from {r.split} on "
                   f"({after} sessions)")
    header = [a.key for a in r.axes] + list(COLUMNS)
    table: list[list[str]] = []
    for row in r.rows:
        if r.split is not None and row.before is not None and row.after is not None:
            cells = [f"{a} | {b}" for a, b in zip(_cells(row.before), _cells(row.after),
                                                  strict=True)]
        else:
            cells = list(_cells(row.whole))
        table.append([*row.values, *cells])
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header)]
    out.append("")
    out.append("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    out += ["  ".join(c.rjust(w) for c, w in zip(t, widths, strict=True)) for t in table]
    return out


def sweep_records(result: SweepResult) -> list[dict[str, object]]:
    """One flat record per combination (``sweep.csv`` / ``sweep.json``)."""
    out: list[dict[str, object]] = []
    for row in result.rows:
        rec: dict[str, object] = {a.key: v for a, v in zip(result.axes, row.values,
                                                             strict=True)}
        rec["rules_sha256"] = row.rules_sha256
        parts = [("", row.whole), ("before_", row.before), ("after_", row.after)]
        for prefix, f in parts:
            if f is None:
                continue
            rec.update({f"{prefix}{k}": v for k, v in (
                ("sessions", f.sessions), ("episodes", f.episodes), ("covered", f.covered),
                ("layer1_adds", f.triggers), ("false_alarms", f.false_alarms),
                ("undetermined", f.undetermined), ("hedged_sessions", f.hedged),
                ("hedge_pnl", f.hedge_pnl), ("hedge_unpriced", f.unpriced),
                ("condor_trades", f.trades), ("condor_pnl", f.condor_pnl),
                ("condor_pnl_with_hedge", f.condor_pnl_with_hedge))})
        out.append(rec)
    return out


def write_sweep(out_dir: Path, result: SweepResult) -> list[Path]:
    """``sweep.csv`` and ``sweep.json`` (the records plus what was swept and how)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records = sweep_records(result)
    with (out_dir / "sweep.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(records[0]) if records else ["rules_sha256"])
        w.writeheader()
        w.writerows(records)
    meta = {"rules": result.origin, "start": result.start.isoformat(),
            "end": result.end.isoformat(),
            "split": result.split.isoformat() if result.split else None,
            "sweep": {a.key: list(a.texts) for a in result.axes},
            "params": dataclasses.asdict(result.params), "notes": list(result.notes),
            "condor_pnl": "model estimates (Black-Scholes with VIX)",
            "hedge_pnl": "proxy (VIX3M/VIX6M interpolated)"}
    (out_dir / "sweep.json").write_text(
        json.dumps({"meta": meta, "rows": records}, indent=1, allow_nan=False) + "\n",
        encoding="utf-8")
    return [out_dir / "sweep.csv", out_dir / "sweep.json"]
