"""The freshness rule, one implementation: a range index answers as the single-session check.

A backtest asks :class:`FreshnessIndex` about thousands of sessions at once;
``run-once`` and the daily job ask :func:`check_freshness` about one. On a
copy of the shipped snapshot with holes punched in it, both must give the
same answer, word for word, for every session around the holes.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from bot.market.freshness import FreshnessIndex, check_freshness
from bot.market.snapshot import STORE_NAME
from bot.store import open_store

D = dt.date


@pytest.fixture(scope="module")
def store(tmp_path_factory, copy_snapshot):
    data = copy_snapshot(tmp_path_factory.mktemp("fresh-data"))
    st = open_store(f"sqlite:///{data / STORE_NAME}")
    with st.engine.begin() as conn:
        conn.execute(sa.text("delete from bars where symbol = 'SPX' and session = '2015-06-10'"))
        conn.execute(sa.text("delete from bars where symbol = 'VIX' and session = '2015-07-01'"))
        conn.execute(sa.text("delete from breadth where session in ('2015-06-15', '2015-08-03')"))
    yield st
    st.close()


def test_the_range_index_answers_as_the_single_session_check(store, calendar):
    days = calendar.sessions_between(D(2015, 5, 1), D(2015, 9, 30))
    index = FreshnessIndex.from_store(store, calendar, days[0], days[-1])
    refused = 0
    for day in days:
        single = check_freshness(store, calendar, day)
        assert index.check(day) == single, day
        assert index.complete(day) is single.complete, day
        refused += not single.complete
    assert refused > 50  # the holes refuse sessions: the comparison has something in it


def test_what_each_hole_does(store, calendar):
    # SPX missing 2015-06-10: every session of the next 300 is refused, saying so.
    later = check_freshness(store, calendar, D(2015, 6, 11))
    assert not later.complete
    assert later.problems()[0].startswith("SPX: 1 session(s) missing in the look-back: 2015-06-10")
    # Breadth missing earlier in the window is imputed and reported, not refused...
    after = check_freshness(store, calendar, D(2015, 6, 16))
    (b,) = [c for c in after.checks if c.series == "BREADTH"]
    assert b.ok and b.imputed == (D(2015, 6, 15),)
    # ...but a session without its own breadth row is refused (it is never imputed).
    on = check_freshness(store, calendar, D(2015, 8, 3))
    assert any(p.startswith("BREADTH: stale") for p in on.problems())


def test_vix3m_before_its_history_is_not_evaluable_not_a_refusal(store, calendar):
    before = check_freshness(store, calendar, D(2008, 10, 10))
    (v,) = [c for c in before.checks if c.series == "VIX3M"]
    assert v.ok and v.starts == D(2009, 9, 18)
    assert v.describe(D(2008, 10, 10)) == (
        "VIX3M: not evaluable for 2008-10-10 (its history starts 2009-09-18)")
    assert before.complete
    # Once its history has started, its look-back must be whole like any other series'.
    early = check_freshness(store, calendar, D(2009, 9, 22))
    (v,) = [c for c in early.checks if c.series == "VIX3M"]
    assert not v.ok and v.starts is None and len(v.missing) == 27  # 29 before D, 2 present
    index = FreshnessIndex.from_store(store, calendar, D(2008, 10, 10), D(2009, 11, 30))
    for day in calendar.sessions_between(D(2008, 10, 10), D(2009, 11, 30)):
        assert index.check(day) == check_freshness(store, calendar, day), day
    # A store that never had VIX3M is a data failure, not a late history.
    with store.engine.begin() as conn:
        saved = conn.execute(sa.text("select * from bars where symbol = 'VIX3M'")).all()
        conn.execute(sa.text("delete from bars where symbol = 'VIX3M'"))
    try:
        gone = check_freshness(store, calendar, D(2015, 5, 1))
        assert "VIX3M: no data at all" in gone.problems()
    finally:
        with store.engine.begin() as conn:
            conn.execute(sa.text(
                "insert into bars values (:symbol, :session, :open, :high, :low, :close, "
                ":volume, :source, :fetched_at)"), [r._asdict() for r in saved])


def test_a_look_back_reaching_before_the_history_says_where_it_starts(store, calendar):
    """2000-03-01's 300-session SPX look-back starts in December 1998; the snapshot's SPX
    starts 1999-01-04: said as such, not as a list of "missing" dates to go and find."""
    res = check_freshness(store, calendar, D(2000, 3, 1))
    (spx,) = [c for c in res.checks if c.series == "SPX"]
    assert not res.complete and spx.first == D(1999, 1, 4)
    text = spx.describe(D(2000, 3, 1))
    assert text.startswith("SPX: its history starts 1999-01-04: the look-back needs 7 "
                           "session(s) before that, from 1998-12-22; only 293 of the 1,260")
    assert "missing in the look-back" not in text
    # A gap inside the history is still listed as missing.
    assert check_freshness(store, calendar, D(2015, 6, 11)).problems()[0].startswith(
        "SPX: 1 session(s) missing in the look-back: 2015-06-10")
