"""The daily chart renders from a real indicator frame."""

from __future__ import annotations

import datetime as dt
import struct

import pytest

from bot.engine.chart import CHART_SESSIONS, render_chart
from bot.engine.rules import load_default_rules
from bot.pipeline.evaluation import indicator_frame
from bot.store import open_store

D = dt.date


def test_chart_is_a_png_of_about_nine_months(snapshot_db, calendar):
    store = open_store(f"sqlite:///{snapshot_db}")
    frame = indicator_frame(store, calendar, load_default_rules(), D(2023, 1, 3), D(2024, 9, 30))
    store.close()
    png = render_chart(frame, layer_periods=[("layer1", D(2024, 6, 20), None)],
                       events=[("FOMC", D(2024, 9, 18))])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (800, 900)
    assert len(png) > 20_000  # four drawn panels, not an empty canvas
    assert CHART_SESSIONS >= 180


def test_empty_frame_is_refused():
    import pandas as pd

    with pytest.raises(ValueError, match="no sessions"):
        render_chart(pd.DataFrame())


def test_divergence_panels_state_length_and_streak_or_why_not():
    import math

    import pandas as pd

    from bot.engine.chart import measures_text

    row = pd.Series({"ad_divergence_days": 30.0, "ad_divergence_streak": 26.0,
                     "not_evaluable": {}})
    assert measures_text(row, "ad") == "A/D divergence: length 30, streak 26"
    assert measures_text(pd.Series({"macd_divergence_days": 0.0, "macd_divergence_streak": 0.0,
                                    "not_evaluable": {}}), "macd") == "MACD divergence: none"
    why = "2 imputed breadth sessions in the 63-session divergence window, at most 1 allowed"
    gone = pd.Series({"ad_divergence_days": math.nan, "ad_divergence_streak": math.nan,
                      "not_evaluable": {"ad_divergence_days": why}})
    assert measures_text(gone, "ad") == f"A/D divergence: not evaluable ({why})"
