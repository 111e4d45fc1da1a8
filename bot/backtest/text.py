"""The backtest's terminal report, line by line (the HTML page embeds the same lines).

Condor decisions are per session, ~250 a year, far too many for a terminal:
the table prints per-year go/skip counts and a tally of skip reasons; every
session is in the files.
"""

from __future__ import annotations

import textwrap

from bot.backtest.condors import MODEL_NOTE, CondorOutcomes, Trade
from bot.backtest.fmt import day, pct, price, pts, usd, yes_no
from bot.backtest.run import CHANGE_ACTIONS, BacktestResult
from bot.backtest.stats import HORIZONS
from bot.backtest.summary import PROXY_NOTE, Summary


def text_lines(result: BacktestResult, summary: Summary) -> list[str]:
    """The terminal report, line by line."""
    s, p = summary, summary.params
    rules = result.rules
    l1 = result.layer1
    out = [
        f"alvh backtest {s.start}..{s.end}: {s.sessions} sessions, source {result.source}",
        f"rules: {rules.origin} (sha256 {rules.sha256[:12]}); capital {usd(result.capital)}",
    ]
    out += [f"note: {n}" for n in s.notes]
    skipped = [d for k, ds in sorted(result.excluded_events.items()) for d in ds
               if s.start <= d <= s.end]
    if skipped:
        out.append("unscheduled FOMC moves, counted only from their own date (no blackout "
                   "before them): " + ", ".join(d.isoformat() for d in skipped))
    out += ["", *refused_lines(summary)]
    out += ["", *breadth_lines(summary, rules.indicators.divergence.window)]

    c = s.action_counts
    out += ["", "Layer decisions: " + ", ".join(f"{c[a]} {a}" for a in CHANGE_ACTIONS)]
    if s.layer_rows:
        out.append(f"  {'session':<10}  {'action':<15}  {'layer':<8}  detail")
        for r in s.layer_rows:
            out.append(f"  {r.session}  {r.action:<15}  {r.layer:<8}  {r.detail}")
    else:
        out.append("  (no layer was added, removed, deferred or blocked)")

    out += ["", f"Condor: {s.condor_go} go, {s.condor_skip} skip, {s.refused_sessions} refused "
                "(every session is in decisions.csv / decisions.json)",
            f"  {'year':<6}{'go':>6}{'skip':>6}{'refused':>9}"]
    out += [f"  {y.year:<6}{y.go:>6}{y.skip:>6}{y.refused:>9}" for y in s.condor_years]
    if s.skip_reasons:
        out.append("  skip reasons (a skip can have several):")
        out += [f"  {n:>6}  {k}" for k, n in s.skip_reasons]

    out += ["", f"Layer-1 triggers ({l1} added): {len(s.triggers)}"]
    if s.triggers:
        h = "".join(f"{'maxDD ' + str(x):>10}" for x in HORIZONS)
        v = "".join(f"{'ΔVIX ' + str(x):>9}" for x in HORIZONS)
        out.append(f"  {'session':<10}{'close':>10}{'VIX':>7}{h}{v}  false alarm")
        for t in s.triggers:
            dd = "".join(
                f"{pct(t.max_drawdown[x]) + ('' if t.complete(x) else '*'):>10}"
                for x in HORIZONS
            )
            vc = "".join(f"{pts(t.vix_change[x]):>9}" for x in HORIZONS)
            out.append(f"  {t.session}{t.close:>10.2f}{price(t.vix):>7}{dd}{vc}  "
                       f"{yes_no(t.false_alarm)}")
        if any(not t.complete(max(HORIZONS)) for t in s.triggers):
            out.append("  * fewer sessions of data than the horizon after the trigger")
    out.append(
        f"  false alarms: {s.false_alarms} of {len(s.triggers)} (SPX max drawdown over the next "
        f"{p.false_alarm_horizon} sessions < {p.false_alarm_pct:g} %); {s.undetermined} "
        f"undetermined (fewer than {p.false_alarm_horizon} sessions after, threshold not reached)"
    )

    out += ["", f"SPX drawdowns of {p.drawdown_pct:g} % or more: {len(s.episodes)} "
                f"(peak = running max of the closes since {s.start}; an episode starts on the "
                f"first close {p.drawdown_pct:g} % below the peak and ends on a close back at "
                "the peak)"]
    if s.episodes:
        out.append(f"  {'peak':<10}{'close':>10}  {'start':<10}  {'trough':<10}{'close':>10}"
                   f"{'depth':>9}  {'recovered':<10}  trigger within "
                   f"{p.lead_sessions} sessions before the start")
        for e in s.episodes:
            ep = e.episode
            trig = (f"{e.trigger} ({e.lead_sessions} sessions before)" if e.trigger
                    else "none")
            hedged = ("layer 1 on" if e.layer1_at_start
                      else "hedged" if e.hedged_at_start else "unhedged")
            out.append(f"  {ep.peak}{ep.peak_close:>10.2f}  {ep.start}  {ep.trough}"
                       f"{ep.trough_close:>10.2f}{pct(ep.depth):>9}  {day(ep.recovered):<10}  "
                       f"{trig}; {hedged} at the start")
    out.append(f"  preceded by a layer-1 trigger within {p.lead_sessions} sessions: "
               f"{s.preceded} of {len(s.episodes)}; covered (layer 1 on at the start, or "
               f"added within {p.lead_sessions} sessions before it): {s.covered} of "
               f"{len(s.episodes)}")

    share = s.hedged_sessions / s.sessions if s.sessions else 0.0
    by = ", ".join(f"{k} layer(s): {v}" for k, v in s.hedged_by_count.items())
    out += ["", f"Sessions hedged (at least one layer on after the close): {s.hedged_sessions} "
                f"of {s.sessions} ({pct(share)}); {by}"]

    out += ["", "Hedge P&L, a proxy approximation:",
            *textwrap.wrap(PROXY_NOTE, 96, initial_indent="  ", subsequent_indent="  ")]
    if s.periods:
        out.append(f"  {'layer':<8}  {'added':<10}  {'removed':<10}  {'contract':<9}  "
                   f"{'expiry':<10}{'qty':>4}{'entry':>8}{'exit':>8}{'P&L':>11}  status")
        for per in s.periods:
            out.append(f"  {per.layer:<8}  {per.added_on}  {day(per.removed_on):<10}  "
                       f"{per.symbol or '—':<9}  {day(per.expiry):<10}{per.quantity:>4}"
                       f"{price(per.entry_price):>8}{price(per.exit_price):>8}"
                       f"{usd(per.pnl):>11}  {per.status}")
    unpriced = f"; {s.unpriced} layer(s) unpriced (no VIX3M/VIX6M)" if s.unpriced else ""
    out.append(f"  total: {usd(s.pnl_total)} over {len(s.periods)} layer period(s){unpriced}")
    out += ["", *condor_lines(s.condors)]
    return out


