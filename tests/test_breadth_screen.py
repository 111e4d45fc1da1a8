"""Rejected breadth rows (DESIGN §4): the rule, the store that applies it, the snapshot.

The rule: a row is rejected when advancers + decliners < 80 % of the median of
advancers + decliners over the previous 21 accepted sessions, or when it fails
basic checks. A rejected row stays visible (``alvh data status``) but is never
returned as breadth, so its session counts as missing.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path

import pytest

from bot.app.cli import main
from bot.engine.breadth_screen import BreadthScreen, basic_problem
from bot.kernel.models import Breadth
from bot.kernel.sessions import SessionCalendar
from bot.store import Store, open_store

D = dt.date


@pytest.fixture
def store(tmp_path: Path):
    st = open_store(f"sqlite:///{tmp_path / 'b.sqlite'}")
    yield st
    st.close()


START = D(2025, 1, 2)


def days(calendar: SessionCalendar, n: int, start: dt.date = START) -> list[dt.date]:
    return calendar.sessions_between(start, calendar.offset(start, n - 1))


def rows(sessions: list[dt.date], adv: int = 1500, dec: int = 1300, source: str = "wsj"):
    return [Breadth(d, adv, dec, source) for d in sessions]


# -- the rule ---------------------------------------------------------------------


def test_the_threshold_is_80_percent_of_the_median_of_21_accepted_sessions():
    screen = BreadthScreen([3000] * 11 + [2000] * 10)  # median 3000, oldest first
    assert screen.check(1200, 1200) is None  # 2400 = 80 %: not below
    reason = screen.check(1200, 1199)
    assert reason == ("partial-day count: advancers + decliners 2,399 < 80% of the "
                      "21-session median 3,000")
    # Only the last 21 accepted totals count: two more 2000s push two 3000s out.
    screen.accept(1000, 1000)
    screen.accept(1000, 1000)
    assert screen.median == 2000 and screen.check(800, 800) is None


def test_a_rejected_row_does_not_move_the_reference():
    screen = BreadthScreen([2800] * 21)
    for _ in range(30):  # a feed stuck on partial counts for weeks stays rejected
        assert screen.screen(300, 200) is not None
    assert screen.median == 2800


def test_basic_checks_and_a_short_history():
    assert basic_problem(-1, 5) == "negative count (-1 advancers, 5 decliners)"
    assert basic_problem(0, 0) == "placeholder row: 0 advancers and 0 decliners"
    assert basic_problem(999_999_999, 1500) == (
        "impossible count: advancers + decliners 1,000,001,499 > 10,000 (the NYSE has never "
        "listed that many issues)")
    assert basic_problem(5000, 5000) is None  # at the ceiling: still a count
    assert BreadthScreen().check(10, 5) is None  # nothing to compare with: basic checks only
    two = BreadthScreen([2800, 2900])  # fewer than 21: the median of those there are
    assert two.check(1000, 1000) is not None and two.check(1200, 1200) is None


# -- the store ----------------------------------------------------------------------


def test_a_rejected_row_is_stored_but_never_returned(store: Store, calendar):
    sessions = days(calendar, 25)
    batch = rows(sessions)
    batch[22] = Breadth(sessions[22], 218, 287, "tradingview")
    report = store.upsert_breadth(batch)
    assert (report.inserted, report.rejected) == (25, 1)
    frame = store.breadth()
    assert len(frame) == 24 and sessions[22] not in frame.index.date
    (bad,) = store.breadth_rejected()
    assert (bad.session, bad.source) == (sessions[22], "tradingview")
    assert bad.reason.startswith("partial-day count: advancers + decliners 505 < 80%")
    # Freshness and status see the accepted rows only.
    assert store.sessions_present("BREADTH") == [d for d in sessions if d != sessions[22]]
    assert {s.series: s.rows for s in store.status()}["BREADTH"] == 24


def test_an_impossible_count_never_replaces_an_accepted_row(store: Store, calendar):
    """A typo'd import (an extra digit, a unit mix-up) must not reach the A/D line."""
    sessions = days(calendar, 25)
    store.upsert_breadth(rows(sessions))
    good = store.breadth().loc[str(sessions[10])]
    report = store.upsert_breadth([Breadth(sessions[10], 999_999_999, 1500, "file:big.csv")])
    assert (report.changed, report.kept, report.refused) == (0, 1, 1)  # the good row stays
    kept = store.breadth().loc[str(sessions[10])]
    assert (kept["advancers"], kept["decliners"]) == (good["advancers"], good["decliners"])


def test_the_session_being_evaluated_is_stale_when_its_row_is_rejected(store: Store, calendar):
    from bot.market.freshness import check_freshness

    sessions = days(calendar, 30)
    store.upsert_breadth([*rows(sessions[:-1]), Breadth(sessions[-1], 400, 500, "wsj")])
    (check,) = check_freshness(store, calendar, sessions[-1], {"BREADTH": 20}).checks
    assert check.stale and check.last == sessions[-2]
    assert store.latest("BREADTH") == (sessions[-2], "wsj")


