"""`coach doctor`: checks a deployment and says what is wrong in plain words.

One line per check, each "ok", "warning" or "problem": the configuration, the
database and its migrations, the dialogs and the resource catalog, the channel
tokens (Telegram's getMe, Slack's auth.test, when configured and reachable),
the cookie key replicas share, and whether the API is open to the network. The
command exits 1 when any check found a problem, 0 otherwise (warnings included).
Nothing is written: no database is created, no migration is run, no token or
password is printed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.config import ConfigError, Settings, load_settings

Level = Literal["ok", "warning", "problem"]

# How long a check waits on the network (the database, Telegram, Slack) before
# calling it unreachable: both platforms answer in well under a second, and an
# operator running doctor should not wait a minute (asyncpg's own default).
NETWORK_TIMEOUT_SECONDS = 5.0
# A shorter COACH_SECRET_KEY is guessable in principle; the README suggests
# `openssl rand -hex 32` (64 characters). 16 characters of hex are 64 bits.
MIN_SECRET_LENGTH = 16


@dataclass(frozen=True, slots=True)
class Finding:
    """What one check found."""

    level: Level
    check: str
    message: str

    def line(self) -> str:
        return f"{self.level:<8} {self.check}: {self.message}"


def run(load: Callable[[], Settings] = load_settings) -> tuple[list[str], int]:
    """Every check's line, then a summary; and the exit code."""
    findings = asyncio.run(check_all(load))
    problems = sum(f.level == "problem" for f in findings)
    warnings = sum(f.level == "warning" for f in findings)
    lines = [f.line() for f in findings]
    if problems or warnings:
        lines.append(f"coach doctor: {_count(problems, 'problem')}, {_count(warnings, 'warning')}")
    else:
        lines.append("coach doctor: all good")
    return lines, 1 if problems else 0


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


async def check_all(load: Callable[[], Settings] = load_settings) -> list[Finding]:
    try:
        settings = load()
    except ConfigError as exc:
        # Every other check reads the settings: there is nothing more to say.
        return [Finding("problem", "configuration", str(exc))]
    findings = [Finding("ok", "configuration", "every COACH_* setting reads")]
    findings.append(serving(settings))
    findings.append(secret_key(settings))
    findings.extend(await database(settings))
    findings.extend(dialogs_and_catalog(settings))
    findings.extend(await channels(settings))
    return findings


def serving(settings: Settings) -> Finding:
    """What `coach serve` would refuse: the API open to the network, a webhook anyone
    could post to."""
    try:
        settings.check_for_serving()
    except ConfigError as exc:
        return Finding("problem", "serving", f"coach serve will not start: {exc}")
    if settings.is_loopback:
        return Finding("ok", "serving", f"listens on {settings.host} (this machine only)")
    return Finding("ok", "serving", f"listens on {settings.host}; the API needs COACH_API_TOKEN")


def secret_key(settings: Settings) -> Finding:
    """The web chat's cookie key: replicas must share one, or a learner's chat is lost
    each time the balancer sends them to another replica."""
    if settings.secret_key:
        if len(settings.secret_key) < MIN_SECRET_LENGTH:
            return Finding(
                "warning",
                "secret key",
                f"COACH_SECRET_KEY is shorter than {MIN_SECRET_LENGTH} characters; "
                "make a long one with: openssl rand -hex 32",
            )
        return Finding("ok", "secret key", "COACH_SECRET_KEY is set")
    if _is_postgres(settings):
        return Finding(
            "warning",
            "secret key",
            "COACH_SECRET_KEY is not set: each replica would make its own, and web chat "
            "learners would lose their chat when moved to another replica; set one "
            "shared key (openssl rand -hex 32)",
        )
    return Finding(
        "ok",
        "secret key",
        "generated and kept beside the database (set COACH_SECRET_KEY before adding replicas)",
    )


def _is_postgres(settings: Settings) -> bool:
    try:
        return make_url(settings.async_database_url).get_backend_name() == "postgresql"
    except Exception:
        return False


