"""A turn's fixed database work, done on SQLite's own connection when the database is
SQLite.

Every turn runs the same handful of statements (bot/engine/turns.py): who is talking,
the redelivery check, the conversation write, the log lines, the inbox row, the outbox
rows, a first contact's three rows, what changed on the person. Through SQLAlchemy
each costs ~60 us of Python (an execution context, parameter processing, a cursor
wrapper, a greenlet switch; for the ORM, loading or a flush on top) around ~15 us of
SQLite. On SQLite, whose calls run on the loop's thread anyway (sqlite_inline.py), a
statement here is compiled once by SQLAlchemy for the engine's dialect (the same SQL
text and the same bind and result processors it would use: JSON serialised,
datetimes stored as UTC text) and then run on the sqlite3 connection inside the
session's transaction; rows that the dialog needs as ORM objects become them as a
query would have loaded them. With the nine-turn warm-up in process, a turn went from
1.24 to about 0.8 ms (medians of six rounds of 1,800 turns, side by side); README,
Benchmarks, has the HTTP figures. Any other database takes SQLAlchemy's ordinary
path, unchanged (on PostgreSQL, with its row locks).

Only for statements that run inside a transaction that holds SQLite's write lock
(every transaction here begins IMMEDIATE), so none of them can meet SQLITE_BUSY.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Select, bindparam, insert, inspect, update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store import sqlite_inline

_Processor = Callable[[Any], Any] | None


@contextmanager
def _as_sqlalchemy_errors(sql: str, parameters: Any) -> Iterator[None]:
    """sqlite3's errors raised as SQLAlchemy raises them (IntegrityError, OperationalError
    and the rest wrapping the original), so callers catch one kind either way."""
    try:
        yield
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, parameters, exc, sqlite3.Error) from exc


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
        # What it returns: a SELECT's columns, or an INSERT's RETURNING.
        returned = getattr(statement, "exported_columns", None)
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
        """The first row of a SELECT (or an INSERT ... RETURNING), or None."""
        if driver is None:
            found = (await connection.execute(self.statement, values)).first()
            return tuple(found) if found is not None else None
        compiled = self._for(connection.dialect)
        parameters = compiled.parameters(values)
        with _as_sqlalchemy_errors(compiled.sql, parameters):
            raw = driver.execute(compiled.sql, parameters).fetchone()
        return compiled.row(raw) if raw is not None else None

    async def returning(
        self,
        connection: AsyncConnection,
        driver: sqlite3.Connection | None,
        rows: Sequence[Mapping[str, Any]],
    ) -> list[tuple[Any, ...]]:
        """Run an INSERT ... RETURNING for each of `rows`; what each returned, in order."""
        if driver is None:
            result = await connection.execute(self.statement, list(rows))
            return [tuple(found) for found in result.all()]
        returned = []
        for row in rows:
            found = await self.first(connection, driver, **row)
            assert found is not None
            returned.append(found)
        return returned

    async def rowcount(
        self, connection: AsyncConnection, driver: sqlite3.Connection | None, **values: Any
    ) -> int:
        """Run an UPDATE or DELETE; how many rows it matched."""
        if driver is None:
            return int((await connection.execute(self.statement, values)).rowcount)
        compiled = self._for(connection.dialect)
        parameters = compiled.parameters(values)
        with _as_sqlalchemy_errors(compiled.sql, parameters):
            return int(driver.execute(compiled.sql, parameters).rowcount)

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
        parameters = [compiled.parameters(row) for row in rows]
        with _as_sqlalchemy_errors(compiled.sql, parameters):
            if len(parameters) == 1:
                driver.execute(compiled.sql, parameters[0])
            else:
                driver.executemany(compiled.sql, parameters)


M = TypeVar("M")


class Rows:
    """How a row of a SELECT of whole ORM entities (select(A, B, ...)) splits into
    each entity's attribute values."""

    def __init__(self, statement: Executable, models: Sequence[type[Any]]) -> None:
        assert isinstance(statement, Select)
        columns = list(statement.selected_columns)
        self.parts: list[tuple[type[Any], list[tuple[str, int]]]] = []
        for model in models:
            mapper = inspect(model)
            self.parts.append(
                (
                    model,
                    [
                        (mapper.get_property_by_column(column).key, index)
                        for index, column in enumerate(columns)
                        if column.table is mapper.local_table
                    ],
                )
            )

    def split(self, session: AsyncSession, row: Sequence[Any]) -> list[Any]:
        """The row's entities, each made persistent in `session` (see `persistent`)."""
        return [
            persistent(session, model, {key: row[index] for key, index in keys})
            for model, keys in self.parts
        ]


