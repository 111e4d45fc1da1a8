"""``alvh rules check``: validate a rules file and show what it will do.

The summary is for a person about to deploy an edit: the hash the bot will
record, every layer with its conditions, and the numbers behind them, so a
typo that still validates (a 4.5 that should be 1.5) is visible before it acts.
"""

from __future__ import annotations

import os

from bot.engine.rules.language import fmt
from bot.engine.rules.loader import RulesFileError, load_rules
from bot.engine.rules.schema import Rules
from bot.kernel.errors import RulesError
from bot.kernel.models import EventKind


def check_command(path: str | os.PathLike[str]) -> tuple[int, str]:
    """Exit code and text: 0 with a summary, 1 with every problem, 2 when there is no file
    to check (a name that cannot be read is a bad argument, as for ``grep``)."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        what = ("no such file" if isinstance(exc, FileNotFoundError) else
                "is a directory" if isinstance(exc, IsADirectoryError) else "cannot read it")
        return 2, f"{os.fspath(path)}: {what}"
    try:
        rules = load_rules(path)
    except RulesFileError as exc:
        n = len(exc.problems)
        head = f"{os.fspath(path)}: refused, {n} problem{'s' if n != 1 else ''}"
        return 1, f"{head}\n{exc}"
    except RulesError as exc:
        return 1, f"{os.fspath(path)}: refused\n{exc}"
    return 0, summarize(rules)


def summarize(rules: Rules) -> str:
    """Human summary of valid rules (also used for reload announcements)."""
    lines = [f"{rules.origin}: OK", f"sha256: {rules.sha256}", ""]
    lines += _hedge(rules)
    lines += ["", *_blackout(rules), "", *_condor(rules), "", *_warnings(rules), ""]
    lines += [*_indicators(rules), "", "Thresholds:"]
    lines += [f"  {name} = {value}" for name, value in rules.thresholds.items()]
    lines += [f"  note: {name} is used by no condition: changing it changes nothing"
              for name in _unused_thresholds(rules)]
    return "\n".join(lines)


def _unused_thresholds(rules: Rules) -> list[str]:
    """Thresholds no condition uses (a renamed one, or a typo in a condition that happens
    to be another valid name): editing them would silently do nothing. Each compiled
    condition knows the thresholds its type check resolved."""
    used = {name for _, c in rules.conditions() for name in c.thresholds}
    return [name for name in rules.thresholds if name not in used]


def _num(value: float) -> str:
    return fmt(float(value))


def _hedge(rules: Rules) -> list[str]:
    h = rules.hedge
    inst = h.instrument
    if inst.kind == "etp":
        instrument = f"{inst.etp_symbol} (VIX ETP)"
    else:
        instrument = f"VIX futures {inst.months_out_min}-{inst.months_out_max} months out"
    lines = [
        f"Hedge: {instrument}",
        f"  {_num(h.budget_per_layer_pct)} % of capital per layer, at most "
        f"{_num(h.max_total_pct)} % in total, at most {h.max_layers} layers",
        f"  cooldown {h.cooldown_sessions} sessions between additions; a layer comes off "
        f"after remove_when holds {h.exit_hysteresis_sessions} sessions in a row",
    ]
    if h.max_layers > len(h.layers):
        lines.append(
            f"  note: max_layers is {h.max_layers} but {len(h.layers)} layer(s) are defined; "
            f"at most {len(h.layers)} can be on"
        )
    if h.capped_layers < min(h.max_layers, len(h.layers)):
        lines.append(
            f"  note: only {h.capped_layers} whole layer(s) fit under max_total_pct; "
            "later layers are capped"
        )
    for i, layer in enumerate(h.layers, start=1):
        lines += [
            f"  Layer {i} ({layer.name})",
            f"    add when:    {layer.add_when}",
            f"    remove when: {layer.remove_when}",
        ]
    return lines


def _blackout(rules: Rules) -> list[str]:
    b = rules.blackout
    if not any(b.sessions(k) for k in EventKind):
        return ["Blackout: none (every kind's count of sessions is 0)"]
    widths = ", ".join(f"{k.value} {b.sessions(k)}" for k in EventKind)
    return [
        f"Blackout (sessions before the event): {widths}",
        f"  a layer may still go on when: {b.override_when}",
    ]


def _condor(rules: Rules) -> list[str]:
    c = rules.condor
    expiry = "monthly SPX, AM-settled" if c.expiry == "monthly" else "weekly SPXW, PM-settled"
    return [
        f"Condor: short put delta {_num(c.target_delta.put)}, short call delta "
        f"{_num(c.target_delta.call)}, wings {_num(c.wing_width)} points "
        f"(strike step {_num(c.strike_step)})",
        f"  {c.dte} days to expiry ({expiry}); r = {_num(c.risk_free_rate)}, "
        f"q = {_num(c.dividend_yield)}; max loss budget {_num(c.max_loss_budget_pct)} % of capital",
        f"  enter when: {c.enter_when}",
    ]


def _warnings(rules: Rules) -> list[str]:
    if not rules.warnings:
        return ["Warnings: none"]
    return ["Warnings:", *(f"  {w.name}: {w.when}" for w in rules.warnings)]


def _indicators(rules: Rules) -> list[str]:
    ind = rules.indicators
    m, w, d = ind.macd, ind.weekly_macd, ind.divergence
    return [
        f"Indicators: MACD {m.fast}/{m.slow}/{m.signal}, weekly MACD {w.fast}/{w.slow}/{w.signal}, "
        f"RSI {ind.rsi.period}",
        f"  divergence window {d.window} sessions, tolerance {_num(d.tolerance)}, "
        f"min separation {d.min_separation}; histogram compression "
        f"{ind.histogram_compression_sessions} sessions; "
        f"look-back {ind.lookback_sessions} sessions",
    ]
