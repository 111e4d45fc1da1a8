"""The composition root: the one place that turns settings into working parts.

Every command, the running service and the Telegram commands get their store,
calendar, rules, fetcher and delivery from here, built the same way, so a
fix to how the bot is put together is made once. Below ``bot.app`` nothing
reads settings: each part receives plain values and collaborators.

Two stores, on purpose:

* the **market store** holds market data and the runs (the layer state). With
  ``source = snapshot`` it is the shipped history's own ``snapshot.sqlite``,
  so a demo never mixes with a live store's history or hedge state;
* the **delivery store** (``ALVH_DATABASE_URL``, by default
  ``<data dir>/alvh.sqlite``) holds the subscribers, the outbox and the
  deliveries *whatever the market source*: a subscriber added with ``alvh
  subscribers add`` receives the alerts of a snapshot demo as well.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from bot.kernel.errors import ConfigError, RulesError

if TYPE_CHECKING:
    import httpx

    from bot.app.metrics import Metrics
    from bot.app.settings import Settings
    from bot.delivery.channels.base import Channel
    from bot.delivery.channels.ratelimit import LocalPacer
    from bot.delivery.dispatch import DeliveryWorker
    from bot.delivery.health import ChannelHealth
    from bot.delivery.outbox import Outbox, Subscribers
    from bot.delivery.unsubscribe import UnsubscribeLinks
    from bot.engine.rules import Rules
    from bot.kernel.sessions import SessionCalendar
    from bot.market.extras import Fetcher
    from bot.market.sources.base import Source
    from bot.market.sources.chain import Endpoints
    from bot.pipeline.checkpoint import StateCache
    from bot.store import Store

MarketSource = Literal["live", "snapshot"]


LOCAL_RULES = Path("rules") / "alvh.yaml"
"""The rules file a user edits in place: used when it exists in the working directory
and ``ALVH_RULES_FILE`` is not set (``alvh rules init`` writes it)."""


@dataclass(frozen=True, slots=True)
class RulesChoice:
    """The rules file in force and why that one."""

    path: Path
    why: str

    def describe(self) -> str:
        return f"{os.fspath(self.path)} ({self.why})"


UNSUBSCRIBE_KEY_FILE = "unsubscribe.key"
"""In the data directory: the generated key of unsubscribe links, unless
``ALVH_UNSUBSCRIBE_SECRET`` is set."""


@dataclass
class Delivery:
    """The outbox, the worker that drains it, and the channels it sends through."""

    outbox: Outbox
    worker: DeliveryWorker
    channels: list[Channel]
    health: ChannelHealth
    subscribers: Subscribers
    described: list[str] = field(default_factory=list)
    """One line per channel: on, off and why (logged at start)."""
    telegram_app: Any = None
    """The python-telegram-bot ``Application`` when Telegram polling is on."""
    links: UnsubscribeLinks | None = None
    """One-click unsubscribe links (email configured), served on the HTTP server."""
    pacer: LocalPacer | None = None
    """The pacer every channel and the worker share (replicas set its share)."""


class Root:
    """Builds the parts of the bot from one :class:`Settings` (see the module doc)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # ---------------------------------------------------------------- basics
    @cached_property
    def calendar(self) -> SessionCalendar:
        """The XNYS session calendar (exchange_calendars), built once per process."""
        from bot.kernel.sessions import get_calendar

        return get_calendar()

    def source(self, override: str | None = None) -> MarketSource:
        """``live`` or ``snapshot``: a command's ``--source``, else ``ALVH_SOURCE``."""
        chosen = override or self.settings.source
        if chosen not in ("live", "snapshot"):
            raise ConfigError(f"unknown market source {chosen!r}: live or snapshot")
        return "snapshot" if chosen == "snapshot" else "live"

    def rules_choice(self, override: Path | None = None) -> RulesChoice:
        """Which rules file is in force, and why (see :data:`LOCAL_RULES`).

        ``override`` (a command's FILE argument), else ``ALVH_RULES_FILE``, else
        ``./rules/alvh.yaml`` when it exists in the working directory (the file
        in front of a user who edits it), else the packaged default.
        """
        if override is not None:
            return RulesChoice(override, "given on the command line")
        if self.settings.rules_file is not None:
            return RulesChoice(self.settings.rules_file, "ALVH_RULES_FILE")
        if LOCAL_RULES.is_file():
            return RulesChoice(LOCAL_RULES, "./rules/alvh.yaml in the working directory")
        from bot.engine.rules import default_rules_path

        return RulesChoice(default_rules_path(), "the packaged default")

    def rules_path(self, override: Path | None = None) -> Path:
        """The rules file in force (:meth:`rules_choice`)."""
        return self.rules_choice(override).path

    def load_rules(self, path: Path | None = None) -> Rules:
        """Load a rules file; a refused file is one line naming file, line and key."""
        from bot.engine.rules import RulesFileError, load_rules

        path = self.rules_path(path)
        try:
            return load_rules(path)
        except RulesFileError as exc:
            # One line has room for one problem: a misspelt key shows as "unknown key; did
            # you mean …" and as the "required key is missing" it causes; lead with the cause.
            lead = next((p for p in exc.problems if "did you mean" in p.message),
                        exc.problems[0] if exc.problems else None)
            first = str(lead).split("\n")[0] if lead is not None else str(path)
            more = len(exc.problems) - 1
            tail = (f" (and {more} more problem{'s' if more != 1 else ''}; "
                    f"see `alvh rules check {os.fspath(path)}`)") if more > 0 else ""
            raise ConfigError(f"rules file refused: {first}{tail}") from None
        except RulesError as exc:
            raise ConfigError(f"rules file refused: {str(exc).splitlines()[0]}") from None

    # ---------------------------------------------------------------- stores
    def data_dir(self) -> Path:
        """``ALVH_DATA_DIR``, created if needed; refused in one line if it cannot be used."""
        return usable_dir(self.settings.data_dir, "ALVH_DATA_DIR")

    def chart_dir(self) -> Path:
        """Where the console channel writes the charts it cannot show."""
        return self.settings.data_dir.absolute() / "charts"

    def open_delivery_store(self) -> Store:
        """The store of subscribers, the outbox and deliveries (and live market data).

        A bad ``ALVH_DATABASE_URL`` (not a URL, an unknown kind of database, a
        driver that is not installed, a database that cannot be opened) is a
        ConfigError naming the variable, with any password masked.
        """
        from bot.store import open_store

        if not self.settings.database_url:
            self.data_dir()
        try:
            return open_store(self.settings.store_url)
        except Exception as exc:  # every failure to open becomes one line
            raise ConfigError(database_problem(self.settings.store_url, exc,
                                               bool(self.settings.database_url))) from None

    def open_market_store(self, source: MarketSource) -> Store:
        """Market data and runs: the snapshot's own store, or the live store."""
        if source == "snapshot":
            from bot.market.snapshot import open_snapshot_store

            return open_snapshot_store(self.data_dir(), self.calendar)
        return self.open_delivery_store()

    @contextlib.contextmanager
    def market_store(self, source: MarketSource) -> Iterator[Store]:
        store = self.open_market_store(source)
        try:
            yield store
        finally:
            store.close()

    # ---------------------------------------------------------------- fetching
    def fetcher(
        self, source: MarketSource, store: Store, client: httpx.AsyncClient | None,
        rules: Callable[[], Rules],
    ) -> Fetcher:
        """Nothing to fetch for the snapshot; the live sources' fallback chains otherwise."""
        from bot.market.extras import fetch_nothing

        if source == "snapshot":
            return fetch_nothing
        from bot.market.fetch import LiveFetcher
        from bot.market.sources.base import SourceContext

        if client is None:
            raise ValueError("a live fetcher needs an HTTP client")
        endpoints = self.endpoints()
        return LiveFetcher(SourceContext(client, self.calendar), self.chains(endpoints), store,
                           endpoints=endpoints, etp_symbol=lambda: etp_symbol(rules()))

    @staticmethod
    def final_breadth(fetch: Fetcher) -> Callable[[dt.date], Awaitable[list[str]]] | None:
        """The live fetcher's evening re-fetch of final breadth figures (None: snapshot)."""
        from bot.market.fetch import LiveFetcher

        return fetch.refresh_final if isinstance(fetch, LiveFetcher) else None

    def endpoints(self) -> Endpoints:
        """Every source's base URL: the service's own, or the ``ALVH_*_URL`` setting."""
        from bot.market.sources.chain import Endpoints

        return Endpoints(**self.settings.source_urls())

    def chains(self, endpoints: Endpoints) -> dict[str, list[Source[Any]]]:
        """Each series' sources in order of preference, keys and shipped calendars included."""
        from bot.market.snapshot import SNAPSHOT_DIR
        from bot.market.sources.chain import default_chains

        return default_chains(endpoints, fred_api_key=self.settings.fred_api_key,
                              stooq_api_key=self.settings.stooq_api_key,
                              calendar_dir=SNAPSHOT_DIR / "calendar")

    def state_cache(self) -> StateCache:
        """Where a layer state rebuilt from history is cached (see bot.pipeline.checkpoint)."""
        from bot.pipeline.checkpoint import StateCache

        return StateCache(self.settings.data_dir / "cache" / "layer-state.json")

    def http_client(self) -> httpx.AsyncClient:
        import httpx

        # Services move behind redirects (a 301 is an address, not a failure).
        return httpx.AsyncClient(timeout=self.settings.http_timeout_seconds,
                                 follow_redirects=True)

    # ---------------------------------------------------------------- delivery
    def delivery(
        self, store: Store, *, console: TextIO | None = None, queries: Any = None,
        metrics: Metrics | None = None,
    ) -> Delivery:
        """Every configured channel (the registry's, built from the settings), the
        outbox on ``store`` and the worker that drains it.

        The console is the fallback: it prints every alert when no channel is
        configured, and the ``ops`` alerts when no channel has an admin address.
        With ``queries`` and a Telegram token, the Telegram command UI is built
        on the Telegram channel's bot (replies and alerts share one client).
        """
        import datetime as dt

        from bot.delivery.channels.base import ChannelEnv, ChannelSetup
        from bot.delivery.channels.console import ConsoleChannel
        from bot.delivery.channels.ratelimit import LocalPacer
        from bot.delivery.channels.registry import channel_classes
        from bot.delivery.dispatch import Backoff, DeliveryWorker
        from bot.delivery.health import ChannelHealth
        from bot.delivery.outbox import OpsReporter, Outbox, Standing, Subscribers
        from bot.kernel.alerts import Topic

        settings = self.settings
        subscribers = Subscribers(store.engine)
        links = self.unsubscribe_links()
        unsubscribe = None
        if links is not None:
            def unsubscribe(channel: str, address: str) -> str | None:
                return links.for_address(subscribers, channel, address)

        pacer, health = LocalPacer(), ChannelHealth()
        env = ChannelEnv(console=console, pacer=pacer, health=health, unsubscribe=unsubscribe)
        setups: list[ChannelSetup] = []
        described: list[str] = []
        for cls in channel_classes():
            built = cls.from_settings(settings, env)
            if isinstance(built, str):
                described.append(built)
            else:
                setups.append(built)
        channels = [s.channel for s in setups]
        standing = [Standing(s.channel.name, admin, frozenset({Topic.OPS}))
                    for s in setups for admin in s.admins]
        if not any(s.configured for s in setups):
            channels.append(ConsoleChannel(console, chart_dir=self.chart_dir()))
            standing.append(Standing(ConsoleChannel.name, ConsoleChannel.name, frozenset(Topic)))
            described.append("console: every alert is printed here")
        elif not standing:
            channels.append(ConsoleChannel(console, chart_dir=self.chart_dir()))
            standing.append(Standing(ConsoleChannel.name, ConsoleChannel.name,
                                     frozenset({Topic.OPS})))
            described.append("console: ops alerts (no admin address configured, e.g. "
                             "ALVH_ADMIN_CHAT_IDS)")
        described = [s.described for s in setups] + described
        app = None
        from bot.delivery.channels.telegram import TelegramChannel

        telegram = next((c for c in channels if isinstance(c, TelegramChannel)), None)
        if telegram is not None and queries is not None:
            from bot.app.telegram import Access, build_application

            access = Access(
                mode=settings.access_mode, invite_code=settings.invite_code,
                allowlist=frozenset(settings.allowlist_chat_ids),
                admins=frozenset(settings.admin_chat_ids),
            )
            app = build_application(telegram.bot, subscribers=subscribers,
                                    queries=queries, access=access)
            described = [(line + " (long polling)" if line.startswith("Telegram: on") else line)
                         for line in described]
        outbox = Outbox(store.engine, channels=[c.name for c in channels], standing=standing)
        observer = None
        if metrics is not None:
            m = metrics

            def observer(channel: str, outcome: str, latency: float | None) -> None:
                m.deliveries.labels(channel, outcome).inc()
                if latency is not None:
                    m.delivery_latency.observe(latency)
                m.pending.set(outbox.queue.unfinished())

        worker = DeliveryWorker(
            outbox, channels, pacer=pacer, health=health, ops=OpsReporter(outbox),
            observer=observer, backoff=Backoff(maximum=settings.delivery_retry_max_seconds),
            max_age=dt.timedelta(hours=settings.delivery_max_age_hours),
            stalled_after=dt.timedelta(minutes=settings.delivery_pending_alert_minutes),
        )
        return Delivery(outbox, worker, channels, health, subscribers, described, app, links,
                        pacer)

    def unsubscribe_links(self) -> UnsubscribeLinks | None:
        """Signed unsubscribe links when email is on (``ALVH_PUBLIC_URL`` set).

        The key is ``ALVH_UNSUBSCRIBE_SECRET``, else one generated on first use
        into the data directory (readable by the bot only), so links in emails
        already sent keep working across restarts.
        """
        settings = self.settings
        if not settings.smtp_host or not settings.public_url:
            return None
        from bot.delivery.unsubscribe import UnsubscribeLinks

        if settings.unsubscribe_secret is not None:
            secret = settings.unsubscribe_secret.get_secret_value().encode("utf-8")
            if len(secret) < 16:
                raise ConfigError("ALVH_UNSUBSCRIBE_SECRET: at least 16 characters")
        else:
            secret = _generated_key(settings.data_dir / UNSUBSCRIBE_KEY_FILE)
        return UnsubscribeLinks(secret, settings.public_url)


