"""Seed people straight into the database, so a test starts where it needs to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.store.db import Database
from bot.store.models import ChannelIdentity, Conversation, Goal, Person


async def seed_learner(
    db: Database,
    clock: Clock,
    user: str = "learner-1",
    *,
    channel: str = "web",
    **fields: Any,
) -> Person:
    """A learner who has finished onboarding and is at rest (no flow in progress).

    Defaults: name Sam, English, UTC, grade band 6-8, 13 or older, check-ins on
    Mondays at 16:00. Override any Person field by keyword.
    """
    now = clock.now()
    values: dict[str, Any] = {
        "role": "learner",
        "name": "Sam",
        "locale": "en",
        "timezone": "UTC",
        "grade_band": "6-8",
        "under_13": False,
        "checkin_weekday": 1,
        "checkin_time": "16:00",
        "onboarded_at": now,
        "created_at": now,
        "updated_at": now,
    }
    values.update(fields)
    async with db.transaction() as session:
        person = Person(**values)
        session.add(person)
        await session.flush()
        assert person.id is not None
        session.add(
            ChannelIdentity(
                channel=channel,
                external_id=user,
                person_id=person.id,
                created_at=now,
                last_seen_at=now,
            )
        )
        session.add(Conversation(person_id=person.id, meta={"started": True}, updated_at=now))
    return person


async def seed_goal(
    db: Database,
    person: Person,
    wish: str,
    *,
    created_at: datetime,
    **fields: Any,
) -> int:
    """An active goal for `person`, set at `created_at`; override any Goal field by keyword."""
    assert person.id is not None
    async with db.transaction() as session:
        goal = Goal(
            person_id=person.id,
            status="active",
            wish=wish,
            created_at=created_at,
            updated_at=created_at,
            **fields,
        )
        session.add(goal)
        await session.flush()
        assert goal.id is not None
        return goal.id
