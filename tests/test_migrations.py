"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import bot.store.models  # noqa: F401  (registers every table on SQLModel.metadata)
from bot.services import Services
from bot.store.migrate import current_revision, head_revision


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_migrated_schema_matches_the_models(any_services: Services) -> None:
    assert await current_revision(any_services.db) == head_revision()
    async with any_services.db.engine.connect() as conn:
        differences = await conn.run_sync(_diff)
    assert differences == []
