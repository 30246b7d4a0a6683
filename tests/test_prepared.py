"""The turn's prepared statements (bot/store/prepared.py) store on SQLite exactly what
SQLAlchemy's own path stores, and read back what it reads: the same bytes in every
column, JSON, UTC datetimes and NULLs included."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy import select as sa_select

from bot.clock import FakeClock
from bot.services import Services
from bot.store.models import Conversation, InboxMessage
from bot.store.prepared import Prepared, sqlite_driver
from bot.testing.people import seed_learner

INBOX = InboxMessage.__table__  # type: ignore[attr-defined]
CONVERSATIONS = Conversation.__table__  # type: ignore[attr-defined]
COLUMNS = ("channel", "external_id", "message_id", "person_id", "replies", "received_at")
WHEN = datetime(2026, 3, 1, 14, 5, 6, 789012, tzinfo=UTC)
# Non-ASCII, nesting, a NUL-free control character and an empty list: JSON's corners.
REPLIES: dict[str, Any] = {
    "replies": [{"text": "¡Hola, Zoë! 👋\tnext", "buttons": []}],
    "expect": {"type": "text", "slot": None},
}

STORE = Prepared(insert(INBOX), column_keys=COLUMNS)
FIND = Prepared(
    sa_select(INBOX.c.replies, INBOX.c.received_at, INBOX.c.person_id).where(
        INBOX.c.message_id == bindparam("message_id")
    )
)
MOVE = Prepared(
    update(CONVERSATIONS)
    .where(CONVERSATIONS.c.person_id == bindparam("person"))
    .values(meta=bindparam("meta"), updated_at=bindparam("at"))
)


async def test_both_paths_store_the_same_bytes_and_read_the_same_values(
    services: Services, clock: FakeClock
) -> None:
    person = await seed_learner(services.db, clock, "web-1")
    rows = [
        dict(zip(COLUMNS, ("api", "u1", message, person.id, REPLIES, WHEN), strict=True))
        for message in ("direct", "through-sqlalchemy")
    ]
    async with services.db.transaction() as session:
        connection = await session.connection()
        driver = await sqlite_driver(connection)
        assert driver is not None
        await STORE.many(connection, driver, [rows[0]])
        await STORE.many(connection, None, [rows[1]])
        direct = await FIND.first(connection, driver, message_id="direct")
        through = await FIND.first(connection, None, message_id="through-sqlalchemy")
        # A missing row is None on both paths.
        assert await FIND.first(connection, driver, message_id="nothing") is None
        assert await FIND.first(connection, None, message_id="nothing") is None
        raw = driver.execute(
            "SELECT replies, received_at, person_id FROM inbox ORDER BY message_id"
        ).fetchall()
    assert raw[0] == raw[1]  # byte for byte
    assert direct == through == (REPLIES, WHEN, person.id)


async def test_an_update_counts_its_rows_on_both_paths(
    services: Services, clock: FakeClock
) -> None:
    person = await seed_learner(services.db, clock, "web-2")
    async with services.db.transaction() as session:
        connection = await session.connection()
        driver = await sqlite_driver(connection)
        meta = {"streak": 3, "lang": "es"}
        assert await MOVE.rowcount(connection, driver, person=person.id, meta=meta, at=WHEN) == 1
        assert await MOVE.rowcount(connection, None, person=-1, meta=meta, at=WHEN) == 0
    conversation_id = await _conversation_id(services, person.id)
    async with services.db.reading() as session:
        stored = await session.get(Conversation, conversation_id)
        assert stored is not None
        assert (stored.meta, stored.updated_at) == (meta, WHEN)


async def _conversation_id(services: Services, person_id: int | None) -> int:
    async with services.db.reading() as session:
        found = (
            await session.exec(
                sa_select(CONVERSATIONS.c.id).where(CONVERSATIONS.c.person_id == person_id)
            )
        ).one()
    return int(found[0])


async def test_postgres_has_no_driver_path(any_services: Services) -> None:
    async with any_services.db.transaction() as session:
        driver = await sqlite_driver(await session.connection())
    assert (driver is None) == any_services.db.is_postgres
