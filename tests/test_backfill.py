"""A new user is live in one command: ``alvh data backfill`` on an empty store, then
``alvh run-once --source live`` for the last closed session makes a real decision.

Every source is a real server on 127.0.0.1 in the service's own format (Yahoo's chart
JSON, Cboe's CSVs, the WSJ diary JSON, TradingView's WebSocket frames, the Fed's
calendar). The shipped history ends in early 2026, so the sessions from there to the
last closed session (relative to the day the test runs) are served **derived** values:
real S&P 500, VIX, VIX3M, VIX6M and TradingView NYSE breadth figures of an earlier
stretch of the same length, moved onto the recent sessions (SPX scaled to continue from
the shipped history's last close). Real formats, real numbers, recent dates.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from httpserver import LocalServer
from tvserver import FakeTradingView, TradingViewServer

from bot.app.cli import main
from bot.kernel.models import BREADTH
from bot.kernel.sessions import ET, SessionCalendar
from bot.market.backfill import seed_items
from bot.market.snapshot import SNAPSHOT_DIR, parse_snapshot
from bot.market.sources.cboe import cboe_path
from bot.market.sources.fed import PATH as FED_PATH
from bot.market.sources.wsj import PAGE as WSJ_PAGE
from bot.store import open_store

RECORDED = Path(__file__).parent / "fixtures" / "recorded"
D = dt.date
SOURCE_END = D(2026, 2, 20)
"""The derived stretch is taken from real sessions ending here."""
SNAP_SPX_END = D(2026, 2, 27)


def _cboe(name: str) -> dict[dt.date, tuple[float, float, float, float]]:
    out = {}
    with (SNAPSHOT_DIR / "vix" / f"{name}_History.csv").open() as fh:
        for row in csv.DictReader(fh):
            day = dt.datetime.strptime(row["DATE"], "%m/%d/%Y").date()  # noqa: DTZ007
            out[day] = (float(row["OPEN"]), float(row["HIGH"]), float(row["LOW"]),
                        float(row["CLOSE"]))
    return out


def _spx() -> dict[dt.date, tuple[float, float, float, float]]:
    out = {}
    with (SNAPSHOT_DIR / "spx" / "spx_daily_2015_2026.csv").open() as fh:
        for row in csv.DictReader(fh):
            day = dt.datetime.strptime(row["Date"], "%m/%d/%Y").date()  # noqa: DTZ007
            out[day] = tuple(float(row[k].replace(",", "")) for k in
                             ("Open", "High", "Low", "Close"))  # type: ignore[assignment]
    return out


def _tv() -> dict[dt.date, tuple[int, int]]:
    out = {}
    path = SNAPSHOT_DIR / "breadth" / "tradingview-2003-2026" / "nyse_advn_decln.csv"
    with path.open() as fh:
        for row in csv.DictReader(fh):
            out[D.fromisoformat(row["date"])] = (int(row["advancing"]), int(row["declining"]))
    return out


class Derived:
    """Real figures of ``len(target)`` earlier sessions, moved onto ``target``."""

    def __init__(self, calendar: SessionCalendar, target: list[dt.date]) -> None:
        self.target = target
        source = calendar.sessions_between(calendar.offset(SOURCE_END, -(len(target) - 1)),
                                           SOURCE_END)
        self.pairs = list(zip(target, source, strict=True))

    def spx(self) -> dict[dt.date, tuple[float, ...]]:
        real = _spx()
        scale = real[SNAP_SPX_END][3] / real[self.pairs[0][1]][0]
        return {t: tuple(round(v * scale, 2) for v in real[s]) for t, s in self.pairs}

    def cboe(self, name: str) -> dict[dt.date, tuple[float, ...]]:
        real = _cboe(name)
        return {t: real[s] for t, s in self.pairs}

    def breadth(self) -> dict[dt.date, tuple[int, int]]:
        real = _tv()
        return {t: real[s] for t, s in self.pairs if s in real}


def yahoo_body(bars: dict[dt.date, tuple[float, ...]]) -> str:
    template: dict[str, Any] = json.loads((RECORDED / "yahoo_chart_gspc_2026-02.json").read_text())
    result = template["chart"]["result"][0]
    days = sorted(bars)
    result["timestamp"] = [int(dt.datetime.combine(d, dt.time(9, 30), tzinfo=ET).timestamp())
                           for d in days]
    quote = result["indicators"]["quote"][0]
    for i, name in enumerate(("open", "high", "low", "close")):
        quote[name] = [bars[d][i] for d in days]
    quote["volume"] = [4_000_000_000] * len(days)
    result["indicators"]["adjclose"] = [{"adjclose": [bars[d][3] for d in days]}]
    return json.dumps(template)


def cboe_body(name: str, bars: dict[dt.date, tuple[float, ...]]) -> str:
    """The real file with the derived sessions appended, in Cboe's own format."""
    text = (SNAPSHOT_DIR / "vix" / f"{name}_History.csv").read_text().rstrip("\n")
    last = max(_cboe(name))
    extra = [f"{d:%m/%d/%Y},{o:.6f},{h:.6f},{lo:.6f},{c:.6f}"
             for d, (o, h, lo, c) in sorted(bars.items()) if d > last]
    return text + "\n" + "\n".join(extra) + "\n"


def wsj_body(day: dt.date, before: dt.date, counts: dict[dt.date, tuple[int, int]]) -> str:
    data = json.loads((RECORDED / "wsj_marketsdiary_2026-07-27.json").read_text())
    data["data"]["timestamp"] = f"{day:%A, %B} {day.day}, {day.year}"
    nyse = data["data"]["instrumentSets"][0]["instruments"]
    for row in nyse:
        if row["id"] in ("advances", "declines") and row["name"] in ("Advances", "Declines"):
            which = 0 if row["id"] == "advances" else 1
            row["latestClose"] = f"{counts[day][which]:,}"
            row["previousClose"] = f"{counts[before][which]:,}"
    return json.dumps(data)


