"""The email channel against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from _delivery import make_alert, store_at
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr

from bot.delivery.channels import DeliveryRejected, DeliveryUnavailable, RecipientGone
from bot.delivery.channels import email as email_channel
from bot.delivery.channels.email import EmailChannel, default_sender
from bot.delivery.dispatch import Backoff, DeliveryWorker
from bot.delivery.outbox import Outbox, Subscribers
from bot.kernel.alerts import Topic
from bot.kernel.errors import ConfigError

USER = "alvh-bot"
PASSWORD = "app-password-SECRET-123"
SENDER = "alvh@example.com"
LINK = "https://alvh.example.test/unsubscribe?t=7.c2lnbmVk"


@dataclass
class Mailbox:
    """An aiosmtpd handler and authenticator that records what arrives."""

    refuse: set[str] = field(default_factory=set)
    busy: set[str] = field(default_factory=set)
    drop_on_data: bool = False
    messages: list[tuple[list[str], EmailMessage, dict[str, Any]]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 <%s>: no such user" % address  # noqa: UP031
        if address in self.busy:
            return "451 4.3.0 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.drop_on_data:
            server.transport.close()
            return "421 going away"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        tls = server.transport.get_extra_info("ssl_object") is not None
        info = {"tls": tls, "authenticated": bool(session.authenticated)}
        self.messages.append((list(envelope.rcpt_tos), message, info))  # type: ignore[arg-type]
        return "250 Message accepted"

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((mechanism, login))
        return AuthResult(success=(login, password) == (USER, PASSWORD), handled=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_server(mailbox: Mailbox, **kwargs: Any) -> Iterator[int]:
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI."""
    where = tmp_path_factory.mktemp("tls")
    key, crt = where / "key.pem", where / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return crt, key


def _server_tls(cert: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert)
    return context


def _client_tls(cert: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert[0]))


def _auth(mailbox: Mailbox, **extra: Any) -> dict[str, Any]:
    return {"authenticator": mailbox, "auth_exclude_mechanism": ["PLAIN"], **extra}


async def test_plain_smtp_with_auth_login(tmp_path: Path) -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox, **_auth(mailbox, auth_require_tls=False)) as port:
        channel = EmailChannel(
            "127.0.0.1", port, sender=SENDER, security="none",
            user=USER, password=SecretStr(PASSWORD), timeout=5,
            unsubscribe=lambda address: LINK if address == "ann@example.org" else None,
        )  # fmt: skip
        alert = make_alert(text="Layer 1 added: buy 2 VX (plain)")
        await channel.send("ann@example.org", alert)
    assert mailbox.logins == [("LOGIN", USER)]
    ((rcpt, message, info),) = mailbox.messages
    assert rcpt == ["ann@example.org"]
    assert info == {"tls": False, "authenticated": True}
    assert message["Subject"] == "ALVH: Layer 1 added"
    assert message["X-ALVH-Alert"] == alert.key
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and "Layer 1 added: buy 2 VX (plain)" in plain.get_content()
    assert html is not None and alert.html in html.get_content()
    # One-click unsubscribe (RFC 8058): an HTTPS link, the POST marker, and the footer.
    assert message["List-Unsubscribe"].strip() == f"<{LINK}>"
    assert message["List-Unsubscribe-Post"].strip() == "List-Unsubscribe=One-Click"
    assert LINK in plain.get_content()
    assert f'href="{LINK}"' in html.get_content()
    assert "mailto:" not in message.as_string()


async def test_an_admin_copy_has_no_unsubscribe_link() -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        channel = EmailChannel("127.0.0.1", port, sender=SENDER, security="none", timeout=5,
                               unsubscribe=lambda address: None)
        await channel.send("admin@example.org", make_alert(Topic.OPS, "delivery_failed"))
    ((_, message, _),) = mailbox.messages
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None
    plain = message.get_body(("plain",))
    assert plain is not None and "as an admin of this bot" in plain.get_content()


UTF8_USER = "trader@example.org"
UTF8_PASSWORD = "pässwörd"