def _safe_url(settings: Settings) -> str:
    """The database URL as an operator wrote it, password hidden."""
    try:
        return make_url(settings.database_url).render_as_string(hide_password=True)
    except Exception:
        return "COACH_DATABASE_URL"


async def database(settings: Settings) -> list[Finding]:
    """Reachable, and at the newest migration; read only."""
    from bot.store import migrate
    from bot.store.db import Database

    where = _safe_url(settings)
    try:
        url = make_url(settings.async_database_url)
    except Exception as exc:
        return [Finding("problem", "database", f"COACH_DATABASE_URL does not read: {exc}")]
    connect_args: dict[str, Any] | None = None
    if url.get_backend_name() == "sqlite":
        if _missing_sqlite_file(url.database):
            return [
                Finding(
                    "warning",
                    "database",
                    f"no database at {where} yet (coach serve or coach db upgrade "
                    "creates it); migrations not checked",
                )
            ]
    else:
        connect_args = {"timeout": NETWORK_TIMEOUT_SECONDS}
    db = Database(settings.database_url, pool_size=1, connect_args=connect_args)
    try:
        try:
            async with asyncio.timeout(NETWORK_TIMEOUT_SECONDS * 2):
                async with db.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                current = await migrate.current_revision(db)
        except Exception as exc:  # whatever the driver raises, said in one line
            reason = getattr(exc, "orig", None) or exc
            described = str(reason).strip() or type(reason).__name__
            return [
                Finding("problem", "database", f"cannot reach {where}: {described}"),
            ]
    finally:
        await db.dispose()
    found = [Finding("ok", "database", f"{where} answers")]
    head = migrate.head_revision()
    if current == head:
        found.append(Finding("ok", "migrations", f"the schema is current ({head})"))
    elif current is None:
        found.append(
            Finding(
                "warning",
                "migrations",
                "the database is empty: coach serve (or coach db upgrade) creates the tables",
            )
        )
    elif current in _known_revisions():
        found.append(
            Finding(
                "warning",
                "migrations",
                f"the schema is at {current}, this Coach needs {head}: coach serve "
                "migrates on start, or run coach db upgrade",
            )
        )
    else:
        found.append(
            Finding(
                "problem",
                "migrations",
                f"the schema is at {current}, which this Coach does not know (a newer "
                "version wrote it?): run the same version on every replica",
            )
        )
    return found


def _missing_sqlite_file(path: str | None) -> bool:
    """A SQLite path that names a file that is not there (opening it would create it)."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return False
    return not Path(path).expanduser().exists()


def _known_revisions() -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from bot.paths import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return {s.revision for s in ScriptDirectory.from_config(config).walk_revisions()}


def dialogs_and_catalog(settings: Settings) -> list[Finding]:
    """Flows, locale catalogs, intents, vocabulary and the resource catalog load, as
    `coach serve` needs them; then the catalog's stricter check."""
    from bot.coach.catalog import catalog_files, check_catalog
    from bot.engine.flows import FlowError
    from bot.engine.topics import Vocabulary
    from bot.services import load_dialog

    found: list[Finding] = []
    try:
        dialog = load_dialog(settings)
    except FlowError as exc:
        first = exc.problems[0] if exc.problems else "unknown problem"
        more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
        found.append(
            Finding(
                "problem",
                "dialogs",
                f"{first}{more}; coach dialogs check lists every one",
            )
        )
    else:
        found.append(
            Finding(
                "ok",
                "dialogs",
                f"{len(dialog.flows.flows)} flows, "
                f"{len(dialog.catalogs.entries['en'])} messages in "
                f"{', '.join(dialog.catalogs.locales)}",
            )
        )
    where = settings.content_dir / "catalog"
    try:
        vocabulary = Vocabulary.load(settings.content_dir / "vocabulary.yaml")
        problems = check_catalog(where, vocabulary)
    except (ValueError, OSError) as exc:
        problems = [str(exc)]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        found.append(
            Finding("problem", "catalog", f"{problems[0]}{more}; coach catalog check lists all")
        )
    else:
        found.append(
            Finding("ok", "catalog", f"{len(catalog_files(where))} files check clean in {where}")
        )
    return found


