"""When a re-fetched row is the same print, and how a revision is logged.

Re-fetching the same data is a no-op; a re-fetch that *disagrees* with what
is stored is logged with both values (providers revise: WSJ's breadth after
the close, a price corrected the next morning), at most
:data:`MAX_LOGGED_CHANGES` lines per write, then a count.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

log = logging.getLogger("bot.store.db")

PRICE_TOLERANCE = 0.005
"""Prices that agree to the cent are the same print (Cboe writes 17.240000, FRED
17.24; Yahoo exports 2058.199951 where another copy says 2058.20)."""
VOLUME_TOLERANCE = 1e-4
"""Relative, for volumes, which providers round differently."""
_VOLUME_COLUMNS = frozenset({"volume", "adv_volume", "dec_volume"})
MAX_LOGGED_CHANGES = 20


def differs(a: Any, b: Any, column: str) -> bool:
    """Whether two stored values of ``column`` are different prints."""
    if a is None or b is None:
        return (a is None) != (b is None)
    if column in _VOLUME_COLUMNS:
        return not math.isclose(float(a), float(b), rel_tol=VOLUME_TOLERANCE)
    if isinstance(a, float) or isinstance(b, float):
        return not math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=PRICE_TOLERANCE)
    return bool(a != b)


class ChangeLog:
    """Logs each revision of a write with the stored and the new value and source."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.count = 0

    def note(
        self, key: Sequence[Any], old: Mapping[str, Any], new: Mapping[str, Any],
        diffs: Sequence[str],
    ) -> None:
        self.count += 1
        if self.count > MAX_LOGGED_CHANGES:
            return
        log.warning(
            "store: %s %s changed: %s", self.label, "/".join(str(k) for k in key),
            "; ".join(f"{c} stored {old[c]!r} ({old['source']}) -> new {new[c]!r} "
                      f"({new['source']})" for c in diffs),
        )

    def close(self) -> None:
        if self.count > MAX_LOGGED_CHANGES:
            log.warning("store: %s: %d more changed rows not logged one by one", self.label,
                        self.count - MAX_LOGGED_CHANGES)
