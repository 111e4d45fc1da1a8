"""`alvh data import` / `data status` / `data check` on the real shipped files."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from bot.app.cli import main
from bot.kernel.sessions import get_calendar
from bot.market.freshness import check_freshness
from bot.market.history import status_report
from bot.market.importer import import_files
from bot.market.snapshot import SNAPSHOT_DIR
from bot.store import open_store

D = dt.date
SNAP = SNAPSHOT_DIR
SYNTHETIC = Path(__file__).resolve().parent / "fixtures" / "breadth" / "synthetic-1998-2026"
UNICORN = sorted((SNAP / "breadth/nyse-unicorn-1965-2015").glob("*.csv"))
ALL_FILES = [
    SNAP / "spx/spx_daily_1999_2018.csv",
    SNAP / "spx/spx_daily_2015_2026.csv",
    SNAP / "vix/VIX_History.csv",
    SNAP / "vix/VIX3M_History.csv",
    SNAP / "vix/VIX6M_History.csv",
    *UNICORN,
    SNAP / "calendar/fomc_decisions.csv",
    SNAP / "calendar/cpi_releases.csv",
]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    path = tmp_path_factory.mktemp("imp") / "alvh.sqlite"
    store = open_store(f"sqlite:///{path}")
    report = import_files(store, get_calendar(), ALL_FILES)
    yield store, report
    store.close()


def test_status_reports_the_true_ranges(imported):
    store, _ = imported
    rows = {r.series: r for r in status_report(store, get_calendar())}
    assert (rows["SPX"].first, rows["SPX"].last) == (D(1999, 1, 4), D(2026, 2, 27))
    assert rows["SPX"].gaps == ()
    assert (rows["VIX"].first, rows["VIX"].last) == (D(1990, 1, 2), D(2026, 3, 31))
    assert rows["VIX"].gaps == (D(1991, 3, 1), D(1997, 1, 31), D(1997, 11, 26), D(1999, 12, 31))
    assert (rows["VIX3M"].first, rows["VIX6M"].first) == (D(2009, 9, 18), D(2008, 1, 2))
    b = rows["BREADTH"]
    # 12,763 session rows, of which four partial-day counts fail the breadth screen
    # (DESIGN §4): stored and listed as rejected, never returned as breadth.
    assert (b.first, b.last, b.rows) == (D(1965, 3, 1), D(2015, 11, 11), 12759)
    assert [(r.session, r.advancers, r.decliners) for r in b.rejected] == [
        (D(1988, 8, 22), 385, 466), (D(2004, 2, 27), 1092, 545), (D(2006, 4, 24), 1297, 968),
        (D(2014, 10, 14), 1250, 1192)]
    assert all(r.reason.startswith("partial-day count") for r in b.rejected)
    # PROVENANCE: 42 sessions without a row: 40 in 1965-1969, plus two later ones.
    assert len(b.missing) == 42 and len(b.gaps) == 46
    assert sum(1 for g in b.missing if g.year <= 1969) == 40
    assert D(1999, 11, 26) in b.missing and D(2002, 6, 20) in b.missing
    assert D(1988, 8, 22) in b.gaps and D(1988, 8, 22) not in b.missing
    assert (rows["FOMC"].first, rows["FOMC"].last, rows["FOMC"].rows) == (
        D(2000, 2, 2), D(2028, 1, 26), 232
    )


def test_holiday_rows_are_reported_not_stored(imported):
    store, report = imported
    text = "\n".join(report)
    assert "dropped 33 row(s), not an NYSE session" in text  # Unicorn 1965-2015
    assert "dropped 30 row(s), not an NYSE session" in text  # Cboe VIX on NYSE holidays
    have = set(store.sessions_present("BREADTH"))
    for holiday in (D(2002, 7, 4), D(2006, 12, 25), D(2007, 1, 2), D(2009, 10, 24)):
        assert holiday not in have
        assert str(holiday) in text
    assert D(2022, 5, 30) not in set(store.sessions_present("VIX"))


def test_reimport_is_idempotent(imported):
    store, _ = imported
    again = import_files(store, get_calendar(), [SNAP / "vix/VIX3M_History.csv"])
    assert "0 new, 0 changed, 4175 unchanged" in again[0]


def test_a_bad_file_in_the_batch_imports_nothing(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'a.sqlite'}")
    bad = tmp_path / "VIX6M_History.csv"
    bad.write_text("<!DOCTYPE html><html><body>Access denied</body></html>")
    from bot.kernel.errors import SourceDataError

    with pytest.raises(SourceDataError, match="nothing was imported"):
        import_files(store, get_calendar(), [SNAP / "vix/VIX3M_History.csv", bad])
    assert store.bars("VIX3M").empty


def test_unicorn_needs_both_sides(tmp_path):
    from bot.kernel.errors import ConfigError

    store = open_store(f"sqlite:///{tmp_path / 'a.sqlite'}")
    with pytest.raises(ConfigError, match="decln"):
        import_files(store, get_calendar(), [SNAP / "breadth/nyse-unicorn-2017-2020/nyse_advn.csv"])


def test_synthetic_is_labelled_and_sample_placeholders_dropped(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'a.sqlite'}")
    report = import_files(
        store, get_calendar(),
        sorted((SNAP / "breadth/nyse-unicorn-2017-2020").glob("*.csv"))
        + sorted(SYNTHETIC.glob("*.csv")),
    )
    text = "\n".join(report)
    assert "placeholder" in text and "2020-02-14" in text
    df = store.breadth()
    assert df.loc["2018-06-01", "source"] == "unicorn"
    assert df.loc["2016-06-01", "source"] == "synthetic"
    assert df.loc["2020-02-13", "source"] == "synthetic"  # the placeholder was not stored
    # A one-day hole inside the real sample stays a hole (reported), not a synthetic patch.
    assert "2019-08-20" not in df.index.strftime("%Y-%m-%d")
    assert "inside a real NYSE breadth period (a gap there stays a gap): 2019-08-20" in text


def test_cli_import_status_and_check(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ALVH_DATA_DIR", str(tmp_path))
    files = [str(SNAP / "spx/spx_daily_2015_2026.csv"), str(SNAP / "vix/VIX_History.csv"),
             str(SNAP / "vix/VIX3M_History.csv")]
    assert main(["data", "import", *files]) == 0
    assert main(["data", "status"]) == 0
    out = capsys.readouterr().out
    assert "SPX      2015-01-02 .. 2026-02-27" in out
    # Breadth was never imported: the check must fail and say so.
    assert main(["data", "check", "--date", "2026-02-27"]) == 1
    out = capsys.readouterr().out
    assert "BREADTH: no data at all" in out and "NOT complete" in out
    assert "SPX: ok" in out
    # A holiday is refused with a one-line error.
    assert main(["data", "check", "--date", "2026-02-16"]) == 2
    err = capsys.readouterr().err
    assert "not an NYSE session" in err and err.count("\n") == 1


def test_freshness_names_stale_and_missing(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'a.sqlite'}")
    import_files(store, get_calendar(), [SNAP / "spx/spx_daily_2015_2026.csv"])
    res = check_freshness(store, get_calendar(), D(2026, 3, 2), {"SPX": 10})
    assert not res.complete
    (problem,) = res.problems()
    assert "stale: newest row 2026-02-27" in problem and "need 2026-03-02" in problem
    # Delete one session inside the window: reported as missing.
    import sqlalchemy as sa

    with store.engine.begin() as conn:
        conn.execute(sa.text("delete from bars where session = '2026-02-20'"))
    res = check_freshness(store, get_calendar(), D(2026, 2, 27), {"SPX": 10})
    # The gap is the whole shortfall of the weekly warm-up (1,259 of 1,260): said once.
    assert res.problems() == ["SPX: 1 session(s) missing in the look-back: 2026-02-20"]


def test_freshness_says_when_spx_is_short_of_the_weekly_warm_up(tmp_path):
    """DESIGN §4: 5 years of SPX for the weekly indicators; short history is said, and
    is not a refusal (the daily look-back is complete)."""
    calendar = get_calendar()
    store = open_store(f"sqlite:///{tmp_path / 'a.sqlite'}")
    import_files(store, calendar, [SNAP / "spx/spx_daily_2015_2026.csv"])
    full = check_freshness(store, calendar, D(2026, 2, 27), {"SPX": 300})
    assert full.complete and full.checks[0].notes == ()
    import sqlalchemy as sa

    with store.engine.begin() as conn:  # keep only the last 400 sessions
        conn.execute(sa.text("delete from bars where session < :d"),
                     {"d": calendar.offset(D(2026, 2, 27), -399).isoformat()})
    short = check_freshness(store, calendar, D(2026, 2, 27), {"SPX": 300})
    assert short.complete  # not a refusal
    (check,) = short.checks
    assert check.notes == ("only 400 of the 1,260 sessions (5 years) the weekly MACD warms up "
                           "on: weekly values not evaluable",)
    assert "weekly values not evaluable" in check.describe(D(2026, 2, 27))


def test_a_bad_file_parsed_under_a_source_name_still_names_the_file(tmp_path, monkeypatch,
                                                                     capsys):
    monkeypatch.setenv("ALVH_DATA_DIR", str(tmp_path))
    cut = tmp_path / "cboe_missing.csv"
    cut.write_text("DATE,OPEN,HIGH,LOW,CLOSE\n02/26/2026,20,21,19,20\n02/27/2026,20,21,19\n")
    assert main(["data", "import", "--symbol", "VIX", str(cut)]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "alvh: file:cboe_missing.csv: cboe: truncated file: last line '02/27/2026,20,21,19' "
        "lacks CLOSE (nothing was imported)")


def test_an_import_says_which_rows_the_breadth_screen_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ALVH_DATA_DIR", str(tmp_path))
    typo = tmp_path / "big.csv"
    typo.write_text("date,advancers,decliners\n2026-01-28,999999999,1500\n")
    assert main(["data", "import", str(typo)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "big.csv: BREADTH 1 rows 2026-01-28..2026-01-28 (source file:big.csv): 1 new, "
        "0 changed, 0 unchanged; 1 refused by the breadth screen (`alvh data status` says why)")


def test_missing_file_is_a_clean_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ALVH_DATA_DIR", str(tmp_path))
    assert main(["data", "import", str(tmp_path / "nope.csv")]) == 2
    err = capsys.readouterr().err
    assert err == f"alvh: {tmp_path / 'nope.csv'}: cannot read (No such file or directory)\n"
    assert not (tmp_path / "alvh.sqlite").exists()  # a mistyped name leaves no new store


def test_import_copies_keep_format_detection(tmp_path):
    # A file renamed without a hint in its name still needs --symbol.
    src = tmp_path / "prices.csv"
    shutil.copy(SNAP / "vix/VIX3M_History.csv", src)
    from bot.kernel.errors import ConfigError

    store = open_store(f"sqlite:///{tmp_path / 'a.sqlite'}")
    with pytest.raises(ConfigError, match="--symbol"):
        import_files(store, get_calendar(), [src])
    import_files(store, get_calendar(), [src], symbol="VIX3M")
    assert len(store.bars("VIX3M")) == 4175


def test_rows_of_sessions_not_closed_yet_are_dropped_with_their_reason(tmp_path):
    """A typo'd future date (or today's row before the close) would become that
    session's data once it closes, and a stored series is not fetched again."""
    f = tmp_path / "breadth.csv"
    f.write_text("date,advancers,decliners\n2026-02-26,1500,1300\n2026-02-27,1400,1450\n"
                 "2026-03-02,1600,1200\n")
    store = open_store(f"sqlite:///{tmp_path / 's.sqlite'}")
    try:
        report = import_files(store, get_calendar(), [f], last_closed=dt.date(2026, 2, 27))
        assert [ts.date() for ts in store.breadth().index] == [dt.date(2026, 2, 26),
                                                               dt.date(2026, 2, 27)]
    finally:
        store.close()
    assert "BREADTH 2 rows 2026-02-26..2026-02-27" in report[0]
    assert report[1] == ("    dropped 1 row(s), the session has not closed yet (a bar or "
                         "breadth row before the close is not final): 2026-03-02")


