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

from sqlalchemy import func, insert, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.models import AuditEntry, Enrollment, FamilyLink, Person, SchoolClass

# Who may use the teacher commands (/newclass, /roster, /familycode...). An admin who
# chats is an operator acting for a school: they may run a class too.
TEACHER_ROLES = frozenset({"teacher", "admin"})


def is_teacher(person: Person) -> bool:
    return person.role in TEACHER_ROLES


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


# -- what each role may name --------------------------------------------------------------


async def own_classes(session: AsyncSession, teacher_id: int) -> list[SchoolClass]:
    """The teacher's unarchived classes, oldest first: the only classes they may name."""
    rows = await session.exec(
        select(SchoolClass)
        .where(SchoolClass.teacher_id == teacher_id)
        .where(col(SchoolClass.archived_at).is_(None))
        .order_by(col(SchoolClass.created_at), col(SchoolClass.id))
    )
    return list(rows.all())


async def own_class(session: AsyncSession, teacher_id: int, class_id: int) -> SchoolClass | None:
    """The class if it is one of this teacher's (unarchived) classes, else None."""
    found = await session.get(SchoolClass, class_id)
    if found is None or found.teacher_id != teacher_id or found.archived_at is not None:
        return None
    return found


async def class_roster(session: AsyncSession, class_id: int) -> list[Person]:
    """The learners enrolled in a class, in the order they joined."""
    rows = await session.exec(
        select(Person)
        .join(Enrollment, col(Enrollment.learner_id) == col(Person.id))
        .where(Enrollment.class_id == class_id)
        .order_by(col(Enrollment.created_at), col(Enrollment.id))
    )
    return list(rows.all())


async def learner_counts(session: AsyncSession, class_ids: Iterable[int]) -> dict[int, int]:
    """class id -> how many learners are enrolled (0 for a class nobody joined yet)."""
    ids = list(class_ids)
    counts = dict.fromkeys(ids, 0)
    if ids:
        rows = await session.exec(
            select(Enrollment.class_id, func.count())
            .where(col(Enrollment.class_id).in_(ids))
            .group_by(col(Enrollment.class_id))
        )
        counts.update({class_id: count for class_id, count in rows.all()})
    return counts


async def own_learners(session: AsyncSession, teacher_id: int) -> list[tuple[Person, SchoolClass]]:
    """Every (learner, class) pair in the teacher's unarchived classes."""
    rows = await session.exec(
        select(Person, SchoolClass)
        .join(Enrollment, col(Enrollment.learner_id) == col(Person.id))
        .join(SchoolClass, col(SchoolClass.id) == col(Enrollment.class_id))
        .where(SchoolClass.teacher_id == teacher_id)
        .where(col(SchoolClass.archived_at).is_(None))
        .order_by(col(SchoolClass.id), col(Enrollment.id))
    )
    return [(person, school_class) for person, school_class in rows.all()]


async def learner_classes(
    session: AsyncSession, learner_id: int
) -> list[tuple[SchoolClass, Person | None]]:
    """The learner's unarchived classes, each with its teacher, in the order joined."""
    rows = await session.exec(
        select(SchoolClass, Enrollment)
        .join(Enrollment, col(Enrollment.class_id) == col(SchoolClass.id))
        .where(Enrollment.learner_id == learner_id)
        .where(col(SchoolClass.archived_at).is_(None))
        .order_by(col(Enrollment.created_at), col(Enrollment.id))
    )
    found: list[tuple[SchoolClass, Person | None]] = []
    for school_class, _ in rows.all():
        found.append((school_class, await session.get(Person, school_class.teacher_id)))
    return found


async def linked_learners(
    session: AsyncSession, family_id: int, *, consented_only: bool = False
) -> list[tuple[Person, FamilyLink]]:
    """The learners a family member is linked to (by default whether or not they consented)."""
    query = (
        select(Person, FamilyLink)
        .join(FamilyLink, col(FamilyLink.learner_id) == col(Person.id))
        .where(FamilyLink.family_id == family_id)
        .order_by(col(FamilyLink.id))
    )
    if consented_only:
        query = query.where(col(FamilyLink.consented_at).is_not(None))
    return [(person, link) for person, link in (await session.exec(query)).all()]


async def audit_rows(
    session: AsyncSession, *, since: datetime | None = None, person_id: int | None = None
) -> list[AuditEntry]:
    """Audit rows, oldest first: from `since` on, and where `person_id` read or was read."""
    query = select(AuditEntry).order_by(col(AuditEntry.at), col(AuditEntry.id))
    if since is not None:
        query = query.where(col(AuditEntry.at) >= since)
    if person_id is not None:
        query = query.where(
            or_(col(AuditEntry.actor_id) == person_id, col(AuditEntry.subject_id) == person_id)
        )
    return list((await session.exec(query)).all())
