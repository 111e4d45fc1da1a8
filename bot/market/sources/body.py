"""Text-level checks every source applies to a body before parsing it.

Sources that fail tend to answer 200 with an HTML error or consent page, an
XML error document or nothing at all; these are detected before any parsing
rather than surfacing later as a confusing "missing column" or JSON error.
Shared by the CSV parsers (:mod:`bot.market.sources.files`) and the JSON
sources (Yahoo, WSJ, FRED, the Fed).
"""

from __future__ import annotations

import json

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
