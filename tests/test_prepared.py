"""The turn's prepared statements (bot/store/prepared.py) store on SQLite exactly what
SQLAlchemy's own path stores, and read back what it reads: the same bytes in every
column, JSON, UTC datetimes and NULLs included."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

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


async def test_rows_read_on_the_driver_are_tracked_like_loaded_ones(
    services: Services, clock: FakeClock
) -> None:
    from bot.engine.turns import _WHO, _WHO_PARTS, _WHO_ROW
    from bot.store.models import ChannelIdentity, Person

    await seed_learner(services.db, clock, "web-3", name="Sam")
    async with services.db.transaction() as session:
        connection = await session.connection()
        driver = await sqlite_driver(connection)
        row = await _WHO_ROW.first(connection, driver, channel="web", external_id="web-3")
        assert row is not None
        identity, person, conversation = _WHO_PARTS.split(session, row)
        loaded = (await session.exec(_WHO, params={"channel": "web", "external_id": "web-3"})).one()
        # The ORM finds the very objects in its identity map, with the same values.
        assert (identity, person, conversation) == tuple(loaded)
        assert not session.dirty
        assert person.created_at.tzinfo is not None
        person.name = "Samira"
    async with services.db.reading() as session:
        stored = (await session.exec(select(Person).where(Person.id == person.id))).one()
        who = (
            await session.exec(
                select(ChannelIdentity).where(ChannelIdentity.person_id == person.id)
            )
        ).one()
    assert stored.name == "Samira"
    assert who.external_id == "web-3"


async def test_new_rows_get_their_ids_and_a_duplicate_fails_as_sqlalchemy_says(
    any_services: Services, clock: FakeClock
) -> None:
    from bot.engine.turns import _NEW_ROWS
    from bot.store.models import ChannelIdentity, Person

    now = clock.now()
    async with any_services.db.transaction() as session:
        connection = await session.connection()
        driver = await sqlite_driver(connection)
        person = Person(role="learner", locale="es", timezone="UTC", created_at=now, updated_at=now)
        await _NEW_ROWS.add(session, connection, driver, person)
        assert person.id is not None
        identity = ChannelIdentity(
            channel="web",
            external_id="web-4",
            person_id=person.id,
            created_at=now,
            last_seen_at=now,
        )
        await _NEW_ROWS.add(session, connection, driver, identity)
        person.name = "Lu"  # a change after the insert is flushed at commit
    async with any_services.db.reading() as session:
        stored = (await session.exec(select(Person).where(Person.id == person.id))).one()
    assert (stored.name, stored.locale, stored.created_at) == ("Lu", "es", now)
    again = ChannelIdentity(
        channel="web", external_id="web-4", person_id=person.id, created_at=now, last_seen_at=now
    )
    with pytest.raises(IntegrityError):
        await _add_in_own_transaction(any_services, again)


async def _add_in_own_transaction(services: Services, instance: object) -> None:
    from bot.engine.turns import _NEW_ROWS

    async with services.db.transaction() as session:
        connection = await session.connection()
        await _NEW_ROWS.add(session, connection, await sqlite_driver(connection), instance)


async def test_returning_gives_each_rows_id_in_order(
    any_services: Services, clock: FakeClock
) -> None:
    from bot.engine.turns import _OUTBOX_ROWS, _outbox_values
    from bot.store.models import ChannelIdentity, OutboxMessage

    await seed_learner(any_services.db, clock, "web-5")
    now = clock.now()
    async with any_services.db.transaction() as session:
        identity = (
            await session.exec(
                select(ChannelIdentity).where(ChannelIdentity.external_id == "web-5")
            )
        ).one()
        rows = [
            OutboxMessage(
                identity_id=identity.id,
                person_id=identity.person_id,
                payload={"reply": {"text": f"part {n}", "buttons": []}},
                dedupe_key=f"reply:web:web-5:m1:{n}",
                next_attempt_at=now,
                created_at=now,
            )
            for n in range(3)
        ]
        connection = await session.connection()
        driver = await sqlite_driver(connection)
        returned = await _OUTBOX_ROWS.returning(
            connection, driver, [_outbox_values(row) for row in rows]
        )
    async with any_services.db.reading() as session:
        stored = {
            row.id: row.dedupe_key for row in (await session.exec(select(OutboxMessage))).all()
        }
    assert [stored[found[0]] for found in returned] == [row.dedupe_key for row in rows]


async def test_changes_are_written_once_and_leave_nothing_to_flush(
    any_services: Services, clock: FakeClock
) -> None:
    from bot.engine.turns import _CHANGED_PEOPLE
    from bot.store.models import Person

    seeded = await seed_learner(any_services.db, clock, "web-6", name="Sam")
    async with any_services.db.transaction() as session:
        person = (await session.exec(select(Person).where(Person.id == seeded.id))).one()
        person.name, person.locale = "Samira", "es"
        connection = await session.connection()
        driver = await sqlite_driver(connection)
        await _CHANGED_PEOPLE.write(connection, driver, person)
        # On SQLite the row is written and the flush has nothing left; elsewhere the
        # flush at commit writes it, as ever.
        assert session.is_modified(person) == (driver is None)
        await _CHANGED_PEOPLE.write(connection, driver, person)  # nothing new: no write
    async with any_services.db.reading() as session:
        stored = (await session.exec(select(Person).where(Person.id == seeded.id))).one()
    assert (stored.name, stored.locale, stored.timezone) == ("Samira", "es", "UTC")
