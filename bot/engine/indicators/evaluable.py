"""Why a value is not evaluable, per session and per name (DESIGN.md §4).

"Not evaluable is not zero": a value that cannot be computed for session t
(a series whose history starts after t, such as VIX3M before 2009-09-18; a
divergence window with too many imputed breadth sessions; a calendar that
ends) is NaN / NA in the frame, and this module records *why*, so an alert
can say "not evaluable (VIX3M history starts 2009-09-18)" instead of 0,
false or a bare "n/a".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from bot.engine.indicators._util import BoolArray, as_float
from bot.kernel.evaluable import NOT_EVALUABLE_TEXT, WHY_SUFFIX, why_key

EMPTY: Final[Mapping[str, str]] = MappingProxyType({})
"""The cell of a session on which every value was evaluable (shared, read-only)."""

ObjectArray = npt.NDArray[np.object_]


def is_missing(value: object) -> bool:
    """None, NaN or NA: a value that was not evaluable."""
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and value != value


def shown(values: Mapping[str, object], name: str) -> str | None:
    """``not evaluable (why)`` when ``name`` is missing from ``values``, else None."""
    if not is_missing(values.get(name)):
        return None
    why = values.get(why_key(name))
    return f"{NOT_EVALUABLE_TEXT} ({why})" if why else NOT_EVALUABLE_TEXT


def reasons_of(values: Mapping[str, object]) -> dict[str, str]:
    """``{name: why}`` for every reason carried in a flat row of values."""
    return {k.removesuffix(WHY_SUFFIX): str(v) for k, v in values.items()
            if k.endswith(WHY_SUFFIX)}


def summarize(why: Mapping[str, str]) -> str:
    """``vix3m, vix_term_ratio: no VIX3M history up to this session; ...`` (names by reason)."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in why.items():
        by_reason.setdefault(reason, []).append(name)
    return "; ".join(f"{', '.join(names)}: {reason}" for reason, names in by_reason.items())


def absent(values: pd.Series[Any], label: str) -> ObjectArray:
    """Per row: why ``values`` is NaN there ("" where it is not).

    Before the series' first value, or with no value at all: "no <label>
    history up to this session"; otherwise "no <label> value for this
    session". Only rows up to each session are looked at, so the reason is the
    same whether the history was loaded up to that session (a live run) or
    beyond it (a backtest).
    """
    x = as_float(values)
    out = np.full(len(x), "", dtype=object)
    missing = np.isnan(x)
    if not missing.any():
        return out
    out[missing] = f"no {label} value for this session"
    first = int(np.argmax(~missing)) if not missing.all() else len(x)
    out[:first] = f"no {label} history up to this session"
    return out


class Reasons:
    """Collects (names, per-row reason) pairs; the first reason given for a name wins.

    Specific reasons are added first, then :meth:`fallback` fills any NaN
    left without one, so no not-evaluable value goes unexplained.
    """

    def __init__(self, index: pd.Index[Any]) -> None:
        self.index = index
        self._cells: list[dict[str, str] | None] = [None] * len(index)

    def add(self, names: Iterable[str], where: BoolArray, why: str | ObjectArray) -> None:
        """Give ``names`` the reason ``why`` (one text, or one per row) where ``where`` is set."""
        names = tuple(names)
        for i in np.flatnonzero(where):
            text = why if isinstance(why, str) else str(why[i])
            if not text:
                continue
            cell = self._cells[i]
            if cell is None:
                cell = self._cells[i] = {}
            for name in names:
                cell.setdefault(name, text)

    def add_like(self, names: Iterable[str], source: str, where: BoolArray) -> None:
        """Give ``names`` the reason ``source`` already has, where ``where`` is set."""
        names = tuple(names)
        for i in np.flatnonzero(where):
            cell = self._cells[i]
            if cell is not None and source in cell:
                for name in names:
                    cell.setdefault(name, cell[source])

    def fallback(self, frame: pd.DataFrame, defaults: Mapping[str, str]) -> None:
        """Every NaN/NA cell of ``defaults``' columns gets its default reason if it has none."""
        for name, why in defaults.items():
            self.add((name,), frame[name].isna().to_numpy(dtype=bool), why)

    def column(self) -> pd.Series[Any]:
        """One read-only ``{name: reason}`` mapping per row (:data:`EMPTY` when none)."""
        cells = np.empty(len(self._cells), dtype=object)
        for i, cell in enumerate(self._cells):
            cells[i] = EMPTY if cell is None else MappingProxyType(cell)
        return pd.Series(cells, index=self.index, dtype=object)


__all__ = ["NOT_EVALUABLE_TEXT", "WHY_SUFFIX", "why_key"]  # re-exported from the kernel
