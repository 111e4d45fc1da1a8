"""The email channel: one alert to one address over SMTP.

Why ``smtplib`` in a thread rather than aiosmtplib: it is the standard
library (one dependency fewer), a handful of emails per evaluation is not a
throughput problem, and ``asyncio.to_thread`` keeps the event loop free while
a slow server answers.

The message is ``multipart/alternative`` (plain text for any client, HTML for
the rest) with the chart as an inline CID image in ``multipart/related``. A
subscriber's email carries a one-click unsubscribe (RFC 8058):
``List-Unsubscribe`` with an HTTPS link to the bot's own HTTP server, signed
for that subscriber, ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``,
and the same link in the footer.

Credentials are UTF-8: ``smtplib`` encodes AUTH as ASCII and fails on a
password like ``pässwörd``, so the channel speaks AUTH PLAIN itself (RFC 4616
carries UTF-8), or AUTH LOGIN when that is all the server offers.

SMTP answers map onto the channel errors: 4xx and lost connections are
temporary; a 5xx refusal of the *recipient* means the address is gone (the
subscriber is deactivated); other 5xx refusals reject this message. The
password is a ``SecretStr``: it is only unwrapped for AUTH, and no error text
carries it or any part of it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import ipaddress
import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import ClassVar, Literal, Protocol

from pydantic import SecretStr

from bot.delivery.channels.base import (
    BaseChannel,
    ChannelEnv,
    ChannelSetup,
    DeliveryRejected,
    DeliveryUnavailable,
    InvalidAddress,
    RecipientGone,
    late_banner,
)
from bot.kernel.alerts import Alert
from bot.kernel.errors import ConfigError
from bot.kernel.redact import redact

Security = Literal["starttls", "tls", "none"]
_DOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+")
_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z]{2,}$")


class EmailSettings(Protocol):
    """The settings the email channel is built from."""

    smtp_host: str | None
    smtp_port: int
    smtp_security: Security
    smtp_user: str | None
    smtp_password: SecretStr | None
    smtp_from: str | None
    admin_emails: list[str]
    public_url: str | None


Unsubscribe = Callable[[str], str | None]
"""``address -> one-click unsubscribe URL`` (None: no subscription to end, e.g. an admin)."""


def _host_name() -> str:
    """This machine's fully qualified name (a seam for tests)."""
    return socket.getfqdn()


def _is_domain(host: str) -> bool:
    """A DNS name a mail server accepts after ``@``: dotted, not an IP literal,
    not ``localhost`` or a ``.local``/``.localdomain`` name."""
    host = host.strip("[]").rstrip(".").lower()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return False
    if "." not in host or host.endswith((".local", ".localdomain", ".internal", ".arpa")):
        return False
    return bool(_DOMAIN.fullmatch(host))


def default_sender(smtp_from: str | None, smtp_user: str | None) -> str:
    """``ALVH_SMTP_FROM``; else the SMTP user when it is an address (most providers
    insist on it); else ``alvh@`` this machine's domain name. Never an IP literal:
    mail from ``alvh@127.0.0.1`` is refused or filed as spam."""
    if smtp_from:
        address = parseaddr(smtp_from)[1]
        if not _EMAIL.match(address) or not _is_domain(address.rpartition("@")[2]):
            raise ConfigError(f"ALVH_SMTP_FROM: not a usable sender address “{smtp_from[:60]}” "
                              "(expected e.g. alvh@example.com or ALVH <alvh@example.com>)")
        return smtp_from
    if smtp_user and _EMAIL.match(smtp_user) and _is_domain(smtp_user.rpartition("@")[2]):
        return smtp_user
    host = _host_name()
    if _is_domain(host):
        return f"alvh@{host.rstrip('.').lower()}"
    raise ConfigError(f"ALVH_SMTP_FROM: required with ALVH_SMTP_HOST (this machine's name "
                      f"“{host[:60]}” is not a domain a mail server accepts in a sender address)")


