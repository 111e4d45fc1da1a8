"""The command handlers: subscriptions, and read-only views of the engine.

Commands: /start (welcome, subscribes to ``summary``; ``/start CODE`` in
invite mode), /help, /topics, /subscribe TOPIC…, /unsubscribe TOPIC… (and
an inline keyboard to toggle topics); the engine's views /status, /why,
/rules, /chart, /history [N], /calendar; admin-only /health, /reload,
/rundate YYYY-MM-DD, /preview.

The views come from an injected ``BotQueries`` object, so this module knows
nothing about indicators or rules and its handlers are tested with a stub.

In groups the bot answers its own commands only: python-telegram-bot's
``CommandHandler`` already ignores ``/status@otherbot``, and the catch-all for
unknown commands ignores commands addressed to another bot, and bare unknown
commands in groups (they may be any bot's).

Safety rules the handlers follow: every subscription change is keyed by the
chat the update came from, never by an argument, so no one can touch another
chat's data; everything a user typed that is echoed back is escaped; errors
from the engine are logged, not shown; a group's subscriptions can only be
changed by an ALVH admin.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeAlias

from telegram import Update
from telegram.constants import ChatType
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.app.telegram.access import Access
from bot.app.telegram.replies import (
    CALLBACK_PREFIX,
    all_topics,
    chat_id_of,
    keyboard,
    reply,
    sentence,
    topics_list,
)
from bot.delivery.channels.telegram_html import escape
from bot.delivery.outbox.subscribers import (
    REMOVED,
    SUBSCRIBABLE,
    InvalidSubscription,
    Subscriber,
    Subscribers,
    parse_topics,
)
from bot.kernel.alerts import TOPIC_HELP, Topic
from bot.kernel.redact import redact

log = logging.getLogger(__name__)

App: TypeAlias = Application[Any, Any, Any, Any, Any, Any]
Context: TypeAlias = ContextTypes.DEFAULT_TYPE
Handler: TypeAlias = Callable[[Update, Context], Coroutine[Any, Any, None]]
HISTORY_MAX = 60


class BotQueries(Protocol):
    """What the bot can show about the engine; every method returns Telegram HTML."""

    async def status(self) -> str: ...
    async def why(self) -> str: ...
    async def rules(self) -> str: ...
    async def chart(self) -> bytes | None: ...
    async def history(self, n: int) -> str: ...
    async def calendar(self) -> str: ...
    async def health(self) -> str: ...
    async def reload(self) -> str: ...
    async def rundate(self, date: dt.date) -> str: ...
    async def preview(self) -> str: ...


PUBLIC_COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "welcome; subscribes you to the daily summary"),
    ("help", "what the bot can do"),
    ("topics", "alert topics and your subscriptions"),
    ("subscribe", "subscribe to topics, e.g. /subscribe hedge condor"),
    ("unsubscribe", "unsubscribe from topics, e.g. /unsubscribe warning"),
    ("status", "hedge layers and condor status now"),
    ("why", "why the last decision was taken"),
    ("rules", "the rules in force"),
    ("chart", "the latest chart"),
    ("history", "the last N sessions, e.g. /history 10"),
    ("calendar", "upcoming FOMC / CPI / PPI blackouts"),
)
ADMIN_COMMANDS: tuple[tuple[str, str], ...] = (
    ("health", "data sources, store and delivery health"),
    ("reload", "reload the rules file"),
    ("rundate", "evaluate a session again, e.g. /rundate 2026-03-02"),
    ("preview", "what a rules edit would have changed"),
)


class BotCommands:
    """The handlers. ``register`` adds them to an ``Application``."""

    def __init__(self, subscribers: Subscribers, queries: BotQueries, access: Access) -> None:
        self._subs = subscribers
        self._queries = queries
        self._access = access

    def register(self, app: App) -> None:
        simple: dict[str, Handler] = {
            "start": self.start,
            "help": self.help,
            "topics": self.topics,
            "subscribe": self.subscribe,
            "unsubscribe": self.unsubscribe,
            "status": self._view("status", self._queries.status),
            "why": self._view("why", self._queries.why),
            "rules": self._view("rules", self._queries.rules),
            "calendar": self._view("calendar", self._queries.calendar),
            "chart": self.chart,
            "history": self.history,
            "health": self._view("health", self._queries.health, admin=True),
            "reload": self._view("reload", self._queries.reload, admin=True),
            "preview": self._view("preview", self._queries.preview, admin=True),
            "rundate": self.rundate,
        }
        for name, callback in simple.items():
            app.add_handler(CommandHandler(name, callback))
        app.add_handler(CallbackQueryHandler(self.button, pattern=f"^{CALLBACK_PREFIX}"))
        app.add_handler(MessageHandler(filters.COMMAND, self.unknown))
        app.add_handler(MessageHandler(filters.TEXT & filters.ChatType.PRIVATE, self.chatter))
        app.add_error_handler(self.on_error)

    # ------------------------------------------------------------------ access
    def _is_admin(self, update: Update) -> bool:
        user = update.effective_user
        chat = update.effective_chat
        if user is not None and user.id in self._access.admins:
            return True
        return chat is not None and chat.type == ChatType.PRIVATE and chat.id in self._access.admins

    async def _granted(self, update: Update) -> bool:
        chat_id = chat_id_of(update)
        if self._is_admin(update) or self._access.mode == "open":
            return True
        if self._access.mode == "allowlist":
            return chat_id in self._access.allowlist
        sub = await self._get(chat_id)
        return sub is not None and (sub.active or sub.deactivated_reason != REMOVED)

    def _refusal(self, update: Update) -> str:
        if self._access.mode == "allowlist":
            return (
                "This bot is private. Ask its admin to add your chat id "
                f"<code>{chat_id_of(update)}</code>."
            )
        return "This bot is invite-only: send /start followed by your invite code."

    async def _gate(self, update: Update) -> bool:
        if await self._granted(update):
            return True
        await reply(update, self._refusal(update))
        return False

    # ------------------------------------------------------------------ commands
    async def start(self, update: Update, context: Context) -> None:
        chat_id = chat_id_of(update)
        args = context.args or []
        if not await self._granted(update):
            if self._access.mode == "invite" and args:
                if not self._access.code_matches(args[0]):
                    await reply(update, "That invite code is not valid.")
                    return
                log.info("telegram: chat %d joined with the invite code", chat_id)
            else:
                await reply(update, self._refusal(update))
                return
        if not await self._may_change(update):
            return
        sub = await self._call(self._subs.subscribe, "telegram", str(chat_id), [Topic.SUMMARY])
        await reply(
            update,
            "<b>ALVH signal bot</b>\n"
            "End-of-day SPX iron-condor and VIX-hedge alerts after each NYSE close.\n\n"
            f"You are subscribed to: {topics_list(sub)}.\n"
            "Tap a topic below to add or remove it, or send /help.",
            markup=keyboard(sub),
        )

    async def help(self, update: Update, context: Context) -> None:
        await reply(update, self._help_text(update))

    def _help_text(self, update: Update) -> str:
        lines = ["<b>Commands</b>"]
        lines += [f"/{name} — {escape(what)}" for name, what in PUBLIC_COMMANDS]
        if self._is_admin(update):
            lines.append("\n<b>Admin</b>")
            lines += [f"/{name} — {escape(what)}" for name, what in ADMIN_COMMANDS]
        lines.append("\nTopics: " + ", ".join(topic.value for topic in SUBSCRIBABLE))
        return "\n".join(lines)

    async def topics(self, update: Update, context: Context) -> None:
        if not await self._gate(update):
            return
        sub = await self._get(chat_id_of(update))
        lines = ["<b>Topics</b>"]
        for topic in SUBSCRIBABLE:
            mark = "✅" if sub is not None and sub.active and topic in sub.topics else "▫️"
            lines.append(f"{mark} <b>{topic.value}</b> — {escape(TOPIC_HELP[topic])}")
        if self._is_admin(update):
            lines.append(f"🔧 <b>ops</b> — {escape(TOPIC_HELP[Topic.OPS])} (you receive it)")
        lines.append("\nTap to toggle, or /subscribe TOPIC, /unsubscribe TOPIC.")
        await reply(update, "\n".join(lines), markup=keyboard(sub))

    async def subscribe(self, update: Update, context: Context) -> None:
        await self._change(update, context, adding=True)

    async def unsubscribe(self, update: Update, context: Context) -> None:
        await self._change(update, context, adding=False)

    async def _change(self, update: Update, context: Context, *, adding: bool) -> None:
        if not await self._gate(update):
            return
        verb = "subscribe" if adding else "unsubscribe"
        args = context.args or []
        if not args:
            sub = await self._get(chat_id_of(update))
            await reply(
                update,
                f"Usage: /{verb} TOPIC… (or tap below). Topics: {all_topics()}.",
                markup=keyboard(sub),
            )
            return
        try:
            topics = parse_topics(args)
        except InvalidSubscription as exc:
            await reply(update, escape(sentence(str(exc))))
            return
        if not await self._may_change(update):
            return
        change = self._subs.subscribe if adding else self._subs.unsubscribe
        sub = await self._call(change, "telegram", str(chat_id_of(update)), topics)
        names = ", ".join(sorted(topic.value for topic in topics))
        done = "Subscribed to" if adding else "Unsubscribed from"
        await reply(update, f"{done} {names}. You receive: {topics_list(sub)}.")

    async def button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        if query is None:
            return
        if not await self._granted(update):
            await query.answer("Not allowed.", show_alert=True)
            return
        name = (query.data or "").removeprefix(CALLBACK_PREFIX)
        topic = next((t for t in SUBSCRIBABLE if t.value == name), None)
        if topic is None:
            await query.answer("Unknown topic.")
            return
        if not self._may_change_silently(update):
            await query.answer("Only an ALVH admin can change a group's topics.", show_alert=True)
            return
        sub = await self._call(self._subs.toggle, "telegram", str(chat_id_of(update)), topic)
        state = "on" if topic in sub.topics else "off"
        await query.answer(f"{topic.value}: {state}")
        try:
            await query.edit_message_reply_markup(reply_markup=keyboard(sub))
        except BadRequest as exc:  # "message is not modified" after a double tap
            log.debug("telegram: keyboard not updated: %s", exc.message)

    async def history(self, update: Update, context: Context) -> None:
        if not await self._gate(update):
            return
        args = context.args or []
        n = 5
        if args:
            word = args[0]
            number = word.isascii() and word.isdigit() and len(word) <= 3
            if len(args) > 1 or not number or not 1 <= int(word) <= HISTORY_MAX:
                await reply(update, f"Usage: /history [N], N a number from 1 to {HISTORY_MAX}.")
                return
            n = int(args[0])
        await self._answer(update, "history", lambda: self._queries.history(n))

    async def rundate(self, update: Update, context: Context) -> None:
        if not await self._admin_gate(update):
            return
        args = context.args or []
        try:
            if len(args) != 1:
                raise ValueError
            date = dt.date.fromisoformat(args[0])
        except ValueError:
            await reply(update, "Usage: /rundate YYYY-MM-DD, e.g. /rundate 2026-03-02.")
            return
        await self._answer(update, "rundate", lambda: self._queries.rundate(date))

    async def chart(self, update: Update, context: Context) -> None:
        if not await self._gate(update):
            return
        try:
            png = await self._queries.chart()
        except Exception:
            log.exception("telegram: /chart failed")
            await reply(update, "Sorry, /chart failed; the details are in the bot's log.")
            return
        message = update.effective_message
        if png is None or message is None:
            await reply(update, "No chart yet: it appears after the first evaluation.")
            return
        await message.reply_photo(photo=png, caption="Latest ALVH chart")

    async def unknown(self, update: Update, context: Context) -> None:
        message = update.effective_message
        word = (message.text or "").split()[0] if message and message.text else "?"
        _, at, addressee = word.partition("@")
        if at and addressee.lower() != (context.bot.username or "").lower():
            return  # "/status@otherbot": another bot's command, not ours to answer
        chat = update.effective_chat
        if not at and chat is not None and chat.type != ChatType.PRIVATE:
            return  # in a group, an unknown bare command may be any bot's
        word = word if len(word) <= 40 else word[:39] + "…"
        await reply(update, f"Unknown command {escape(word)}.\n\n{self._help_text(update)}")

    async def chatter(self, update: Update, context: Context) -> None:
        await reply(update, "I answer commands only. Send /help to see them.")

    async def on_error(self, update: object, context: Context) -> None:
        error = context.error
        token = context.bot.token if context.bot is not None else None
        text = redact(f"{type(error).__name__}: {error}", token)
        log.error("telegram: handler failed: %s", text)

    # ------------------------------------------------------------------ helpers
    def _view(
        self, name: str, fetch: Callable[[], Awaitable[str]], *, admin: bool = False
    ) -> Handler:
        async def handler(update: Update, context: Context) -> None:
            gate = self._admin_gate if admin else self._gate
            if await gate(update):
                await self._answer(update, name, fetch)

        handler.__name__ = f"cmd_{name}"
        return handler

    async def _admin_gate(self, update: Update) -> bool:
        if self._is_admin(update):
            return True
        await reply(update, "That command is for admins.")
        return False

    async def _answer(self, update: Update, name: str, fetch: Callable[[], Awaitable[str]]) -> None:
        try:
            body = await fetch()
        except Exception:
            log.exception("telegram: /%s failed", name)
            await reply(update, f"Sorry, /{name} failed; the details are in the bot's log.")
            return
        await reply(update, body or "(nothing to show)")

    def _may_change_silently(self, update: Update) -> bool:
        chat = update.effective_chat
        return chat is None or chat.type == ChatType.PRIVATE or self._is_admin(update)

    async def _may_change(self, update: Update) -> bool:
        if self._may_change_silently(update):
            return True
        await reply(update, "Only an ALVH admin can change a group's topics.")
        return False

    async def _get(self, chat_id: int) -> Subscriber | None:
        return await asyncio.to_thread(self._subs.get, "telegram", str(chat_id))

    @staticmethod
    async def _call(fn: Callable[..., Subscriber], *args: Any) -> Subscriber:
        return await asyncio.to_thread(fn, *args)
