"""Conversations with the bot: the real PTB Application long-polling the fake Bot API."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from _delivery import FAST_LIMITS, TOKEN, FastTelegram, store_at
from fake_telegram import FakeTelegram, Sent, parse_html
from pydantic import SecretStr
from telegram import Bot

from bot.app.telegram import Access, build_application, start_bot, stop_bot
from bot.delivery.outbox import Subscribers
from bot.kernel.errors import ConfigError

ADMIN = 900
CODE = "tulip-42"


class StubQueries:
    """What the lead's engine provider will answer, reduced to canned HTML."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    async def status(self) -> str:
        return "<b>Status</b>: layer 1 on since 2026-02-27"

    async def why(self) -> str:
        raise RuntimeError("internal detail that must not reach users")

    async def rules(self) -> str:
        return "<code>rules sha256 abc</code>"

    async def chart(self) -> bytes | None:
        return b"\x89PNG chart bytes"

    async def history(self, n: int) -> str:
        self.calls.append(("history", n))
        return f"last {n} sessions"

    async def calendar(self) -> str:
        return "FOMC 2026-03-18"

    async def health(self) -> str:
        return "<b>healthy</b>"

    async def reload(self) -> str:
        return "rules reloaded"

    async def rundate(self, date: dt.date) -> str:
        self.calls.append(("rundate", date))
        return f"evaluated {date.isoformat()}"

    async def preview(self) -> str:
        return "no changes"


def ext_bot(token: str, fake: FakeTelegram) -> Bot:
    """The bot the Telegram channel builds (paced, observed), pointed at the fake server;
    Telegram's limits scaled as in the fake (``FAST_LIMITS``)."""
    return FastTelegram.connect(token, base_url=fake.base_url, read_timeout=3.0).bot


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(token=TOKEN, limits=FAST_LIMITS) as server:
        yield server


@asynccontextmanager
async def running(
    fake: FakeTelegram, path: Path, access: Access | None = None
) -> AsyncIterator[tuple[Subscribers, StubQueries]]:
    store = store_at(path)
    subs = Subscribers(store.engine)
    queries = StubQueries()
    app = build_application(
        ext_bot(TOKEN, fake),
        subscribers=subs,
        queries=queries,
        access=access or Access(admins=frozenset({ADMIN})),
    )
    await start_bot(app, poll_timeout=1.0)
    try:
        yield subs, queries
    finally:
        await stop_bot(app)
        store.close()


async def say(fake: FakeTelegram, chat: int, text: str, **kwargs: object) -> Sent:
    """Type ``text`` in ``chat`` and return the bot's last answer once it is complete."""
    before = len(fake.sent_to(chat))
    fake.user_says(chat, text, **kwargs)  # type: ignore[arg-type]
    await fake.wait_sent(chat, before + 1)
    count = -1
    while count != len(fake.sent_to(chat)):  # let a multi-part answer finish
        count = len(fake.sent_to(chat))
        await asyncio.sleep(0.05)
    return fake.sent_to(chat)[-1]


def topics_of(subs: Subscribers, chat: int) -> set[str]:
    sub = subs.get("telegram", str(chat))
    return {t.value for t in sub.topics} if sub and sub.active else set()


async def test_start_subscribes_to_the_summary(fake: FakeTelegram, tmp_path: Path) -> None:
    async with running(fake, tmp_path / "a.sqlite") as (subs, _):
        answer = await say(fake, 101, "/start")
        assert topics_of(subs, 101) == {"summary"}
    assert "You are subscribed to: summary." in answer.text
    buttons = [b["text"] for row in answer.reply_markup["inline_keyboard"] for b in row]
    assert buttons == ["➕ condor", "➕ hedge", "➕ warning", "✅ summary"]
    assert fake.calls_to("setMyCommands")


async def test_subscribe_and_unsubscribe(fake: FakeTelegram, tmp_path: Path) -> None:
    async with running(fake, tmp_path / "a.sqlite") as (subs, _):
        answer = await say(fake, 102, "/subscribe hedge Condor")
        assert answer.text == "Subscribed to condor, hedge. You receive: condor, hedge."
        answer = await say(fake, 102, "/unsubscribe condor")
        assert answer.text == "Unsubscribed from condor. You receive: hedge."
        assert topics_of(subs, 102) == {"hedge"}


async def test_a_bad_topic_gets_a_one_line_error(fake: FakeTelegram, tmp_path: Path) -> None:
    async with running(fake, tmp_path / "a.sqlite") as (subs, _):
        answer = await say(fake, 103, "/subscribe hedge bogus")
        assert topics_of(subs, 103) == set()
        ops = await say(fake, 103, "/subscribe ops")
    assert answer.text == "Unknown topic “bogus”; topics: condor, hedge, warning, summary."
    assert "\n" not in answer.text
    assert ops.text.startswith("“ops” is not a subscribable topic")


