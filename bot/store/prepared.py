"""A turn's fixed statements, run on SQLite's own connection when the database is SQLite.

Every turn runs the same handful of Core statements (bot/engine/turns.py). Through
SQLAlchemy each costs ~60 us of Python around ~15 us of SQLite: an execution context,
parameter processing, a cursor wrapper and a greenlet switch. On SQLite, whose calls
run on the loop's thread anyway (sqlite_inline.py), a statement here is compiled once
by SQLAlchemy for the engine's dialect (the same SQL text and the same bind processors
it would use: JSON serialised, datetimes stored as UTC text) and then run on the
sqlite3 connection inside the session's transaction. With the nine-turn warm-up in
process, a turn went from 1.24 to 0.98 ms (medians of six rounds of 1,800 turns,
side by side); README, Benchmarks, has the HTTP figures. Any other database takes
SQLAlchemy's ordinary path, unchanged.

Only for statements that run inside a transaction that holds SQLite's write lock
(every transaction here begins IMMEDIATE), so none of them can meet SQLITE_BUSY.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from bot.store import sqlite_inline

_Processor = Callable[[Any], Any] | None


class _Compiled:
    """One statement compiled for one dialect: its SQL, and how to turn a dict of
    values into its positional parameters."""

    def __init__(
        self, statement: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None
    ) -> None:
        compiled = statement.compile(
            dialect=dialect, column_keys=list(column_keys) if column_keys else None
        )
        assert isinstance(compiled, SQLCompiler)  # a SELECT, INSERT or UPDATE
        self.sql = compiled.string
        order = compiled.positiontup or []
        self.binds: list[tuple[str, _Processor]] = [
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in order
        ]
        self.results: list[_Processor] = []
        returned = getattr(statement, "selected_columns", None)
        if returned is not None:
            self.results = [
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in returned
            ]

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            values[name] if process is None or values[name] is None else process(values[name])
            for name, process in self.binds
        )

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            value if process is None or value is None else process(value)
            for value, process in zip(raw, self.results, strict=True)
        )


class Prepared:
    """A Core statement that runs on the driver connection when that is SQLite's."""

    def __init__(self, statement: Executable, *, column_keys: Sequence[str] | None = None):
        assert isinstance(statement, ClauseElement)
        self.statement = statement
        self.column_keys = column_keys
        # Per dialect (a SQLite engine's), compiled on first use.
        self._compiled: weakref.WeakKeyDictionary[Dialect, _Compiled] = weakref.WeakKeyDictionary()

    def _for(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect)
        if found is None:
            found = self._compiled[dialect] = _Compiled(self.statement, dialect, self.column_keys)
        return found

    async def first(
        self, connection: AsyncConnection, driver: sqlite3.Connection | None, **values: Any
    ) -> tuple[Any, ...] | None:
        """The first row of a SELECT, or None."""
        if driver is None:
            found = (await connection.execute(self.statement, values)).first()
            return tuple(found) if found is not None else None
        compiled = self._for(connection.dialect)
        raw = driver.execute(compiled.sql, compiled.parameters(values)).fetchone()
        return compiled.row(raw) if raw is not None else None

    async def rowcount(
        self, connection: AsyncConnection, driver: sqlite3.Connection | None, **values: Any
    ) -> int:
        """Run an UPDATE or DELETE; how many rows it matched."""
        if driver is None:
            return int((await connection.execute(self.statement, values)).rowcount)
        compiled = self._for(connection.dialect)
        return int(driver.execute(compiled.sql, compiled.parameters(values)).rowcount)

    async def many(
        self,
        connection: AsyncConnection,
        driver: sqlite3.Connection | None,
        rows: Sequence[Mapping[str, Any]],
    ) -> None:
        """Run an INSERT for each of `rows` (one executemany)."""
        if driver is None:
            await connection.execute(self.statement, list(rows))
            return
        compiled = self._for(connection.dialect)
        if len(rows) == 1:
            driver.execute(compiled.sql, compiled.parameters(rows[0]))
        else:
            driver.executemany(compiled.sql, [compiled.parameters(row) for row in rows])


async def sqlite_driver(connection: AsyncConnection) -> sqlite3.Connection | None:
    """The sqlite3 connection under `connection` when it runs inline (sqlite_inline),
    else None (PostgreSQL, or any other driver: SQLAlchemy's path)."""
    if connection.dialect.name != "sqlite":
        return None
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    if isinstance(driver, sqlite_inline.InlineConnection):
        return driver.sqlite3_connection
    return None
