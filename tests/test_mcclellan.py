"""McClellan Oscillator and Summation Index against the values McClellan publishes.

The published snapshots (tests/fixtures/mcclellan, see its README) fix three
things: the oscillator is the 10 % Trend minus the 5 % Trend, the Summation
Index changes by exactly the oscillator each day, and its level is
1000 + 19·(5 % Trend) − 9·(10 % Trend), the closed form our summation index
uses. Our trends, from the shipped NYSE history, agree with the published ones
within a few units wherever our day's counts are theirs (their Difference);
where the sources disagree (TradingView after 2020, Unicorn in spring 2014)
the test pins that the inputs differ, so the comparison says why.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest

from bot.engine.indicators import mcclellan
from bot.engine.rules import load_default_rules
from bot.pipeline.evaluation import indicator_frame
from bot.store import open_store

FIXTURES = Path(__file__).parent / "fixtures" / "mcclellan"
SAME_COUNTS = 5
"""Our net advances within this many issues of McClellan's Difference: the same data."""
FEW_UNITS = 3.5
"""How close the warmed-up trends must be on such a date (DESIGN: "within a few units")."""


class Published(NamedTuple):
    day: dt.date
    difference: int
    trend_10: float
    trend_05: float
    osc: float
    prior_osc: float
    summ: float
    prior_summ: float


def _number(text: str) -> float:
    """``300 . 166`` (the page's rendering of 300.166), ``-135 . 133``, ``512``."""
    whole, _, frac = text.replace(" ", "").partition(".")
    sign = -1.0 if whole.startswith("-") else 1.0
    return sign * (abs(float(whole or "0")) + (float("0." + frac) if frac else 0.0))


def _parse(path: Path) -> Published:
    text = path.read_text(encoding="utf-8").replace("|", " ")
    found = re.search(r"NYSE: (\d\d)/(\d\d)/(\d{4})", text)
    assert found, path.name
    day = dt.date(int(found[3]), int(found[1]), int(found[2]))

    def row(label: str) -> float:
        m = re.search(rf"^{re.escape(label)}\s+(-?\d+)\s*(?:\.\s*(\d+))?\s", text, re.M)
        assert m, (path.name, label)
        return _number(m[1] + ("." + m[2] if m[2] else ""))

    return Published(day, int(row("Difference")), row("10% Trend"), row("5% Trend"),
                     row("McC OSC"), row("PRIOR McC OSC"), row("SUMM Index"),
                     row("PRIOR SUMM Index"))


SNAPSHOTS = tuple(_parse(p) for p in sorted(FIXTURES.glob("nyse_*.txt")))


def test_fixtures_parse() -> None:
    assert len(SNAPSHOTS) == 12
    first = SNAPSHOTS[0]
    assert first == Published(dt.date(2014, 4, 17), 512, 300.166, 255.608, 44.558, 34.515,
                              3155.060, 3110.502)
    table = next(s for s in SNAPSHOTS if s.day == dt.date(2023, 5, 30))  # the pipe table
    assert (table.trend_10, table.osc, table.summ) == (-135.133, -43.624, 477.528)


@pytest.mark.parametrize("snap", SNAPSHOTS, ids=lambda s: str(s.day))
def test_published_figures_follow_the_definitions(snap: Published) -> None:
    """Oscillator = 10 % − 5 % Trend; the Summation Index moves by exactly the oscillator;
    its level is 1000 + 19·T05 − 9·T10 (to the page's three decimals)."""
    osc = snap.osc
    if abs(osc) < 1:
        # The page prints the integer part and the decimals apart, so a value between -1
        # and 0 shows as "0 . 021" without its minus (2018-04-20: 75.970 - 75.992 = -0.022,
        # SUMM 1760.107 after 1760.128): only its size is published.
        osc = abs(osc) if snap.summ >= snap.prior_summ else -abs(osc)
    assert osc == pytest.approx(snap.trend_10 - snap.trend_05, abs=0.0015)
    assert snap.summ - snap.prior_summ == pytest.approx(osc, abs=0.0015)
    assert snap.summ == pytest.approx(1000 + 19 * snap.trend_05 - 9 * snap.trend_10, abs=0.02)


def test_summation_is_the_running_total_of_the_oscillator() -> None:
    rng = np.random.default_rng(3)
    days = pd.bdate_range("2000-01-03", periods=900)
    net = pd.Series(rng.normal(20, 600, len(days)).round(), index=days)
    m = mcclellan(net)
    settled = m["oscillator"].notna()
    assert settled.sum() == len(days) - 249
    summ, osc = m["summation"][settled], m["oscillator"][settled]
    assert np.allclose(summ.diff().iloc[1:], osc.iloc[1:], atol=1e-9, rtol=0)
    # The 10 % and 5 % Trends are EMAs with smoothing constants 0.10 and 0.05.
    t10 = net.ewm(alpha=0.10, adjust=False).mean()  # seeded with the first value
    assert np.allclose(m["trend_10"][settled].iloc[-300:], t10.iloc[-300:], atol=1e-6)


@functools.cache
def _frame(snapshot_db: Path) -> pd.DataFrame:
    from bot.kernel.sessions import get_calendar

    store = open_store(f"sqlite:///{snapshot_db}")
    try:
        return indicator_frame(store, get_calendar(), load_default_rules(),
                               dt.date(1999, 1, 4), dt.date(2026, 2, 27))
    finally:
        store.close()


def test_our_trends_agree_with_mcclellan_where_the_counts_are_the_same(snapshot_db: Path) -> None:
    frame = _frame(snapshot_db)
    same, other = [], []
    for snap in SNAPSHOTS:
        if pd.Timestamp(snap.day) not in frame.index:
            continue  # after the shipped history (2026-06-26)
        row = frame.loc[pd.Timestamp(snap.day)]
        ours = row["advancers"] - row["decliners"]
        (same if abs(ours - snap.difference) <= SAME_COUNTS else other).append((snap, row))
    assert [s.day.isoformat() for s, _ in same] == [
        "2015-08-31", "2016-10-24", "2018-04-20", "2019-06-14", "2019-09-20"]
    for snap, row in same:
        assert row["mcclellan_trend_10"] == pytest.approx(snap.trend_10, abs=FEW_UNITS), snap.day
        assert row["mcclellan_trend_05"] == pytest.approx(snap.trend_05, abs=FEW_UNITS), snap.day
        # Our Summation Index moves by exactly our oscillator: the same day-to-day rule.
        prev = frame.index[frame.index.get_loc(pd.Timestamp(snap.day)) - 1]
        assert row["summation_index"] - frame.loc[prev, "summation_index"] == pytest.approx(
            row["mcclellan_oscillator"], abs=1e-9)
    # Elsewhere the inputs are not McClellan's (TradingView counts after 2020, Unicorn
    # below WSJ in spring 2014): the day's net advances already differ.
    assert {s.day.year for s, _ in other} == {2014, 2021, 2022, 2023, 2024}
    assert all(abs((r["advancers"] - r["decliners"]) - s.difference) > SAME_COUNTS
               for s, r in other)