def _generated_key(path: Path) -> bytes:
    """32 random bytes kept in ``path`` (created 0600 on first use)."""
    import secrets

    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    except ValueError:
        raise ConfigError(f"{path}: not the hex key alvh wrote there; delete it to make a "
                          "new one (links in emails already sent stop working)") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another alvh process made it a moment ago
        return _generated_key(path)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(key.hex() + "\n")
    return key


def usable_dir(path: Path, variable: str) -> Path:
    """``path`` as a directory this process can write, created if missing, or ConfigError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"{variable}={path}: is a file, not a directory") from None
    except OSError as exc:
        raise ConfigError(f"{variable}={path}: cannot create it ({exc.strerror})") from None
    if not path.is_dir():
        raise ConfigError(f"{variable}={path}: is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{variable}={path}: this user may not write there")
    return path


_DRIVER_PACKAGES = {"psycopg": "'alvh[postgres]'", "psycopg2": "psycopg2-binary",
                    "pymysql": "pymysql", "MySQLdb": "mysqlclient", "asyncpg": "asyncpg"}


def database_problem(url: str, exc: Exception, from_setting: bool) -> str:
    """One line for a store that cannot be opened: which URL (password masked) and why."""
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.engine import make_url

    where = "ALVH_DATABASE_URL" if from_setting else "the default store"
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return (f"{where}: not a database URL (expected e.g. sqlite:////var/lib/alvh/alvh.sqlite "
                "or postgresql+psycopg://user:password@host/alvh)")
    if isinstance(exc, sa_exc.NoSuchModuleError):
        kind = shown.split(":", 1)[0]
        return f"{where}={shown}: unknown kind of database {kind!r}"
    if isinstance(exc, ImportError):
        module = exc.name or "its driver"
        package = _DRIVER_PACKAGES.get(module, module)
        return (f"{where}={shown}: the database driver is not installed (Python module "
                f"{module!r}; install it with `pip install {package}`)")
    if isinstance(exc, sa_exc.DBAPIError):
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        return f"{where}={shown}: cannot open the database ({detail})"
    if isinstance(exc, OSError):
        return f"{where}={shown}: cannot open the database ({exc.strerror or exc})"
    if isinstance(exc, ConfigError):
        return str(exc)
    return f"{where}={shown}: cannot open the database ({type(exc).__name__}: {exc})"


def etp_symbol(rules: Rules) -> str | None:
    """The ETP (VXX, UVXY) the rules hedge with, or None for VX futures."""
    inst = rules.hedge.instrument
    return inst.etp_symbol if inst.kind == "etp" else None
