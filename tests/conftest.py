"""Fixtures: settings, a migrated database on SQLite (always) and PostgreSQL (when
COACH_TEST_DATABASE_URL is set), the turn service, the aiohttp test client."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import build_app
from bot.clock import FakeClock
from bot.config import Settings, normalise_database_url
from bot.services import Services, build_services
from bot.store import migrate
from bot.store.db import Database
from bot.testing.conversation import Chat

PG_URL = os.environ.get("COACH_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'coach.db'}",
        "secret_key": "test-secret",
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)


class _PgSchema:
    """A throwaway schema per test: tests never see each other's rows."""

    def __init__(self) -> None:
        assert PG_URL
        self.url = normalise_database_url(PG_URL)
        self.name = f"t_{uuid.uuid4().hex[:12]}"

    async def create(self) -> None:
        engine = create_async_engine(self.url)
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f'CREATE SCHEMA "{self.name}"')
        await engine.dispose()

    async def drop(self) -> None:
        engine = create_async_engine(self.url)
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA "{self.name}" CASCADE')
        await engine.dispose()


async def _open(
    backend: str, tmp_path: Path, clock: FakeClock, **overrides: Any
) -> tuple[Services, _PgSchema | None]:
    schema = None
    if backend == "postgres":
        schema = _PgSchema()
        await schema.create()
        overrides.setdefault("database_url", PG_URL)
    settings = make_settings(tmp_path, **overrides)
    db = None
    if schema is not None:
        db = Database(
            settings.database_url,
            connect_args={"server_settings": {"search_path": schema.name}},
        )
    services = build_services(settings, clock, db)
    await migrate.upgrade(services.db)
    return services, schema


@pytest.fixture
async def open_services(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Callable[..., Any]]:
    """Open (and later close) services on a backend, with setting overrides."""
    opened: list[tuple[Services, _PgSchema | None]] = []

    async def opener(backend: str = "sqlite", **overrides: Any) -> Services:
        pair = await _open(backend, tmp_path, clock, **overrides)
        opened.append(pair)
        return pair[0]

    yield opener
    for services, schema in opened:
        await services.close()
        if schema is not None:
            await schema.drop()


@pytest.fixture
async def services(open_services: Callable[..., Any]) -> Services:
    """Services on SQLite: for conversation tests."""
    result: Services = await open_services("sqlite")
    return result


@pytest.fixture(params=BACKENDS)
async def any_services(
    request: pytest.FixtureRequest, open_services: Callable[..., Any]
) -> Services:
    """Services on every backend we test: for storage and API tests."""
    result: Services = await open_services(request.param)
    return result


@pytest.fixture
def chat(services: Services) -> Chat:
    return Chat(services.turns, "learner-1")


@pytest.fixture
async def client(aiohttp_client: Any, any_services: Services) -> TestClient[Any, Any]:
    """The real aiohttp application on every backend, no API token."""
    app = build_app(any_services)
    app.on_cleanup.clear()  # the services fixture closes the database
    result: TestClient[Any, Any] = await aiohttp_client(app)
    return result
