"""NYSE breadth for one session from McClellan Financial's market-breadth page.

``www.mcoscillator.com/market_breadth_data/`` shows the latest session only:
"NYSE: MM/DD/YYYY", then a table whose "Advances" and "Declines" rows give
issues and volume (thousands). The page says it uses WSJ/Barron's *final*
numbers and waits until late in the day for them, which makes it the
fallback for one day when the WSJ diary fails. The table has been plain
text lines in some years and HTML cells in others, so the page is reduced to
its text before it is read.
"""

from __future__ import annotations

import datetime as dt
import re

from bot.kernel.errors import SourceDataError
from bot.kernel.models import Breadth, Parsed
from bot.kernel.sessions import SessionCalendar
from bot.market.sources.base import BreadthSource, Reach, SourceContext, Window
from bot.market.sources.body import html_text
from bot.market.sources.files import is_session
from bot.market.sources.http import BROWSER_USER_AGENT

SOURCE = "mcclellan"
MCCLELLAN_BASE = "https://www.mcoscillator.com"
PAGE = "/market_breadth_data/"

_DATE = re.compile(r"NYSE:\s*(\d{1,2})/(\d{1,2})/(\d{4})")
_ROW = r"\b{name}\s+(-?[\d,]+)\s+(-?[\d,]+)"


def parse_mcclellan_page(body: bytes | str, *, calendar: SessionCalendar) -> Parsed[Breadth]:
    """The page's NYSE session and its advancing and declining issues (and volumes).

    The body is an HTML page by nature (so the other sources' refusal of HTML
    does not apply): what proves it is the breadth page is the "NYSE:" date
    and the two rows. Raises :class:`SourceDataError` when the date or either
    row is missing, or when the date is not a session.
    """
    words = html_text(_page(body) if isinstance(body, bytes) else body)
    found = _DATE.search(words)
    if found is None:
        raise SourceDataError(SOURCE, "no 'NYSE: MM/DD/YYYY' on the page")
    month, day, year = (int(g) for g in found.groups())
    try:
        session = dt.date(year, month, day)
    except ValueError:
        raise SourceDataError(SOURCE, f"impossible date {found.group(0)!r}") from None
    if not is_session(calendar, session, SOURCE):
        raise SourceDataError(SOURCE, f"{session} on the page is not an NYSE session")
    after = words[found.end():]
    counts: dict[str, tuple[int, float]] = {}
    for name in ("Advances", "Declines"):
        row = re.search(_ROW.format(name=name), after)
        if row is None:
            raise SourceDataError(SOURCE, f"no {name} row after {found.group(0)!r}")
        issues, volume = (int(v.replace(",", "")) for v in row.groups())
        if issues < 0:
            raise SourceDataError(SOURCE, f"negative {name} {issues} on {session}")
        counts[name] = (issues, volume * 1000.0)
    (adv, adv_vol), (dec, dec_vol) = counts["Advances"], counts["Declines"]
    return Parsed(SOURCE, (Breadth(session, adv, dec, SOURCE, adv_volume=adv_vol,
                                   dec_volume=dec_vol),))


class McClellanPage(BreadthSource):
    """The one-day fallback for NYSE breadth (``LATEST``: the page has no date parameter)."""

    name = SOURCE
    reach = Reach.LATEST

    def __init__(self, base_url: str = MCCLELLAN_BASE) -> None:
        super().__init__(base_url)

    async def answer(self, ctx: SourceContext, window: Window) -> Parsed[Breadth]:
        response = await ctx.get(SOURCE, f"{self.base_url}{PAGE}",
                                 headers={"User-Agent": BROWSER_USER_AGENT,
                                          "Accept": "text/html,*/*"})
        return parse_mcclellan_page(response.content, calendar=ctx.calendar)


def _page(body: bytes) -> str:
    """The body as text; empty or non-UTF-8 bodies are refused like any source's."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceDataError(SOURCE, f"body is not UTF-8 text ({exc.reason})") from None
    if not text.strip():
        raise SourceDataError(SOURCE, "empty body")
    return text
