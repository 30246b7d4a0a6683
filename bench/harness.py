"""What the benchmarks share: the warm-up script, a fresh database per round, a port.

Imported by the bench scripts as `harness` (each is run as `python bench/<name>.py`,
which puts this folder first on sys.path).
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.config import normalise_database_url

# The warm-up conversation, answered: text, choice, text, rating, yes/no, number,
# date, then the menu and its help: nine turns, each committed with its inbox row,
# conversation and log lines.
WARMUP_SCRIPT: list[tuple[str, str]] = [
    ("text", "hi"),
    ("button", "warmup"),
    ("text", "Sam"),
    ("button", "4"),
    ("text", "yes"),
    ("text", "30"),
    ("text", "in two weeks"),
    ("text", "menu"),
    ("button", "help"),
]


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Backend:
    """A fresh database per round: a SQLite file, or a PostgreSQL database dropped after."""

    def __init__(self, name: str, url: str | None, workdir: Path, prefix: str = "bench") -> None:
        self.name = name
        self.url = url
        self.workdir = workdir
        self.prefix = prefix
        self.database: str | None = None

    async def _admin(self, sql: str) -> None:
        assert self.url
        engine = create_async_engine(normalise_database_url(self.url), isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.exec_driver_sql(sql)
        await engine.dispose()

    async def fresh(self) -> str:
        if self.name == "sqlite":
            return f"sqlite:///{self.workdir / f'{self.prefix}-{uuid.uuid4().hex[:8]}.db'}"
        assert self.url
        self.database = f"bench_{uuid.uuid4().hex[:10]}"
        await self._admin(f'CREATE DATABASE "{self.database}"')
        url = make_url(normalise_database_url(self.url)).set(database=self.database)
        return url.render_as_string(hide_password=False)

    async def drop(self) -> None:
        if self.database:
            await self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            self.database = None
