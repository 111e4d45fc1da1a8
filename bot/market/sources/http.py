"""HTTP transport shared by every source: timeouts, retries, backoff.

Only *transient* failures are retried (timeouts, connection errors, 5xx, 429);
a 4xx other than 429 is a permanent answer. A 429's ``Retry-After`` is honoured
up to ``max_wait`` so a flood-controlled source is not hammered. The sleep
function is injectable so tests exercise the schedule without waiting.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx

from bot.kernel.errors import SourceDataError, SourceUnavailable

log = logging.getLogger(__name__)

BROWSER_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)
"""Yahoo and WSJ answer 429/403 to library user agents."""

DEFAULT_TIMEOUT = httpx.Timeout(20.0, connect=10.0)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_wait: float = 120.0
    """Longest Retry-After we are willing to honour; beyond it the source is unavailable."""

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter (attempt counts from 1)."""
        cap = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return random.uniform(cap / 2, cap)  # noqa: S311 - jitter, not crypto


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    import datetime as dt

    return max(0.0, (when - dt.datetime.now(tz=dt.UTC)).total_seconds())


async def get(
    client: httpx.AsyncClient,
    source: str,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Sleep = asyncio.sleep,
) -> httpx.Response:
    """GET ``url`` with retries; return a 2xx response or raise a SourceError.

    ``source`` names the source in every error and log line. Query strings may
    carry API keys, so URLs are never logged: only the source name and path.
    """
    last: str = "no attempt made"
    for attempt in range(1, policy.attempts + 1):
        delay: float | None = None
        try:
            # Services move behind redirects: a 301 is a new address, not a failure.
            resp = await client.get(url, params=params, headers=headers, follow_redirects=True)
        except httpx.TimeoutException as exc:
            last = f"timed out ({type(exc).__name__})"
        except httpx.TransportError as exc:
            last = f"connection failed ({type(exc).__name__})"
        else:
            if resp.status_code < 300:
                if resp.history:
                    log.info("%s: %s moved to %s (HTTP %d)", source, resp.history[0].url.path,
                             resp.url.path, resp.history[0].status_code)
                return resp
            if resp.status_code == 429:
                last = "HTTP 429 Too Many Requests"
                delay = retry_after_seconds(resp.headers.get("Retry-After"))
                if delay is not None and delay > policy.max_wait:
                    raise SourceUnavailable(
                        source, f"{last}; Retry-After {delay:.0f}s exceeds {policy.max_wait:.0f}s"
                    )
            elif resp.status_code >= 500:
                last = f"HTTP {resp.status_code}"
            else:
                raise SourceDataError(source, f"HTTP {resp.status_code} from {resp.url.path}")
        if attempt == policy.attempts:
            break
        wait = delay if delay is not None else policy.backoff(attempt)
        log.warning(
            "%s: %s (attempt %d/%d), retrying in %.1fs",
            source, last, attempt, policy.attempts, wait,
        )
        await sleep(wait)
    raise SourceUnavailable(source, f"{last} after {policy.attempts} attempts")
