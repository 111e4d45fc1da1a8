"""The unit of delivery: one alert per (session, topic, kind, layer).

The key is what makes delivery idempotent: the outbox stores an alert under
its key *before* anything is sent, so re-running a session can never create
a second alert, and a restart resumes exactly the deliveries still pending.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


class Topic(enum.StrEnum):
    CONDOR = "condor"
    HEDGE = "hedge"
    WARNING = "warning"
    SUMMARY = "summary"
    OPS = "ops"


TOPIC_HELP: dict[Topic, str] = {
    Topic.CONDOR: "daily condor go / skip with strikes and break-evens",
    Topic.HEDGE: "hedge layer added / removed / deferred, with sizing",
    Topic.WARNING: "early warnings: weekly MACD, histogram compression, A/D divergence begun",
    Topic.SUMMARY: "daily digest with chart",
    Topic.OPS: "admins only: data failures, rules reloads, delivery failures",
}


@dataclass(frozen=True, slots=True)
class Alert:
    session: dt.date
    topic: Topic
    kind: str
    """What happened: ``layer_added``, ``condor_go``, ``daily_summary``, ``data_incomplete``..."""
    layer: str
    """Layer name for hedge alerts, ``""`` otherwise."""
    title: str
    text: str
    """Plain text (email, console, and Telegram's fallback when HTML is refused)."""
    html: str
    """Telegram HTML parse-mode body; every dynamic value already escaped."""
    chart_png: bytes | None = None
    late: bool = False
    """Evaluated in a catch-up after the session's normal run time."""

    @property
    def key(self) -> str:
        return f"{self.session.isoformat()}|{self.topic.value}|{self.kind}|{self.layer}"
