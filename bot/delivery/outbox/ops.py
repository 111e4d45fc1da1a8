"""Ops alerts about delivery itself, for the admins.

Keys are chosen so that a problem is reported once per (alert, channel) and
not once per recipient: when Telegram is down for a fan-out to 2,000
subscribers the admins get one message, not 2,000.
"""

from __future__ import annotations

import html

from bot.delivery.outbox.outbox import Outbox
from bot.kernel.alerts import Alert, Topic


def _source(alert: Alert) -> str:
    return f"{alert.topic.value}/{alert.kind}/{alert.layer}".rstrip("/")


def delivery_failed(alert: Alert, channel: str, recipient: str, attempts: int, error: str) -> Alert:
    text = (
        f"Gave up delivering “{alert.title}” ({alert.key}) by {channel} to {recipient} "
        f"after {attempts} attempt(s): {error}\n"
        "Other recipients of this alert that fail the same way are logged, not re-reported."
    )
    body = (
        f"<b>Delivery failed</b>: “{html.escape(alert.title)}” by {html.escape(channel)} "
        f"to <code>{html.escape(recipient)}</code> after {attempts} attempt(s)\n"
        f"<code>{html.escape(error)}</code>\n"
        f"<i>alert {html.escape(alert.key)}; further failures of this alert are logged only</i>"
    )
    return Alert(
        session=alert.session,
        topic=Topic.OPS,
        kind="delivery_failed",
        layer=f"{_source(alert)}@{channel}",
        title="Delivery failed",
        text=text,
        html=body,
    )


def channel_problem(alert: Alert, channel: str, recipient: str, detail: str) -> Alert:
    text = f"{channel}: problem delivering “{alert.title}” ({alert.key}) to {recipient}: {detail}"
    body = (
        f"<b>Channel problem</b> ({html.escape(channel)}): “{html.escape(alert.title)}” "
        f"to <code>{html.escape(recipient)}</code>\n{html.escape(detail)}\n"
        f"<i>alert {html.escape(alert.key)}</i>"
    )
    return Alert(
        session=alert.session,
        topic=Topic.OPS,
        kind="channel_problem",
        layer=f"{_source(alert)}@{channel}",
        title="Channel problem",
        text=text,
        html=body,
    )


class OpsReporter:
    """Turns channel-side problems into ``ops`` alerts in the outbox.

    Channels receive this as a plain callable so they never import the outbox.
    Problems about an ``ops`` alert are only logged by the caller: reporting
    them as another ``ops`` alert could loop forever.
    """

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    def __call__(self, alert: Alert, channel: str, recipient: str, detail: str) -> None:
        if alert.topic is Topic.OPS:
            return
        self._outbox.enqueue([channel_problem(alert, channel, recipient, detail)])

    def delivery_failed(
        self, alert: Alert, channel: str, recipient: str, attempts: int, error: str
    ) -> None:
        if alert.topic is Topic.OPS:
            return
        self._outbox.enqueue([delivery_failed(alert, channel, recipient, attempts, error)])
