"""Persisted turns on every backend: one transaction, de-duplication, no lost updates."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlmodel import func, select

from bot.engine.messages import Inbound
from bot.services import Services, build_services
from bot.store.models import (
    ChannelIdentity,
    Conversation,
    InboxMessage,
    MessageLog,
    OutboxMessage,
    Person,
)
from bot.testing.conversation import Chat
from bot.testing.people import seed_learner


async def count(services: Services, model: Any) -> int:
    async with services.db.reading() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


def msg(user: str, text: str, message_id: str) -> Inbound:
    return Inbound(channel="web", external_id=user, message_id=message_id, text=text)


async def test_a_turn_writes_person_conversation_log_and_inbox(any_services: Services) -> None:
    result = await any_services.turns.handle(msg("ana", "hi", "m1"))
    assert result.replies
    assert not result.duplicate
    assert await count(any_services, Person) == 1
    assert await count(any_services, ChannelIdentity) == 1
    assert await count(any_services, Conversation) == 1
    assert await count(any_services, InboxMessage) == 1
    # One line in, one line per reply out.
    assert await count(any_services, MessageLog) == 1 + len(result.replies)
    async with any_services.db.reading() as session:
        conversation = (await session.exec(select(Conversation))).one()
        assert (conversation.flow, conversation.step, conversation.version) == (
            "onboarding",
            "name",
            1,
        )
        assert conversation.updated_at.tzinfo is not None


async def test_a_duplicate_message_id_returns_the_stored_replies_and_changes_nothing(
    any_services: Services,
) -> None:
    first = await any_services.turns.handle(msg("ana", "hi", "m1"))
    logged = await count(any_services, MessageLog)
    again = await any_services.turns.handle(msg("ana", "something else entirely", "m1"))
    assert again.duplicate
    assert again.to_json() == first.to_json()
    assert await count(any_services, MessageLog) == logged
    assert await count(any_services, InboxMessage) == 1
    # The same message id from another person is another message.
    other = await any_services.turns.handle(msg("ben", "hi", "m1"))
    assert not other.duplicate


async def test_concurrent_duplicates_run_once(any_services: Services) -> None:
    results = await asyncio.gather(
        *(any_services.turns.handle(msg("ana", "hi", "same")) for _ in range(5))
    )
    assert sum(not r.duplicate for r in results) == 1
    assert len({str(r.to_json()) for r in results}) == 1
    assert await count(any_services, InboxMessage) == 1


async def test_two_replicas_never_lose_a_turn(any_services: Services, open_services: Any) -> None:
    """Two turn services on one database (two replicas) take turns for one person."""
    settings = any_services.settings
    replica = build_services(settings, any_services.clock, any_services.db)
    await seed_learner(any_services.db, any_services.clock, "ana")
    chat = Chat(any_services.turns, "ana")
    await chat.script("""
        > hi
        > /warmup
        > Ana
        = rating warmup.mood
    """)
    # Twenty answers arrive at once, alternating between the replicas.
    turns = [
        (any_services if n % 2 else replica).turns.handle(msg("ana", "zzz not a rating", f"c{n}"))
        for n in range(20)
    ]
    results = await asyncio.gather(*turns)
    assert all(not r.duplicate for r in results)
    async with any_services.db.reading() as session:
        conversation = (await session.exec(select(Conversation))).one()
        # 3 scripted turns + 20 concurrent ones, each a separate committed version.
        assert conversation.version == 23
        inbound = (
            await session.exec(
                select(func.count()).select_from(MessageLog).where(MessageLog.direction == "in")
            )
        ).one()
        assert inbound == 23
        # Every miss was counted: none overwrote another.
        assert conversation.meta["misses"] == 20


async def test_first_messages_racing_create_one_person(any_services: Services) -> None:
    replica = build_services(any_services.settings, any_services.clock, any_services.db)
    results = await asyncio.gather(
        any_services.turns.handle(msg("new", "hi", "a")),
        replica.turns.handle(msg("new", "hello", "b")),
    )
    assert all(r.replies for r in results)
    assert await count(any_services, Person) == 1
    assert await count(any_services, ChannelIdentity) == 1


async def test_push_channels_get_outbox_rows_in_the_same_transaction(
    any_services: Services,
) -> None:
    delivered: list[list[int]] = []

    async def deliver(ids: list[int]) -> None:
        delivered.append(ids)

    any_services.turns.push_channels = frozenset({"telegram"})
    any_services.turns.after_commit = deliver
    result = await any_services.turns.handle(
        Inbound(channel="telegram", external_id="42", message_id="u1", text="hi")
    )
    async with any_services.db.reading() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    assert [r.payload["reply"]["text"] for r in rows] == [r.text for r in result.replies]
    assert {r.status for r in rows} == {"pending"}
    assert delivered == [[r.id for r in rows]]
    # A web turn answers in its response: no outbox rows.
    await any_services.turns.handle(msg("ana", "hi", "w1"))
    assert await count(any_services, OutboxMessage) == len(rows)


async def test_erasing_a_person_leaves_nothing_behind(any_services: Services) -> None:
    chat = Chat(any_services.turns, "ana")
    await chat.script("""
        > hi
        > Ana
        > [es]
    """)
    await any_services.turns.handle(msg("ben", "hi", "b1"))
    assert await any_services.turns.erase("web", "ana")
    assert await any_services.turns.export("web", "ana") is None
    assert not await any_services.turns.erase("web", "ana")
    # Ben's rows are all that is left.
    assert await count(any_services, Person) == 1
    assert await count(any_services, Conversation) == 1
    async with any_services.db.reading() as session:
        texts = (await session.exec(select(MessageLog.text))).all()
    assert "Ana" not in texts
    # Ana may start again and is a new person.
    again = await any_services.turns.handle(msg("ana", "hi", "x"))
    assert "I'm Coach" in again.replies[0].text


async def test_seeded_learners_start_at_rest(any_services: Services) -> None:
    await seed_learner(any_services.db, any_services.clock, "sam")
    chat = Chat(any_services.turns, "sam")
    await chat.script("""
        > /warmup
        < What should I call you?
    """)
