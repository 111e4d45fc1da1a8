"""The Telegram channel with the real python-telegram-bot client against the fake Bot API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _delivery import TOKEN, FastTelegram, make_alert, make_bot
from fake_telegram import FakeTelegram, parse_html

from bot.delivery.channels import DeliveryRejected, DeliveryUnavailable, RecipientGone, RetryLater
from bot.delivery.channels.telegram import TelegramChannel
from bot.kernel.alerts import Alert, Topic

CHAT = 4242


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


class Reports:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []

    def __call__(self, alert: Alert, channel: str, recipient: str, detail: str) -> None:
        self.calls.append((alert.key, channel, recipient, detail))


async def test_html_alert_with_chart_is_a_photo_then_the_text(fake: FakeTelegram) -> None:
    alert = make_alert(
        Topic.SUMMARY, "daily_summary", "", chart=b"\x89PNG-chart", title="Daily <summary>"
    )
    async with make_bot(fake) as bot:
        await TelegramChannel(bot).send(str(CHAT), alert)
    photo, text = fake.sent_to(CHAT)
    assert photo.method == "sendPhoto"
    assert photo.photo == b"\x89PNG-chart"
    assert photo.text == "Daily <summary>"  # escaped in the caption, shown literally
    assert len(photo.raw) <= 1024
    assert text.method == "sendMessage"
    assert text.parse_mode == "HTML"
    assert text.raw == alert.html


async def test_a_10000_character_alert_arrives_whole_in_valid_parts(fake: FakeTelegram) -> None:
    line = "<b>{i}</b> <i>divergence &amp; breadth</i> <code>{i}&lt;x</code>"
    lines = [line.format(i=i) for i in range(220)]
    html = "<blockquote>" + "\n".join(lines) + "</blockquote>"
    assert len(html) > 10_000
    alert = make_alert(html=html)
    async with make_bot(fake) as bot:
        channel = TelegramChannel(bot)
        assert channel.cost(alert) >= 3
        await channel.send(str(CHAT), alert)
    sent = fake.sent_to(CHAT)
    assert len(sent) == channel.cost(alert)
    assert all(len(s.raw) <= 4096 for s in sent)
    assert [c.status for c in fake.calls_to("sendMessage")] == [200] * len(sent)
    assert "".join(s.text for s in sent) == parse_html(html)


async def test_refused_html_is_sent_as_plain_text_and_reported(fake: FakeTelegram) -> None:
    alert = make_alert(html="<b>Layer 1 <i>added</b>", text="Layer 1 added: plain version")
    reports = Reports()
    async with make_bot(fake) as bot:
        await TelegramChannel(bot, report=reports).send(str(CHAT), alert)
    refused = fake.calls_to("sendMessage", CHAT)[0]
    assert refused.status == 400
    assert "can't parse entities" in refused.description
    (sent,) = fake.sent_to(CHAT)
    assert sent.parse_mode is None
    assert sent.text == "Layer 1 added: plain version"
    ((key, channel, recipient, detail),) = reports.calls
    assert (key, channel, recipient) == (alert.key, "telegram", str(CHAT))
    assert "can't parse entities" in detail.lower() and "plain text" in detail


async def test_a_retry_resumes_at_the_part_that_failed(fake: FakeTelegram) -> None:
    html = "\n".join(f"<b>line {i}</b> " + "x" * 80 for i in range(120))
    alert = make_alert(html=html)
    fake.server_error(chat_id=CHAT, after=1)  # part 1 goes through, part 2 gets a 500
    async with make_bot(fake) as bot:
        channel = TelegramChannel(bot)
        parts = channel.cost(alert)
        assert parts >= 3
        with pytest.raises(DeliveryUnavailable):
            await channel.send(str(CHAT), alert)
        assert len(fake.sent_to(CHAT)) == 1
        await channel.send(str(CHAT), alert)
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
        (lambda f: f.fail(502, "Bad Gateway"), DeliveryUnavailable, "Bad Gateway"),
        (lambda f: f.time_out(2.0), DeliveryUnavailable, "TimedOut"),
    ],
)
async def test_telegram_errors_map_onto_channel_errors(
    fake: FakeTelegram, arrange: object, expected: type[Exception], words: str
) -> None:
    arrange(fake)  # type: ignore[operator]
    async with make_bot(fake, read_timeout=0.3) as bot:
        with pytest.raises(expected) as info:
            await FastTelegram(bot).send(str(CHAT), make_alert())
    assert words.lower() in str(info.value).lower()
    assert TOKEN not in str(info.value)
    if expected is RetryLater:
        assert info.value.seconds == 3.0  # type: ignore[attr-defined]


async def test_a_rejected_token_never_appears_in_the_error(fake: FakeTelegram) -> None:
    fake.fail(401, "Unauthorized", times=None)
    async with make_bot(fake) as bot:
        with pytest.raises(DeliveryRejected) as info:
            await TelegramChannel(bot).send(str(CHAT), make_alert())
    assert "token" in str(info.value)
    assert TOKEN.split(":")[1] not in str(info.value)


async def test_late_alerts_say_so(fake: FakeTelegram) -> None:
    async with make_bot(fake) as bot:
        await TelegramChannel(bot).send(str(CHAT), make_alert(late=True))
    (sent,) = fake.sent_to(CHAT)
    assert sent.text.startswith("⏱ delivered late — for the session of 2026-03-02")


async def test_group_chats_have_the_group_limit(fake: FakeTelegram) -> None:
    async with make_bot(fake) as bot:
        channel = TelegramChannel(bot)
        assert channel.recipient_rate("-100123").per_second == pytest.approx(20 / 60)
        assert channel.recipient_rate("123").per_second == 1.0
        assert channel.overall_rate().per_second == 30.0