EXIT_WORDS = {"expiration": "expired", "take_profit": "take profit", "stop_loss": "stop loss",
              "open": "still open"}


def strikes(t: Trade) -> str:
    """``5990/6040 – 6885/6935``: long put/short put – short call/long call."""
    return f"{t.long_put:g}/{t.short_put:g} – {t.short_call:g}/{t.long_call:g}"


def condor_lines(c: CondorOutcomes) -> list[str]:
    """The trades a trader following the GO signals would have made, and what they earned."""
    out = [f"Condor trades: {c.policy.describe()}",
           *textwrap.wrap(MODEL_NOTE, 96, initial_indent="  ", subsequent_indent="  ")]
    if c.trades:
        head = "strikes (lp/sp – sc/lc)"
        out.append(f"  {'entry':<10}  {'expiry':<10}  {head:<27}{'qty':>4}{'credit':>8}  "
                   f"{'exit':<10}  {'how':<11}{'settle':>9}{'P&L':>11}{'hedge':>9}"
                   f"{'with hedge':>12}")
        for t in c.trades:
            out.append(f"  {t.entry}  {t.expiry}  {strikes(t):<27}{t.contracts:>4}"
                       f"{t.credit:>8.2f}  {t.exit_on}  {EXIT_WORDS[t.exit_reason]:<11}"
                       f"{price(t.settlement):>9}{usd(t.pnl):>11}{usd(t.hedge_pnl):>9}"
                       f"{usd(t.pnl_with_hedge):>12}")
    out += [f"  {'':<22}{'without hedge':>16}{'with hedge':>16}"]
    for label, a, b in figure_rows(c):
        out.append(f"  {label:<22}{a:>16}{b:>16}")
    un = float(c.unallocated.sum())
    out.append(f"  with hedge = each trade plus its share of the hedge layers' P&L (split by max "
               f"loss over the condors open); {usd(un)} of hedge P&L fell on sessions with no "
               "condor open: in the with-hedge total and equity, in no trade")
    out += [f"  note: {n}" for n in c.notes]
    return out