async def channels(settings: Settings) -> list[Finding]:
    """The platforms' own word on our tokens, for the channels that are configured."""
    found: list[Finding] = []
    timeout = aiohttp.ClientTimeout(total=NETWORK_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        if settings.telegram_token is not None:
            found.append(
                await telegram(
                    http, settings.telegram_api_base, settings.telegram_token.get_secret_value()
                )
            )
        else:
            found.append(Finding("ok", "telegram", "not configured (COACH_TELEGRAM_TOKEN unset)"))
        if settings.slack_bot_token is not None:
            found.append(
                await slack(
                    http, settings.slack_api_base, settings.slack_bot_token.get_secret_value()
                )
            )
        elif settings.slack_oauth:
            # Each workspace's token is in the database, checked as it is used.
            found.append(Finding("ok", "slack", "OAuth: workspaces' tokens are not checked here"))
        else:
            found.append(Finding("ok", "slack", "not configured (COACH_SLACK_BOT_TOKEN unset)"))
    return found


async def _reach(
    what: str, call: Callable[[], Awaitable[tuple[int, Any]]]
) -> tuple[int, Any] | Finding:
    """The platform's status and JSON, or a warning that it could not be asked."""
    try:
        return await call()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        reason = type(exc).__name__ if isinstance(exc, TimeoutError) else str(exc)
        return Finding(
            "warning", what, f"could not reach it ({reason or type(exc).__name__}); token unchecked"
        )


async def telegram(http: aiohttp.ClientSession, api_base: str, token: str) -> Finding:
    """Bot API getMe (https://core.telegram.org/bots/api#getme): 200 with the bot, or
    401 for a token Telegram does not know."""

    async def call() -> tuple[int, Any]:
        async with http.get(f"{api_base.rstrip('/')}/bot{token}/getMe") as response:
            return response.status, await response.json(content_type=None)

    answer = await _reach("telegram", call)
    if isinstance(answer, Finding):
        return answer
    status, body = answer
    if status == 200 and isinstance(body, dict) and body.get("ok"):
        name = (body.get("result") or {}).get("username", "?")
        return Finding("ok", "telegram", f"the token works: this is @{name}")
    if status in (401, 404):
        return Finding(
            "problem",
            "telegram",
            "Telegram does not accept COACH_TELEGRAM_TOKEN (copy it again from @BotFather)",
        )
    described = body.get("description") if isinstance(body, dict) else None
    return Finding("warning", "telegram", f"getMe answered {status} {described or ''}".rstrip())


async def slack(http: aiohttp.ClientSession, api_base: str, token: str) -> Finding:
    """Web API auth.test (https://api.slack.com/methods/auth.test): {"ok": true, "team"}
    or {"ok": false, "error": "invalid_auth"}."""

    async def call() -> tuple[int, Any]:
        async with http.post(
            f"{api_base.rstrip('/')}/auth.test", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            return response.status, await response.json(content_type=None)

    answer = await _reach("slack", call)
    if isinstance(answer, Finding):
        return answer
    status, body = answer
    if isinstance(body, dict) and body.get("ok"):
        return Finding("ok", "slack", f"the token works in workspace {body.get('team', '?')}")
    error = body.get("error") if isinstance(body, dict) else None
    if error in ("invalid_auth", "not_authed", "account_inactive", "token_revoked"):
        return Finding(
            "problem", "slack", f"Slack does not accept the bot token ({error}); reinstall the app"
        )
    return Finding("warning", "slack", f"auth.test answered {status} {error or ''}".rstrip())


def main() -> int:
    """`coach doctor`: print the report; 1 if anything is a problem."""
    lines, code = run()
    for line in lines:
        print(line)
    return code
