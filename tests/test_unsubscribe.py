"""Email subscribers through the whole bot, and their one-click unsubscribe over real HTTP.

`alvh subscribers add` then `alvh run-once --source snapshot` (one subscriber
store whatever the market source), a real SMTP server (aiosmtpd) receiving the
mail, the bot's own HTTP server answering the link in it.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_email_channel import Mailbox, smtp_server

from bot.app.cli import main
from bot.app.health import Health, HealthServer
from bot.app.root import UNSUBSCRIBE_KEY_FILE, Root
from bot.app.settings import Settings
from bot.app.unsubscribe import REASON, UnsubscribeEndpoint
from bot.delivery.outbox import Subscribers
from bot.delivery.unsubscribe import UnsubscribeLinks
from bot.kernel.errors import ConfigError
from bot.store import open_store

PUBLIC = "https://alvh.example.test"
TRADER = "trader@example.org"


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def smtp(mailbox: Mailbox) -> Iterator[int]:
    with smtp_server(mailbox) as port:
        yield port


@pytest.fixture
def env(snapshot_dir: Path, no_alvh_env: pytest.MonkeyPatch, smtp: int) -> pytest.MonkeyPatch:
    for key, value in {"ALVH_DATA_DIR": str(snapshot_dir), "ALVH_SMTP_HOST": "127.0.0.1",
                       "ALVH_SMTP_PORT": str(smtp), "ALVH_SMTP_SECURITY": "none",
                       "ALVH_SMTP_FROM": "alvh@example.com", "ALVH_PUBLIC_URL": PUBLIC}.items():
        no_alvh_env.setenv(key, value)
    return no_alvh_env


def _link(message: object) -> str:
    header = str(message["List-Unsubscribe"]).strip()  # type: ignore[index]
    assert header.startswith("<") and header.endswith(">")
    return header[1:-1]


async def _serve(settings: Settings, request: tuple[str, str, bytes]) -> httpx.Response:
    """POST/GET ``path?query`` to the bot's HTTP server with the unsubscribe route."""
    store = open_store(settings.store_url)
    links = Root(settings).unsubscribe_links()
    assert links is not None
    route = {links.PATH: UnsubscribeEndpoint(Subscribers(store.engine), links)}
    try:
        async with HealthServer("127.0.0.1", 0, lambda: Health(True, {}), lambda: b"",
                                route) as server:
            method, target, body = request
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
                return await client.request(method, target, content=body, headers={
                    "Content-Type": "application/x-www-form-urlencoded"})
    finally:
        store.close()


def test_an_email_subscriber_gets_the_snapshot_run_and_unsubscribes_in_one_click(
    env: pytest.MonkeyPatch, snapshot_dir: Path, mailbox: Mailbox,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["subscribers", "add", TRADER, "all"]) == 0
    assert main(["run-once", "--source", "snapshot"]) == 0
    out = capsys.readouterr().out
    assert "2 alert(s) stored" in out and "0 left" in out
    subjects = sorted(str(m["Subject"]) for rcpt, m, _ in mailbox.messages if rcpt == [TRADER])
    assert subjects == ["ALVH: 📊 ALVH daily · 2026-02-27", "ALVH: 🦅 CONDOR GO · 2026-02-27"]
    message = mailbox.messages[0][1]
    link = _link(message)
    assert link.startswith(f"{PUBLIC}/unsubscribe?t=")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    plain = message.get_body(("plain",))
    assert plain is not None and link in plain.get_content()
    assert (snapshot_dir / UNSUBSCRIBE_KEY_FILE).stat().st_mode & 0o077 == 0  # bot-only key

    settings = Settings(_env_file=None)
    target = link.removeprefix(PUBLIC)
    # A link scanner opening it changes nothing: it gets the confirmation page.
    page = asyncio.run(_serve(settings, ("GET", target, b"")))
    assert page.status_code == 200 and 'method="post"' in page.text and TRADER in page.text
    store = open_store(settings.store_url)
    try:
        subscriber = Subscribers(store.engine).get("email", TRADER)
        assert subscriber is not None and subscriber.active
    finally:
        store.close()
    # A tampered token is refused and changes nothing.
    number, _, mac = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["t"][0].partition(".")
    forged = f"/unsubscribe?t={int(number) + 1}.{mac}"
    refused = asyncio.run(_serve(settings, ("POST", forged, b"List-Unsubscribe=One-Click")))
    assert refused.status_code == 400 and "not valid" in refused.text
    # The mail client's one-click POST (RFC 8058) unsubscribes.
    done = asyncio.run(_serve(settings, ("POST", target, b"List-Unsubscribe=One-Click")))
    assert done.status_code == 200 and "no more ALVH alerts" in done.text
    store = open_store(settings.store_url)
    try:
        subscriber = Subscribers(store.engine).get("email", TRADER)
        assert subscriber is not None and not subscriber.active
        assert subscriber.deactivated_reason == REASON
    finally:
        store.close()
    # The next run sends them nothing.
    before = len(mailbox.messages)
    assert main(["run-once", "--source", "snapshot", "--date", "2026-02-26"]) == 0
    capsys.readouterr()
    assert all(rcpt != [TRADER] for rcpt, _, _ in mailbox.messages[before:])


def test_a_link_is_valid_for_its_own_subscription_only(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a.sqlite'}")
    try:
        subs = Subscribers(store.engine)
        ann = subs.subscribe("email", "ann@example.org", [])
        bob = subs.subscribe("email", "bob@example.org", [])
        links = UnsubscribeLinks(b"k" * 32, PUBLIC)
        other = UnsubscribeLinks(b"j" * 32, PUBLIC)
        assert links.verify(subs, links.token(ann)) == ann
        assert links.verify(subs, links.token(bob)) == bob
        assert links.verify(subs, other.token(ann)) is None  # another key
        ann_mac = links.token(ann).partition(".")[2]
        assert links.verify(subs, f"{bob.id}.{ann_mac}") is None  # another subscriber
        for junk in ("", ".", "x.y", "99.abc", "1" * 40 + ".a"):
            assert links.verify(subs, junk) is None
        assert "ann@" not in links.url(ann)  # the address is not in the URL
    finally:
        store.close()


def test_email_needs_a_public_https_url(no_alvh_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, smtp_host="smtp.example.com",
                        smtp_from="alvh@example.com")
    store = open_store(settings.store_url)
    try:
        with pytest.raises(ConfigError, match="ALVH_PUBLIC_URL: required with ALVH_SMTP_HOST"):
            Root(settings).delivery(store)
    finally:
        store.close()
    no_alvh_env.setenv("ALVH_PUBLIC_URL", "http://alvh.example.com")
    with pytest.raises(Exception, match="https://"):
        Settings(_env_file=None)
