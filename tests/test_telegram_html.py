"""Splitting Telegram HTML: every part within the limit, well-formed, nothing lost."""

from __future__ import annotations

import pytest
from fake_telegram import EntityError, parse_html

from bot.delivery.channels.telegram_html import (
    escape,
    link,
    split_html,
    split_plain,
    to_plain,
    truncate_html,
    u16len,
)


def _long_message() -> str:
    """About 10,000 characters with nested tags, links, entities and a <pre> block."""
    lines = ["<b>ALVH daily summary</b> — <i>session 2026-03-02</i>"]
    for i in range(120):
        lines.append(
            f"<b>{i:03d}</b> <i>MACD &lt; signal &amp; A/D &gt; 0</i> "
            f'<a href="https://example.com/x?a={i}&amp;b=2">link {i}</a> <code>x&lt;{i}</code>'
        )
    lines.append("<pre>" + "\n".join(f"row {i}: 4,512.25  {i * 3}" for i in range(80)) + "</pre>")
    body = "\n".join(lines)
    return f"<blockquote>{body}</blockquote>"


def test_a_10000_character_message_splits_into_valid_parts() -> None:
    message = _long_message()
    assert len(message) > 10_000
    parts = split_html(message)
    assert len(parts) >= 3
    for part in parts:
        assert u16len(part) <= 4096
        parse_html(part)  # the fake server's validator: raises on a broken part
        assert part.startswith("<blockquote>")
        assert part.endswith("</blockquote>")
    assert "".join(parse_html(p) for p in parts) == parse_html(message)


def test_split_inside_pre_closes_and_reopens_it() -> None:
    message = "<pre>" + "\n".join("x" * 50 for _ in range(200)) + "</pre>"
    parts = split_html(message, 1000)
    assert len(parts) > 1
    assert all(p.startswith("<pre>") and p.endswith("</pre>") for p in parts)
    assert "".join(to_plain(p) for p in parts) == to_plain(message)


def test_one_line_longer_than_the_limit_is_cut_outside_tags_and_entities() -> None:
    message = "<b>" + " ".join(f"w{i}&amp;<i>it</i>" for i in range(1500)) + "</b>"
    assert "\n" not in message
    parts = split_html(message, 500)
    assert len(parts) > 5
    for part in parts:
        assert u16len(part) <= 500
        parse_html(part)
    assert "".join(parse_html(p) for p in parts) == parse_html(message)


def test_a_single_word_longer_than_the_limit_is_cut_anyway() -> None:
    message = "<code>" + "a" * 5000 + "</code>"
    parts = split_html(message)
    assert [u16len(p) <= 4096 for p in parts] == [True, True]
    assert "".join(parse_html(p) for p in parts) == "a" * 5000


def test_length_counts_utf16_units_like_telegram() -> None:
    message = "📈" * 3000  # 6000 UTF-16 units, 3000 code points
    parts = split_html(message)
    assert len(parts) == 2
    assert all(u16len(p) <= 4096 for p in parts)


def test_short_messages_are_untouched_and_empty_ones_dropped() -> None:
    assert split_html("<b>hi</b>") == ["<b>hi</b>"]
    assert split_html("   ") == []


def test_plain_split_keeps_every_character() -> None:
    text = "\n".join(f"line {i} <not a tag> & more" for i in range(800))
    parts = split_plain(text)
    assert all(len(p) <= 4096 for p in parts)
    assert "".join(parts) == text


def test_escape_makes_user_text_inert() -> None:
    nasty = '<b>bold</b> & <a href="x">"q"</a>'
    escaped = escape(nasty)
    assert parse_html(escaped) == nasty
    assert parse_html(link('https://e.com/?a=1&b="2"', "<x>")) == "<x>"


def test_truncated_caption_is_valid_and_short() -> None:
    caption = "<b>" + "word " * 400 + "</b>"
    short = truncate_html(caption, 1024)
    assert u16len(short) <= 1024
    assert short.endswith("…")
    parse_html(short)


def test_validator_rejects_what_telegram_rejects() -> None:
    bad_ones = [
        "<b>x",
        "<b>x</i>",
        "a < b",
        "AT&T",
        "<div>x</div>",
        "</b>",
        '<span class="x">y</span>',
    ]
    for bad in bad_ones:
        with pytest.raises(EntityError):
            parse_html(bad)
