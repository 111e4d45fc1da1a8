"""Event calendar files (FOMC decisions, CPI and PPI releases).

The shipped calendars and user imports share this format:
``date,kind,time_et[,scheduled,note]``.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

from bot.kernel.errors import SourceDataError
from bot.kernel.models import Event, EventKind, Parsed
from bot.kernel.sessions import SessionCalendar
from bot.market.sources.body import decode_body
from bot.market.sources.files.table import (
    columns,
    header_error,
    line_no,
    parse_dates,
    pydates,
    raw_line,
    read_table,
    session_mask,
)

EVENT_HEADER = "date,kind,time_et[,scheduled,note]"


def parse_event_csv(text: bytes | str, source: str, calendar: SessionCalendar) -> Parsed[Event]:
    """The shipped calendars: ``date,kind,time_et[,scheduled,note]``.

    Events on non-sessions are *kept*: the 2020-03-15 emergency cut was a
    Sunday and still moved markets the next session; event proximity maps an
    event to the session on or after it. ``scheduled`` (``yes``/``no``,
    default yes) is kept on the event: an unscheduled action is known only
    from its own date. ``note`` is free text and ignored.
    """
    body = decode_body(text, source)
    frame = read_table(body, source, header=True)
    got = [c.lower() for c in columns(frame)]
    for name in ("date", "kind", "time_et"):
        if name not in got:
            raise header_error(source, EVENT_HEADER, columns(frame), name)
    col = {n: frame.columns[got.index(n)] for n in ("date", "kind", "time_et")}
    # Dates may repeat across kinds (a CPI and an FOMC on one day), not within one.
    dates = parse_dates(
        frame,
        col["date"],
        ("%Y-%m-%d",),
        source,
        header=True,
        pattern=r"\d{4}-\d{2}-\d{2}",
        unique=False,
    )
    kinds = frame[col["kind"]].str.strip().str.upper()
    valid = {k.value for k in EventKind}
    bad_kind = np.flatnonzero(~kinds.isin(valid).to_numpy())
    if bad_kind.size:
        pos = int(bad_kind[0])
        if pos == len(frame) - 1 and kinds.iloc[pos] == "":
            raise SourceDataError(
                source, f"truncated file: last line {raw_line(frame, pos)!r} lacks kind"
            )
        raise SourceDataError(
            source,
            f"unknown kind {frame[col['kind']].iloc[pos]!r} on line {line_no(pos, True)}"
            f" (expected one of {', '.join(sorted(valid))})",
        )
    dup = pd.Series(list(zip(dates, kinds, strict=True))).duplicated().to_numpy()
    if dup.any():
        pos = int(np.flatnonzero(dup)[0])
        raise SourceDataError(source, f"duplicate date {dates[pos].date()} for {kinds.iloc[pos]}")
    session_mask(dates, source, calendar)  # range check only
    if "scheduled" in got:
        flags = frame[frame.columns[got.index("scheduled")]].str.strip().str.lower().tolist()
    else:
        flags = ["yes"] * len(frame)
    events: list[Event] = []
    for pos, (day, kind, raw_time, flag) in enumerate(
        zip(
            pydates(dates),
            kinds.tolist(),
            frame[col["time_et"]].str.strip().tolist(),
            flags,
            strict=True,
        )
    ):
        if flag not in ("yes", "no", ""):
            raise SourceDataError(
                source, f"bad scheduled {flag!r} on line {line_no(pos, True)} (expected yes/no)"
            )
        events.append(
            Event(EventKind(kind), day, source, _time_of_day(raw_time, source, frame, pos),
                  scheduled=flag != "no")
        )
    events.sort(key=lambda e: (e.date, e.kind.value))
    return Parsed(source, tuple(events))


def _time_of_day(raw: str, source: str, frame: pd.DataFrame, pos: int) -> dt.time | None:
    if raw == "":
        return None
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", raw)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise SourceDataError(
            source, f"bad time_et {raw!r} on line {line_no(pos, True)} (expected HH:MM)"
        )
    return dt.time(int(match[1]), int(match[2]))
