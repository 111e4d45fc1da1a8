"""The Telegram channel with the real python-telegram-bot client against the fake Bot API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _delivery import FAST_LIMITS, LONG_BODY, TOKEN, FastTelegram, make_alert, make_bot
from fake_telegram import FakeTelegram, parse_html

from bot.delivery.channels import (
    DeliveryRejected,
    DeliveryUnavailable,
    Progress,
    RecipientGone,
    RetryLater,
)
from bot.delivery.channels.telegram import TelegramChannel
from bot.kernel.alerts import Topic

CHAT = 4242


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(limits=FAST_LIMITS) as server:
        yield server


async def test_a_chart_with_a_short_alert_is_one_photo_with_the_alert_as_caption() -> None:
    alert = make_alert(Topic.SUMMARY, "daily_summary", "", chart=b"\x89PNG-chart",
                       title="Daily <summary>", html="<b>Daily &lt;summary&gt;</b>\nSPX 6878.88")
    with FakeTelegram() as fake:  # Telegram's real limits
        async with make_bot(fake) as bot:
            await TelegramChannel(bot).send(str(CHAT), alert)
    (photo,) = fake.sent_to(CHAT)
    assert photo.method == "sendPhoto" and photo.photo == b"\x89PNG-chart"
    assert photo.parse_mode == "HTML" and photo.raw == alert.html
    assert photo.text == "Daily <summary>\nSPX 6878.88"
    assert not fake.limited


async def test_a_chart_with_a_long_alert_is_a_photo_then_the_text_a_second_later() -> None:
    alert = make_alert(Topic.SUMMARY, "daily_summary", "", chart=b"\x89PNG-chart",
                       title="Daily <summary>", html=LONG_BODY)
    assert len(parse_html(LONG_BODY)) > 1024
    with FakeTelegram() as fake:  # Telegram's real limits: 1 message/s to this chat
        async with make_bot(fake) as bot:
            channel = TelegramChannel(bot)
            assert channel.parts(alert) == 2
            await channel.send(str(CHAT), alert)
    photo, text = fake.sent_to(CHAT)
    assert photo.method == "sendPhoto" and photo.text == "Daily <summary>"
    assert text.method == "sendMessage" and text.raw == LONG_BODY
    assert text.at - photo.at >= 1.0  # paced: never two messages to a chat within 1 s
    assert not fake.limited


async def test_a_10000_character_alert_arrives_whole_in_valid_parts(fake: FakeTelegram) -> None:
    line = "<b>{i}</b> <i>divergence &amp; breadth</i> <code>{i}&lt;x</code>"
    lines = [line.format(i=i) for i in range(220)]
    html = "<blockquote>" + "\n".join(lines) + "</blockquote>"
    assert len(html) > 10_000
    alert = make_alert(html=html)
    async with make_bot(fake) as bot:
        channel = FastTelegram(bot)
        assert channel.parts(alert) >= 3
        await channel.send(str(CHAT), alert)
    sent = fake.sent_to(CHAT)
    assert len(sent) == channel.parts(alert)
    assert all(len(s.raw) <= 4096 for s in sent)
    assert [c.status for c in fake.calls_to("sendMessage")] == [200] * len(sent)
    assert "".join(s.text for s in sent) == parse_html(html)


async def test_refused_html_is_sent_as_plain_text_with_a_note_for_ops(fake: FakeTelegram) -> None:
    alert = make_alert(html="<b>Layer 1 <i>added</b>", text="Layer 1 added: plain version")
    async with make_bot(fake) as bot:
        result = await FastTelegram(bot).send_part(str(CHAT), alert, Progress())
    refused = fake.calls_to("sendMessage", CHAT)[0]
    assert refused.status == 400
    assert "can't parse entities" in refused.description
    (sent,) = fake.sent_to(CHAT)
    assert sent.parse_mode is None
    assert sent.text == "Layer 1 added: plain version"  # the alert's own plain version
    assert result.done and result.progress == Progress(1, fallback_at=0)
    assert result.note is not None
    assert "can't parse entities" in result.note.lower() and "plain text" in result.note


async def test_a_refused_second_part_keeps_the_first_and_sends_the_rest_plain(
    fake: FakeTelegram,
) -> None:
    good = "\n".join(f"<b>line {i}</b> " + "x" * 80 for i in range(50))
    alert = make_alert(html=good + "\n<b>broken <i>tag</b>")
    async with make_bot(fake) as bot:
        channel = FastTelegram(bot)
        first = await channel.send_part(str(CHAT), alert, Progress())
        assert not first.done and first.note is None
        second = await channel.send_part(str(CHAT), alert, first.progress)
    assert second.done and second.progress == Progress(2, fallback_at=1)
    one, two = fake.sent_to(CHAT)
    assert one.parse_mode == "HTML" and two.parse_mode is None
    assert "broken tag" in two.text and "line 0 " not in two.text  # no repeat of part 1


async def test_a_retry_resumes_at_the_part_that_failed(fake: FakeTelegram) -> None:
    html = "\n".join(f"<b>line {i}</b> " + "x" * 80 for i in range(120))
    alert = make_alert(html=html)
    fake.server_error(chat_id=CHAT, after=1)  # part 1 goes through, part 2 gets a 500
    async with make_bot(fake) as bot:
        channel = FastTelegram(bot)
        parts = channel.parts(alert)
        assert parts >= 3
        progress = (await channel.send_part(str(CHAT), alert, Progress())).progress
        with pytest.raises(DeliveryUnavailable):
            await channel.send_part(str(CHAT), alert, progress)
        assert len(fake.sent_to(CHAT)) == 1
        while True:  # what the worker does with the recorded progress
            result = await channel.send_part(str(CHAT), alert, progress)
            progress = result.progress
            if result.done:
                break
    texts = [s.raw for s in fake.sent_to(CHAT)]
    assert len(texts) == parts  # part 1 was not sent twice
    assert "".join(parse_html(t) for t in texts) == parse_html(html)


@pytest.mark.parametrize(
    ("arrange", "expected", "words"),
    [
        (lambda f: f.flood(retry_after=3), RetryLater, "retry after 3"),
        (lambda f: f.block(CHAT), RecipientGone, "blocked"),
        (lambda f: f.fail(400, "Bad Request: chat not found"), RecipientGone, "chat not found"),
        (lambda f: f.fail(400, "Bad Request: wrong file"), DeliveryRejected, "wrong file"),
        (lambda f: f.server_error(), DeliveryUnavailable, "Internal Server Error"),
        (lambda f: f.bad_gateway(every=1, methods=["sendMessage"]), DeliveryUnavailable,
         "Bad Gateway (502)"),
        (lambda f: f.time_out(2.0), DeliveryUnavailable, "TimedOut"),
        (lambda f: f.fail(401, "Unauthorized", times=None), DeliveryUnavailable,
         "token was rejected"),
    ],
)
async def test_telegram_errors_map_onto_channel_errors(
    fake: FakeTelegram, arrange: object, expected: type[Exception], words: str
) -> None:
    arrange(fake)  # type: ignore[operator]
    async with make_bot(fake, read_timeout=0.3) as bot:
        with pytest.raises(expected) as info:
            await FastTelegram(bot).send(str(CHAT), make_alert())
    text = str(info.value)
    assert words.lower() in text.lower()
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    assert "<html>" not in text  # nginx's page is not an error message
    if expected is RetryLater:
        assert info.value.seconds == 3.0  # type: ignore[attr-defined]
        assert info.value.recipient_only  # type: ignore[attr-defined]


async def test_late_alerts_say_so(fake: FakeTelegram) -> None:
    async with make_bot(fake) as bot:
        await FastTelegram(bot).send(str(CHAT), make_alert(late=True))
    (sent,) = fake.sent_to(CHAT)
    assert sent.text.startswith("⏱ delivered late — for the session of 2026-03-02")


async def test_group_chats_have_the_group_limit(fake: FakeTelegram) -> None:
    async with make_bot(fake) as bot:
        channel = TelegramChannel(bot)
        assert channel.recipient_rate("-100123").per_second == pytest.approx(20 / 60)
        assert channel.recipient_rate("123").per_second == 1.0
        assert channel.overall_rate().per_second == 30.0
