"""Settings from COACH_* environment variables and an optional .env file."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.paths import shipped


class ConfigError(Exception):
    """A setting a user got wrong: the message is one line that says which and why."""


# SQLAlchemy URL schemes we accept, mapped to the async driver we use for each.
_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def normalise_database_url(url: str) -> str:
    """Map a user's database URL to the async driver; reject schemes we do not run on."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(
            f"COACH_DATABASE_URL {url!r} is not a URL; use sqlite:///path/to/coach.db "
            "or postgresql://user@host/db"
        )
    driver = _DRIVERS.get(scheme.lower())
    if driver is None:
        raise ConfigError(
            f"COACH_DATABASE_URL uses {scheme!r}, which Coach does not support; "
            "use sqlite:/// or postgresql://"
        )
    return f"{driver}://{rest}"


class Settings(BaseSettings):
    """Every knob an operator can turn; README lists each with its default."""

    model_config = SettingsConfigDict(
        env_prefix="COACH_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite:///./var/coach.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    api_token: str | None = None
    secret_key: str | None = None
    default_locale: str = "en"
    timezone: str = "UTC"
    dialogs_dir: Path = Field(default_factory=lambda: shipped("dialogs"))
    content_dir: Path = Field(default_factory=lambda: shipped("content"))
    log_level: str = "INFO"
    # A conversation idle longer than this resumes with a recap (issue: 24 hours).
    idle_resume_hours: float = Field(default=24.0, gt=0)
    # How long the message log and the inbox keep rows (privacy: the least we need).
    message_retention_days: int = Field(default=180, ge=1)
    # Database pool per process; SQLite writes are serialised anyway.
    db_pool_size: int = Field(default=10, ge=1, le=200)

    # -- Proactive messages: the scheduler, the outbox dispatcher, quiet hours (issue 5) --
    # No reminders or nudges in this local window (a person's own quiet_start/quiet_end
    # win); "HH:MM-HH:MM", crossing midnight when the start is later.
    quiet_hours: str = "20:00-08:00"
    # How often the scheduler looks for due reminders, nudges and digests. Appointments
    # are minutes apart at the finest, so 30 s is on time without busy-polling the DB.
    scheduler_tick_seconds: float = Field(default=30.0, gt=0, le=3600)
    # How often the dispatcher looks for rows that fell due (retries, quiet-hours holds)
    # when nothing kicked it; a turn's replies and a tick's new rows kick it at once.
    dispatch_poll_seconds: float = Field(default=5.0, gt=0, le=600)
    # A claimed row is this worker's for this long; a worker that dies leaves it to be
    # claimed again after it. Must exceed the slowest send (platform timeouts are ~30 s).
    dispatch_lease_seconds: float = Field(default=60.0, gt=0, le=3600)
    # Sends per row before it is marked failed (bot/delivery/dispatcher.py, backoff).
    dispatch_max_attempts: int = Field(default=8, ge=1, le=50)
    # Rows one claim takes: small enough that a dying worker strands few, large enough
    # that a busy outbox is not one round trip per message.
    dispatch_batch_size: int = Field(default=20, ge=1, le=1000)
    # The weekly family nudge, in each family member's own time zone (issue 5's default:
    # Sunday 18:00); ISO weekday 1 (Monday) to 7 (Sunday).
    nudge_weekday: int = Field(default=7, ge=1, le=7)
    nudge_time: str = "18:00"

    # -- Safeguarding (issue 5): what a flagged learner reads, who hears of it ----------
    # Crisis contacts shown to a learner whose message the safety screen flags, one per
    # line (";" separates them in an environment variable). US defaults: the 988 Suicide
    # & Crisis Lifeline (call or text; "press 2" for Spanish), the Crisis Text Line (text
    # HOME, or AYUDA for Spanish, to 741741) and 911. Set your country's lines.
    crisis_contacts_en: str = (
        "Call or text 988 (Suicide & Crisis Lifeline, any time);"
        "Text HOME to 741741 (Crisis Text Line);"
        "Call 911 if you are in danger right now"
    )
    crisis_contacts_es: str = (
        "Llama o escribe al 988 y oprime 2 para español (Línea 988, a cualquier hora);"
        "Envía AYUDA al 741741 (Crisis Text Line);"
        "Llama al 911 si estás en peligro ahora mismo"
    )
    # Who hears of every alert besides the learner's class teachers:
    # "channel:external_id" (e.g. "telegram:123456", or "slack:T0123TEAM:U0123ABC": a
    # Slack person is their workspace and user id); several separated by commas.
    # Unset: class teachers only.
    safeguarding_contact: str | None = None
    # Unacknowledged alerts are sent again this often (issue 5: after 30 minutes).
    safety_resend_minutes: int = Field(default=30, ge=1, le=24 * 60)

    @field_validator("safeguarding_contact")
    @classmethod
    def _contact_identities(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        safeguarding_contacts(value)  # raises ValueError naming the bad entry
        return value

    # -- Telegram (issue 6): the channel is on when a token is set --------------------
    # The bot's token from @BotFather. Secret: kept out of reprs and of every log line.
    telegram_token: SecretStr | None = None
    # Telegram repeats it in X-Telegram-Bot-Api-Secret-Token on every webhook call, so
    # only Telegram can post updates; the Bot API allows 1-256 of A-Z a-z 0-9 _ -.
    telegram_webhook_secret: SecretStr | None = None
    # Where the Bot API is: Telegram's, a local Bot API server, or the tests' fake.
    telegram_api_base: str = "https://api.telegram.org"

    # -- Slack (issue 6): on with a bot token (one workspace) or OAuth (several) ------
    # The bot token (xoxb-...) of a single-workspace install, from the app's "OAuth &
    # Permissions" page. Works alone, or beside OAuth for the workspace it belongs to.
    slack_bot_token: SecretStr | None = None
    # "Basic Information" > "Signing Secret": every request to /slack/events is checked
    # against it (bad or older than five minutes: 401). Needed unless Socket Mode only.
    slack_signing_secret: SecretStr | None = None
    # An app-level token (xapp-..., scope connections:write): `coach serve` then takes
    # events over Socket Mode instead of HTTP, for development without a public address.
    slack_app_token: SecretStr | None = None
    # OAuth for several workspaces ("Basic Information" > "App Credentials"): both set,
    # /slack/install starts an install and tokens are kept in our database.
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    # Slack's Web API address (slack_sdk's default); the tests point it at their fake.
    slack_api_base: str = "https://slack.com/api/"

    @field_validator(
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "slack_client_id",
        "slack_client_secret",
        mode="before",
    )
    @classmethod
    def _blank_slack_is_none(cls, value: object) -> object:
        return value or None

    @field_validator("slack_api_base")
    @classmethod
    def _slack_address(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http:// or https:// address")
        # slack_sdk joins method names straight onto it: keep exactly one slash.
        return value.rstrip("/") + "/"

    @property
    def slack_oauth(self) -> bool:
        return self.slack_client_id is not None and self.slack_client_secret is not None

    @property
    def slack_enabled(self) -> bool:
        """Slack is on with a bot token or with OAuth credentials."""
        return self.slack_bot_token is not None or self.slack_oauth

    # -- Production (issue 7): stopping cleanly, believing a reverse proxy -------------
    # On SIGTERM `coach serve` stops accepting, lets turns in flight finish, hands back
    # its outbox claims and exits 0, all within this many seconds (turns in flight get
    # it less a second for the clean-up; a turn still running then is rolled back and
    # its client retries). 10 s is Docker's and Compose's wait before SIGKILL, the
    # shortest of the usual supervisors (Kubernetes waits 30 s, systemd 90 s).
    shutdown_grace_seconds: float = Field(default=10.0, ge=0, le=600)
    # Who may say, in X-Forwarded-Proto, that the browser used HTTPS (the web chat's
    # cookie is then Secure): unset or "false" nobody; "true" any peer (only when the
    # proxy is the sole way in); else the proxies' addresses or networks, e.g.
    # "10.0.0.5, 172.16.0.0/12".
    trusted_proxy: str | None = None

    @field_validator("trusted_proxy")
    @classmethod
    def _proxy_addresses(cls, value: str | None) -> str | None:
        trusted_networks(value)  # raises ValueError naming the bad entry
        return value

    @property
    def trusted_proxy_networks(self) -> list[IPNetwork]:
        return trusted_networks(self.trusted_proxy)

    @field_validator("telegram_token", "telegram_webhook_secret", mode="before")
    @classmethod
    def _blank_secret_is_none(cls, value: object) -> object:
        return value or None

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _secret_token_alphabet(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(
            r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()
        ):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("telegram_api_base")
    @classmethod
    def _http_address(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http:// or https:// address")
        return value.rstrip("/")

    @field_validator("api_token", "secret_key")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        value = value.lower()
        if value not in ("en", "es"):
            raise ValueError("must be 'en' or 'es'")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone") from exc
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_window(cls, value: str) -> str:
        from bot.coach.delivery_rules import QuietHours

        QuietHours.parse(value)  # ValueError says what is wrong
        return value.strip()

    @field_validator("nudge_time")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        from bot.coach.delivery_rules import parse_hhmm

        parse_hhmm(value)
        return value.strip()

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.upper()
        if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value

    @property
    def async_database_url(self) -> str:
        return normalise_database_url(self.database_url)

    @property
    def is_loopback(self) -> bool:
        if self.host in ("localhost", ""):
            return self.host == "localhost"
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def check_for_serving(self, *, telegram_polling: bool = False) -> None:
        """Refuse settings that would expose learners' data (or half-configure a channel)."""
        if not self.is_loopback and not self.api_token:
            raise ConfigError(
                f"refusing to listen on {self.host}: set COACH_API_TOKEN first, "
                "so the API is not open to the network"
            )
        self.async_database_url  # noqa: B018 - raises ConfigError on a bad scheme
        if telegram_polling and self.telegram_token is None:
            raise ConfigError("--telegram-polling needs COACH_TELEGRAM_TOKEN (from @BotFather)")
        # Polling fetches updates itself; the webhook then refuses every post (no secret).
        webhook = not telegram_polling
        if webhook and self.telegram_token is not None and self.telegram_webhook_secret is None:
            raise ConfigError(
                "COACH_TELEGRAM_WEBHOOK_SECRET must be set with COACH_TELEGRAM_TOKEN, "
                "or anyone could post updates to /telegram/webhook"
            )
        if (self.slack_client_id is None) != (self.slack_client_secret is None):
            raise ConfigError(
                "set both COACH_SLACK_CLIENT_ID and COACH_SLACK_CLIENT_SECRET for OAuth, or neither"
            )
        # Socket Mode alone (an app token and a bot token) takes no HTTP requests.
        socket_only = self.slack_app_token is not None and not self.slack_oauth
        if self.slack_enabled and self.slack_signing_secret is None and not socket_only:
            raise ConfigError(
                "COACH_SLACK_SIGNING_SECRET must be set with Slack on, or anyone could "
                "post to /slack/events (Socket Mode alone, with COACH_SLACK_APP_TOKEN, "
                "needs none)"
            )


def safeguarding_contacts(value: str | None) -> list[tuple[str, str]]:
    """COACH_SAFEGUARDING_CONTACT as (channel, external id) pairs; ValueError if malformed."""
    pairs = []
    for entry in (value or "").split(","):
        if not entry.strip():
            continue
        channel, sep, external_id = entry.strip().partition(":")
        if not sep or not channel.strip() or not external_id.strip():
            raise ValueError(f"{entry.strip()!r} is not channel:external_id (e.g. telegram:123456)")
        pairs.append((channel.strip().lower(), external_id.strip()))
    return pairs


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_EVERYWHERE = [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]


def trusted_networks(value: str | None) -> list[IPNetwork]:
    """COACH_TRUSTED_PROXY as networks: [] trusts no peer, both whole address spaces
    trust any; ValueError names an entry that is neither an address nor a network."""
    text = (value or "").strip().lower()
    if text in ("", "false", "0", "no", "off"):
        return []
    if text in ("true", "1", "yes", "on", "*"):
        return list(_EVERYWHERE)
    networks: list[IPNetwork] = []
    for entry in text.split(","):
        if not entry.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"{entry.strip()!r} is not an address or network (e.g. 10.0.0.5 or "
                "10.0.0.0/8); use true to trust any peer"
            ) from None
    return networks


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning pydantic's multi-line report into one clear line."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "COACH_" + "_".join(str(p) for p in first["loc"]).upper()
        raise ConfigError(f"{name}: {first['msg']}") from None