async def test_html_in_arguments_is_escaped(fake: FakeTelegram, tmp_path: Path) -> None:
    async with running(fake, tmp_path / "a.sqlite"):
        answer = await say(fake, 104, '/subscribe <b>x</b>&<a href="y">')
        unknown = await say(fake, 104, "/<i>boom")
    assert "<b>x</b>&<a" in answer.text  # shown literally, not interpreted
    assert parse_html(answer.raw) == answer.text
    assert unknown.text.startswith("Unknown command /<i>boom.")
    assert [c.status for c in fake.calls_to("sendMessage", 104)] == [200, 200]


async def test_the_inline_keyboard_toggles_topics(fake: FakeTelegram, tmp_path: Path) -> None:
    async with running(fake, tmp_path / "a.sqlite") as (subs, _):
        await say(fake, 105, "/topics")
        fake.user_presses(105, "topic:hedge")
        await fake.wait_until(lambda: len(fake.calls_to("editMessageReplyMarkup")) == 1)
        assert topics_of(subs, 105) == {"hedge"}
        fake.user_presses(105, "topic:hedge")
        await fake.wait_until(lambda: len(fake.calls_to("editMessageReplyMarkup")) == 2)
        assert topics_of(subs, 105) == set()
        fake.user_presses(105, "topic:ops")  # forged button data
        await fake.wait_until(lambda: len(fake.calls_to("answerCallbackQuery")) == 3)
        assert topics_of(subs, 105) == set()
    first = fake.calls_to("editMessageReplyMarkup")[0].params["reply_markup"]
    assert ["✅ hedge"] == [
        b["text"] for row in first["inline_keyboard"] for b in row if b["text"].startswith("✅")
    ]
    answers = [c.params.get("text") for c in fake.calls_to("answerCallbackQuery")]
    assert answers == ["hedge: on", "hedge: off", "Unknown topic."]


async def test_unknown_commands_and_chatter_get_help(fake: FakeTelegram, tmp_path: Path) -> None:
    async with running(fake, tmp_path / "a.sqlite"):
        answer = await say(fake, 106, "/frobnicate now")
        chatter = await say(fake, 106, "hello?")
    assert answer.text.startswith("Unknown command /frobnicate.")
    assert "/subscribe" in answer.text and "/health" not in answer.text
    assert chatter.text == "I answer commands only. Send /help to see them."


async def test_invite_mode(fake: FakeTelegram, tmp_path: Path) -> None:
    access = Access(mode="invite", invite_code=SecretStr(CODE), admins=frozenset({ADMIN}))
    async with running(fake, tmp_path / "a.sqlite", access) as (subs, _):
        refused = await say(fake, 107, "/topics")
        wrong = await say(fake, 107, "/start guess")
        assert subs.get("telegram", "107") is None
        welcome = await say(fake, 107, f"/start {CODE}")
        topics = await say(fake, 107, "/topics")
        assert topics_of(subs, 107) == {"summary"}
        other = await say(fake, 108, "/subscribe hedge")
    assert refused.text == "This bot is invite-only: send /start followed by your invite code."
    assert wrong.text == "That invite code is not valid."
    assert "You are subscribed to: summary." in welcome.text
    assert topics.text.startswith("Topics")
    assert other.text.startswith("This bot is invite-only")
    assert all(CODE not in s.raw for s in fake.sent)


def test_invite_mode_needs_a_code() -> None:
    with pytest.raises(ConfigError, match="ALVH_INVITE_CODE"):
        Access(mode="invite")


def test_allowlist_mode_needs_a_chat_it_lets_in() -> None:
    with pytest.raises(ConfigError) as err:
        Access(mode="allowlist")
    assert str(err.value).startswith(
        "ALVH_ALLOWLIST_CHAT_IDS: required when ALVH_ACCESS_MODE=allowlist")
    assert Access(mode="allowlist", admins=frozenset({ADMIN})).admins  # a private bot: fine


async def test_allowlist_mode(fake: FakeTelegram, tmp_path: Path) -> None:
    access = Access(mode="allowlist", allowlist=frozenset({556}), admins=frozenset({ADMIN}))
    async with running(fake, tmp_path / "a.sqlite", access) as (subs, _):
        refused = await say(fake, 555, "/start")
        allowed = await say(fake, 556, "/start")
        admin = await say(fake, ADMIN, "/start")
        assert subs.get("telegram", "555") is None
    assert refused.text == "This bot is private. Ask its admin to add your chat id 555."
    assert "You are subscribed to: summary." in allowed.text
    assert "You are subscribed to: summary." in admin.text