def persistent(session: AsyncSession, model: type[M], values: Mapping[str, Any]) -> M:
    """An ORM object for a row read on the driver, as a query would have loaded it: in
    the session, unchanged, and any later change to it flushed at commit. (This is what
    SQLAlchemy's loader does, through the public pieces: a new instance from the class
    manager, its column values, make_transient_to_detached, add.) `values` must hold
    every column attribute; the session must not hold that row already."""
    instance: M = inspect(model).class_manager.new_instance()
    instance.__dict__.update(values)
    make_transient_to_detached(instance)
    session.add(instance)
    return instance


class NewRows:
    """INSERTs of new ORM objects, one table each: on SQLite the row goes in through the
    driver and the object joins the session as if flushed; elsewhere the session
    flushes it as usual."""

    def __init__(self, *models: type[Any]) -> None:
        self._inserts: dict[type[Any], tuple[Prepared, list[tuple[str, str]]]] = {}
        for model in models:
            mapper = inspect(model)
            table = mapper.local_table
            # (attribute, column) for every column but the id the database gives.
            pairs = [
                (prop.key, prop.columns[0].name)
                for prop in mapper.column_attrs
                if not prop.columns[0].primary_key
            ]
            statement = insert(table).returning(table.c.id)
            self._inserts[model] = (
                Prepared(statement, column_keys=[column for _, column in pairs]),
                pairs,
            )

    async def add(
        self,
        session: AsyncSession,
        connection: AsyncConnection,
        driver: sqlite3.Connection | None,
        instance: Any,
    ) -> None:
        """Write `instance` (a new object of one of the models) and give it its id."""
        if driver is None:
            session.add(instance)
            await session.flush()
            return
        prepared, pairs = self._inserts[type(instance)]
        values = {column: getattr(instance, key) for key, column in pairs}
        found = await prepared.first(connection, driver, **values)
        assert found is not None
        instance.id = found[0]
        make_transient_to_detached(instance)
        session.add(instance)


class Changes:
    """What changed on loaded ORM objects of one model, written through the driver as a
    flush would write it (one UPDATE of the changed columns by id), then marked
    unchanged so the flush at commit skips them. A flush of one changed row cost
    ~175 us on SQLite; this, ~25. Elsewhere (driver None) the flush does it."""

    def __init__(self, model: type[Any]) -> None:
        mapper = inspect(model)
        self._table = mapper.local_table
        self._column = {prop.key: prop.columns[0] for prop in mapper.column_attrs}
        self._updates: dict[tuple[str, ...], Prepared] = {}

    def _update(self, keys: tuple[str, ...]) -> Prepared:
        found = self._updates.get(keys)
        if found is None:
            # Bind names apart from the columns' (SQLAlchemy keeps those for itself).
            statement = (
                update(self._table)
                .where(self._table.c.id == bindparam("row_id"))
                .values({self._column[key].name: bindparam(f"new_{key}") for key in keys})
            )
            found = self._updates[keys] = Prepared(statement)
        return found

    async def write(
        self, connection: AsyncConnection, driver: sqlite3.Connection | None, instance: Any
    ) -> None:
        """Write what changed on `instance` since it was loaded, if anything."""
        if driver is None:
            return
        state = inspect(instance)
        if not state.modified:
            return
        changed = {
            attribute.key: attribute.value
            for attribute in state.attrs
            if attribute.history.has_changes()
        }
        if not changed:
            return
        keys = tuple(sorted(changed))
        values = {f"new_{key}": changed[key] for key in keys}
        await self._update(keys).rowcount(connection, driver, row_id=instance.id, **values)
        for key, value in changed.items():
            set_committed_value(instance, key, value)


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
