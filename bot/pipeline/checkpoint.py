"""A cache of the layer state rebuilt from history, so it is not rebuilt every time.

With no earlier run in the store, a session's layer state is the one a replay
from the store's first session reaches (one answer with the backtest): 27
years of sessions for the shipped snapshot, most of a ``run-once`` dry run's
time. The state reached on session S depends only on the rules, the capital
and the market data up to S, so it is kept in a small JSON file keyed by
those, and reused while the store's market fingerprint is unchanged. It is a
cache: any change to the data, the rules or the capital misses it, and a
missing or unreadable file only means the replay happens again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from bot.engine.state import LayerState

log = logging.getLogger(__name__)

MAX_ENTRIES = 16
"""Keys kept (rules edits and capitals tried); the oldest go first."""


class StateCache:
    """``{key: (through, fingerprint, state)}`` in one JSON file (see the module doc)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @staticmethod
    def key(store_id: str, rules_sha256: str, capital: float) -> str:
        """What a rebuilt state depends on besides the market data."""
        text = f"{store_id}|{rules_sha256}|{capital!r}"
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def get(
        self, key: str, fingerprint: str, before: dt.date
    ) -> tuple[dt.date, LayerState, list[str]] | None:
        """The cached state after session ``through`` < ``before`` and the layer changes
        that built it, if the entry is still valid."""
        entry = self._load().get(key)
        if not entry or entry.get("fingerprint") != fingerprint:
            return None
        try:
            through = dt.date.fromisoformat(entry["through"])
            state = LayerState.from_json(entry["state"])
            changes = [str(c) for c in entry.get("changes", [])]
        except (KeyError, TypeError, ValueError):
            return None
        return (through, state, changes) if through < before else None

    def put(
        self, key: str, fingerprint: str, through: dt.date, state: LayerState,
        changes: list[str],
    ) -> None:
        """Remember the state after ``through``; a write that fails is only logged."""
        entries = self._load()
        entries.pop(key, None)
        entries[key] = {"through": through.isoformat(), "fingerprint": fingerprint,
                        "state": state.to_json(), "changes": changes}
        while len(entries) > MAX_ENTRIES:
            entries.pop(next(iter(entries)))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(entries, fh)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("state cache: not written to %s (%s)", self.path, exc.strerror or exc)

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}
