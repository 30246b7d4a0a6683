"""Alembic migrations run from code: `coach db upgrade`, `coach serve` on start, /readyz."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from bot.paths import MIGRATIONS
from bot.store.db import Database

# Any fixed number all replicas agree on: the key of the PostgreSQL advisory lock
# that lets exactly one replica migrate while the others wait.
_MIGRATION_LOCK_KEY = 0x0C0AC4


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


async def upgrade(db: Database) -> None:
    """Bring the schema to the newest revision; safe to call from several replicas."""
    async with db.engine.connect() as conn:
        if db.is_postgres:
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
            await conn.commit()
        try:
            await conn.run_sync(_upgrade_sync)
            await conn.commit()
        finally:
            if db.is_postgres:
                await conn.execute(
                    text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_KEY}
                )
                await conn.commit()


def _upgrade_sync(connection: Connection) -> None:
    command.upgrade(_config(connection), "head")


async def current_revision(db: Database) -> str | None:
    """The schema's revision, read quietly (readiness probes ask every few seconds)."""
    async with db.engine.connect() as conn:
        return await conn.run_sync(_current_sync)


def _current_sync(connection: Connection) -> Any:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


async def is_current(db: Database) -> bool:
    return await current_revision(db) == head_revision()