def test_a_final_count_replaces_a_rejected_partial_one_and_not_the_reverse(
        store: Store, calendar, caplog):
    sessions = days(calendar, 25)
    store.upsert_breadth(rows(sessions[:-1]))
    last = sessions[-1]
    store.upsert_breadth([Breadth(last, 600, 500, "wsj")])  # 16:20: the diary half-filled
    assert store.breadth_rejected()[0].session == last
    with caplog.at_level(logging.WARNING, logger="bot.store.db"):
        report = store.upsert_breadth([Breadth(last, 1650, 1131, "wsj")])  # 20:00: final
    assert report.changed == 1 and report.rejected == 0 and store.breadth_rejected() == []
    assert store.breadth().loc[str(last), "advancers"] == 1650
    assert f"breadth {last} changed: advancers stored 600 (wsj) -> new 1650 (wsj)" in caplog.text
    # A later partial re-fetch never erases the final count.
    report = store.upsert_breadth([Breadth(last, 300, 200, "mcclellan")])
    assert report.kept == 1
    assert store.breadth().loc[str(last), "source"] == "wsj"


def test_an_import_of_older_history_screens_the_later_rows_again(store: Store, calendar):
    """A live store's first rows had no reference; history written before them does."""
    sessions = days(calendar, 40)
    partial = Breadth(sessions[30], 400, 500, "wsj")
    store.upsert_breadth([partial, *rows(sessions[31:])])  # nothing before: accepted
    assert store.breadth_rejected() == []
    report = store.upsert_breadth(rows(sessions[:30], source="unicorn"))
    assert report.inserted == 30 and report.rejected == 1
    (bad,) = store.breadth_rejected()
    assert bad.session == sessions[30] and bad.source == "wsj"


def test_synthetic_totals_are_never_the_reference_for_nyse_rows(store: Store, calendar):
    sessions = days(calendar, 30)
    store.upsert_breadth(rows(sessions[:25], adv=150, dec=130, source="synthetic"))
    store.upsert_breadth(rows(sessions[25:]))  # no NYSE history yet: nothing to compare
    assert store.breadth_rejected() == []


# -- the breadth table files --------------------------------------------------------


SNAP = Path(__file__).resolve().parents[1] / "bot" / "data" / "snapshot"
WSJ_CSV = Path(__file__).parent / "fixtures" / "breadth" / "wsj-2026"


def test_the_breadth_table_formats_parse(calendar):
    from bot.market.sources.files import parse_breadth_csv

    gap = parse_breadth_csv((SNAP / "breadth/nyse-unicorn-2015-2016/nyse_advn_decln_unchn.csv")
                            .read_bytes(), "unicorn", calendar)
    assert len(gap.rows) == 286 and gap.dropped == ()
    assert gap.rows[0] == Breadth(D(2015, 11, 12), 598, 2559, "unicorn", unchanged=70)
    tv = parse_breadth_csv((SNAP / "breadth/tradingview-2003-2026/nyse_advn_decln.csv")
                           .read_bytes(), "tradingview", calendar)
    assert len(tv.rows) == 5656 and tv.rows[-1] == Breadth(D(2026, 3, 20), 621, 2170,
                                                           "tradingview")
    patch = parse_breadth_csv((SNAP / "breadth/patches/nyse_advn_decln_patches.csv")
                              .read_bytes(), "patch", calendar)
    assert patch.rows == (Breadth(D(2024, 6, 17), 1650, 1131, "patch:mcclellan"),)
    wsj = parse_breadth_csv(next(WSJ_CSV.glob("*.csv")).read_bytes(), "wsj-export", calendar)
    assert len(wsj.rows) == 11 and wsj.rows[0].adv_volume == 2472814659.0
    assert (wsj.rows[0].advancers, wsj.rows[0].decliners, wsj.rows[0].unchanged) == (
        1526, 1212, 93)


def test_a_breadth_table_without_decliners_names_the_column(calendar):
    from bot.kernel.errors import SourceDataError
    from bot.market.sources.files import parse_breadth_csv

    with pytest.raises(SourceDataError, match="missing column 'decliners'"):
        parse_breadth_csv("date,advn\n2025-01-02,1500\n", "file:x.csv", calendar)
    with pytest.raises(SourceDataError,
                       match=re.escape("non-integer advancers '1500.5' on 2025-01-02")):
        parse_breadth_csv("date,advn,decln\n2025-01-02,1500.5,1200\n", "file:x.csv", calendar)


# -- the shipped snapshot -----------------------------------------------------------