@contextlib.contextmanager
def serving(env: pytest.MonkeyPatch, tmp_path: Path, calendar: SessionCalendar,
            tv_fake: FakeTradingView | None = None) -> Iterator[dt.date]:
    """Every source on 127.0.0.1 with history to the last closed session; yields it."""
    now = dt.datetime.now(tz=ET)
    last = calendar.last_closed_session(now - dt.timedelta(minutes=20))
    target = calendar.sessions_between(calendar.next_session(SNAP_SPX_END), last)
    derived = Derived(calendar, target)
    breadth = {**_tv(), **derived.breadth()}
    fake = tv_fake or FakeTradingView({d: c for d, c in breadth.items() if d >= D(2025, 6, 2)})
    with LocalServer() as srv, TradingViewServer(fake) as tv:
        srv.route("/v8/finance/chart/^GSPC", yahoo_body(derived.spx()))
        for name in ("VIX", "VIX3M", "VIX6M"):
            srv.route(cboe_path(name), cboe_body(name, derived.cboe(name)))
        srv.route(WSJ_PAGE, wsj_body(last, calendar.previous_session(last), breadth))
        srv.route(FED_PATH, RECORDED / "fed_calendar_2026-10.json")
        for key in ("YAHOO", "FRED_GRAPH", "FRED_API", "CBOE", "STOOQ", "WSJ", "MCCLELLAN",
                    "FED"):
            env.setenv(f"ALVH_{key}_URL", srv.url)
        env.setenv("ALVH_VX_SETTLEMENT_URL", f"{srv.url}/settlement/csv")
        env.setenv("ALVH_CBOE_CHAIN_URL", f"{srv.url}/options/_SPX.json")
        env.setenv("ALVH_TRADINGVIEW_URL", tv.url)
        env.setenv("ALVH_DATA_DIR", str(tmp_path))
        yield last


def test_empty_store_to_a_real_decision_in_two_commands(no_alvh_env, tmp_path, calendar,
                                                        capsys) -> None:
    with serving(no_alvh_env, tmp_path, calendar) as last:
        code = main(["data", "backfill"])
        backfill_out = capsys.readouterr().out
        (tmp_path / "backfill.txt").write_text(backfill_out)
        assert code == 0, backfill_out
        assert f"back-fill to {last} (the last closed session)" in backfill_out
        assert f"ready: {last} can be evaluated" in backfill_out
        lines = {line.split()[0]: line for line in backfill_out.splitlines()
                 if line.split() and line.split()[0] in ("SPX", "VIX", "BREADTH")}
        assert f".. {last}" in lines["SPX"] and "yahoo" in lines["SPX"]
        assert f".. {last}" in lines["BREADTH"] and "wsj + tradingview (" in lines["BREADTH"]
        assert "0/" in lines["BREADTH"]  # nothing missing since the snapshot's end

        code = main(["run-once", "--source", "live", "--json"])
        out = capsys.readouterr().out
    assert code == 0, out
    record = json.loads(out[out.index("{"):])
    assert record["session"] == last.isoformat() and record["recorded"] is True
    assert isinstance(record["condor"]["go"], bool) and record["condor"]["checks"]
    assert record["data_sources"]["SPX"] == "yahoo"
    assert {a["topic"] for a in record["alerts"]} >= {"summary"}
    store = open_store(f"sqlite:///{tmp_path / 'alvh.sqlite'}")
    try:
        assert store.runs.get(last) is not None
        frame = store.breadth(D(2026, 3, 23), last)
        assert len(frame) == len(calendar.sessions_between(D(2026, 3, 23), last))
        assert "synthetic" not in set(frame["source"])
        assert store.latest(BREADTH) == (last, "wsj")
    finally:
        store.close()


def test_what_no_source_has_is_listed_with_how_to_import_it(no_alvh_env, tmp_path, calendar,
                                                            capsys) -> None:
    """TradingView refuses: the diary gives the last two sessions, the rest is named."""
    with serving(no_alvh_env, tmp_path, calendar, FakeTradingView({}, status=503)) as last:
        code = main(["data", "backfill"])
    out = capsys.readouterr().out
    (tmp_path / "backfill.txt").write_text(out)
    before = calendar.previous_session(last)
    assert code == 1  # not complete: scripts can tell
    assert f"partly ready: {last} can be evaluated, but 128 NYSE breadth session(s)" in out
    assert "BREADTH: " in out and "session(s) still missing, imputed by the indicators" in out
    assert "2026-03-23, 2026-03-24" in out
    assert ("import them with: alvh data import FILE   (date,advancers,decliners[,source]: "
            "NYSE issues)") in out
    assert "wsj" in out and str(before) not in out.split("still missing")[1].split("\n")[1]


def test_seeding_never_overwrites_what_the_store_has(tmp_path, calendar) -> None:
    from bot.kernel.models import Bar

    store = open_store(f"sqlite:///{tmp_path / 'a.sqlite'}")
    try:
        store.upsert_bars([Bar("SPX", D(2026, 2, 27), 6900.0, "yahoo")])
        items = seed_items(store, parse_snapshot(calendar))
        spx = [r for i in items if i.series == "SPX" for r in i.parsed.rows]
        assert D(2026, 2, 27) not in {r.session for r in spx} and len(spx) == 6829
        events = [r for i in items if i.series == "events" for r in i.parsed.rows]
        assert len(events) == 232 + 143 + 143
    finally:
        store.close()


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR")