class EmailChannel(BaseChannel):
    name: ClassVar[str] = "email"
    plugin: ClassVar[bool] = True
    address_hint: ClassVar[str] = "an email address such as trader@example.com"

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        sender: str,
        security: Security = "starttls",
        user: str | None = None,
        password: SecretStr | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
        unsubscribe: Unsubscribe | None = None,
    ) -> None:
        if security not in ("starttls", "tls", "none"):
            raise ValueError(f"unknown SMTP security {security!r}")
        self._host = host
        self._port = port
        self._sender = sender
        self._security = security
        self._user = user
        self._password = password
        self._context = ssl_context
        self._timeout = timeout
        self._unsubscribe = unsubscribe

    @classmethod
    def from_settings(cls, settings: EmailSettings, env: ChannelEnv) -> ChannelSetup | str:
        """On with ``ALVH_SMTP_HOST``, which then needs ``ALVH_PUBLIC_URL`` (where the
        one-click unsubscribe links lead) and a sender (:func:`default_sender`);
        ``ALVH_ADMIN_EMAILS`` receive ``ops``."""
        if not settings.smtp_host:
            return "email: off (ALVH_SMTP_HOST not set)"
        if not settings.public_url:
            raise ConfigError("ALVH_PUBLIC_URL: required with ALVH_SMTP_HOST: the https:// "
                              "address where this bot's HTTP server is reachable (every email "
                              "carries a one-click unsubscribe link to it)")
        sender = default_sender(settings.smtp_from, settings.smtp_user)
        unsubscribe = env.unsubscribe
        channel = cls(settings.smtp_host, settings.smtp_port, sender=sender,
                      security=settings.smtp_security, user=settings.smtp_user,
                      password=settings.smtp_password,
                      unsubscribe=(lambda a: unsubscribe(cls.name, a)) if unsubscribe else None)
        admins = tuple(dict.fromkeys(cls.normalize_address(a) for a in settings.admin_emails))
        extra = f"; {len(admins)} admin address(es) get ops" if admins else ""
        return ChannelSetup(channel, f"email: on via {settings.smtp_host}:{settings.smtp_port} "
                                     f"from {sender}{extra}", admins)

    @classmethod
    def owns_address(cls, address: str) -> bool:
        return "@" in address and "://" not in address

    @classmethod
    def normalize_address(cls, address: str) -> str:
        address = address.strip()
        if len(address) > 254 or not _EMAIL.match(address):
            shown = address if len(address) <= 60 else address[:59] + "…"
            raise InvalidAddress(f"not an email address: “{shown}”")
        local, _, domain = address.rpartition("@")
        return f"{local}@{domain.lower()}"

    def __repr__(self) -> str:
        return f"EmailChannel({self._host}:{self._port}, {self._security}, user={self._user!r})"

    async def send(self, recipient: str, alert: Alert) -> None:
        await asyncio.to_thread(self._send, recipient, alert)

    def _send(self, recipient: str, alert: Alert) -> None:
        link = self._unsubscribe(recipient) if self._unsubscribe is not None else None
        self._deliver(recipient, build_message(self._sender, recipient, alert, link))

    # ------------------------------------------------------------------ SMTP
    def _connect(self) -> smtplib.SMTP:
        context = self._context or ssl.create_default_context()
        if self._security == "tls":
            return smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout, context=context)
        smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        if self._security == "starttls":
            try:
                smtp.ehlo()
                smtp.starttls(context=context)
                smtp.ehlo()
            except BaseException:
                smtp.close()
                raise
        return smtp

    def _deliver(self, recipient: str, message: EmailMessage) -> None:
        try:
            smtp = self._connect()
            try:
                if self._user:
                    secret = self._password.get_secret_value() if self._password else ""
                    authenticate(smtp, self._user, secret)
                smtp.send_message(message, from_addr=self._sender, to_addrs=[recipient])
                # Sent: a failing QUIT changes nothing. (Not ``with``: its QUIT after
                # a failure would replace the real error by the server's answer.)
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    smtp.quit()
            finally:
                smtp.close()
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (0, b""))
            text = self._clean(f"email: {recipient} refused: {code} {_text(reply)}")
            if code >= 500:
                raise RecipientGone(text) from None
            raise DeliveryUnavailable(text, unreachable=False) from None
        except smtplib.SMTPAuthenticationError as exc:
            text = self._clean(f"email: login refused: {exc.smtp_code} {_text(exc.smtp_error)}")
            raise _by_code(exc.smtp_code, text) from None
        except smtplib.SMTPResponseException as exc:
            text = self._clean(f"email: server answered {exc.smtp_code} {_text(exc.smtp_error)}")
            raise _by_code(exc.smtp_code, text) from None
        except UnicodeError:
            # Never the exception's own text: it quotes the character and its position.
            raise DeliveryRejected("email: the user name or password cannot be sent with the "
                                   "authentication methods this server offers") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryRejected(self._clean(f"email: {exc}")) from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryRejected(
                self._clean(f"email: TLS certificate not trusted: {exc.verify_message}")
            ) from None
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, timeouts, refused
            raise DeliveryUnavailable(self._clean(f"email: {type(exc).__name__}: {exc}")) from None

    def _clean(self, text: str) -> str:
        secret = self._password.get_secret_value() if self._password else None
        return redact(text, secret)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _by_code(code: int, text: str) -> Exception:
    """5xx: permanent; 421 (service not available): the server is down; other 4xx:
    it answered, try again later."""
    if 400 <= code < 500:
        return DeliveryUnavailable(text, unreachable=code == 421)
    return DeliveryRejected(text)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def authenticate(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """SMTP AUTH with UTF-8 credentials.

    AUTH PLAIN (RFC 4616: authzid NUL authcid NUL passwd, UTF-8) when offered,
    else AUTH LOGIN with the same UTF-8 bytes; ``smtplib``'s own ``login`` only
    for servers offering neither (CRAM-MD5), where credentials must be ASCII.
    Raises ``SMTPAuthenticationError`` with the server's answer on refusal.
    """
    smtp.ehlo_or_helo_if_needed()
    if not smtp.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("the SMTP server offers no AUTH")
    offered = smtp.esmtp_features["auth"].upper().split()
    if "PLAIN" in offered:
        response = _b64(b"\0" + user.encode("utf-8") + b"\0" + password.encode("utf-8"))
        code, reply = smtp.docmd("AUTH", f"PLAIN {response}")
        if code == 334:  # a server that wants the response on its own line
            code, reply = smtp.docmd(response)
    elif "LOGIN" in offered:
        code, reply = smtp.docmd("AUTH", f"LOGIN {_b64(user.encode('utf-8'))}")
        if code == 334:
            code, reply = smtp.docmd(_b64(password.encode("utf-8")))
    else:
        smtp.login(user, password)
        return
    if code not in (235, 503):  # 503: already authenticated
        raise smtplib.SMTPAuthenticationError(code, reply)


def build_message(
    sender: str, recipient: str, alert: Alert, unsubscribe_url: str | None
) -> EmailMessage:
    """The MIME message for one alert (public so compose previews can render it).

    With ``unsubscribe_url`` (a subscriber): RFC 8058 one-click headers and a
    footer link; without (an admin receiving ``ops`` by configuration): a footer
    saying so.
    """
    domain = sender.rpartition("@")[2] or "localhost"
    message = EmailMessage()
    subject = f"ALVH: {alert.title}"
    if alert.late:
        subject = f"⏱ late: {subject}"
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid("alvh", domain=domain)
    if unsubscribe_url:
        message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message["X-ALVH-Alert"] = alert.key

    if unsubscribe_url:
        footer = (f"You receive ALVH “{alert.topic.value}” alerts at {recipient}. "
                  "To stop all of them, open:")
        footer_html = (f"{html.escape(footer)} "
                       f'<a href="{html.escape(unsubscribe_url)}">unsubscribe</a>')
        footer += f" {unsubscribe_url}"
    else:
        footer = (f"You receive ALVH “{alert.topic.value}” alerts at {recipient} as an "
                  "admin of this bot (ALVH_ADMIN_EMAILS).")
        footer_html = html.escape(footer)
    banner = late_banner(alert) + "\n\n" if alert.late else ""
    message.set_content(f"{banner}{alert.text}\n\n-- \n{footer}\n")

    cid = make_msgid("chart", domain=domain)
    image = (
        f'<p><img src="cid:{cid[1:-1]}" alt="chart" style="max-width:100%"></p>'
        if alert.chart_png
        else ""
    )
    banner_html = f"<p><i>{html.escape(late_banner(alert))}</i></p>" if alert.late else ""
    body = (
        "<!doctype html><html><body>"
        f"{banner_html}"
        '<div style="font-family:-apple-system,Segoe UI,Roboto,sans-serif;white-space:pre-wrap">'
        f"{alert.html}</div>{image}"
        f'<hr><p style="color:#666;font-size:12px">{footer_html}</p>'
        "</body></html>"
    )
    message.add_alternative(body, subtype="html")
    if alert.chart_png:
        html_part = message.get_body(preferencelist=("html",))
        if html_part is None:  # pragma: no cover - added just above
            raise RuntimeError("email: HTML part missing")
        html_part.add_related(alert.chart_png, maintype="image", subtype="png", cid=cid)
    return message
