"""Settings, read once at the entry point and passed down as plain values.

pydantic-settings gives us ``ALVH_*`` environment variables, an optional
``.env`` file and a Docker-secrets directory with one precedence order, and
``SecretStr`` so a token can be passed around without ever being printed.
Nothing below the entry point imports this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from bot.kernel.errors import ConfigError
from bot.kernel.models import MIN_CLOSE_GAP_MINUTES

ENV_PREFIX = "ALVH_"
ENV_FILE = Path(".env")
"""The optional settings file, in the working directory."""
DEFAULT_SECRETS_DIR = Path("/run/secrets")


def _split_ints(value: Any) -> Any:
    """Accept ``"1,2,3"`` as well as JSON lists, because that is what people type."""
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("["):
            import json

            return json.loads(value)
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
        # ``ALVH_DATA_DIR=`` (set but empty, e.g. from an unset shell variable) is the
        # default, not the working directory.
        env_ignore_empty=True,
    )

    # --- where things live -------------------------------------------------
    data_dir: Path = Field(Path("./var"), description="SQLite store, lock file, charts")
    database_url: str | None = Field(
        None, description="any SQLAlchemy URL; default sqlite:///<data_dir>/alvh.sqlite"
    )
    rules_file: Path | None = Field(None, description="rules file; default: the shipped ALVH rules")
    source: Literal["live", "snapshot"] = Field(
        "live", description="live = fetch from the internet; snapshot = shipped history only"
    )

    # --- money -------------------------------------------------------------
    capital: float = Field(
        2_000_000.0, gt=0, le=1e12, allow_inf_nan=False,
        description="portfolio capital in USD for sizing (at most 1e12: above that, contract "
                    "counts stop meaning anything)"
    )

    # --- scheduling ---------------------------------------------------------
    run_delay_minutes: int = Field(20, ge=0, le=600, description="minutes after the close to run")
    data_deadline_minutes: int = Field(
        240, ge=1, le=1440, description="minutes after the first try to give up waiting for data"
    )
    catchup_sessions: int = Field(5, ge=0, le=60, description="sessions evaluated at start-up")

    # --- secrets and API keys ---------------------------------------------
    telegram_token: SecretStr | None = None
    fred_api_key: SecretStr | None = None
    stooq_api_key: SecretStr | None = None
    smtp_password: SecretStr | None = None
    invite_code: SecretStr | None = None

    # --- Telegram -----------------------------------------------------------
    telegram_paid_broadcast: bool = Field(
        False, description="send alerts with allow_paid_broadcast: up to 1,000 messages/s, "
        "0.1 Telegram Star per message, paid from the bot's balance")
    telegram_base_url: str = "https://api.telegram.org/bot"
    admin_chat_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    access_mode: Literal["open", "invite", "allowlist"] = "open"
    allowlist_chat_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)

    # --- email ----------------------------------------------------------------
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_user: str | None = None
    smtp_from: str | None = None

    # --- Apprise (Discord, Slack, ntfy, Pushover, Matrix, webhooks… by URL) --------
    apprise_admin_urls: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="space-separated Apprise URLs that receive ops alerts (they carry tokens)",
    )

    # === delivery: retries, expiry, health, email sender and unsubscribe (issue 10) ===
    delivery_max_age_hours: float = Field(
        24.0, gt=0, le=24 * 14,
        description="how long an alert is worth delivering; older undelivered ones expire "
                    "and ops is told",
    )
    delivery_retry_max_seconds: float = Field(
        300.0, ge=1, le=3600, description="cap of the backoff between two retries of a delivery"
    )
    delivery_pending_alert_minutes: int = Field(
        30, ge=1, le=24 * 60,
        description="/healthz answers 503 (and ops hears of an unreachable channel) when a "
                    "delivery has waited this long",
    )
    admin_emails: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated addresses that receive ops by email"
    )
    public_url: str | None = Field(
        None, description="https:// address where this bot's HTTP server is reachable "
                          "(one-click unsubscribe links); required with ALVH_SMTP_HOST",
    )
    unsubscribe_secret: SecretStr | None = Field(
        None, description="key that signs unsubscribe links; default: generated once "
                          "into <data dir>/unsubscribe.key",
    )
    # === end of the delivery block ============================================

    # --- HTTP health/metrics and logging ---------------------------------------
    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65535)
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    http_timeout_seconds: float = Field(20.0, gt=0, le=300)

    # --- market data sources (data wing: bot/market) ----------------------------
    # Base URL of each source, for mirrors, proxies and recorded-response servers;
    # unset means the service's own address (bot.market.sources.chain.Endpoints).
    yahoo_url: str | None = None
    fred_graph_url: str | None = None
    fred_api_url: str | None = None
    cboe_url: str | None = None
    stooq_url: str | None = None
    wsj_url: str | None = None
    mcclellan_url: str | None = None
    tradingview_url: str | None = Field(None, description="WebSocket base, wss://...")
    fed_url: str | None = None
    vx_settlement_url: str | None = Field(None, description="full URL of the CSV endpoint")
    cboe_chain_url: str | None = Field(None, description="full URL of _SPX.json")
    breadth_final_time: str = Field(
        "20:00",
        description="HH:MM ET: when each session's NYSE breadth is fetched again for the "
                    "final figures")
    # --- end of the market data block --------------------------------------------

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        """A URL SQLAlchemy can parse (whether its driver is installed is checked on use)."""
        if value is None or not value.strip():
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(value)
        except ArgumentError:
            raise ValueError("not a database URL (expected e.g. sqlite:////var/lib/alvh/"
                             "alvh.sqlite or postgresql+psycopg://user:password@host/alvh)"
                             ) from None
        return value

    @field_validator("breadth_final_time")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        """A time of day on the 24-hour clock; a regex in the error would mean nothing to a user."""
        if re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value.strip()) is None:
            raise ValueError(
                "not a time of day as HH:MM, 00:00 to 23:59 (New York time, e.g. 20:00)")
        return value.strip()

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> Any:
        """``debug`` is as clear as ``DEBUG``."""
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _schedule_fits(self) -> Settings:
        """Refuse a schedule that could skip a session silently.

        A session is evaluated from its close plus the run delay, waiting for
        data up to the deadline; that window must end before the next session
        closes (at least 21 h later: a 16:00 close before a 13:00 early close),
        or the wait for one day's data would run into the next day's run.
        """
        used = self.run_delay_minutes + self.data_deadline_minutes
        if used > MIN_CLOSE_GAP_MINUTES:
            raise ValueError(
                f"ALVH_RUN_DELAY_MINUTES={self.run_delay_minutes} plus "
                f"ALVH_DATA_DEADLINE_MINUTES={self.data_deadline_minutes} is {used} minutes; "
                f"they must add up to at most {MIN_CLOSE_GAP_MINUTES} (21 h, the shortest time "
                "between two NYSE closes) or one session's wait for data would overlap the "
                "next session's run")
        return self

    @model_validator(mode="after")
    def _one_unsubscribe_key(self) -> Settings:
        """Replicas on one PostgreSQL database must sign unsubscribe links alike.

        Without ``ALVH_UNSUBSCRIBE_SECRET`` each instance generates its own key in
        its own data directory, and a link mailed by one would be refused by the
        other behind the same ``ALVH_PUBLIC_URL``.
        """
        shared = (self.database_url or "").startswith("postgresql")
        if shared and self.smtp_host and self.unsubscribe_secret is None:
            raise ValueError(
                "ALVH_UNSUBSCRIBE_SECRET: required with email (ALVH_SMTP_HOST) on a PostgreSQL "
                "ALVH_DATABASE_URL, so that every instance signs unsubscribe links with the "
                "same key (at least 16 characters)")
        return self

    @field_validator("telegram_token")
    @classmethod
    def _printable_token(cls, value: SecretStr | None) -> SecretStr | None:
        """A token with a control character or a space (a corrupt secret file, a pasted
        line break) would look like a network error on every request; refused at start.
        The value is never shown."""
        token = value.get_secret_value() if value is not None else ""
        if token and any(c.isspace() or not c.isprintable() for c in token.strip()):
            raise ValueError("contains a space or a control character: not a bot token "
                             "(expected 123456789:AA… as @BotFather gives it)")
        return SecretStr(token.strip()) if value is not None else None

    @field_validator("telegram_base_url")
    @classmethod
    def _bot_api_path(cls, value: str) -> str:
        """The token is appended to this URL as it is (python-telegram-bot's ``base_url``):
        without the ``/bot`` path the token would land in the host and port, where it
        makes an invalid URL that error messages then quote."""
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL, e.g. https://api.telegram.org/bot")
        if not parts.path.endswith("/bot"):
            raise ValueError(f"must end with /bot, the Bot API's path the token is appended "
                             f"to (e.g. {parts.scheme}://{parts.netloc}/bot)")
        return value

    @field_validator("admin_chat_ids", "allowlist_chat_ids", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        return _split_ints(value)

    @field_validator("admin_emails", mode="before")
    @classmethod
    def _emails(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        """An HTTPS origin (a path prefix allowed): mail clients only follow HTTPS
        one-click links (RFC 8058)."""
        if value is None or not value.strip():
            return None
        from urllib.parse import urlsplit

        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("expected an https:// URL such as https://alvh.example.com "
                             "(where this bot's HTTP server is reachable)")
        return value

    def source_urls(self) -> dict[str, str]:
        """The base URLs set (``Endpoints`` field name -> URL); unset ones are left out."""
        names = ("yahoo", "fred_graph", "fred_api", "cboe", "stooq", "wsj", "mcclellan",
                 "tradingview", "fed", "vx_settlement", "cboe_chain")
        urls = {n: getattr(self, f"{n}_url") for n in names}
        return {n: u for n, u in urls.items() if u}

    @field_validator("apprise_admin_urls", mode="before")
    @classmethod
    def _urls(cls, value: Any) -> Any:
        """Whitespace-separated (URLs may contain commas, never spaces)."""
        return value.split() if isinstance(value, str) else value

    @property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'alvh.sqlite'}"

    @property
    def store_url_shown(self) -> str:
        """The store URL with any password masked, for logs and command output."""
        from sqlalchemy.engine import make_url

        return make_url(self.store_url).render_as_string(hide_password=True)

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redaction filter."""
        values = (self.telegram_token, self.smtp_password, self.fred_api_key,
                  self.stooq_api_key, self.invite_code, self.unsubscribe_secret,
                  *self.apprise_admin_urls)
        out = [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]
        if self.telegram_token is not None:
            # The part after the bot id is the secret one; a URL parser that splits the
            # token at its colon would quote it alone.
            _, _, secret = self.telegram_token.get_secret_value().partition(":")
            if len(secret) >= 8:
                out.append(secret)
        if self.database_url:
            from sqlalchemy.engine import make_url

            password = make_url(self.database_url).password
            if password:
                out.append(str(password))
        return out

    def missing(self) -> list[str]:
        """What is not configured, in words, so a no-settings run can say it out loud."""
        out = []
        if self.telegram_token is None:
            out.append("ALVH_TELEGRAM_TOKEN not set: no Telegram, alerts go to the console")
        if self.smtp_host is None:
            out.append("ALVH_SMTP_HOST not set: no email")
        if self.fred_api_key is None:
            out.append("ALVH_FRED_API_KEY not set: CPI/PPI dates from the shipped calendar only")
        if not self.admin_chat_ids:
            out.append("ALVH_ADMIN_CHAT_IDS not set: ops alerts go to the console only")
        return out


def _describe(err: dict[str, Any]) -> str:
    loc = err.get("loc") or ()
    if not loc:  # a check across settings: the message names every variable
        return str(err.get("msg", "invalid")).removeprefix("Value error, ")
    field = str(loc[0]) if loc else "?"
    var = ENV_PREFIX + field.upper()
    got = err.get("input")
    hidden = (field in _SECRET_FIELDS or field in _MAY_HOLD_SECRETS or got is None
              or isinstance(got, dict))
    shown = "" if hidden else f" (got {got!r})"
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{var}: {msg}{shown}"


_MAY_HOLD_SECRETS = {"database_url"}
"""Not secrets, but a URL that failed to parse may carry a password we cannot mask."""

_SECRET_FIELDS = {"telegram_token", "fred_api_key", "stooq_api_key", "smtp_password", "invite_code",
                  "apprise_admin_urls", "unsubscribe_secret"}


def load_settings(
    env_file: Path | None = ENV_FILE, secrets_dir: Path | None = None
) -> Settings:
    """Read settings or raise ConfigError with one line per bad variable.

    The secrets directory defaults to ``/run/secrets`` when it exists (Docker
    and Kubernetes mount secrets there as one file per variable, e.g.
    ``/run/secrets/alvh_telegram_token``).
    """
    if secrets_dir is None and DEFAULT_SECRETS_DIR.is_dir():
        secrets_dir = DEFAULT_SECRETS_DIR
    elif secrets_dir is not None and not secrets_dir.is_dir():
        # Asked for by name: a typo (or an empty $CREDENTIALS_DIRECTORY) would
        # otherwise run the bot without its token, with only a library warning.
        what = "a file" if secrets_dir.exists() else "no such directory"
        raise ConfigError(f"--secrets-dir {secrets_dir}: {what}; it must be the directory of "
                          "secret files (one file per variable, e.g. alvh_telegram_token)")
    kwargs: dict[str, Any] = {"_env_file": env_file}
    if secrets_dir is not None:
        kwargs["_secrets_dir"] = secrets_dir
    try:
        return Settings(**kwargs)
    except UnicodeDecodeError as exc:  # a binary .env or secret file: name it
        raise ConfigError(_not_text(exc, env_file, secrets_dir)) from None
    except OSError as exc:  # e.g. .env is a directory
        raise ConfigError(f"{exc.filename or env_file}: cannot read the settings file "
                          f"({exc.strerror or exc})") from None
    except SettingsError as exc:  # e.g. a variable that is not valid JSON where JSON is read
        if isinstance(exc.__cause__, UnicodeDecodeError):  # a binary secret file
            raise ConfigError(_not_text(exc.__cause__, env_file, secrets_dir)) from None
        raise ConfigError(str(exc).partition("\n")[0]) from None
    except ValidationError as exc:
        lines = [_describe(dict(e)) for e in exc.errors()]
        raise ConfigError("; ".join(lines)) from None


NOT_SETTINGS_PREFIXES = ("ALVH_TEST_", "ALVH_CI_", "ALVH_REQUIRE_")
"""``ALVH_`` variables the test suite and CI read, not the bot."""


def unknown_variables(environ: Mapping[str, str], env_file: Path | None = None) -> list[str]:
    """One line per ``ALVH_*`` name in the environment or ``env_file`` that is no setting,
    with the setting it most likely meant. Unknown names are ignored by the settings (so a
    variable for another version does not stop the bot), which makes a typo such as
    ``ALVH_TELEGRAM_TOKN`` silent: the bot would run without Telegram. This says it."""
    import difflib

    names = set(environ)
    if env_file is not None and env_file.is_file():
        from dotenv import dotenv_values

        try:
            names |= {k for k in dotenv_values(env_file) if k}
        except (OSError, UnicodeDecodeError):
            pass  # load_settings has said what is wrong with the file
    known = [ENV_PREFIX + f.upper() for f in Settings.model_fields]
    out = []
    for name in sorted(n for n in names if n.upper().startswith(ENV_PREFIX)):
        if name.upper() in known or name.upper().startswith(NOT_SETTINGS_PREFIXES):
            continue
        close = difflib.get_close_matches(name.upper(), known, n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]}?)" if close else ""
        out.append(f"{name} is not a setting alvh reads; it is ignored{hint}")
    return out


def _not_text(exc: UnicodeDecodeError, env_file: Path | None, secrets_dir: Path | None) -> str:
    """Which settings file is not UTF-8 text, and where (pydantic-settings does not say)."""
    files = [env_file] if env_file is not None else []
    if secrets_dir is not None:
        files += sorted(p for p in secrets_dir.iterdir() if p.name.lower().startswith("alvh_"))
    for path in files:
        try:
            path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as bad:
            hold = ("NAME=value lines" if path == env_file
                    else "the value alone, as text")
            return (f"{path}: not UTF-8 text (byte 0x{bad.object[bad.start]:02x} at offset "
                    f"{bad.start}); this file holds {hold}")
        except OSError:
            continue
    return f"a settings file is not UTF-8 text ({exc.reason})"
