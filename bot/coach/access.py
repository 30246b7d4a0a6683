"""Who may see whom, and the audit trail of every read of another person's data.

The rules (issue 5): a teacher sees only learners of their own classes; a family
member only the learners they are linked to; a learner only themselves. For a
learner under 13, nothing about them goes to anyone but their class teachers
until a linked family member has consented. Every read of another person's data
(a digest built, a roster shown, an export by an admin) writes an audit row.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.models import AuditEntry, Enrollment, FamilyLink, Person, SchoolClass


async def class_teachers(session: AsyncSession, learner_id: int) -> list[Person]:
    """The teachers of every (unarchived) class the learner is enrolled in, once each."""
    rows = await session.exec(
        select(Person)
        .join(SchoolClass, col(SchoolClass.teacher_id) == col(Person.id))
        .join(Enrollment, col(Enrollment.class_id) == col(SchoolClass.id))
        .where(Enrollment.learner_id == learner_id)
        .where(col(SchoolClass.archived_at).is_(None))
        .distinct()
        .order_by(col(Person.id))
    )
    return list(rows.all())


async def teaches(session: AsyncSession, teacher_id: int, learner_id: int) -> bool:
    """Whether the learner is in one of this teacher's (unarchived) classes."""
    row = await session.exec(
        select(Enrollment.id)
        .join(SchoolClass, col(Enrollment.class_id) == col(SchoolClass.id))
        .where(SchoolClass.teacher_id == teacher_id)
        .where(Enrollment.learner_id == learner_id)
        .where(col(SchoolClass.archived_at).is_(None))
        .limit(1)
    )
    return row.first() is not None


async def family_links(
    session: AsyncSession, learner_id: int, *, consented_only: bool = True
) -> list[tuple[Person, FamilyLink]]:
    """The learner's linked family members (by default only those who consented)."""
    query = (
        select(Person, FamilyLink)
        .join(FamilyLink, col(FamilyLink.family_id) == col(Person.id))
        .where(FamilyLink.learner_id == learner_id)
        .order_by(col(FamilyLink.id))
    )
    if consented_only:
        query = query.where(col(FamilyLink.consented_at).is_not(None))
    return [(person, link) for person, link in (await session.exec(query)).all()]


async def family_may_hear(session: AsyncSession, learner: Person, family_id: int) -> bool:
    """Whether anything about `learner` may go to family member `family_id` now.

    They must be linked and have consented. (For a learner under 13 this is also the
    rule that a consenting family member must exist at all; for older learners the
    consent is the family member's own agreement to receive nudges.)
    """
    assert learner.id is not None
    row = await session.exec(
        select(FamilyLink.id)
        .where(FamilyLink.learner_id == learner.id)
        .where(FamilyLink.family_id == family_id)
        .where(col(FamilyLink.consented_at).is_not(None))
        .limit(1)
    )
    return row.first() is not None


async def may_see(session: AsyncSession, viewer: Person, subject_id: int) -> bool:
    """The access rule in one place: may `viewer` see data about person `subject_id`?"""
    assert viewer.id is not None
    if viewer.id == subject_id:
        return True
    if viewer.role == "teacher":
        return await teaches(session, viewer.id, subject_id)
    if viewer.role == "family":
        subject = await session.get(Person, subject_id)
        return subject is not None and await family_may_hear(session, subject, viewer.id)
    return False


async def audit(
    session: AsyncSession,
    *,
    actor_id: int | None,
    subject_ids: Iterable[int],
    action: str,
    now: datetime,
    detail: str | None = None,
    actor_label: str | None = None,
) -> None:
    """One audit row per subject whose data `actor_id` read (in the reader's transaction)."""
    rows = [
        {
            "actor_id": actor_id,
            "actor_label": actor_label,
            "subject_id": subject_id,
            "action": action,
            "detail": detail,
            "at": now,
        }
        for subject_id in subject_ids
        if subject_id != actor_id
    ]
    if rows:
        await session.exec(insert(AuditEntry), params=rows)
