"""History-file parsers on the shipped real files and on every way a file breaks."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.kernel.errors import SourceDataError
from bot.kernel.models import EventKind
from bot.kernel.sessions import SessionCalendar, get_calendar
from bot.market.sources.files import (
    NO_VALUE,
    NOT_A_SESSION,
    PLACEHOLDER,
    breadth_from_unicorn,
    detect_format,
    parse_breadth_csv,
    parse_cboe_csv,
    parse_event_csv,
    parse_fred_csv,
    parse_ohlc_csv,
    parse_unicorn,
)

SNAP = Path(__file__).resolve().parents[1] / "bot" / "data" / "snapshot"
SYNTHETIC = Path(__file__).resolve().parent / "fixtures" / "breadth" / "synthetic-1998-2026"
UNICORN = SNAP / "breadth" / "nyse-unicorn-1965-2015"
SAMPLE = SNAP / "breadth" / "nyse-unicorn-2017-2020"
D = dt.date
Parser = Callable[[str | bytes, SessionCalendar], Any]


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# -- real files ------------------------------------------------------------------


def test_cboe_vix_real_values_and_quirks(calendar: SessionCalendar) -> None:
    parsed = parse_cboe_csv(read(SNAP / "vix" / "VIX_History.csv"), "VIX", "cboe", calendar)
    by_day = {b.session: b for b in parsed.rows}
    crash = by_day[D(2008, 10, 24)]
    assert (crash.open, crash.high, crash.low, crash.close) == (67.8, 89.53, 67.8, 79.13)
    assert parsed.rows[0].session == D(1990, 1, 2) and parsed.rows[-1].close == 25.25
    # PROVENANCE: 30 rows on non-sessions, dropped and reported, never kept.
    assert len(parsed.dropped) == 30
    assert {D(2022, 5, 30), D(2022, 6, 20)} <= {d.date for d in parsed.dropped}
    assert all(d.reason == NOT_A_SESSION for d in parsed.dropped)
    assert not {d.date for d in parsed.dropped} & by_day.keys()
    # ... and 4 sessions with no row at all stay gaps.
    for missing in (D(1991, 3, 1), D(1997, 1, 31), D(1997, 11, 26), D(1999, 12, 31)):
        assert missing not in by_day
    assert len(parsed.rows) == 9154 - 30
    assert {b.source for b in parsed.rows} == {"cboe"}


def test_cboe_vix3m_vix6m_have_no_quirks(calendar: SessionCalendar) -> None:
    v3 = parse_cboe_csv(read(SNAP / "vix" / "VIX3M_History.csv"), "VIX3M", "cboe", calendar)
    v6 = parse_cboe_csv(read(SNAP / "vix" / "VIX6M_History.csv"), "VIX6M", "cboe", calendar)
    assert v3.rows[0].session == D(2009, 9, 18) and v3.rows[0].close == 26.54
    assert v6.rows[0].session == D(2008, 1, 2) and v6.rows[-1].session == D(2026, 4, 24)
    assert v3.dropped == () and v6.dropped == ()


def test_unicorn_1965_2015_breadth(calendar: SessionCalendar) -> None:
    series = {
        n: parse_unicorn(read(UNICORN / f"NYSE_{n}.csv"), "unicorn", calendar)
        for n in ("advn", "decln", "unchn", "advv", "declv")
    }
    # PROVENANCE: exactly 33 rows on non-sessions in each file.
    assert all(len(p.dropped) == 33 for p in series.values())
    breadth = breadth_from_unicorn(
        series["advn"],
        series["decln"],
        series["unchn"],
        series["advv"],
        series["declv"],
        source="unicorn",
    )
    dropped = {d.date for d in breadth.dropped}
    assert len(breadth.dropped) == 33
    assert {D(2002, 7, 4), D(2006, 12, 25), D(2007, 1, 2), D(2009, 10, 24)} <= dropped
    assert len(breadth.rows) == 12796 - 33
    last = breadth.rows[-1]
    assert (last.session, last.advancers, last.decliners, last.unchanged) == (
        D(2015, 11, 11),
        1347,
        1792,
        82,
    )
    assert (last.adv_volume, last.dec_volume) == (1270236590.0, 2337167139.0)
    assert breadth.rows[0].session == D(1965, 3, 1) and breadth.rows[0].advancers == 550
    assert not breadth.rows[0].synthetic
    # PROVENANCE: 1999-11-26 and 2002-06-20 are sessions with no row (gaps, not zeros).
    days = {b.session for b in breadth.rows}
    assert D(1999, 11, 26) not in days and D(2002, 6, 20) not in days


def test_unicorn_2017_2020_sample_quirks(calendar: SessionCalendar) -> None:
    adv = parse_unicorn((SAMPLE / "nyse_advn.csv").read_bytes(), "unicorn", calendar)
    dec = parse_unicorn((SAMPLE / "nyse_decln.csv").read_bytes(), "unicorn", calendar)
    breadth = breadth_from_unicorn(adv, dec, source="unicorn")
    non_sessions = [d.date for d in breadth.dropped if d.reason == NOT_A_SESSION]
    placeholders = [d.date for d in breadth.dropped if d.reason == PLACEHOLDER]
    assert len(non_sessions) == 5
    assert {D(2017, 1, 2), D(2018, 1, 15), D(2018, 12, 5)} <= set(non_sessions)
    # The 4 trailing zero rows of 2020 are placeholders (plus one mid-file: 2019-08-20).
    assert placeholders[-4:] == [D(2020, 2, 11), D(2020, 2, 12), D(2020, 2, 13), D(2020, 2, 14)]
    assert D(2019, 8, 20) in placeholders
    assert all(b.advancers or b.decliners for b in breadth.rows)
    assert breadth.rows[-1].session == D(2020, 2, 10)
    assert len(breadth.rows) == 790 - 5 - 5 + 1  # + the lone 1965-03-01 row


def test_synthetic_breadth_is_marked_synthetic(calendar: SessionCalendar) -> None:
    adv = parse_unicorn(read(SYNTHETIC / "synthetic_advn.csv"), "synthetic", calendar)
    dec = parse_unicorn(read(SYNTHETIC / "synthetic_decln.csv"), "synthetic", calendar)
    breadth = breadth_from_unicorn(adv, dec, source="synthetic")
    assert len(breadth.rows) == 7159 and breadth.dropped == ()
    assert all(b.synthetic for b in breadth.rows)
    assert breadth.rows[-1].session == D(2026, 6, 22)


def test_spx_newest_first_quoted_thousands(calendar: SessionCalendar) -> None:
    parsed = parse_ohlc_csv(
        read(SNAP / "spx" / "spx_daily_2015_2026.csv"), "SPX", "yahoo", calendar
    )
    assert len(parsed.rows) == 2805 and parsed.dropped == ()
    assert parsed.rows[0].session == D(2015, 1, 2)  # sorted although the file is newest first
    last = parsed.rows[-1]
    assert last.session == D(2026, 2, 27)
    assert (last.open, last.high, last.low, last.close) == (6856.54, 6882.96, 6831.74, 6878.88)
    assert last.volume == 6_665_660_000.0
    days = [b.session for b in parsed.rows]
    assert days == sorted(days)


def test_spx_arch_file_matches_design_pins(calendar: SessionCalendar) -> None:
    parsed = parse_ohlc_csv(
        (SNAP / "spx" / "spx_daily_1999_2018.csv").read_bytes(), "SPX", "yahoo", calendar
    )
    closes = {b.session: b.close for b in parsed.rows}
    assert len(parsed.rows) == 5031 and parsed.dropped == ()
    assert closes[D(2008, 10, 10)] == pytest.approx(899.22, abs=1e-4)
    assert closes[D(2018, 12, 24)] == pytest.approx(2351.10, abs=1e-4)
    assert closes[D(2018, 12, 31)] == pytest.approx(2506.85, abs=1e-4)


def test_fred_vixcls_empty_values(calendar: SessionCalendar) -> None:
    parsed = parse_fred_csv(
        read(SNAP / "vix" / "VIXCLS.csv"), "VIX", "fred", calendar, series="VIXCLS"
    )
    no_value = [d.date for d in parsed.dropped if d.reason == NO_VALUE]
    assert no_value == [D(1991, 3, 1), D(1997, 1, 31), D(1997, 11, 26)]
    holidays = [d.date for d in parsed.dropped if d.reason == NOT_A_SESSION]
    assert D(2025, 12, 25) in holidays
    closes = {b.session: b.close for b in parsed.rows}
    assert closes[D(2026, 4, 23)] == 19.31 and closes[D(1990, 1, 2)] == 17.24
    assert all(b.open is None and b.high is None for b in parsed.rows)


def test_event_files(calendar: SessionCalendar) -> None:
    fomc = parse_event_csv(read(SNAP / "calendar" / "fomc_decisions.csv"), "file:fomc", calendar)
    assert len(fomc.rows) == 232 and {e.kind for e in fomc.rows} == {EventKind.FOMC}
    by_day = {e.date: e for e in fomc.rows}
    # A Sunday emergency cut is a real event: kept, not dropped.
    assert D(2020, 3, 15) in by_day and fomc.dropped == ()
    assert by_day[D(2026, 12, 9)].time_et == dt.time(14, 0)
    assert by_day[D(2001, 1, 3)].time_et is None
    # The Fed's tentative 2027 schedule (press release of 2025-09-05) runs to January 2028.
    assert fomc.rows[-1].date == D(2028, 1, 26) and D(2027, 6, 9) in by_day
    assert [d for d, e in by_day.items() if not e.scheduled] == [
        D(2001, 1, 3), D(2001, 4, 18), D(2001, 9, 17), D(2007, 8, 17), D(2008, 1, 22),
        D(2008, 10, 8), D(2020, 3, 3), D(2020, 3, 15)]
    cpi = parse_event_csv(read(SNAP / "calendar" / "cpi_releases.csv"), "file:cpi", calendar)
    assert len(cpi.rows) == 143
    assert {e.time_et for e in cpi.rows} == {dt.time(8, 30)}
    assert cpi.rows[-1].date == D(2026, 12, 10)
    ppi = parse_event_csv(read(SNAP / "calendar" / "ppi_releases.csv"), "file:ppi", calendar)
    assert len(ppi.rows) == 143 and {e.kind for e in ppi.rows} == {EventKind.PPI}
    assert (ppi.rows[0].date, ppi.rows[-1].date) == (D(2015, 1, 15), D(2026, 12, 15))
    # The 2025 shutdown: October and November 2025 PPI came together on 2026-01-14.
    assert [e.date for e in ppi.rows if e.date.year == 2026][:2] == [D(2026, 1, 14),
                                                                     D(2026, 1, 30)]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("vix/VIX_History.csv", "cboe"),
        ("vix/VIX6M_History.csv", "cboe"),
        ("vix/VIXCLS.csv", "fred"),
        ("spx/spx_daily_1999_2018.csv", "ohlc"),
        ("spx/spx_daily_2015_2026.csv", "ohlc"),
        ("breadth/nyse-unicorn-1965-2015/NYSE_advv.csv", "unicorn"),
        ("breadth/nyse-unicorn-2015-2016/nyse_advn_decln_unchn.csv", "breadth"),
        ("breadth/tradingview-2003-2026/nyse_advn_decln.csv", "breadth"),
        ("breadth/patches/nyse_advn_decln_patches.csv", "breadth"),
        ("calendar/fomc_decisions.csv", "events"),
        ("calendar/cpi_releases.csv", "events"),
        ("calendar/ppi_releases.csv", "events"),
    ],
)
def test_detect_format_on_shipped_files(path: str, expected: str) -> None:
    assert detect_format((SNAP / path).read_bytes()) == expected


def test_detect_format_refuses_unknown_and_html() -> None:
    with pytest.raises(SourceDataError, match="unrecognised format: first line 'symbol,price'"):
        detect_format("symbol,price\nSPX,1\n", source="file:x.csv")
    with pytest.raises(SourceDataError, match="HTML page instead of CSV"):
        detect_format("<!DOCTYPE html><html><body>Sign in</body></html>")


def test_parsing_every_shipped_file(calendar: SessionCalendar) -> None:
    """Start-up of a snapshot run parses all of these (its speed: bench/bench_parse.py)."""
    total = 0
    for name in ("advn", "decln", "unchn", "advv", "declv"):
        total += len(parse_unicorn(read(UNICORN / f"NYSE_{name}.csv"), "unicorn", calendar).rows)
    for name in ("VIX", "VIX3M", "VIX6M"):
        total += len(
            parse_cboe_csv(read(SNAP / "vix" / f"{name}_History.csv"), name, "cboe", calendar).rows
        )
    total += len(parse_fred_csv(read(SNAP / "vix" / "VIXCLS.csv"), "VIX", "fred", calendar).rows)
    for name in ("spx_daily_1999_2018.csv", "spx_daily_2015_2026.csv"):
        total += len(parse_ohlc_csv(read(SNAP / "spx" / name), "SPX", "yahoo", calendar).rows)
    for f in sorted(SAMPLE.glob("*.csv")):
        total += len(parse_unicorn(read(f), "unicorn", calendar).rows)
    for f in sorted((SNAP / "breadth").glob("*/*.csv")):
        if "unicorn" not in f.parent.name or f.parent.name.endswith("2016"):
            total += len(parse_breadth_csv(read(f), "breadth", calendar).rows)
    for name in ("fomc_decisions.csv", "cpi_releases.csv", "ppi_releases.csv"):
        total += len(parse_event_csv(read(SNAP / "calendar" / name), "file", calendar).rows)
    assert total > 100_000


# -- broken files -------------------------------------------------------------------

CBOE = (
    "DATE,OPEN,HIGH,LOW,CLOSE\n"
    "05/26/2022,28.59,29.11,27.25,27.50\n"
    "05/27/2022,27.05,27.20,25.72,25.72\n"
    "05/31/2022,26.91,27.69,25.85,26.19\n"
)
OHLC = (
    "Date,Open,High,Low,Close,Adj Close,Volume\n"
    '2/27/2026,"6,856.54","6,882.96","6,831.74","6,878.88","6,878.88","6,665,660,000"\n'
    '2/26/2026,"6,944.74","6,947.25","6,859.73","6,908.86","6,908.86","5,889,550,000"\n'
)
UNI = "20151109, 1500\n20151110, 1788\n20151111, 1347\n"
FRED = "observation_date,SP500\n2026-02-13,6836.17\n2026-02-16,\n2026-02-17,6843.22\n"
EVENTS = "date,kind,time_et\n2026-06-10,CPI,08:30\n2026-07-14,CPI,08:30\n"


def cboe(text: str | bytes, calendar: SessionCalendar) -> Any:
    return parse_cboe_csv(text, "VIX", "cboe", calendar)


def ohlc(text: str | bytes, calendar: SessionCalendar) -> Any:
    return parse_ohlc_csv(text, "SPX", "file:spx.csv", calendar)


def uni(text: str | bytes, calendar: SessionCalendar) -> Any:
    return parse_unicorn(text, "unicorn", calendar)


def fred(text: str | bytes, calendar: SessionCalendar) -> Any:
    return parse_fred_csv(text, "SPX", "fred", calendar, series="SP500")


def events(text: str | bytes, calendar: SessionCalendar) -> Any:
    return parse_event_csv(text, "file:events.csv", calendar)


PARSERS = [
    pytest.param(cboe, CBOE, id="cboe"),
    pytest.param(ohlc, OHLC, id="ohlc"),
    pytest.param(uni, UNI, id="unicorn"),
    pytest.param(fred, FRED, id="fred"),
    pytest.param(events, EVENTS, id="events"),
]


@pytest.mark.parametrize(("parse", "good"), PARSERS)
def test_good_sample_parses(parse: Parser, good: str, calendar: SessionCalendar) -> None:
    assert len(parse(good, calendar).rows) >= 2


@pytest.mark.parametrize(("parse", "good"), PARSERS)
@pytest.mark.parametrize(
    "body",
    [
        "<!DOCTYPE html>\n<html><head><title>Just a moment...</title></head></html>",
        b"<html><body>403 Forbidden</body></html>",
        "\n  <HTML>\n<p>Service unavailable</p>",
    ],
)
def test_html_instead_of_csv(
    parse: Parser, good: str, body: str | bytes, calendar: SessionCalendar
) -> None:
    with pytest.raises(SourceDataError, match="HTML page instead of CSV"):
        parse(body, calendar)


@pytest.mark.parametrize(("parse", "good"), PARSERS)
@pytest.mark.parametrize("body", ["", b"", "  \n\n", "\ufeff"])
def test_empty_body(parse: Parser, good: str, body: str | bytes, calendar: SessionCalendar) -> None:
    with pytest.raises(SourceDataError, match="empty body"):
        parse(body, calendar)


@pytest.mark.parametrize(("parse", "good"), PARSERS)
def test_truncated_last_line_partial_date(
    parse: Parser, good: str, calendar: SessionCalendar
) -> None:
    # The download stopped inside the last line's date.
    cut = good.rstrip("\n")
    cut = cut[: cut.rindex("\n") + 5]
    with pytest.raises(SourceDataError, match="truncated file: last line"):
        parse(cut, calendar)


@pytest.mark.parametrize(("parse", "good"), [p for p in PARSERS if p.id not in ("events", "fred")])
def test_truncated_last_line_missing_field(
    parse: Parser, good: str, calendar: SessionCalendar
) -> None:
    cut = good.rstrip("\n")
    cut = cut[: cut.index(",", cut.rindex("\n")) + 1]  # date and comma, nothing after
    with pytest.raises(SourceDataError, match="truncated file: last line"):
        parse(cut, calendar)


def test_truncated_real_file_is_refused(calendar: SessionCalendar) -> None:
    body = (SNAP / "vix" / "VIX_History.csv").read_bytes()
    with pytest.raises(
        SourceDataError, match=re.escape("last line '03/31/2026,29.530000' lacks HIGH")
    ):
        parse_cboe_csv(body[: body.rindex(b",29.64")], "VIX", "cboe", calendar)
    with pytest.raises(SourceDataError, match="truncated file: last line '03/3' has no valid date"):
        parse_cboe_csv(body[: body.rindex(b"03/31/2026") + 4], "VIX", "cboe", calendar)


def test_fred_cut_after_the_comma_reads_as_fred_empty_value(calendar: SessionCalendar) -> None:
    """FRED marks a missing value with nothing after the comma, so a file cut
    there cannot be told apart: the row is reported, and a live fetch then
    fails as stale for that date (see test_sources_fred)."""
    parsed = parse_fred_csv(FRED + "2026-02-18,", "SPX", "fred", calendar, series="SP500")
    assert parsed.dropped[-1].date == D(2026, 2, 18) and parsed.dropped[-1].reason == NO_VALUE


def test_unicorn_cut_date_is_not_read_as_another_date(calendar: SessionCalendar) -> None:
    # "2015111" would parse as 2015-11-01 with %Y%m%d alone.
    with pytest.raises(SourceDataError, match="truncated file: last line '2015111'"):
        parse_unicorn(UNI + "2015111", "unicorn", calendar)


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (
            cboe,
            CBOE.replace(",CLOSE", ""),
            "missing column 'CLOSE': expected header DATE,OPEN,HIGH,LOW,CLOSE",
        ),
        (
            cboe,
            CBOE.replace("HIGH", "HI"),
            "missing column 'HIGH': expected header DATE,OPEN,HIGH,LOW,CLOSE, "
            "got DATE,OPEN,HI,LOW,CLOSE",
        ),
        (
            ohlc,
            OHLC.replace("Close,Adj", "Closing,Adj"),
            "missing column 'Close': expected header Date,Open,High,Low,Close",
        ),
        (ohlc, OHLC.replace("Date,", "Day,", 1), "missing column 'Date'"),
        (
            fred,
            FRED.replace("SP500", "VIXCLS"),
            "column 'VIXCLS' is not 'SP500': expected observation_date,SP500",
        ),
        (
            fred,
            FRED.replace("observation_date", "when"),
            "unexpected header when,SP500: expected observation_date,SP500",
        ),
        (
            events,
            EVENTS.replace("time_et", "time"),
            "missing column 'time_et': expected header date,kind,time_et",
        ),
    ],
)
def test_missing_or_renamed_column(
    parse: Parser, text: str, message: str, calendar: SessionCalendar
) -> None:
    with pytest.raises(SourceDataError) as info:
        parse(text, calendar)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (cboe, CBOE.replace("25.72\n", "n/a\n"), "non-numeric CLOSE 'n/a' on 2022-05-27"),
        (cboe, CBOE.replace("27.05", "27.O5"), "non-numeric OPEN '27.O5' on 2022-05-27"),
        (
            ohlc,
            OHLC.replace('"6,882.96"', '"6,88x.96"'),
            "non-numeric High '6,88x.96' on 2026-02-27",
        ),
        (uni, UNI.replace("1788", "17B8"), "non-numeric value '17B8' on 2015-11-10"),
        (uni, UNI.replace("1788", "17.5"), "non-integer value '17.5' on 2015-11-10"),
        (uni, UNI.replace("1788", "-1788"), "negative value '-1788' on 2015-11-10"),
        (cboe, CBOE.replace("26.19", "inf"), "non-numeric CLOSE 'inf' on 2022-05-31"),
        (fred, FRED.replace("6836.17", "NaN?"), "non-numeric SP500 'NaN?' on 2026-02-13"),
        (cboe, CBOE.replace("25.72,25.72", "25.72,"), "missing CLOSE on 2022-05-27"),
    ],
)
def test_non_numeric_names_date_and_column(
    parse: Parser, text: str, message: str, calendar: SessionCalendar
) -> None:
    with pytest.raises(SourceDataError) as info:
        parse(text, calendar)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("parse", "text", "day"),
    [
        (cboe, CBOE + "05/27/2022,1,2,0.5,1.5\n", "2022-05-27"),
        (ohlc, OHLC + "2026-02-27,1,2,0.5,1.5,1.5,7\n", "2026-02-27"),
        (uni, "20151110, 1\n" + UNI, "2015-11-10"),
        (fred, FRED + "2026-02-13,1\n", "2026-02-13"),
        (events, EVENTS + "2026-06-10,CPI,08:30\n", "2026-06-10"),
    ],
)
def test_duplicate_date_named(
    parse: Parser, text: str, day: str, calendar: SessionCalendar
) -> None:
    with pytest.raises(SourceDataError, match=f"duplicate date {day}"):
        parse(text, calendar)


def test_same_date_for_two_event_kinds_is_fine(calendar: SessionCalendar) -> None:
    parsed = parse_event_csv(EVENTS + "2026-06-10,FOMC,14:00\n", "f", calendar)
    assert [(e.date, e.kind) for e in parsed.rows][:2] == [
        (D(2026, 6, 10), EventKind.CPI),
        (D(2026, 6, 10), EventKind.FOMC),
    ]


@pytest.mark.parametrize(
    ("parse", "text", "holiday"),
    [
        (cboe, CBOE.replace("05/31/2022", "05/30/2022"), D(2022, 5, 30)),  # Memorial Day
        (ohlc, OHLC + "1/19/2026,1,2,0.5,1.5,1.5,7\n", D(2026, 1, 19)),  # MLK day
        (uni, UNI + "20151126, 999\n", D(2015, 11, 26)),  # Thanksgiving
        (fred, FRED, D(2026, 2, 16)),  # Presidents' Day, empty value
    ],
)
def test_holiday_row_dropped_and_reported(
    parse: Parser, text: str, holiday: dt.date, calendar: SessionCalendar
) -> None:
    parsed = parse(text, calendar)
    kept = {r[0] if isinstance(r, tuple) else r.session for r in parsed.rows}
    assert holiday not in kept and len(kept) >= 2
    assert [(d.date, d.reason) for d in parsed.dropped] == [(holiday, NOT_A_SESSION)]


def test_too_many_fields_is_malformed(calendar: SessionCalendar) -> None:
    with pytest.raises(SourceDataError, match="malformed CSV: Expected 5 fields in line 3, saw 6"):
        parse_cboe_csv(
            CBOE.replace("27.20,25.72,25.72", "27.20,25.72,25.72,9"), "VIX", "cboe", calendar
        )


def test_bad_date_mid_file_names_line(calendar: SessionCalendar) -> None:
    with pytest.raises(SourceDataError, match="invalid date '13/27/2022' on line 3: no such day"):
        parse_cboe_csv(CBOE.replace("05/27/2022", "13/27/2022"), "VIX", "cboe", calendar)


def test_dates_outside_the_calendar_are_refused(calendar: SessionCalendar) -> None:
    with pytest.raises(SourceDataError, match="outside the session calendar"):
        parse_unicorn("19500103, 5\n19500104, 6\n", "unicorn", calendar)


def test_ohlc_iso_dates_any_order(calendar: SessionCalendar) -> None:
    text = (
        "Date,Open,High,Low,Close\n"
        "2026-02-27,1,3,0.5,2\n2026-02-25,1,3,0.5,2.5\n2026-02-26,1,3,0.5,2.2\n"
    )
    parsed = parse_ohlc_csv(text, "SPX", "stooq", calendar)
    assert [b.session.day for b in parsed.rows] == [25, 26, 27]
    assert [b.close for b in parsed.rows] == [2.5, 2.2, 2.0]
    assert parsed.rows[0].volume is None


def test_fred_dot_means_missing(calendar: SessionCalendar) -> None:
    parsed = parse_fred_csv(
        "DATE,SP500\n2026-02-12,6832.76\n2026-02-13,.\n2026-02-16,.\n", "SPX", "fred", calendar
    )
    assert [b.session for b in parsed.rows] == [D(2026, 2, 12)]
    assert [(d.date, d.reason) for d in parsed.dropped] == [
        (D(2026, 2, 13), NO_VALUE),
        (D(2026, 2, 16), NOT_A_SESSION),
    ]


def test_breadth_join_names_the_unmatched_date(calendar: SessionCalendar) -> None:
    adv = parse_unicorn(UNI, "unicorn", calendar)
    dec = parse_unicorn(UNI.replace("20151110, 1788\n", ""), "unicorn", calendar)
    with pytest.raises(SourceDataError, match="2015-11-10 has advancers but no decliners"):
        breadth_from_unicorn(adv, dec, source="unicorn")
    with pytest.raises(SourceDataError, match="2015-11-10 has unchanged but no advancers"):
        breadth_from_unicorn(dec, dec, adv, source="unicorn")


def test_breadth_join_placeholder_needs_both_zero(calendar: SessionCalendar) -> None:
    adv = parse_unicorn("20151109, 0\n20151110, 0\n", "unicorn", calendar)
    dec = parse_unicorn("20151109, 0\n20151110, 12\n", "unicorn", calendar)
    breadth = breadth_from_unicorn(adv, dec, source="unicorn")
    assert [(b.session, b.advancers, b.decliners) for b in breadth.rows] == [
        (D(2015, 11, 10), 0, 12)
    ]
    assert breadth.dropped[0].date == D(2015, 11, 9) and breadth.dropped[0].reason == PLACEHOLDER


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("date,kind,time_et\n2026-06-10,NFP,08:30\n", "unknown kind 'NFP' on line 2"),
        (
            "date,kind,time_et\n2026-06-10,CPI,8.30\n",
            "bad time_et '8.30' on line 2 (expected HH:MM)",
        ),
        ("date,kind,time_et\n2026-06-10,CPI,25:00\n", "bad time_et '25:00'"),
    ],
)
def test_event_file_errors(text: str, message: str, calendar: SessionCalendar) -> None:
    with pytest.raises(SourceDataError) as info:
        parse_event_csv(text, "file:e.csv", calendar)
    assert message in str(info.value) and "file:e.csv" in str(info.value)


def test_non_utf8_body_is_refused(calendar: SessionCalendar) -> None:
    with pytest.raises(SourceDataError, match="not UTF-8"):
        parse_cboe_csv(b"DATE,OPEN\n\xff\xfe", "VIX", "cboe", calendar)


def test_event_calendar_keeps_the_scheduled_flag():
    """The shipped FOMC file marks unscheduled actions (the 2020-03-15 Sunday cut)."""
    text = (SNAP / "calendar" / "fomc_decisions.csv").read_bytes()
    events = {e.date: e for e in parse_event_csv(text, "file:fomc", get_calendar()).rows}
    assert events[dt.date(2020, 3, 15)].scheduled is False
    assert events[dt.date(2020, 3, 3)].scheduled is False
    assert events[dt.date(2020, 1, 29)].scheduled is True


def test_event_calendar_refuses_a_bad_scheduled_value():
    body = b"date,kind,scheduled,time_et,note\n2020-03-15,FOMC,maybe,,\n"
    with pytest.raises(SourceDataError, match="bad scheduled 'maybe' on line 2"):
        parse_event_csv(body, "file:x", get_calendar())
