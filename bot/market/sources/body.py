"""Text-level checks every source applies to a body before parsing it.

Sources that fail tend to answer 200 with an HTML error or consent page, an
XML error document or nothing at all; these are detected before any parsing
rather than surfacing later as a confusing "missing column" or JSON error.
Shared by the CSV parsers (:mod:`bot.market.sources.files`) and the JSON
sources (Yahoo, WSJ, FRED, the Fed).
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

from bot.kernel.errors import SourceDataError


def decode_body(body: bytes | str, source: str, kind: str = "CSV") -> str:
    """Bytes to text, refusing what is obviously not data.

    Sources that fail tend to answer 200 with an HTML error or consent page,
    so HTML is detected before any parsing rather than surfacing later as a
    confusing "missing column".
    """
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SourceDataError(source, f"body is not UTF-8 text ({exc.reason})") from None
    else:
        text = body.removeprefix("\ufeff")
    stripped = text.strip()
    if not stripped:
        raise SourceDataError(source, "empty body")
    head = stripped[:512].lower()
    if head.startswith(("<!doctype", "<html")) or "<html" in head:
        raise SourceDataError(source, f"HTML page instead of {kind}")
    if head.startswith("<?xml"):
        # CDNs and S3 answer errors such as AccessDenied as XML documents.
        raise SourceDataError(source, f"XML document instead of {kind}: {stripped[:120]!r}")
    return text


def load_json(body: bytes | str, source: str) -> object:
    """Parse a JSON body; a cut-off download is the usual reason it fails."""
    text = decode_body(body, source, kind="JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceDataError(
            source, f"truncated or invalid JSON ({exc.msg} at char {exc.pos} of {len(text)})"
        ) from None


class _Text(HTMLParser):
    """The page's text, one chunk per element, scripts and styles left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.chunks.append(data)


def html_text(body: str) -> str:
    """Markup to text with single spaces ("<td>Advances</td><td>1408</td>" reads
    "Advances 1408"); a page that is already text comes back with its spaces folded."""
    reader = _Text()
    reader.feed(body)
    reader.close()
    return " ".join(" ".join(reader.chunks).split())
