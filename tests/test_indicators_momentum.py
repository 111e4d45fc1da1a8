"""EMA / MACD / RSI against DESIGN.md's pinned values and TA-Lib, warm-up, crosses, compression."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import talib
from _indicator_data import sessions, spx_closes

from bot.engine.indicators import (
    ema,
    histogram_compression,
    macd,
    rsi,
    zero_cross_down,
    zero_cross_up,
)

# DESIGN.md §4, S&P 500 closes from 1999-01-04.
PINNED = [
    ("2008-10-10", 899.22, -76.993441, -50.343915, -26.649526, 22.982436),
    ("2018-12-24", 2351.10, -77.496788, -49.393225, -28.103563, 19.206673),
    ("2018-12-31", 2506.85, -65.634829, -61.918988, -3.715841, 41.709268),
]


def _series(values: list[float], start: str = "2024-01-02") -> pd.Series[float]:
    index = sessions(start, "2030-12-31")[: len(values)]
    return pd.Series(values, index=index, dtype=np.float64)


@pytest.mark.parametrize(("day", "close", "line", "signal", "hist", "rsi14"), PINNED)
def test_pinned_values(
    day: str, close: float, line: float, signal: float, hist: float, rsi14: float
) -> None:
    spx = spx_closes()
    m = macd(spx)
    r = rsi(spx)
    assert spx[day] == pytest.approx(close, abs=0.005)
    assert m.loc[day, "macd"] == pytest.approx(line, abs=1e-6)
    assert m.loc[day, "macd_signal"] == pytest.approx(signal, abs=1e-6)
    assert m.loc[day, "macd_hist"] == pytest.approx(hist, abs=1e-6)
    assert r[day] == pytest.approx(rsi14, abs=1e-6)


def test_macd_matches_talib_from_the_250th_session() -> None:
    spx = spx_closes()
    ours = macd(spx)
    line, signal, hist = talib.MACD(spx.to_numpy(), 12, 26, 9)
    for column, ref in (("macd", line), ("macd_signal", signal), ("macd_hist", hist)):
        diff = np.abs(ours[column].to_numpy()[249:] - ref[249:])
        assert np.nanmax(diff) < 1e-6, column
        assert not np.isnan(diff).any()


def test_rsi_matches_talib_over_the_whole_series() -> None:
    spx = spx_closes()
    ours = rsi(spx).to_numpy()
    ref = talib.RSI(spx.to_numpy(), 14)
    has_ref = ~np.isnan(ref)
    assert has_ref.sum() == len(spx) - 14
    assert np.max(np.abs(ours[has_ref] - ref[has_ref])) < 1e-9
    # Same warm-up length as TA-Lib: NaN exactly where it has no value.
    assert np.isnan(ours[~has_ref]).all()


def test_rsi_by_hand() -> None:
    # 14 changes: seven +1, seven −1 -> avg gain = avg loss = 0.5 -> 50.
    # Then +2: gain (13·0.5 + 2)/14, loss 13·0.5/14 -> 100 · 8.5/15.
    closes = [100.0]
    for i in range(14):
        closes.append(closes[-1] + (1.0 if i % 2 == 0 else -1.0))
    closes.append(closes[-1] + 2.0)
    r = rsi(_series(closes))
    assert r.iloc[:14].isna().all()
    assert r.iloc[14] == pytest.approx(50.0, abs=1e-12)
    assert r.iloc[15] == pytest.approx(100.0 * 8.5 / 15.0, abs=1e-12)


@pytest.mark.parametrize(
    ("closes", "expected"),
    [
        ([100.0 + i for i in range(20)], 100.0),  # no loss, some gain
        ([100.0] * 20, 50.0),  # neither gain nor loss
        ([100.0 - i for i in range(20)], 0.0),  # no gain
    ],
)
def test_rsi_degenerate_averages(closes: list[float], expected: float) -> None:
    r = rsi(_series(closes))
    assert (r.iloc[14:] == expected).all()


def test_ema_warm_up_is_nan_then_seeded_recursion() -> None:
    x = _series([float(v) for v in range(1, 11)])
    out = ema(x, 4)
    assert out.iloc[:3].isna().all()
    # Seed 1, alpha 0.4: 1, 1.4, 2.04, 2.824, ...
    expected = 1.0
    for i in range(1, 10):
        expected = 0.6 * expected + 0.4 * (i + 1)
        if i >= 3:
            assert out.iloc[i] == pytest.approx(expected, abs=1e-12)


def test_macd_warm_up_lengths() -> None:
    m = macd(spx_closes())
    assert m["macd"].iloc[:25].isna().all()
    assert not math.isnan(m["macd"].iloc[25])
    assert m["macd_signal"].iloc[:33].isna().all()
    assert m["macd_hist"].iloc[:33].isna().all()
    assert not math.isnan(m["macd_signal"].iloc[33])
    assert not math.isnan(m["macd_hist"].iloc[33])


def test_warm_up_is_never_zero_so_no_fake_cross() -> None:
    # A steady decline: MACD is negative from its first value. A zero-filled
    # warm-up would turn that into a zero-line cross down; NaN must not.
    falling = _series([3000.0 - 5.0 * i for i in range(80)])
    m = macd(falling)
    assert (m["macd"].dropna() < 0).all()
    assert not zero_cross_down(m["macd"]).any()
    assert not zero_cross_down(m["macd_hist"]).any()
    assert zero_cross_down(m["macd"].fillna(0.0)).any()  # what a 0 warm-up would do


def test_zero_crosses_by_hand() -> None:
    line = _series([1.0, 0.0, -1.0, math.nan, -1.0, 2.0, 0.0, 0.5])
    down = zero_cross_down(line)
    up = zero_cross_up(line)
    assert down.dtype == bool and up.dtype == bool
    assert list(np.flatnonzero(down.to_numpy())) == [2]  # 0 >= 0 > -1
    assert list(np.flatnonzero(up.to_numpy())) == [5, 7]  # NaN before index 4 blocks it


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        (3, [0, 0, 0, 1, 0, 0, 0, 0, 0]),
        (2, [0, 0, 1, 1, 0, 0, 1, 0, 0]),
    ],
)
def test_histogram_compression_by_hand(k: int, expected: list[int]) -> None:
    hist = _series([5.0, 4.0, 3.0, 2.0, 3.0, 2.0, 1.0, -0.5, -0.4])
    got = histogram_compression(hist, k)
    assert got.astype(int).tolist() == expected


@pytest.mark.parametrize(
    "values",
    [
        [4.0, 3.0, 0.0, -1.0, -0.5],  # through zero: not one side
        [4.0, 3.0, math.nan, 1.0, 0.5],  # unknown value
        [4.0, 3.0, 3.0, 2.0, 1.0],  # flat is not strictly falling
    ],
)
def test_histogram_compression_breaks(values: list[float]) -> None:
    assert not histogram_compression(_series(values), 3).any()


def test_negative_histogram_compression_counts_too() -> None:
    got = histogram_compression(_series([-4.0, -3.0, -2.0, -1.0]), 3)
    assert got.tolist() == [False, False, False, True]


def test_gap_restarts_instead_of_bridging() -> None:
    spx = spx_closes()
    gap = 600
    gapped = spx.copy()
    gapped.iloc[gap] = math.nan
    full = macd(spx)
    cut = macd(gapped)
    after = macd(spx.iloc[gap + 1 :])
    # Before the gap nothing changes; on it, NaN; after it, a fresh start.
    pd.testing.assert_frame_equal(cut.iloc[:gap], full.iloc[:gap])
    assert cut.iloc[gap].isna().all()
    pd.testing.assert_frame_equal(cut.iloc[gap + 1 :], after)
    assert cut["macd"].iloc[gap + 1 : gap + 26].isna().all()
    r = rsi(gapped)
    assert r.iloc[gap : gap + 15].isna().all()
    pd.testing.assert_series_equal(r.iloc[gap + 1 :], rsi(spx.iloc[gap + 1 :]))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_periods_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        ema(_series([1.0, 2.0]), bad)  # type: ignore[arg-type]


def test_fast_must_be_shorter_than_slow() -> None:
    with pytest.raises(ValueError, match="shorter"):
        macd(spx_closes(), fast=26, slow=12)
