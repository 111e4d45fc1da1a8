"""Signed one-click unsubscribe links (RFC 8058) for email subscribers.

A link is ``<public url>/unsubscribe?t=<id>.<mac>``: the subscriber's row id
and an HMAC-SHA256 (truncated to 128 bits) over the id, channel and address
under a secret only the bot knows. The id keeps the address out of the URL
(and out of proxies' logs); the MAC makes a link valid for that one
subscription only, so nobody can unsubscribe someone else by editing a
number. Rows are deactivated, never deleted, so an id is never reused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from typing import ClassVar

from bot.delivery.outbox.subscribers import Subscriber, Subscribers


class UnsubscribeLinks:
    PATH: ClassVar[str] = "/unsubscribe"
    MAC_BYTES: ClassVar[int] = 16

    def __init__(self, secret: bytes, public_url: str) -> None:
        if len(secret) < 16:
            raise ValueError("the unsubscribe secret must have at least 16 bytes")
        self._secret = secret
        self._base = public_url.rstrip("/")

    def _mac(self, subscriber_id: int, channel: str, address: str) -> str:
        message = f"alvh-unsubscribe\0{subscriber_id}\0{channel}\0{address}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()[: self.MAC_BYTES]
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")

    def token(self, subscriber: Subscriber) -> str:
        return f"{subscriber.id}.{self._mac(subscriber.id, subscriber.channel, subscriber.address)}"

    def url(self, subscriber: Subscriber) -> str:
        return f"{self._base}{self.PATH}?{urllib.parse.urlencode({'t': self.token(subscriber)})}"

    def for_address(self, subscribers: Subscribers, channel: str, address: str) -> str | None:
        """The link for the subscriber at ``address``, or None if there is none."""
        subscriber = subscribers.get(channel, address)
        return self.url(subscriber) if subscriber is not None else None

    def verify(self, subscribers: Subscribers, token: str) -> Subscriber | None:
        """The subscriber a token was made for, or None if it is not a valid one."""
        number, _, mac = token.strip().partition(".")
        if not number.isascii() or not number.isdigit() or len(number) > 18 or not mac:
            return None
        subscriber = subscribers.by_id(int(number))
        if subscriber is None:
            return None
        expected = self._mac(subscriber.id, subscriber.channel, subscriber.address)
        return subscriber if hmac.compare_digest(expected, mac) else None
