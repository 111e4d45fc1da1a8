"""What the bot sends back to a chat: HTML replies, topic lists, the topic keyboard.

Every reply is split into Telegram-sized parts that never cut a tag, and sent
as plain text if Telegram refuses the HTML, so a user always gets an answer.
"""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest

from bot.delivery.channels.telegram_html import split_html, to_plain
from bot.delivery.outbox.subscribers import SUBSCRIBABLE, Subscriber

log = logging.getLogger(__name__)

CALLBACK_PREFIX = "topic:"
"""Prefix of the inline keyboard's callback data (``topic:hedge``)."""


def chat_id_of(update: Update) -> int:
    chat = update.effective_chat
    if chat is None:  # pragma: no cover - handlers here only get chat updates
        raise ValueError("update without a chat")
    return int(chat.id)


def sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def all_topics() -> str:
    return ", ".join(topic.value for topic in SUBSCRIBABLE)


def topics_list(sub: Subscriber | None) -> str:
    if sub is None or not sub.active or not sub.topics:
        return "nothing yet"
    return ", ".join(f"<b>{t.value}</b>" for t in SUBSCRIBABLE if t in sub.topics)


def keyboard(sub: Subscriber | None) -> InlineKeyboardMarkup:
    on = sub.topics if sub is not None and sub.active else frozenset()
    rows = [
        [
            InlineKeyboardButton(
                f"{'✅' if topic in on else '➕'} {topic.value}",
                callback_data=f"{CALLBACK_PREFIX}{topic.value}",
            )
        ]
        for topic in SUBSCRIBABLE
    ]
    return InlineKeyboardMarkup(rows)


async def reply(update: Update, html: str, *, markup: InlineKeyboardMarkup | None = None) -> None:
    """Send HTML to the update's chat, split if long; plain text if Telegram refuses the HTML."""
    chat = update.effective_chat
    message = update.effective_message
    if chat is None or message is None:
        return
    parts = split_html(html)
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        try:
            await message.get_bot().send_message(
                chat.id,
                part,
                parse_mode=ParseMode.HTML,
                reply_markup=markup if last else None,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        except BadRequest as exc:
            if "can't parse entities" not in exc.message.lower():
                raise
            log.warning("telegram: reply refused as HTML (%s); sending plain text", exc.message)
            await message.get_bot().send_message(
                chat.id, to_plain(part), reply_markup=markup if last else None
            )
