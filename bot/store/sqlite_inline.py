"""SQLite calls on the event loop's own thread, for SQLAlchemy's aiosqlite dialect.

aiosqlite runs every call (cursor, execute, fetch, close, commit) on a worker
thread and wakes the event loop when it is done. A turn makes about fifty such
calls, and each hop costs a queue put, a thread switch and a loop wake-up: far
more than the call itself, which on a local file in WAL mode takes microseconds
(a commit with `synchronous=NORMAL` writes the WAL without an fsync). Measured
with the nine-turn warm-up in process (bench/turns.py, "engine"), the hops were
most of a turn's time. This connection keeps aiosqlite's interface, so
SQLAlchemy's dialect is unchanged, but runs each call at once, inline.

What inline costs, and how it is bounded:
- A call blocks the loop while it runs. Coach's statements are short and indexed;
  the long reads (the weekly digest, retention) are Python-bound either way.
- SQLite's own busy handler would sleep inside the call, freezing the loop while
  another process (`coach chat`, `coach db backup`) holds the write lock. So the
  connection's busy timeout is zero and `_execute` waits for the lock itself,
  with `asyncio.sleep`, up to the same five seconds.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Generator
from functools import partial
from typing import Any

import aiosqlite

# How long a caller waits for another connection's write lock before the error
# reaches it: SQLite's usual recommendation for interactive use (db.py's
# SQLITE_BUSY_TIMEOUT_MS has the same value and reason).
BUSY_WAIT_SECONDS = 5.0
# The first retry comes after a millisecond (a write transaction of ours lasts about
# that), doubling to at most 50 ms so a long hold is polled 20 times a second.
FIRST_BACKOFF_SECONDS = 0.001
MAX_BACKOFF_SECONDS = 0.05


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    # SQLITE_BUSY ("database is locked"); sqlite3 exposes the code from Python 3.11.
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY or (
        "database is locked" in str(exc)
    )


class _InlineQueue:
    """Stands in for aiosqlite's queue to its worker thread: SQLAlchemy's dialect puts
    a (future, function) pair on it directly to set the isolation level."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # handed to the awaiting caller, as the thread would
            if future is not None and not future.done():
                future.set_exception(exc)
        else:
            if future is not None and not future.done():
                future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection without its thread: every call runs where it is awaited."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        # aiosqlite's default chunk size for iterating a cursor.
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _InlineQueue()  # type: ignore[assignment]

    def __await__(self) -> Generator[Any, None, InlineConnection]:
        return self._open().__await__()

    async def _open(self) -> InlineConnection:
        # No worker thread to start: connect here and now.
        if self._connection is None:
            self._connection = self._connector()
        return self

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        deadline: float | None = None
        backoff = FIRST_BACKOFF_SECONDS
        while True:
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as exc:
                # A statement refused with SQLITE_BUSY did nothing, so it is safe to run
                # again (SQLite's docs: a COMMIT that is busy may be retried too).
                if not _is_busy(exc):
                    raise
                now = time.monotonic()
                if deadline is None:
                    deadline = now + BUSY_WAIT_SECONDS
                if now >= deadline:
                    raise
                await asyncio.sleep(min(backoff, deadline - now))
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    @property
    def sqlite3_connection(self) -> sqlite3.Connection:
        """The connection itself, for statements prepared once (bot/store/prepared.py)."""
        return self._conn

    async def begin_immediate(self) -> None:
        """BEGIN IMMEDIATE on the sqlite3 connection itself, waiting out another
        connection's write lock like any call."""
        await self._execute(self._conn.execute, "BEGIN IMMEDIATE")

    def stop(self) -> asyncio.Future[Any] | None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        return None

    async def close(self) -> None:
        self.stop()


def connect(database: str, **kwargs: Any) -> InlineConnection:
    """What `aiosqlite.connect` is to SQLAlchemy (`create_async_engine(async_creator=)`
    passes the URL's database and connect arguments), minus the thread."""
    kwargs.pop("iter_chunk_size", None)
    kwargs.pop("loop", None)
    # SQLite's busy handler must not sleep on the loop's thread: `_execute` waits.
    kwargs["timeout"] = 0
    # Every call runs on the loop's thread, but SQLAlchemy's pool may finalise a
    # connection from the garbage collector elsewhere.
    kwargs["check_same_thread"] = False
    return InlineConnection(partial(sqlite3.connect, database, **kwargs))