def figure_rows(c: CondorOutcomes) -> list[tuple[str, str, str]]:
    """(label, without hedge, with hedge) rows of the condor totals (text and HTML)."""
    a, b = c.without, c.with_hedge
    return [
        ("trades (closed)", f"{a.trades} ({a.closed})", f"{b.trades} ({b.closed})"),
        ("win rate", pct(a.win_rate), pct(b.win_rate)),
        ("average P&L", usd(a.average), usd(b.average)),
        ("worst P&L", usd(a.worst), usd(b.worst)),
        ("total P&L", usd(a.total), usd(c.total_with_hedge)),
        ("equity max drawdown", usd(a.max_drawdown), usd(b.max_drawdown)),
        ("  from peak", day(a.drawdown_peak), day(b.drawdown_peak)),
        ("  to trough", day(a.drawdown_trough), day(b.drawdown_trough)),
    ]


MAX_REFUSED_RUNS = 20
"""Runs of refused sessions printed; the files list every session."""


def refused_lines(summary: Summary) -> list[str]:
    """The sessions the freshness rule refused, in runs, with the words run-once would use."""
    n = summary.refused_sessions
    out = [f"Refused sessions: {n} (the data was incomplete for them; run-once refuses them "
           "too, with these words; no decision, the layer state carries over them)"]
    for r in summary.refused[:MAX_REFUSED_RUNS]:
        span = f"{r.first}" if r.first == r.last else f"{r.first}..{r.last}"
        out.append(f"  {span} ({r.sessions} session{'s' if r.sessions != 1 else ''}): "
                   + "; ".join(r.reasons))
    if len(summary.refused) > MAX_REFUSED_RUNS:
        out.append(f"  ... and {len(summary.refused) - MAX_REFUSED_RUNS} more run(s) "
                   "(decisions.csv lists every session)")
    return out


def breadth_lines(summary: Summary, window: int) -> list[str]:
    out = ["Breadth (A/D line) source by period:"]
    for sp in summary.source_periods:
        out.append(f"  {sp.first}..{sp.last}  {sp.sessions:>5} sessions  {sp.label}")
    out.append(
        f"NYSE sources are one segment; a {window}-session window holding NYSE and synthetic "
        "breadth, or more imputed (missing or rejected) sessions than max_imputed_sessions, "
        "makes the A/D divergence not evaluable:"
    )
    if summary.blind_windows:
        for b in summary.blind_windows:
            out.append(f"  A/D divergence not evaluable {b.first}..{b.last} ({b.sessions} "
                       f"sessions): {b.reason}")
    else:
        out.append("  (evaluable on every session of the range)")
    return out
