"""``/unsubscribe``: the page behind the one-click links in every email (RFC 8058).

* ``POST /unsubscribe?t=TOKEN`` ends the subscription: that is what a mail
  client's "Unsubscribe" button sends (body ``List-Unsubscribe=One-Click``),
  and what the button on the confirmation page sends.
* ``GET /unsubscribe?t=TOKEN`` only shows that page with the button: link
  scanners and previews open every link in a message, and must not
  unsubscribe anyone by doing so (RFC 8058 §3).

The token is checked by :class:`bot.delivery.unsubscribe.UnsubscribeLinks`;
an invalid or tampered one changes nothing and says so in one line.
"""

from __future__ import annotations

import html
import logging

from bot.app.health import Request, Response
from bot.delivery.outbox.subscribers import Subscribers
from bot.delivery.unsubscribe import UnsubscribeLinks

log = logging.getLogger(__name__)

REASON = "unsubscribed by the one-click link"


def _page(title: str, body: str, status: int = 200) -> Response:
    text = ("<!doctype html><html><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width\">"
            f"<title>{html.escape(title)}</title></head>"
            "<body style=\"font-family:-apple-system,Segoe UI,Roboto,sans-serif;max-width:36em;"
            f"margin:3em auto;padding:0 1em\"><h1>{html.escape(title)}</h1>{body}</body></html>")
    return Response(status, text.encode("utf-8"), "text/html; charset=utf-8")


class UnsubscribeEndpoint:
    def __init__(self, subscribers: Subscribers, links: UnsubscribeLinks) -> None:
        self._subscribers = subscribers
        self._links = links

    def __call__(self, request: Request) -> Response:
        token = request.query.get("t", "")
        subscriber = self._links.verify(self._subscribers, token) if token else None
        if subscriber is None:
            return _page("Link not valid",
                         "<p>This unsubscribe link is not valid (it may have been cut or "
                         "changed). Nothing was changed.</p>", 400)
        address = html.escape(subscriber.address)
        if request.method in ("GET", "HEAD"):
            if not subscriber.active:
                return _page("Already unsubscribed",
                             f"<p>{address} receives no ALVH alerts.</p>")
            action = html.escape(f"{UnsubscribeLinks.PATH}?t={token}", quote=True)
            return _page("Unsubscribe from ALVH alerts",
                         f"<p>Stop all ALVH alerts to {address}?</p>"
                         f"<form method=\"post\" action=\"{action}\">"
                         "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
                         "<button type=\"submit\">Unsubscribe</button></form>")
        if request.method != "POST":
            return Response(405, b"method not allowed\n")
        if subscriber.active:
            self._subscribers.deactivate(subscriber.channel, subscriber.address, REASON)
            log.info("unsubscribe: %s:%s unsubscribed by its one-click link",
                     subscriber.channel, subscriber.address)
        return _page("Unsubscribed", f"<p>{address} will receive no more ALVH alerts.</p>")
