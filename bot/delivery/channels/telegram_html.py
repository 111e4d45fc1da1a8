"""Telegram HTML: escaping for compose code, and splitting long messages safely.

Telegram refuses a message over 4096 characters, and a message cut inside a
tag or an entity is refused as "can't parse entities". ``split_html`` cuts on
line boundaries, closes the tags that are open at the cut and reopens them
(with their attributes) at the start of the next part, and only when one
line alone is too long does it cut inside the line, between words, tags and
entities, never inside one.

Lengths are counted in UTF-16 code units, as Telegram counts them (an emoji
is two), on the raw HTML: that is never less than the length Telegram
measures after parsing, so a part that fits here fits there.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

MAX_MESSAGE = 4096
MAX_CAPTION = 1024

_TAG = re.compile(r"</?([a-zA-Z][a-zA-Z0-9-]*)(?:\s[^<>]*)?>")
_ATOM_HTML = re.compile(
    r"</?[a-zA-Z][a-zA-Z0-9-]*(?:\s[^<>]*)?>"  # a tag
    r"|&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z]+);"  # an entity
    r"|\s+"
    r"|[^\s<&]+"
    r"|[\s\S]"
)
_ATOM_PLAIN = re.compile(r"\s+|\S+")


def escape(text: object) -> str:
    """Escape any value for Telegram HTML (text or attribute)."""
    return html.escape(str(text), quote=True)


def bold(text: object) -> str:
    return f"<b>{escape(text)}</b>"


def italic(text: object) -> str:
    return f"<i>{escape(text)}</i>"


def code(text: object) -> str:
    return f"<code>{escape(text)}</code>"


def pre(text: object) -> str:
    return f"<pre>{escape(text)}</pre>"


def link(url: str, text: object) -> str:
    return f'<a href="{escape(url)}">{escape(text)}</a>'


def u16len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def to_plain(markup: str) -> str:
    """The visible text of Telegram HTML: tags dropped, entities decoded."""
    return html.unescape(_TAG.sub("", markup))


def split_html(markup: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Parts of at most ``limit`` UTF-16 units, each well-formed if the input is."""
    return _split(markup, limit, markup_aware=True)


def split_plain(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Plain text in parts of at most ``limit``, cut at lines, then words."""
    return _split(text, limit, markup_aware=False)


def truncate_html(markup: str, limit: int) -> str:
    """The first part of ``markup`` that fits ``limit`` (captions), marked with … if cut."""
    parts = split_html(markup, limit - 1)
    if len(parts) <= 1:
        return markup
    return parts[0] + "…"


def _split(text: str, limit: int, *, markup_aware: bool) -> list[str]:
    if u16len(text) <= limit:
        return [text] if text.strip() else []
    packer = _Packer(limit, markup_aware)
    for line in text.splitlines(keepends=True):
        packer.add(line, atoms=True)
    return packer.finish()


@dataclass
class _Packer:
    limit: int
    markup_aware: bool
    parts: list[str] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)
    size: int = 0
    has_text: bool = False
    stack: list[tuple[str, str]] = field(default_factory=list)
    """Open tags as (name, the opening tag exactly as written)."""

    def add(self, piece: str, *, atoms: bool) -> None:
        after = self._scan(piece)
        if self._fits(piece, after):
            self._append(piece, after)
            return
        if self.has_text:
            self._flush()
            if self._fits(piece, after):
                self._append(piece, after)
                return
        if atoms:
            pattern = _ATOM_HTML if self.markup_aware else _ATOM_PLAIN
            for match in pattern.finditer(piece):
                self.add(match.group(), atoms=False)
        elif len(piece) > 1 and not piece.startswith(("<", "&")):
            for char in piece:  # one word longer than a whole message
                self.add(char, atoms=False)
        else:
            # A single tag or character that cannot fit even in an empty part:
            # only possible with an absurd limit; keep it whole rather than break it.
            self._append(piece, after)

    def finish(self) -> list[str]:
        if self.has_text:
            self.parts.append("".join(self.pieces) + self._closers(self.stack))
        return self.parts

    # ------------------------------------------------------------------ internals
    def _fits(self, piece: str, after: list[tuple[str, str]]) -> bool:
        return self.size + u16len(piece) + u16len(self._closers(after)) <= self.limit

    def _append(self, piece: str, after: list[tuple[str, str]]) -> None:
        self.pieces.append(piece)
        self.size += u16len(piece)
        self.stack = after
        if not self.has_text:
            visible = to_plain(piece) if self.markup_aware else piece
            self.has_text = bool(visible.strip())

    def _flush(self) -> None:
        self.parts.append("".join(self.pieces) + self._closers(self.stack))
        reopen = "".join(opener for _, opener in self.stack)
        self.pieces = [reopen]
        self.size = u16len(reopen)
        self.has_text = False

    def _scan(self, piece: str) -> list[tuple[str, str]]:
        """The open-tag stack after ``piece``."""
        if not self.markup_aware or "<" not in piece:
            return self.stack
        stack = list(self.stack)
        for match in _TAG.finditer(piece):
            tag, name = match.group(), match.group(1).lower()
            if tag.startswith("</"):
                for i in range(len(stack) - 1, -1, -1):
                    if stack[i][0] == name:
                        del stack[i:]
                        break
            else:
                stack.append((name, tag))
        return stack

    @staticmethod
    def _closers(stack: list[tuple[str, str]]) -> str:
        return "".join(f"</{name}>" for name, _ in reversed(stack))