@dataclass
class Utf8Mailbox(Mailbox):
    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode("utf-8"), auth_data.password.decode("utf-8")
        self.logins.append((mechanism, login))
        return AuthResult(success=(login, password) == (UTF8_USER, UTF8_PASSWORD), handled=False)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_a_utf8_password_authenticates(mechanism: str) -> None:
    """RFC 4616: AUTH PLAIN carries UTF-8 (smtplib alone raises UnicodeEncodeError)."""
    mailbox = Utf8Mailbox()
    other = "LOGIN" if mechanism == "PLAIN" else "PLAIN"
    server = {"authenticator": mailbox, "auth_exclude_mechanism": [other],
              "auth_require_tls": False}
    with smtp_server(mailbox, **server) as port:
        channel = EmailChannel("127.0.0.1", port, sender=SENDER, security="none",
                               user=UTF8_USER, password=SecretStr(UTF8_PASSWORD), timeout=5)
        await channel.send("ann@example.org", make_alert())
        wrong = EmailChannel("127.0.0.1", port, sender=SENDER, security="none",
                             user=UTF8_USER, password=SecretStr("pässwört"), timeout=5)
        with pytest.raises(DeliveryRejected, match="535") as info:
            await wrong.send("ann@example.org", make_alert())
    assert mailbox.logins == [(mechanism, UTF8_USER)] * 2
    ((_, _, details),) = mailbox.messages
    assert details["authenticated"] is True
    text = str(info.value)
    assert not set("äöt") & set(text.split("535")[0])  # no character of the password…
    assert "pässwört" not in text and "position" not in text  # …nor where it failed


@dataclass
class CramOnly(Mailbox):
    """A server whose only mechanism is CRAM-MD5 (which needs ASCII credentials)."""

    async def auth_CRAM__MD5(self, server: Any, args: list[str]) -> AuthResult:
        await server.challenge_auth("<1896.697170952@alvh.example>", encode_to_b64=True)
        return AuthResult(success=False, handled=False)


async def test_a_utf8_password_the_server_cannot_take_is_one_clean_line() -> None:
    mailbox = CramOnly()
    server = {"authenticator": mailbox, "auth_exclude_mechanism": ["PLAIN", "LOGIN"],
              "auth_require_tls": False}
    with smtp_server(mailbox, **server) as port:
        channel = EmailChannel("127.0.0.1", port, sender=SENDER, security="none",
                               user=UTF8_USER, password=SecretStr(UTF8_PASSWORD), timeout=5)
        with pytest.raises(DeliveryRejected) as info:
            await channel.send("ann@example.org", make_alert())
    text = str(info.value)
    assert text == ("email: the user name or password cannot be sent with the "
                    "authentication methods this server offers")
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_the_default_sender_is_never_an_ip_literal(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_sender("ALVH <alerts@example.com>", None) == "ALVH <alerts@example.com>"
    assert default_sender(None, "bot@mail.example.com") == "bot@mail.example.com"
    monkeypatch.setattr(email_channel, "_host_name", lambda: "alvh-1.example.net")
    assert default_sender(None, "alvh-bot") == "alvh@alvh-1.example.net"
    for host in ("127.0.0.1", "::1", "localhost", "myhost", "box.local"):
        monkeypatch.setattr(email_channel, "_host_name", lambda host=host: host)
        with pytest.raises(ConfigError, match="ALVH_SMTP_FROM: required"):
            default_sender(None, None)
    for bad in ("alvh@127.0.0.1", "alvh@[10.0.0.1]", "not-an-address"):
        with pytest.raises(ConfigError, match="ALVH_SMTP_FROM: not a usable sender"):
            default_sender(bad, None)


async def test_starttls_with_a_trusted_self_signed_certificate(
    cert: tuple[Path, Path],
) -> None:
    mailbox = Mailbox()
    server = {"tls_context": _server_tls(cert), "require_starttls": True, **_auth(mailbox)}
    with smtp_server(mailbox, **server) as port:
        channel = EmailChannel(
            "127.0.0.1", port, sender=SENDER, security="starttls", user=USER,
            password=SecretStr(PASSWORD), ssl_context=_client_tls(cert), timeout=5,
        )  # fmt: skip
        await channel.send("ann@example.org", make_alert())
        untrusted = EmailChannel("127.0.0.1", port, sender=SENDER, security="starttls", timeout=5)
        with pytest.raises(DeliveryRejected, match="certificate"):
            await untrusted.send("ann@example.org", make_alert())
    ((_, _, info),) = mailbox.messages
    assert info == {"tls": True, "authenticated": True}
    assert mailbox.logins == [("LOGIN", USER)]


async def test_implicit_tls(cert: tuple[Path, Path]) -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox, ssl_context=_server_tls(cert)) as port:
        channel = EmailChannel(
            "127.0.0.1", port, sender=SENDER, security="tls",
            ssl_context=_client_tls(cert), timeout=5,
        )  # fmt: skip
        await channel.send("ann@example.org", make_alert())
    ((_, _, info),) = mailbox.messages
    assert info["tls"] is True


