"""Seed teachers, classes, enrolments and family links, so a test starts where it needs to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.coach import codes
from bot.store.db import Database
from bot.store.models import Enrollment, FamilyLink, Person, SchoolClass
from bot.testing.people import seed_learner


async def seed_teacher(
    db: Database, clock: Clock, user: str = "teacher-1", **fields: Any
) -> Person:
    """A teacher at rest (no flow in progress); default name Ms Lee. Override any field."""
    values: dict[str, Any] = {"role": "teacher", "name": "Ms Lee", "grade_band": None}
    values.update(fields)
    return await seed_learner(db, clock, user, **values)


async def seed_class(
    db: Database,
    clock: Clock,
    teacher: Person,
    name: str,
    *,
    learners: tuple[Person, ...] = (),
) -> tuple[int, str]:
    """A class of `teacher` with its join code, and learners already in it: (id, code)."""
    assert teacher.id is not None
    now = clock.now()
    async with db.transaction() as session:
        school_class = SchoolClass(teacher_id=teacher.id, name=name, created_at=now)
        session.add(school_class)
        await session.flush()
        assert school_class.id is not None
        code = await codes.issue_code(
            session, kind="class", now=now, class_id=school_class.id, created_by=teacher.id
        )
        for learner in learners:
            assert learner.id is not None
            session.add(Enrollment(class_id=school_class.id, learner_id=learner.id, created_at=now))
        return school_class.id, code


async def seed_code(db: Database, clock: Clock, kind: str, **fields: Any) -> str:
    """A teacher, class or family code made now (see bot.coach.codes.issue_code)."""
    async with db.transaction() as session:
        return await codes.issue_code(session, kind=kind, now=clock.now(), **fields)


async def seed_family(
    db: Database,
    clock: Clock,
    learner: Person,
    user: str = "family-1",
    *,
    consented_at: datetime | None = None,
    **fields: Any,
) -> Person:
    """A family member linked to `learner` (consented when `consented_at` is given)."""
    assert learner.id is not None
    values: dict[str, Any] = {
        "role": "family",
        "name": "Maria",
        "grade_band": None,
        "under_13": None,
        "checkin_weekday": None,
        "checkin_time": None,
        "nudge_frequency": "weekly",
    }
    values.update(fields)
    family = await seed_learner(db, clock, user, **values)
    assert family.id is not None
    async with db.transaction() as session:
        session.add(
            FamilyLink(
                family_id=family.id,
                learner_id=learner.id,
                consented_at=consented_at,
                created_at=clock.now(),
            )
        )
    return family