TV_PARTIAL = [D(2012, 9, 5), D(2015, 4, 10), D(2016, 3, 11), D(2018, 2, 20), D(2018, 6, 19),
              D(2018, 9, 24), D(2024, 1, 11), D(2025, 3, 3), D(2025, 3, 4), D(2025, 3, 12)]
"""The ten TradingView partial-day bars listed in PROVENANCE.md."""


@pytest.fixture(scope="module")
def snapshot(snapshot_db: Path):
    st = open_store(f"sqlite:///{snapshot_db}")
    yield st
    st.close()


def test_the_snapshot_is_real_nyse_breadth_from_1965_to_2026(snapshot: Store, calendar):
    frame = snapshot.breadth()
    sources = set(frame["source"])
    assert sources == {"snapshot:unicorn", "snapshot:tradingview", "snapshot:mcclellan"}
    assert frame.index[0].date() == D(1965, 3, 1) and frame.index[-1].date() == D(2026, 3, 20)
    by_source = frame.groupby("source").size().to_dict()
    assert by_source == {"snapshot:unicorn": 13824, "snapshot:tradingview": 1533,
                         "snapshot:mcclellan": 1}
    # From 1999 on, every session has an accepted row except these: two sessions no
    # file has, and partial-day counts no source had a final count for.
    have = set(frame.index.date)
    holes = [d for d in calendar.sessions_between(D(1999, 1, 4), D(2026, 3, 20))
             if d not in have]
    assert holes == [D(1999, 11, 26), D(2002, 6, 20), D(2004, 2, 27), D(2006, 4, 24),
                     D(2024, 1, 11), D(2025, 3, 3), D(2025, 3, 4), D(2025, 3, 12)]
    rejected = {r.session: r for r in snapshot.breadth_rejected()}
    assert sorted(rejected) == [D(1988, 8, 22), *holes[2:]]


def test_unicorn_wins_where_it_exists_and_tradingview_fills_the_rest(snapshot: Store):
    frame = snapshot.breadth()
    src = {ts.date(): s for ts, s in frame["source"].items()}
    # TradingView's partial bars: Unicorn's final count where Unicorn covers the
    # session, else (after 2020-02) rejected.
    for day in TV_PARTIAL:
        assert src.get(day) == ("snapshot:unicorn" if day < D(2020, 2, 11) else None), day
    # Unicorn's own partial-day rows give way to TradingView's final count.
    assert src[D(2014, 10, 14)] == "snapshot:tradingview"
    assert frame.loc["2014-10-14", ["advancers", "decliners"]].tolist() == [1926, 1223]
    assert src[D(2018, 9, 6)] == "snapshot:tradingview"
    # The 2015-11..2016 gap file, the 2019-08-20 and 2020-02 Unicorn placeholders.
    assert src[D(2015, 11, 12)] == src[D(2016, 12, 30)] == "snapshot:unicorn"
    assert frame.loc["2015-11-12", "advancers"] == 598
    assert src[D(2019, 8, 20)] == src[D(2020, 2, 11)] == "snapshot:tradingview"
    assert src[D(2024, 6, 17)] == "snapshot:mcclellan"


def test_data_status_lists_rejected_and_missing_breadth(snapshot_dir, no_alvh_env, capsys):
    no_alvh_env.setenv("ALVH_DATA_DIR", str(snapshot_dir))
    no_alvh_env.setenv("ALVH_DATABASE_URL", f"sqlite:///{snapshot_dir / 'snapshot.sqlite'}")
    assert main(["data", "status"]) == 0
    out = capsys.readouterr().out
    assert "BREADTH  1965-03-01 .. 2026-03-20   15358 rows" in out
    assert "missing: 42 session(s): 1965-04-16" in out
    assert "rejected (stored, never used; imputed like a missing session): 7 session(s)" in out
    assert ("2025-03-04  snapshot:tradingview: 218 adv, 287 dec: partial-day count: "
            "advancers + decliners 505 < 80% of the 21-session median 2,792") in out
    assert "2024-06-17 .. 2024-06-17  snapshot:mcclellan" in out


def test_indicators_show_no_synthetic_breadth_from_1999_to_2026(snapshot_dir, no_alvh_env,
                                                                 capsys):
    import io

    import pandas as pd

    no_alvh_env.setenv("ALVH_DATA_DIR", str(snapshot_dir))
    assert main(["indicators", "--from", "1999-01-04", "--to", "2026-02-27", "--csv",
                 "--source", "snapshot"]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out), index_col="session",
                        keep_default_na=False)
    assert len(frame) == 6830
    assert set(frame["breadth_source"]) == {
        "snapshot:unicorn", "snapshot:tradingview", "snapshot:mcclellan", ""}
    assert (frame["breadth_source"] == "").sum() == 8  # the sessions without accepted breadth
