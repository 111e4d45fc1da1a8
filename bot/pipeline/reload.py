"""Hot reload of the rules file: a good edit is used, a bad one is refused.

The watcher polls the file's bytes (cheap, works on every filesystem and in
containers where inotify on a mounted ConfigMap is unreliable). A change that
loads is announced with the diff of thresholds; a change that does not load
keeps the last good rules and reports the error with file and line. Either
way the outcome is announced once per distinct file content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.engine.rules import Rules, diff_thresholds, load_rules_bytes
from bot.kernel.errors import RulesError


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    message: str
    digest: str
    """sha256 of the file content this result is about (an alert key part)."""
    changes: tuple[tuple[str, object, object], ...] = ()


class RulesWatcher:
    def __init__(self, path: Path | None, rules: Rules) -> None:
        self.path = path
        self.rules = rules
        self._seen = rules.sha256

    def check(self, accept: Callable[[Rules], str | None] | None = None) -> ReloadResult | None:
        """Reload if the file changed since the last check; None when unchanged.

        ``accept`` may veto rules that load but cannot be used now (it returns
        the reason), e.g. an edit that deletes a hedge layer that is on.
        """
        if self.path is None:
            return None
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            digest = f"unreadable:{exc.errno}"
            if digest == self._seen:
                return None
            self._seen = digest
            return ReloadResult(False, f"{self.path}: cannot read ({exc.strerror}); "
                                       f"keeping rules {self.rules.sha256[:12]}", digest)
        digest = hashlib.sha256(raw).hexdigest()
        if digest == self._seen:
            return None
        self._seen = digest
        try:
            new = load_rules_bytes(raw, str(self.path), path=self.path)
        except RulesError as exc:
            return ReloadResult(
                False, f"rules edit refused, keeping rules {self.rules.sha256[:12]}:\n{exc}",
                digest,
            )
        veto = accept(new) if accept is not None else None
        if veto:
            return ReloadResult(
                False, f"rules edit refused, keeping rules {self.rules.sha256[:12]}:\n"
                       f"{self.path}: {veto}", digest,
            )
        changes = tuple(diff_thresholds(self.rules, new))
        old = self.rules
        self.rules = new
        lines = [f"rules reloaded: {old.sha256[:12]} -> {new.sha256[:12]}"]
        lines += [f"  {key}: {a!r} -> {b!r}" for key, a, b in changes] or [
            "  (no threshold changed)"
        ]
        lines.append("used from the next evaluation")
        return ReloadResult(True, "\n".join(lines), digest, changes)
