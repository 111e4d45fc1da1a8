"""The cache of a layer state rebuilt from history: same answer, never stale."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa

from bot.engine.rules import load_default_rules
from bot.pipeline.checkpoint import StateCache
from bot.pipeline.evaluation import evaluate_day
from bot.store import open_store

RULES = load_default_rules()
D = dt.date


def _store(snapshot_dir):
    return open_store(f"sqlite:///{snapshot_dir / 'snapshot.sqlite'}")


def _decided(res):
    ev = res.evaluation
    assert ev is not None
    return (ev.state_before, ev.state_after, [a.decision for a in ev.actions],
            ev.condor.go if ev.condor else None, res.replayed, res.replayed_from)


def test_a_cached_rebuild_gives_the_same_evaluation_as_a_full_replay(snapshot_dir, calendar):
    store = _store(snapshot_dir)
    cache = StateCache(snapshot_dir / "cache" / "state.json")
    try:
        day = D(2021, 10, 1)  # layers on: the state carries real content
        plain = evaluate_day(store, calendar, RULES, day, capital=2e6)
        first = evaluate_day(store, calendar, RULES, day, capital=2e6, cache=cache)
        (entry,) = json.loads(cache.path.read_text()).values()
        assert entry["through"] == "2021-09-30" and entry["state"]["layers"]
        again = evaluate_day(store, calendar, RULES, day, capital=2e6, cache=cache)
        later = evaluate_day(store, calendar, RULES, D(2021, 10, 8), capital=2e6, cache=cache)
        plain_later = evaluate_day(store, calendar, RULES, D(2021, 10, 8), capital=2e6)
    finally:
        store.close()
    assert _decided(first) == _decided(plain) == _decided(again)
    assert _decided(later) == _decided(plain_later)  # picked up from the cache, 5 sessions on


def test_changed_data_rules_or_capital_miss_the_cache(snapshot_dir, calendar):
    store = _store(snapshot_dir)
    cache = StateCache(snapshot_dir / "cache" / "state.json")
    try:
        day = D(2021, 10, 1)
        evaluate_day(store, calendar, RULES, day, capital=2e6, cache=cache)
        key = StateCache.key(store.engine.url.render_as_string(hide_password=True),
                             RULES.sha256, 2e6)
        before = store.market_fingerprint()
        assert cache.get(key, before, day) is not None
        assert cache.get(StateCache.key("other", RULES.sha256, 2e6), before, day) is None
        assert cache.get(StateCache.key("x", RULES.sha256, 1e6), before, day) is None
        assert cache.get(key, before, D(2021, 9, 30)) is None  # not a state from the future
        # A breadth row changed behind the store's back (no fetched_at change) is seen.
        with store.engine.begin() as conn:
            conn.execute(sa.text(
                "update breadth set advancers = advancers + 1 where session = '2021-06-01'"))
        after = store.market_fingerprint()
        assert after != before and cache.get(key, after, day) is None
        res = evaluate_day(store, calendar, RULES, day, capital=2e6, cache=cache)
        assert res.evaluation is not None and cache.get(key, after, day) is not None
    finally:
        store.close()


def test_an_unreadable_cache_is_a_miss_not_an_error(snapshot_dir, calendar, tmp_path):
    path = tmp_path / "state.json"
    path.write_text("{not json")
    cache = StateCache(path)
    assert cache.get("k", "f", D(2021, 10, 1)) is None
    store = _store(snapshot_dir)
    try:
        res = evaluate_day(store, calendar, RULES, D(2021, 10, 1), capital=2e6, cache=cache)
    finally:
        store.close()
    assert res.evaluation is not None and json.loads(path.read_text())  # rewritten whole
