"""Alert texts from real evaluations: content, escaping, keys."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bot.engine.compose import Context, compose, data_alert
from bot.engine.rules import load_default_rules
from bot.kernel.alerts import Topic
from bot.kernel.models import Freshness, SeriesCheck
from bot.pipeline.evaluation import indicator_frame, replay
from bot.store import open_store

D = dt.date
RULES = load_default_rules()


class _Balanced(HTMLParser):
    """Checks tags nest properly, the way Telegram's HTML parser insists."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def balanced(html: str) -> bool:
    p = _Balanced()
    p.feed(html)
    p.close()
    return not p.errors and not p.stack


@pytest.fixture(scope="module")
def evaluations(snapshot_db: Path, calendar):
    store = open_store(f"sqlite:///{snapshot_db}")
    frame = indicator_frame(store, calendar, RULES, D(2018, 1, 2), D(2021, 12, 31))
    evs = replay(frame, RULES, calendar, capital=2_000_000, start=D(2020, 1, 2),
                 end=D(2021, 12, 31))
    store.close()
    return {e.session: e for e in evs}


def ctx(session: dt.date, **kw) -> Context:
    return Context(session, RULES.sha256, {"SPX": "yahoo", "BREADTH": "wsj"}, "wsj",
                   2_000_000, **kw)


def test_layer_added_alert_carries_sizing_and_reasons(evaluations):
    day, ev = next((d, e) for d, e in sorted(evaluations.items())
                   if any(a.decision.action == "add" for a in e.actions))
    alerts = compose(ctx(day), ev)
    hedge = [a for a in alerts if a.topic is Topic.HEDGE]
    assert hedge and hedge[0].kind == "layer_added" and hedge[0].layer == "layer1"
    text = hedge[0].text
    assert f"HEDGE layer1 ADDED · {day}" in text
    assert "VX/" in text and "Priced from:" in text
    assert "ad_divergence_days = " in text and "> ad_min_days = 10 ✔" in text
    assert hedge[0].key == f"{day.isoformat()}|hedge|layer_added|layer1"
    assert balanced(hedge[0].html)
    # Conditions are user text: "<" and ">" reach Telegram escaped.
    assert "&gt; ad_min_days" in hedge[0].html and "> ad_min_days" not in hedge[0].html


def test_every_alert_is_well_formed_html_and_has_a_unique_key(evaluations):
    keys = set()
    for day, ev in evaluations.items():
        for alert in compose(ctx(day), ev):
            assert balanced(alert.html), (day, alert.kind)
            assert alert.key not in keys
            keys.add(alert.key)
            assert alert.text and alert.title in alert.text


def test_condor_skip_says_which_condition_failed(evaluations):
    day, ev = next((d, e) for d, e in sorted(evaluations.items())
                   if e.condor is not None and not e.condor.go)
    condor = next(a for a in compose(ctx(day), ev) if a.topic is Topic.CONDOR)
    assert condor.kind == "condor_skip"
    failing = [c for c in ev.condor.verdict.checks if not c.passed]
    assert failing and failing[0].describe() in condor.text
    assert "✘" in condor.text or "no data" in condor.text


def test_late_alerts_say_so(evaluations):
    day, ev = sorted(evaluations.items())[-1]
    alerts = compose(ctx(day, late=True), ev)
    assert all(a.late and "Late: evaluated in a catch-up" in a.text for a in alerts)


def test_synthetic_breadth_is_flagged(evaluations):
    day, ev = sorted(evaluations.items())[-1]
    c = Context(day, RULES.sha256, {}, "snapshot:synthetic", 2_000_000)
    summary = next(a for a in compose(c, ev) if a.topic is Topic.SUMMARY)
    assert "SYNTHETIC series (not NYSE data)" in summary.text


def test_data_alert_lists_every_problem():
    fresh = Freshness(D(2026, 3, 2), (
        SeriesCheck("SPX", D(2026, 2, 27), "yahoo", (), True),
        SeriesCheck("BREADTH", D(2026, 3, 2), "wsj", (D(2026, 2, 10),), False),
    ))
    alert = data_alert(ctx(D(2026, 3, 2)), fresh)
    assert alert.topic is Topic.OPS and alert.kind == "data_incomplete"
    assert "SPX: stale: newest row 2026-02-27 from yahoo, need 2026-03-02" in alert.text
    assert "BREADTH: 1 session(s) missing in the look-back: 2026-02-10" in alert.text
    assert balanced(alert.html)
