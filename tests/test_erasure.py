"""An erased person leaves nothing behind: every table is searched afterwards."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FakeClock
from bot.services import Services
from bot.store.models import (
    AccessCode,
    AuditEntry,
    CatalogResource,
    ChannelIdentity,
    CheckIn,
    CodeAttempt,
    Enrollment,
    FamilyLink,
    InterestProfile,
    OutboxMessage,
    Person,
    RecommendationShown,
    SafetyAlert,
    SchoolClass,
)
from bot.testing.conversation import Chat
from bot.testing.people import seed_goal, seed_learner

# A name and an address no other row could hold by chance.
NAME = "Zyxwyn"
USER = "erase-me-7Q"


async def everything_about(services: Services, clock: FakeClock) -> tuple[int, int, int]:
    """A learner with a row in every table that can hold one, a teacher whose class they
    are in, and a family member: (learner id, teacher id, family id)."""
    now = clock.now()
    learner = await seed_learner(services.db, clock, USER, name=NAME)
    teacher = await seed_learner(services.db, clock, "teacher-1", role="teacher", name="Ms. Ruiz")
    family = await seed_learner(services.db, clock, "family-1", role="family", name="Ana")
    assert learner.id is not None
    assert teacher.id is not None
    assert family.id is not None
    goal_id = await seed_goal(services.db, learner, f"{NAME}'s goal: fractions", created_at=now)
    async with services.db.transaction() as session:
        identity = (
            await session.exec(select(ChannelIdentity).where(ChannelIdentity.external_id == USER))
        ).one()
        school_class = SchoolClass(teacher_id=teacher.id, name="6B", created_at=now)
        session.add(school_class)
        await session.flush()
        assert school_class.id is not None
        alert = SafetyAlert(learner_id=learner.id, category="self_harm", opened_at=now)
        session.add_all(
            [
                CheckIn(goal_id=goal_id, person_id=learner.id, rating=3, created_at=now),
                InterestProfile(person_id=learner.id, scores={"R": 50}, created_at=now),
                RecommendationShown(
                    person_id=learner.id,
                    resource_id="scratch",
                    name="Scratch",
                    url="https://scratch.mit.edu/",
                    reason="Because you like building things.",
                    shown_at=now,
                ),
                Enrollment(class_id=school_class.id, learner_id=learner.id, created_at=now),
                FamilyLink(family_id=family.id, learner_id=learner.id, created_at=now),
                AccessCode(
                    code_hash="f" * 64,
                    kind="family",
                    learner_id=learner.id,
                    created_by=teacher.id,
                    expires_at=now + timedelta(days=14),
                    created_at=now,
                ),
                AccessCode(
                    code_hash="e" * 64,
                    kind="teacher",
                    used_by=learner.id,
                    used_at=now,
                    created_at=now,
                ),
                CodeAttempt(identity_id=identity.id, at=now),
                AuditEntry(actor_id=teacher.id, subject_id=learner.id, action="roster", at=now),
                AuditEntry(actor_id=learner.id, subject_id=teacher.id, action="export", at=now),
                alert,
                OutboxMessage(
                    identity_id=identity.id,
                    person_id=learner.id,
                    kind="reminder",
                    payload={"reply": {"text": f"Hi {NAME}", "buttons": []}},
                    dedupe_key=f"reminder:{learner.id}:2026-01-05",
                    next_attempt_at=now,
                    created_at=now,
                ),
            ]
        )
        await session.flush()
        await _messages_to_others_about_the_learner(session, now, teacher, family, alert)
        # An alert acknowledged by the learner's own teacher stays the teacher's record;
        # one the learner somehow acknowledged must lose the learner's id.
        alert.acknowledged_by = learner.id
    chat = Chat(services.turns, USER)
    await chat.send("/resources")  # message log, inbox, conversation, recommendations
    return learner.id, teacher.id, family.id


# The teacher's digest of another class, which never named the learner: kept whole.
OTHER_DIGEST = "7A this week: Ana set a goal."


async def _messages_to_others_about_the_learner(
    session: AsyncSession, now: datetime, teacher: Person, family: Person, alert: SafetyAlert
) -> None:
    """A digest to the teacher (sent), an alert to the teacher (sent), a weekly nudge to
    the family (not yet sent), each naming the learner; and the teacher's digest of a
    class the learner is not in."""
    identities = {
        identity.person_id: identity.id
        for identity in (await session.exec(select(ChannelIdentity))).all()
    }
    classes = (await session.exec(select(SchoolClass))).all()
    other = SchoolClass(teacher_id=teacher.id, name="7A", created_at=now)
    session.add(other)
    await session.flush()

    def message(person: Person, kind: str, text: str, key: str, **extra: Any) -> OutboxMessage:
        return OutboxMessage(
            identity_id=identities[person.id],
            person_id=person.id,
            kind=kind,
            payload={"reply": {"text": text, "buttons": []}, **extra},
            dedupe_key=key,
            status="sent" if kind != "nudge" else "pending",
            next_attempt_at=now,
            created_at=now,
            sent_at=now if kind != "nudge" else None,
        )

    week = {"class": "6B", "week": "2026-W01"}
    session.add_all(
        [
            message(
                teacher,
                "digest",
                f"6B this week: {NAME} completed a goal.",
                "digest:6b",
                digest={"class_id": classes[0].id, **week},
                parts=[f"{NAME} completed a goal."],
            ),
            message(
                teacher,
                "digest",
                OTHER_DIGEST,
                "digest:7a",
                digest={"class_id": other.id, **week, "class": "7A"},
            ),
            message(teacher, "alert", f"{NAME} may need you now.", "alert:1", alert_id=alert.id),
            message(family, "nudge", f"This week {NAME} checked in twice.", "nudge:w1"),
        ]
    )
    await session.flush()


def _holds(value: Any, needles: tuple[str, ...]) -> bool:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return any(needle in text for needle in needles)


async def test_every_table_is_searched_after_forget(
    any_services: Services, clock: FakeClock
) -> None:
    learner_id, teacher_id, family_id = await everything_about(any_services, clock)
    chat = Chat(any_services.turns, USER)
    await chat.script("""
        > /forget
        > yes
        < Done: everything about you is erased
    """)
    people_refs = []
    found: list[str] = []
    async with any_services.db.reading() as session:
        for table in SQLModel.metadata.sorted_tables:
            rows = (await session.exec(sa_select(table))).mappings().all()  # type: ignore[call-overload]
            refs = [fk.parent.name for fk in table.foreign_keys if fk.column.table.name == "people"]
            people_refs.extend(f"{table.name}.{name}" for name in refs)
            for row in rows:
                for name in refs:
                    if row[name] == learner_id:
                        found.append(f"{table.name}.{name} = {learner_id}")
                if table.name == "people" and row["id"] == learner_id:
                    found.append("people row")
                for name, value in row.items():
                    if value is not None and _holds(value, (NAME, USER)):
                        found.append(f"{table.name}.{name} holds {value!r}")
        people = {p.id for p in (await session.exec(select(Person))).all()}
    assert found == []
    # The check above is only as good as its reach: it looked at every reference.
    assert len(people_refs) >= 15
    assert people == {teacher_id, family_id}
    async with any_services.db.reading() as session:
        kept = {
            row.dedupe_key: (row.status, row.payload)
            for row in (await session.exec(select(OutboxMessage))).all()
        }
    # Sent: what names nobody stays (the teacher's export lists the class and week).
    assert kept["digest:6b"][0] == "sent"
    assert kept["digest:6b"][1].keys() == {"digest"}
    assert kept["digest:6b"][1]["digest"]["week"] == "2026-W01"
    assert kept["alert:1"][0] == "sent"
    assert "reply" not in kept["alert:1"][1]
    # Not yet sent: withdrawn, so nothing about the learner goes out after /forget.
    assert kept["nudge:w1"] == ("skipped", {})
    # A digest of a class the learner was never in is untouched.
    assert kept["digest:7a"][1]["reply"]["text"] == OTHER_DIGEST


async def test_erasing_a_teacher_removes_their_classes_and_codes(
    any_services: Services, clock: FakeClock
) -> None:
    _, teacher_id, _ = await everything_about(any_services, clock)
    assert await any_services.turns.erase("web", "teacher-1")
    async with any_services.db.reading() as session:
        assert (await session.exec(select(SchoolClass))).all() == []
        assert (await session.exec(select(Enrollment))).all() == []
        codes = (await session.exec(select(AccessCode))).all()
        assert all(code.created_by != teacher_id for code in codes)
        assert (await session.exec(select(Person).where(Person.id == teacher_id))).first() is None
        # The catalog is the school's, not the teacher's: untouched.
        assert (await session.exec(select(CatalogResource))).all() == []


async def test_a_redelivered_forget_is_not_run_again(
    any_services: Services, clock: FakeClock
) -> None:
    await everything_about(any_services, clock)
    chat = Chat(any_services.turns, USER)
    await chat.send("/forget")
    first = await chat.send("yes", message_id="forget-yes")
    again = await chat.send("yes", message_id="forget-yes")
    assert again.duplicate
    assert [r.text for r in again.replies] == [r.text for r in first.replies]
    async with any_services.db.reading() as session:
        identities = (
            await session.exec(select(ChannelIdentity).where(ChannelIdentity.external_id == USER))
        ).all()
    assert identities == []  # the redelivery did not start a new person
