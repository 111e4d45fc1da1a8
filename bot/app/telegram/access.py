"""Who may use the bot: everyone, holders of an invite code, or listed chats."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Literal

from pydantic import SecretStr

from bot.kernel.errors import ConfigError


@dataclass(frozen=True)
class Access:
    """Who may use the bot: everyone, holders of an invite code, or listed chats.

    Admins are always let in. In invite mode a chat that once gave the right
    code stays in (its subscriber row remembers it) until an admin removes it.
    """

    mode: Literal["open", "invite", "allowlist"] = "open"
    invite_code: SecretStr | None = None
    allowlist: frozenset[int] = field(default_factory=frozenset)
    admins: frozenset[int] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.mode == "invite" and not (
            self.invite_code and self.invite_code.get_secret_value().strip()
        ):
            raise ConfigError("ALVH_INVITE_CODE: required when ALVH_ACCESS_MODE=invite")
        if self.mode == "allowlist" and not (self.allowlist or self.admins):
            raise ConfigError("ALVH_ALLOWLIST_CHAT_IDS: required when ALVH_ACCESS_MODE="
                              "allowlist (or ALVH_ADMIN_CHAT_IDS, always let in): with "
                              "neither, no chat could use the bot")

    def code_matches(self, given: str) -> bool:
        if self.invite_code is None:
            return False
        expected = self.invite_code.get_secret_value().strip().encode()
        return hmac.compare_digest(given.strip().encode(), expected)
