"""Retention: old log and inbox rows go, recent ones and everything else stay."""

from __future__ import annotations

from sqlmodel import func, select

from bot.clock import FakeClock
from bot.delivery.housekeeping import sweep
from bot.services import Services
from bot.store.models import Conversation, InboxMessage, MessageLog, Person
from bot.testing.conversation import Chat


async def test_the_sweep_removes_only_what_is_past_retention(
    any_services: Services, clock: FakeClock
) -> None:
    old = Chat(any_services.turns, "old-timer")
    await old.send("hi")
    clock.advance(days=any_services.settings.message_retention_days + 1)
    recent = Chat(any_services.turns, "newcomer")
    await recent.send("hi")

    removed = await sweep(any_services)

    assert removed == {"message_log": 4, "inbox": 1}
    async with any_services.db.reading() as session:
        people = (await session.exec(select(func.count()).select_from(Person))).one()
        conversations = (await session.exec(select(func.count()).select_from(Conversation))).one()
        inbox = (await session.exec(select(InboxMessage.external_id))).all()
        logged = (await session.exec(select(func.count()).select_from(MessageLog))).one()
    # People and where they are in the conversation are not message history.
    assert (people, conversations) == (2, 2)
    assert inbox == ["newcomer"]
    assert logged == 4
    assert await sweep(any_services) == {"message_log": 0, "inbox": 0}
