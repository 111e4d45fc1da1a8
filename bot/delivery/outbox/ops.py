"""Ops alerts about delivery itself, for the admins.

Keys are chosen so that a problem is reported once per (alert, channel) and
not once per recipient: when Telegram is down for a fan-out to 2,000
subscribers the admins get one message, not 2,000.
"""

from __future__ import annotations

import datetime as dt
import html

from bot.delivery.outbox.outbox import Outbox
from bot.kernel.alerts import Alert, Topic


def _source(alert: Alert) -> str:
    return f"{alert.topic.value}/{alert.kind}/{alert.layer}".rstrip("/")


def _about(alert: Alert, channel: str, kind: str, title: str, text: str, body: str) -> Alert:
    """An ops alert about ``alert`` on ``channel``: its key makes it once per pair."""
    return Alert(session=alert.session, topic=Topic.OPS, kind=kind,
                 layer=f"{_source(alert)}@{channel}", title=title, text=text, html=body)


def delivery_failed(alert: Alert, channel: str, recipient: str, attempts: int, error: str) -> Alert:
    text = (
        f"Could not deliver “{alert.title}” ({alert.key}) by {channel} to {recipient}: "
        f"refused after {attempts} attempt(s): {error}\n"
        "Other recipients of this alert that fail the same way are logged, not re-reported."
    )
    body = (
        f"<b>Delivery failed</b>: “{html.escape(alert.title)}” by {html.escape(channel)} "
        f"to <code>{html.escape(recipient)}</code> after {attempts} attempt(s)\n"
        f"<code>{html.escape(error)}</code>\n"
        f"<i>alert {html.escape(alert.key)}; further failures of this alert are logged only</i>"
    )
    return _about(alert, channel, "delivery_failed", "Delivery failed", text, body)


def channel_problem(alert: Alert, channel: str, recipient: str, detail: str) -> Alert:
    text = f"{channel}: problem delivering “{alert.title}” ({alert.key}) to {recipient}: {detail}"
    body = (
        f"<b>Channel problem</b> ({html.escape(channel)}): “{html.escape(alert.title)}” "
        f"to <code>{html.escape(recipient)}</code>\n{html.escape(detail)}\n"
        f"<i>alert {html.escape(alert.key)}</i>"
    )
    return _about(alert, channel, "channel_problem", "Channel problem", text, body)


def _hours(age: dt.timedelta) -> str:
    seconds = age.total_seconds()
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 60:.3g} min" if seconds >= 60 else f"{seconds:.3g} s"


def delivery_expired(
    alert: Alert, channel: str, count: int, partial: int, max_age: dt.timedelta,
    error: str | None,
) -> Alert:
    part = f"; {partial} of them received only part of it" if partial else ""
    why = f" Last error: {error}" if error else ""
    text = (
        f"“{alert.title}” ({alert.key}) was not delivered by {channel} to {count} "
        f"recipient(s) within {_hours(max_age)}{part}: those deliveries are closed as "
        f"expired and will not be sent.{why}\n"
        "Deliveries of this alert that expire later are logged, not re-reported."
    )
    body = (
        f"<b>Delivery expired</b>: “{html.escape(alert.title)}” by {html.escape(channel)} "
        f"to {count} recipient(s) not delivered within {_hours(max_age)}{html.escape(part)}\n"
        + (f"<code>{html.escape(error)}</code>\n" if error else "")
        + f"<i>alert {html.escape(alert.key)}; these deliveries will not be sent</i>"
    )
    return _about(alert, channel, "delivery_expired", "Delivery expired", text, body)


def channel_down(
    channel: str, since: dt.datetime, session: dt.date, waiting: int, error: str | None,
) -> Alert:
    when = since.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    why = f" ({error})" if error else ""
    text = (
        f"{channel} has been unreachable since {when}{why}; {waiting} deliveries are "
        "waiting and are retried until it is back (or until they expire)."
    )
    body = (
        f"<b>{html.escape(channel)} unreachable</b> since {html.escape(when)}"
        + (f"\n<code>{html.escape(error)}</code>" if error else "")
        + f"\n{waiting} deliveries waiting; retried until it is back or they expire"
    )
    return Alert(
        session=session,
        topic=Topic.OPS,
        kind="channel_down",
        layer=f"{channel}@{since.astimezone(dt.UTC):%Y%m%dT%H%M}",
        title=f"{channel} unreachable",
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

    def delivery_expired(
        self, alert: Alert, channel: str, count: int, partial: int, max_age: dt.timedelta,
        error: str | None,
    ) -> None:
        if alert.topic is Topic.OPS:
            return
        self._outbox.enqueue([delivery_expired(alert, channel, count, partial, max_age, error)])

    def channel_down(
        self, channel: str, since: dt.datetime, session: dt.date, waiting: int,
        error: str | None,
    ) -> None:
        """Told by every channel (the one that is down delivers its copy when back)."""
        self._outbox.enqueue([channel_down(channel, since, session, waiting, error)])