def test_status_of_a_new_store_lists_every_series_and_says_how_to_fill_them(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ALVH_DATA_DIR", str(tmp_path / "new"))
    assert main(["data", "status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:9] == [f"{name:<8} no data" for name in
                        ("SPX", "VIX", "VIX3M", "VIX6M", "BREADTH", "FOMC", "CPI", "PPI")]
    assert out[9].startswith("series with no data: `alvh data backfill` seeds the store")


def test_status_and_check_of_the_snapshot(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ALVH_DATA_DIR", str(tmp_path / "d"))
    assert main(["data", "status", "--source", "snapshot"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "store: the shipped snapshot"
    assert out[1].startswith("SPX      1999-01-04 .. 2026-02-27    6830 rows")
    assert not any("no data" in line for line in out)
    assert main(["data", "check", "--source", "snapshot", "--date", "2026-02-27"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "complete for 2026-02-27"
    # Without --date: the snapshot's last session, as `run-once --source snapshot` means.
    assert main(["data", "check", "--source", "snapshot"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "complete for 2026-02-27"


def test_loading_the_snapshot_says_two_lines_then_nothing(tmp_path, caplog):
    """The first snapshot run loads ~40,000 rows: two INFO lines, not one per file with
    every dropped date (those are DEBUG); a second open loads nothing and says nothing."""
    import logging

    from bot.market.snapshot import open_snapshot_store

    caplog.set_level(logging.DEBUG, logger="bot.market.snapshot")
    open_snapshot_store(tmp_path, get_calendar()).close()
    mine = [r for r in caplog.records if r.name == "bot.market.snapshot"]
    info = [r.getMessage() for r in mine if r.levelno >= logging.INFO]
    assert len(info) == 2 and info[0].startswith("snapshot: loading the shipped history")
    assert info[1].startswith("snapshot: loaded ") and \
        " rows of SPX, VIX, VIX3M, VIX6M, events, BREADTH (`alvh data status" in info[1]
    assert any("not an NYSE session" in r.getMessage() for r in mine
               if r.levelno == logging.DEBUG)
    caplog.clear()
    open_snapshot_store(tmp_path, get_calendar()).close()
    assert [r for r in caplog.records
            if r.name == "bot.market.snapshot" and r.levelno >= logging.INFO] == []
