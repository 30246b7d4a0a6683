"""Retention: old log and inbox rows go, recent ones and everything else stay."""

from __future__ import annotations

import pytest
from sqlalchemy import event
from sqlmodel import func, select

from bot.clock import FakeClock
from bot.delivery.housekeeping import sweep
from bot.services import Services
from bot.store import retention
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


async def test_a_large_backlog_goes_in_batches_and_all_of_it_goes(
    any_services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "PRUNE_BATCH", 3)
    statements: list[str] = []
    engine = any_services.db.engine.sync_engine

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            statements.append(statement)

    old = Chat(any_services.turns, "old-timer")
    for n in range(4):
        await old.send(f"hi {n}")  # each turn logs its message and the replies
    clock.advance(days=any_services.settings.message_retention_days + 1)
    await Chat(any_services.turns, "newcomer").send("hi")
    async with any_services.db.reading() as session:
        old_logs = (await session.exec(select(func.count()).select_from(MessageLog))).one() - 4

    event.listen(engine, "before_cursor_execute", seen)
    try:
        removed = await sweep(any_services)
    finally:
        event.remove(engine, "before_cursor_execute", seen)

    assert removed == {"message_log": old_logs, "inbox": 4}
    # Three rows a transaction: the backlog took several, each with its own DELETE.
    assert len(statements) == (old_logs // 3 + 1) + (4 // 3 + 1)
    async with any_services.db.reading() as session:
        inbox = (await session.exec(select(InboxMessage.external_id))).all()
        logged = (await session.exec(select(func.count()).select_from(MessageLog))).one()
    assert inbox == ["newcomer"]
    assert logged == 4
