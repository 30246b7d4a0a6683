"""The database: one async engine per process, SQLite tuned for a chat service."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import ConfigError, normalise_database_url
from bot.store import sqlite_inline

# How long a SQLite writer waits for another process's write lock before failing
# (`coach chat` and `coach serve` may share one file). Five seconds is SQLite's
# usual recommendation for interactive use; sqlite_inline does the waiting.
SQLITE_BUSY_TIMEOUT_MS = int(sqlite_inline.BUSY_WAIT_SECONDS * 1000)


class Database:
    """The async engine, a session factory, and one-writer discipline on SQLite.

    SQLite allows one writer at a time. Every transaction here starts with
    BEGIN IMMEDIATE (so two connections never deadlock upgrading a read lock),
    and inside one process writers queue on an asyncio lock instead of spinning
    in SQLite's busy handler.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        echo: bool = False,
        connect_args: dict[str, Any] | None = None,
    ) -> None:
        self.url = normalise_database_url(url)
        try:
            parsed = make_url(self.url)
        except ArgumentError as exc:
            raise ConfigError(f"COACH_DATABASE_URL is not a valid URL: {exc}") from None
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                folder = Path(database).expanduser().resolve().parent
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise ConfigError(
                        f"cannot create the database folder {folder}: {exc}"
                    ) from None
            # SQLite calls run on the loop's thread (sqlite_inline.py says why); the
            # URL's database is all a Coach SQLite URL carries.
            kwargs["async_creator"] = partial(
                sqlite_inline.connect, database or ":memory:", uri=database.startswith("file:")
            )
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
            if connect_args:
                kwargs["connect_args"] = connect_args
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            _tune_sqlite(self.engine)
        self.sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False, autoflush=False
        )
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        # The task holding the write lock: the same task asking again would wait for
        # itself forever (a nested `reading()`), so it is told at once instead.
        self._holder: asyncio.Task[Any] | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: commit on success, roll back on error."""
        if self._write_lock is not None:
            task = asyncio.current_task()
            if task is not None and task is self._holder:
                # The lock is not re-entrant: waiting for it here would wait forever.
                raise RuntimeError(
                    "already inside a transaction on this SQLite database: "
                    "use that transaction's session"
                )
            async with self._write_lock, self.sessions() as session, session.begin():
                self._holder = task
                try:
                    yield session
                finally:
                    self._holder = None
        else:
            async with self.sessions() as session, session.begin():
                yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only; on SQLite it still queues behind writers."""
        async with self.transaction() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL: readers never block the writer; NORMAL sync is durable across
        # application crashes in WAL mode (SQLite docs, "PRAGMA synchronous").
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # No busy handler inside SQLite: it would sleep on the loop's thread.
        # sqlite_inline waits for the lock with asyncio instead, as long as this.
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Straight to the driver: through exec_driver_sql this one statement cost as
        # much as a transaction's real work (bench/turns.py). sqlite_inline's _execute
        # still waits for another process's write lock.
        driver = conn.connection.driver_connection
        if isinstance(driver, sqlite_inline.InlineConnection):
            try:
                await_(driver.begin_immediate())
            except sqlite3.OperationalError as exc:
                # As SQLAlchemy would have raised it: callers retry on DBAPIError.
                raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