async def test_admin_commands_are_for_admins(fake: FakeTelegram, tmp_path: Path) -> None:
    async with running(fake, tmp_path / "a.sqlite") as (_, queries):
        refused = await say(fake, 109, "/health")
        refused_rundate = await say(fake, 109, "/rundate 2026-03-02")
        health = await say(fake, ADMIN, "/health")
        usage = await say(fake, ADMIN, "/rundate yesterday")
        ran = await say(fake, ADMIN, "/rundate 2026-03-02")
        help_ = await say(fake, ADMIN, "/help")
    assert refused.text == refused_rundate.text == "That command is for admins."
    assert health.raw == "<b>healthy</b>"
    assert usage.text == "Usage: /rundate YYYY-MM-DD, e.g. /rundate 2026-03-02."
    assert ran.text == "evaluated 2026-03-02"
    assert queries.calls == [("rundate", dt.date(2026, 3, 2))]
    assert "/health" in help_.text and "/preview" in help_.text


async def test_engine_views(fake: FakeTelegram, tmp_path: Path) -> None:
    async with running(fake, tmp_path / "a.sqlite") as (_, queries):
        status = await say(fake, 110, "/status")
        bad = await say(fake, 110, "/history lots")
        superscript = await say(fake, 110, "/history ²")
        history = await say(fake, 110, "/history 12")
        why = await say(fake, 110, "/why")
        chart = await say(fake, 110, "/chart")
    assert status.raw == "<b>Status</b>: layer 1 on since 2026-02-27"
    assert bad.text == superscript.text == "Usage: /history [N], N a number from 1 to 60."
    assert history.text == "last 12 sessions"
    assert queries.calls == [("history", 12)]
    assert why.text == "Sorry, /why failed; the details are in the bot's log."
    assert "internal detail" not in why.text
    assert chart.method == "sendPhoto" and chart.photo == b"\x89PNG chart bytes"


async def test_no_one_reaches_another_chats_subscriptions(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    async with running(fake, tmp_path / "a.sqlite") as (subs, _):
        await say(fake, 201, "/subscribe hedge warning")
        theirs = await say(fake, 202, "/topics")
        await say(fake, 202, "/unsubscribe all")
        fake.user_presses(202, "topic:hedge", user_id=202)
        await fake.wait_until(lambda: len(fake.calls_to("answerCallbackQuery")) == 1)
        assert topics_of(subs, 201) == {"hedge", "warning"}
        assert topics_of(subs, 202) == {"hedge"}
    assert "✅" not in theirs.text


async def test_only_admins_change_a_groups_topics(fake: FakeTelegram, tmp_path: Path) -> None:
    async with running(fake, tmp_path / "a.sqlite") as (subs, _):
        refused = await say(fake, -300, "/subscribe hedge", user_id=301)
        done = await say(fake, -300, "/subscribe hedge", user_id=ADMIN)
        assert topics_of(subs, -300) == {"hedge"}
    assert refused.text == "Only an ALVH admin can change a group's topics."
    assert done.text.startswith("Subscribed to hedge.")


async def test_a_rejected_token_is_a_config_error_without_the_token(tmp_path: Path) -> None:
    with FakeTelegram(token="111:the-right-one") as fake:
        store = store_at(tmp_path / "a.sqlite")
        app = build_application(
            ext_bot(TOKEN, fake),
            subscribers=Subscribers(store.engine),
            queries=StubQueries(),
            access=Access(),
        )
        with pytest.raises(ConfigError) as info:
            await start_bot(app)
        await stop_bot(app)
        store.close()
    assert "rejected" in str(info.value)
    assert TOKEN.split(":")[1] not in str(info.value)


async def test_in_groups_only_our_own_commands_are_answered(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    async with running(fake, tmp_path / "a.sqlite") as _:
        fake.user_says(-400, "/status@otherbot", user_id=401)  # another bot's command
        fake.user_says(-400, "/frobnicate", user_id=401)  # unknown, maybe another bot's
        fake.user_says(-400, "/frobnicate@otherbot", user_id=401)
        ours = await say(fake, -400, "/status@alvh_test_bot", user_id=401)
        unknown = await say(fake, -400, "/frobnicate@alvh_test_bot", user_id=401)
        mine = await say(fake, 402, "/frobnicate")  # a private chat: always answered
    assert "Status" in ours.text
    assert unknown.text.startswith("Unknown command /frobnicate@alvh_test_bot")
    assert mine.text.startswith("Unknown command /frobnicate")
    assert len(fake.sent_to(-400)) == 2  # nothing for the three that were not ours


async def test_a_reply_refused_by_flood_control_arrives_after_retry_after(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    """Three /status, each reply answered once with 429 retry_after 1: all three arrive."""
    chats = (501, 502, 503)
    async with running(fake, tmp_path / "a.sqlite") as _:
        for chat in chats:
            fake.flood(retry_after=1, chat_id=chat)
            fake.user_says(chat, "/status")
        for chat in chats:
            await fake.wait_sent(chat, 1, within=10)
    for chat in chats:
        refused, accepted = fake.calls_to("sendMessage", chat)
        assert refused.status == 429 and accepted.status == 200
        assert accepted.at - refused.at >= 0.95  # retry_after honoured
        (reply,) = fake.sent_to(chat)
        assert "Status" in reply.text
