"""Fixtures: settings, a migrated database on SQLite (always) and PostgreSQL (when
COACH_TEST_DATABASE_URL is set), the turn service, the aiohttp test client."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import build_app
from bot.clock import FakeClock
from bot.config import Settings, normalise_database_url
from bot.services import Content, Services, build_services, load_content
from bot.store import migrate
from bot.store.db import Database
from bot.testing.conversation import Chat
from tests.serve_process import kill_leftovers

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
    elif "database_url" not in overrides and not (tmp_path / "coach.db").exists():
        # A copy of a database migrated once per run: migrating each test's own file
        # costs 0.1-0.3 s, two thousand times over (tests/test_migrations.py checks the
        # migrations themselves, and upgrade below still runs, finding nothing to do).
        shutil.copyfile(await _migrated_template(), tmp_path / "coach.db")
    services = build_services(settings, clock, db, content=_content(settings))
    await migrate.upgrade(services.db)
    return services, schema


_TEMPLATE: dict[str, Path] = {}
_CONTENT: dict[tuple[Path, Path], Content] = {}


async def _migrated_template() -> Path:
    if "sqlite" not in _TEMPLATE:
        path = Path(tempfile.mkdtemp(prefix="coach-template-")) / "coach.db"
        db = Database(f"sqlite:///{path}")
        await migrate.upgrade(db)
        await db.dispose()
        _TEMPLATE["sqlite"] = path
    return _TEMPLATE["sqlite"]


def _content(settings: Settings) -> Content:
    """Flows, catalogs and the resource catalog, loaded once per run for the shipped
    folders (about 0.4 s a load); a test that points elsewhere loads its own."""
    key = (settings.dialogs_dir, settings.content_dir)
    if key not in _CONTENT:
        _CONTENT[key] = load_content(settings)
    return _CONTENT[key]


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


@pytest.fixture(autouse=True)
def _no_server_left_behind() -> Iterator[None]:
    """Kill any `coach serve` a test started and did not stop (tests/serve_process.py)."""
    yield
    kill_leftovers()