async def test_the_chart_is_an_inline_cid_image() -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        channel = EmailChannel("127.0.0.1", port, sender=SENDER, security="none", timeout=5)
        png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
        await channel.send("ann@example.org", make_alert(Topic.SUMMARY, chart=png, late=True))
    ((_, message, _),) = mailbox.messages
    related = message.get_payload()[1]
    assert related.get_content_type() == "multipart/related"
    html_part, image = related.get_payload()
    assert image.get_content_type() == "image/png"
    assert image.get_content() == png
    cid = image["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html_part.get_content()
    assert message["Subject"].startswith("⏱ late: ")


async def test_a_refused_recipient_is_gone_and_a_busy_one_is_temporary() -> None:
    mailbox = Mailbox(refuse={"gone@example.org"}, busy={"busy@example.org"})
    with smtp_server(mailbox) as port:
        channel = EmailChannel("127.0.0.1", port, sender=SENDER, security="none", timeout=5)
        with pytest.raises(RecipientGone, match="550"):
            await channel.send("gone@example.org", make_alert())
        with pytest.raises(DeliveryUnavailable, match="451"):
            await channel.send("busy@example.org", make_alert())
    assert mailbox.messages == []


async def test_a_wrong_password_is_rejected_without_showing_it() -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox, **_auth(mailbox, auth_require_tls=False)) as port:
        wrong = PASSWORD + "-typo"
        channel = EmailChannel(
            "127.0.0.1", port, sender=SENDER, security="none",
            user=USER, password=SecretStr(wrong), timeout=5,
        )  # fmt: skip
        with pytest.raises(DeliveryRejected, match="535") as info:
            await channel.send("ann@example.org", make_alert())
    assert wrong not in str(info.value)
    assert PASSWORD not in repr(channel)


async def test_a_connection_dropped_mid_way_or_refused_is_temporary() -> None:
    mailbox = Mailbox(drop_on_data=True)
    with smtp_server(mailbox) as port:
        channel = EmailChannel("127.0.0.1", port, sender=SENDER, security="none", timeout=5)
        with pytest.raises(DeliveryUnavailable):
            await channel.send("ann@example.org", make_alert())
    nobody = EmailChannel("127.0.0.1", _free_port(), sender=SENDER, security="none", timeout=2)
    with pytest.raises(DeliveryUnavailable, match=r"refused|Connection"):
        await nobody.send("ann@example.org", make_alert())


async def test_the_worker_delivers_email_and_deactivates_refused_addresses(
    tmp_path: Path,
) -> None:
    mailbox = Mailbox(refuse={"gone@example.org"})
    store = store_at(tmp_path / "a.sqlite")
    subs = Subscribers(store.engine)
    subs.subscribe("email", "ann@example.org", [Topic.HEDGE])
    subs.subscribe("email", "gone@example.org", [Topic.HEDGE])
    outbox = Outbox(store.engine, channels=("email",))
    outbox.enqueue([make_alert()])
    with smtp_server(mailbox) as port:
        channel = EmailChannel("127.0.0.1", port, sender=SENDER, security="none", timeout=5)
        worker = DeliveryWorker(
            outbox, [channel], backoff=Backoff(0.01, 2, 0.05), poll_interval=0.05
        )
        async with asyncio.timeout(10):
            await worker.drain()
    gone = subs.get("email", "gone@example.org")
    store.close()
    assert [rcpt for rcpt, _, _ in mailbox.messages] == [["ann@example.org"]]
    assert gone is not None and not gone.active and "550" in (gone.deactivated_reason or "")
