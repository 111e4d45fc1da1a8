"""``alvh rules diff`` and the Telegram ``/preview``: which decisions would an edit change?

Both rule files are replayed over the same history with the same engine as
the daily job, and the sessions whose *decisions* differ are listed side by
side. A decision, for this comparison, is what a subscriber would see: the
layer changes (add with its quantity, remove, defer, cancel_deferral,
blocked), the condor go/skip and the early warnings. Explanations (why a
layer stays on) are not decisions, and neither are the values behind them.

The expensive part is the indicator frame; when the two files have the same
``indicators`` section it is computed once and shared. Only the blackout
columns depend on anything else (``blackout.sessions_before``), and those
are recomputed from the shared proximity columns when the widths differ.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from bot.backtest.run import CHANGE_ACTIONS, backtest_frame, replay_range, resolve_range
from bot.backtest.summary import skip_reasons
from bot.engine.evaluate import Evaluation
from bot.engine.rules import Rules, diff_thresholds
from bot.kernel.sessions import SessionCalendar
from bot.market.freshness import FreshnessIndex, window_start
from bot.pipeline.evaluation import frame_start, load_series, with_blackout
from bot.store import Store

DEFAULT_CAPITAL = 2_000_000.0
SHORT_SESSIONS = 15
"""Sessions listed in the short rendering."""
MAX_CHARS = 3500
"""Room for the short rendering in one Telegram message (4,096 characters, less
the markup and header the bot wraps around it)."""


@dataclass(frozen=True, slots=True)
class Decisions:
    """What one rules file decided on one session, as comparable text."""

    layers: tuple[str, ...]
    """``add layer1 ×2``, ``remove layer2``, ``defer layer1 (blackout before FOMC)``, ..."""
    condor: str
    """``go`` or ``skip``."""
    condor_why: str
    """For a skip: the failed checks (shown, not compared)."""
    warnings: tuple[str, ...]
    layers_on: tuple[str, ...]

    def layer_key(self) -> tuple[str, ...]:
        """Layer decisions without their reasons (a cooldown count is not a decision)."""
        return tuple(x.split(" (")[0] for x in self.layers)

    def key(self) -> tuple[object, ...]:
        """What must be equal for two sessions to count as the same decision."""
        return (self.layer_key(), self.condor, self.warnings)

    def condor_text(self) -> str:
        return f"condor {self.condor}" + (f" ({self.condor_why})" if self.condor_why else "")


def decisions_of(ev: Evaluation) -> Decisions:
    layers = []
    for a in ev.actions:
        d = a.decision
        if d.action not in CHANGE_ACTIONS:
            continue
        text = f"{d.action} {d.layer}"
        if d.action == "add" and a.size is not None:
            text += f" ×{a.size.quantity}"
        if d.action in ("defer", "blocked") and d.reasons:
            text += f" ({d.reasons[0].split(';')[0]})"
        layers.append(text)
    go = ev.condor is not None and ev.condor.go
    return Decisions(
        layers=tuple(layers),
        condor="go" if go else "skip",
        condor_why="" if go else "; ".join(skip_reasons(ev)),
        warnings=tuple(w.name for w in ev.warnings),
        layers_on=tuple(x.name for x in ev.state_after.layers),
    )


@dataclass(frozen=True, slots=True)
class SessionDiff:
    session: dt.date
    old: Decisions
    new: Decisions


@dataclass(frozen=True, slots=True)
class Totals:
    adds: int
    removes: int
    defers: int
    layer1_adds: int
    condor_go: int
    hedged_sessions: int


def _totals(evs: Sequence[Evaluation]) -> Totals:
    c: Counter[str] = Counter()
    l1 = 0
    for ev in evs:
        for a in ev.actions:
            c[a.decision.action] += 1
            l1 += a.decision.action == "add" and a.decision.layer_index == 0
    return Totals(c["add"], c["remove"], c["defer"], l1,
                  sum(bool(e.condor and e.condor.go) for e in evs),
                  sum(bool(e.state_after.layers) for e in evs))


@dataclass(frozen=True)
class DiffResult:
    old_origin: str
    new_origin: str
    old_sha256: str
    new_sha256: str
    start: dt.date
    end: dt.date
    sessions: int
    changed_settings: list[tuple[str, object, object]]
    diffs: list[SessionDiff]
    old_totals: Totals
    new_totals: Totals
    shared_frame: bool
    """True when one indicator frame served both files."""
    blackout_recomputed: bool
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return not self.diffs

    def text(self, max_sessions: int | None = None, width: int = 60) -> str:
        """The side-by-side listing (``max_sessions`` limits it, e.g. for a chat message)."""
        lines = [
            f"rules diff {self.start}..{self.end} ({self.sessions} sessions)",
            f"  old: {self.old_origin} (sha256 {self.old_sha256[:12]})",
            f"  new: {self.new_origin} (sha256 {self.new_sha256[:12]})",
        ]
        if self.changed_settings:
            lines.append("settings changed:")
            lines += [f"  {k}: {_v(a)} -> {_v(b)}" for k, a, b in self.changed_settings]
        else:
            lines.append("settings changed: none")
        if self.identical:
            lines.append(f"no differences: every decision of the {self.sessions} sessions is "
                         "the same")
            return "\n".join(lines)
        o, n = self.old_totals, self.new_totals
        lines.append(f"{len(self.diffs)} session(s) with different decisions")
        lines.append(f"  {'':<16}{'old':>8}{'new':>8}")
        for label, x, y in (("layer-1 adds", o.layer1_adds, n.layer1_adds),
                            ("layer adds", o.adds, n.adds), ("removals", o.removes, n.removes),
                            ("deferrals", o.defers, n.defers),
                            ("condor go", o.condor_go, n.condor_go),
                            ("sessions hedged", o.hedged_sessions, n.hedged_sessions)):
            lines.append(f"  {label:<16}{x:>8}{y:>8}")
        shown = self.diffs if max_sessions is None else self.diffs[:max_sessions]
        lines.append(f"{'session':<10}  {'old':<{width}}  new")
        for d in shown:
            for i, (a, b) in enumerate(_side_by_side(d.old, d.new)):
                day = d.session.isoformat() if i == 0 else ""
                lines.append(f"{day:<10}  {_clip(a, width):<{width}}  {b}".rstrip())
        if len(shown) < len(self.diffs):
            lines.append(f"... and {len(self.diffs) - len(shown)} more session(s)")
        return "\n".join(lines)

    def short_text(self, max_sessions: int = SHORT_SESSIONS, max_chars: int = MAX_CHARS) -> str:
        """For the Telegram ``/preview`` reply: at most ``max_sessions`` sessions, and fewer
        if that is needed to stay within ``max_chars`` (one message, before escaping)."""
        n = max_sessions
        text = self.text(max_sessions=n, width=30)
        while len(text) > max_chars and n > 0:
            n -= 1
            text = self.text(max_sessions=n, width=30)
        return text


def _v(x: object) -> str:
    return "(absent)" if x is None else str(x)


def _clip(s: str, width: int) -> str:
    return s if len(s) <= width else s[: width - 1] + "…"


def _side_by_side(old: Decisions, new: Decisions) -> list[tuple[str, str]]:
    """Rows (old, new) for the kinds of decision that differ: layers, condor, warnings."""
    rows: list[tuple[str, str]] = []
    if old.layer_key() != new.layer_key():
        a, b = list(old.layers) or ["no layer change"], list(new.layers) or ["no layer change"]
        rows += [(a[i] if i < len(a) else "", b[i] if i < len(b) else "")
                 for i in range(max(len(a), len(b)))]
    if old.condor != new.condor:
        rows.append((old.condor_text(), new.condor_text()))
    if old.warnings != new.warnings:
        rows.append(("warnings: " + (", ".join(old.warnings) or "none"),
                     "warnings: " + (", ".join(new.warnings) or "none")))
    return rows


def compare(old: Sequence[Evaluation], new: Sequence[Evaluation]) -> list[SessionDiff]:
    """Sessions whose decisions differ (both replays cover the same sessions)."""
    out = []
    for a, b in zip(old, new, strict=True):
        if a.session != b.session:
            raise ValueError(f"replays out of step: {a.session} vs {b.session}")
        da, db = decisions_of(a), decisions_of(b)
        if da.key() != db.key():
            out.append(SessionDiff(a.session, da, db))
    return out


def preview_diff(
    store: Store,
    calendar: SessionCalendar,
    old_rules: Rules,
    new_rules: Rules,
    start: dt.date,
    end: dt.date,
    *,
    capital: float = DEFAULT_CAPITAL,
    progress: TextIO | None = None,
) -> DiffResult:
    """Replay both rule files over ``start..end`` and list the sessions that differ.

    Called by ``alvh rules diff`` and by the Telegram ``/preview`` admin
    command (which renders :meth:`DiffResult.short_text`). ``start``/``end``
    are snapped to sessions with SPX data; a range with none raises
    :class:`~bot.kernel.errors.ConfigError`. Events are point in time, as live and
    in the backtest.
    """
    rng = resolve_range(store, calendar, start, end)
    t0 = time.perf_counter()
    base = min(frame_start(store) or rng.start, rng.start)
    data = load_series(store, min(base, window_start(calendar, base)), rng.end)
    fresh = FreshnessIndex.from_store(store, calendar, base, rng.end, frames=data)
    old_frame = backtest_frame(store, calendar, old_rules, rng.start, rng.end, data=data)
    shared = old_rules.indicators == new_rules.indicators
    recomputed = False
    if not shared:
        new_frame = backtest_frame(store, calendar, new_rules, rng.start, rng.end, data=data)
    elif old_rules.blackout.sessions_before != new_rules.blackout.sessions_before:
        new_frame, recomputed = with_blackout(old_frame, new_rules), True
    else:
        new_frame = old_frame
    t1 = time.perf_counter()
    old_evs = replay_range(store, calendar, old_rules, rng.start, rng.end, capital=capital,
                           frame=old_frame, fresh=fresh, progress=progress,
                           label="replay old").evaluations
    new_evs = replay_range(store, calendar, new_rules, rng.start, rng.end, capital=capital,
                           frame=new_frame, fresh=fresh, progress=progress,
                           label="replay new").evaluations
    t2 = time.perf_counter()
    diffs = compare(old_evs, new_evs)
    t3 = time.perf_counter()
    return DiffResult(
        old_origin=old_rules.origin, new_origin=new_rules.origin,
        old_sha256=old_rules.sha256, new_sha256=new_rules.sha256,
        start=rng.start, end=rng.end, sessions=len(old_evs),
        changed_settings=diff_thresholds(old_rules, new_rules), diffs=diffs,
        old_totals=_totals(old_evs), new_totals=_totals(new_evs),
        shared_frame=shared, blackout_recomputed=recomputed,
        timings={"indicators": t1 - t0, "replay": t2 - t1, "compare": t3 - t2},
    )
