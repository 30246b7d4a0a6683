"""Proactive messages are written once per dedupe key, to the right identity."""

from __future__ import annotations

from sqlmodel import select

from bot.clock import FakeClock
from bot.services import Services
from bot.store.models import ChannelIdentity, OutboxMessage
from bot.store.outbox import enqueue
from bot.testing.people import seed_learner


async def test_the_same_key_is_written_once(any_services: Services, clock: FakeClock) -> None:
    person = await seed_learner(any_services.db, clock, channel="telegram", user="tg-1")
    assert person.id is not None
    now = clock.now()
    written = []
    for _ in range(2):
        async with any_services.db.transaction() as session:
            written.append(
                await enqueue(
                    session,
                    person_id=person.id,
                    kind="reminder",
                    payload={"text": "Time to check in"},
                    dedupe_key=f"reminder:{person.id}:2026-01-05",
                    due_at=now,
                    now=now,
                )
            )
    assert written == [True, False]
    async with any_services.db.reading() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    assert [(row.kind, row.person_id, row.status) for row in rows] == [
        ("reminder", person.id, "pending")
    ]


async def test_a_push_identity_is_preferred_and_a_blocked_one_skipped(
    any_services: Services, clock: FakeClock
) -> None:
    person = await seed_learner(any_services.db, clock, channel="web", user="web-1")
    assert person.id is not None
    now = clock.now()
    async with any_services.db.transaction() as session:
        telegram = ChannelIdentity(
            channel="telegram",
            external_id="tg-9",
            person_id=person.id,
            created_at=now,
            last_seen_at=now,
        )
        session.add(telegram)
    async with any_services.db.transaction() as session:
        assert await enqueue(
            session,
            person_id=person.id,
            kind="nudge",
            payload={},
            dedupe_key="a",
            due_at=now,
            now=now,
        )
        row = (await session.exec(select(OutboxMessage))).one()
        chosen = await session.get(ChannelIdentity, row.identity_id)
        assert chosen is not None
        assert chosen.channel == "telegram"
        chosen.unreachable = True
        session.add(chosen)
    async with any_services.db.transaction() as session:
        assert await enqueue(
            session,
            person_id=person.id,
            kind="nudge",
            payload={},
            dedupe_key="b",
            due_at=now,
            now=now,
        )
        rows = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.dedupe_key == "b"))
        ).all()
        fallback = await session.get(ChannelIdentity, rows[0].identity_id)
        assert fallback is not None
        assert fallback.channel == "web"
