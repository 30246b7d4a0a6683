"""Settings from COACH_* environment variables and an optional .env file."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
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

    def check_for_serving(self) -> None:
        """Refuse settings that would expose learners' data."""
        if not self.is_loopback and not self.api_token:
            raise ConfigError(
                f"refusing to listen on {self.host}: set COACH_API_TOKEN first, "
                "so the API is not open to the network"
            )
        self.async_database_url  # noqa: B018 - raises ConfigError on a bad scheme


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning pydantic's multi-line report into one clear line."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "COACH_" + "_".join(str(p) for p in first["loc"]).upper()
        raise ConfigError(f"{name}: {first['msg']}") from None
