"""The fake Bot API is as strict as Telegram: a test double that lets through what
Telegram refuses would let the bot's bugs through too.

Each check talks to the fake over real HTTP with httpx, the way any client would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fake_telegram import RECORDED, FakeTelegram, Limits

TOKEN = "123:fake"


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


def send(fake: FakeTelegram, chat: int, text: str = "hi", **extra: object) -> httpx.Response:
    return httpx.post(f"{fake.base_url}{TOKEN}/sendMessage",
                      json={"chat_id": chat, "text": text, **extra}, timeout=5)


def test_a_second_message_to_a_chat_within_a_second_is_429_with_retry_after(
    fake: FakeTelegram,
) -> None:
    assert send(fake, 1).status_code == 200
    refused = send(fake, 1)
    assert refused.status_code == 429
    body = refused.json()
    recorded = json.loads((RECORDED / "429_too_many_requests.json").read_text())
    assert set(body) == set(recorded) and set(body["parameters"]) == {"retry_after"}
    assert body["parameters"]["retry_after"] == 1
    assert body["description"] == "Too Many Requests: retry after 1"
    assert send(fake, 2).status_code == 200  # another chat is not held back
    time.sleep(1.0)
    assert send(fake, 1).status_code == 200
    assert fake.limited["chat"] == 1
    assert len(fake.sent_to(1)) == 2


def test_more_than_30_messages_a_second_are_refused(fake: FakeTelegram) -> None:
    """The window is counted on arrival times, so the check is too: on a loaded machine
    the 40 requests may arrive over more than a second, and then more than 30 pass."""
    with ThreadPoolExecutor(40) as pool:  # 40 chats at once
        statuses = list(pool.map(lambda chat: send(fake, chat).status_code, range(1, 41)))
    calls = fake.calls_to("sendMessage")
    accepted = sorted(c.at for c in calls if c.status == 200)
    assert statuses.count(200) == len(accepted) and statuses.count(429) == 40 - len(accepted)
    assert fake.limited["overall"] == statuses.count(429)
    busiest = max(sum(1 for t in accepted if start <= t < start + 1.0) for start in accepted)
    assert busiest <= 30  # never over
    if max(c.at for c in calls) - min(c.at for c in calls) < 1.0:
        assert busiest == 30 and statuses.count(429) == 10


def test_the_overall_window_slides_on_arrival_times() -> None:
    """The same limit with the arrival times chosen, so no machine's speed matters."""
    fake = FakeTelegram()  # not started: _answer is called directly
    try:
        t0 = 1000.0
        first = [fake._answer(TOKEN, "sendMessage", {"chat_id": chat, "text": "x"}, {},
                              now=t0 + chat / 100)[0] for chat in range(1, 41)]
        assert first == [200] * 30 + [429] * 10
        # 1 s after the first accepted send, its slot is free again (one slot, not ten).
        later = [fake._answer(TOKEN, "sendMessage", {"chat_id": chat, "text": "x"}, {},
                              now=t0 + 1.011)[0] for chat in (41, 42)]
        assert later == [200, 429]
        assert fake.limited["overall"] == 11
    finally:
        fake.stop()


def test_a_group_takes_20_messages_a_minute() -> None:
    with FakeTelegram(limits=Limits(group_window=2.0, per_second=1000)) as fake:
        statuses = [send(fake, -100).status_code for _ in range(21)]
        assert statuses == [200] * 20 + [429]
        assert send(fake, -100).json()["parameters"]["retry_after"] >= 1


def test_bot_wide_flood_control_refuses_every_chat(fake: FakeTelegram) -> None:
    fake.flood_all(retry_after=2, seconds=1.5)  # room for a loaded machine's three sends
    assert {send(fake, chat).json()["parameters"]["retry_after"] for chat in (1, 2, 3)} == {2}
    time.sleep(1.6)
    assert send(fake, 4).status_code == 200
    assert fake.limited["flood"] == 3


def test_down_means_connection_refused_then_back_on_the_same_port(fake: FakeTelegram) -> None:
    with httpx.Client(timeout=5) as client:  # a kept-alive connection is dropped too
        assert client.post(f"{fake.base_url}{TOKEN}/getMe").status_code == 200
        url = fake.base_url
        fake.down(seconds=0.5)
        with pytest.raises(httpx.TransportError):
            client.post(f"{url}{TOKEN}/getMe")
        with pytest.raises(httpx.ConnectError):
            httpx.post(f"{url}{TOKEN}/sendMessage", json={"chat_id": 1, "text": "x"})
        time.sleep(0.8)
        assert fake.base_url == url
        assert client.post(f"{url}{TOKEN}/getMe").status_code == 200
    assert fake.sent == []


def test_every_nth_request_is_nginx_502_page_and_not_delivered(fake: FakeTelegram) -> None:
    fake.bad_gateway(every=3)
    answers = [send(fake, chat) for chat in range(1, 7)]
    assert [a.status_code for a in answers] == [200, 200, 502, 200, 200, 502]
    assert answers[2].content == (RECORDED / "502_bad_gateway.html").read_bytes()
    assert answers[2].headers["content-type"] == "text/html"
    assert sorted(s.chat_id for s in fake.sent) == [1, 2, 4, 5]


def test_html_entities_and_lengths_are_checked_as_telegram_does(fake: FakeTelegram) -> None:
    bad = send(fake, 1, "<b>unclosed", parse_mode="HTML")
    assert bad.status_code == 400
    assert bad.json()["description"].startswith("Bad Request: can't parse entities: ")
    assert send(fake, 2, "<script>x</script>", parse_mode="HTML").json()["description"] == (
        "Bad Request: can't parse entities: Unsupported start tag \"script\" at byte offset 0")
    assert send(fake, 3, "x" * 4097).json()["description"] == "Bad Request: message is too long"
    assert send(fake, 4, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML").status_code == 200
    caption = httpx.post(f"{fake.base_url}{TOKEN}/sendPhoto", data={"chat_id": 5,
                         "caption": "y" * 1025}, files={"photo": ("c.png", b"\x89PNG")}, timeout=5)
    assert caption.json()["description"] == "Bad Request: message caption is too long"
    assert [s.chat_id for s in fake.sent] == [4]  # refused messages do not count either


def test_blocked_and_wrong_token_answers_are_the_recorded_ones() -> None:
    with FakeTelegram(token=TOKEN) as fake:
        fake.block(9)
        blocked = send(fake, 9)
        assert blocked.status_code == 403
        assert blocked.json() == json.loads((RECORDED / "403_blocked.json").read_text())
        wrong = httpx.post(f"{fake.base_url}999:other/getMe", timeout=5)
        assert wrong.status_code == 401
        assert wrong.json() == json.loads((RECORDED / "401_unauthorized.json").read_text())
