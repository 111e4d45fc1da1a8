"""The email channel: one alert to one address over SMTP.

Why ``smtplib`` in a thread rather than aiosmtplib: it is the standard
library (one dependency fewer), a handful of emails per evaluation is not a
throughput problem, and ``asyncio.to_thread`` keeps the event loop free while
a slow server answers.

The message is ``multipart/alternative`` (plain text for any client, HTML for
the rest) with the chart as an inline CID image in ``multipart/related``, and
carries ``List-Unsubscribe`` so mail clients show an unsubscribe button.

SMTP answers map onto the channel errors: 4xx and lost connections are
temporary; a 5xx refusal of the *recipient* means the address is gone (the
subscriber is deactivated); other 5xx refusals reject this message. The
password is a ``SecretStr``: it is only unwrapped for ``login`` and is removed
from any error text.
"""

from __future__ import annotations

import asyncio
import html
import re
import smtplib
import ssl
import urllib.parse
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
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
from bot.kernel.redact import redact

Security = Literal["starttls", "tls", "none"]
_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z]{2,}$")


class EmailSettings(Protocol):
    """The settings the email channel is built from."""

    smtp_host: str | None
    smtp_port: int
    smtp_security: Security
    smtp_user: str | None
    smtp_password: SecretStr | None
    smtp_from: str | None


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
        unsubscribe_address: str | None = None,
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
        self._unsubscribe = unsubscribe_address or sender

    @classmethod
    def from_settings(cls, settings: EmailSettings, env: ChannelEnv) -> ChannelSetup | str:
        """On with ``ALVH_SMTP_HOST``."""
        if not settings.smtp_host:
            return "email: off (ALVH_SMTP_HOST not set)"
        sender = settings.smtp_from or settings.smtp_user or f"alvh@{settings.smtp_host}"
        channel = cls(settings.smtp_host, settings.smtp_port, sender=sender,
                      security=settings.smtp_security, user=settings.smtp_user,
                      password=settings.smtp_password)
        return ChannelSetup(channel, f"email: on via {settings.smtp_host}:{settings.smtp_port}")

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
        message = build_message(self._sender, recipient, alert, self._unsubscribe)
        await asyncio.to_thread(self._deliver, recipient, message)

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
            with self._connect() as smtp:
                if self._user:
                    secret = self._password.get_secret_value() if self._password else ""
                    smtp.login(self._user, secret)
                smtp.send_message(message, from_addr=self._sender, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (0, b""))
            text = f"email: {recipient} refused: {code} {_text(reply)}"
            raise (RecipientGone if code >= 500 else DeliveryUnavailable)(
                self._clean(text)
            ) from None
        except smtplib.SMTPAuthenticationError as exc:
            text = f"email: login refused: {exc.smtp_code} {_text(exc.smtp_error)}"
            error = DeliveryUnavailable if 400 <= exc.smtp_code < 500 else DeliveryRejected
            raise error(self._clean(text)) from None
        except smtplib.SMTPResponseException as exc:
            text = f"email: server answered {exc.smtp_code} {_text(exc.smtp_error)}"
            error = DeliveryUnavailable if 400 <= exc.smtp_code < 500 else DeliveryRejected
            raise error(self._clean(text)) from None
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


def build_message(sender: str, recipient: str, alert: Alert, unsubscribe: str) -> EmailMessage:
    """The MIME message for one alert (public so compose previews can render it)."""
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
    query = urllib.parse.urlencode(
        {"subject": f"unsubscribe {recipient}"}, quote_via=urllib.parse.quote
    )
    message["List-Unsubscribe"] = f"<mailto:{unsubscribe}?{query}>"
    message["Auto-Submitted"] = "auto-generated"
    message["X-ALVH-Alert"] = alert.key

    footer = (
        f"You receive ALVH “{alert.topic.value}” alerts at {recipient}. "
        f"To stop, send an email to {unsubscribe} with the subject “unsubscribe”."
    )
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
        f'<hr><p style="color:#666;font-size:12px">{html.escape(footer)}</p>'
        "</body></html>"
    )
    message.add_alternative(body, subtype="html")
    if alert.chart_png:
        html_part = message.get_body(preferencelist=("html",))
        if html_part is None:  # pragma: no cover - added just above
            raise RuntimeError("email: HTML part missing")
        html_part.add_related(alert.chart_png, maintype="image", subtype="png", cid=cid)
    return message
