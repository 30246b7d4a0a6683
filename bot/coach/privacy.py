"""A person's data: everything we hold about them (export), and erasing it (forget)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, delete, or_, update
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.coach.digest.weekly import export_digests
from bot.coach.nudges import export_nudges
from bot.coach.resources import export_recommendations
from bot.coach.safety_alerts import export_alerts
from bot.coach.school import export_classes, export_links
from bot.store.models import (
    ChannelIdentity,
    CheckIn,
    Conversation,
    Enrollment,
    FamilyLink,
    Goal,
    InterestProfile,
    MessageLog,
    OutboxMessage,
    Person,
    SafetyAlert,
    SchoolClass,
)

EXPORT_SCHEMA = "coach.export/v1"


async def find_person(session: AsyncSession, channel: str, external_id: str) -> Person | None:
    identity = (
        await session.exec(
            select(ChannelIdentity).where(
                ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
            )
        )
    ).first()
    if identity is None:
        return None
    return await session.get(Person, identity.person_id)


async def export_person(
    session: AsyncSession,
    person: Person,
    expect_of: Callable[[Conversation | None], dict[str, Any]],
) -> dict[str, Any]:
    """Everything stored about one person, as the JSON /mydata and the API send.

    `expect_of` tells what the conversation waits for (the dialog engine knows).
    """
    assert person.id is not None
    identities = (
        await session.exec(select(ChannelIdentity).where(ChannelIdentity.person_id == person.id))
    ).all()
    conversation = (
        await session.exec(select(Conversation).where(Conversation.person_id == person.id))
    ).first()
    messages = (
        await session.exec(
            select(MessageLog)
            .where(MessageLog.person_id == person.id)
            .order_by(col(MessageLog.created_at), col(MessageLog.id))
        )
    ).all()
    goals = (
        await session.exec(select(Goal).where(Goal.person_id == person.id).order_by(col(Goal.id)))
    ).all()
    checkins = (
        await session.exec(
            select(CheckIn).where(CheckIn.person_id == person.id).order_by(col(CheckIn.id))
        )
    ).all()
    interests = (
        await session.exec(
            select(InterestProfile)
            .where(InterestProfile.person_id == person.id)
            .order_by(col(InterestProfile.id))
        )
    ).all()
    return {
        "schema": EXPORT_SCHEMA,
        "person": {
            "id": person.id,
            "role": person.role,
            "name": person.name,
            "locale": person.locale,
            "timezone": person.timezone,
            "grade_band": person.grade_band,
            "under_13": person.under_13,
            "checkin_weekday": person.checkin_weekday,
            "checkin_time": person.checkin_time,
            "onboarded_at": _iso(person.onboarded_at),
            "paused_until": _iso(person.paused_until),
            "created_at": _iso(person.created_at),
        },
        "identities": [
            {"channel": i.channel, "external_id": i.external_id, "created_at": _iso(i.created_at)}
            for i in identities
        ],
        "conversation": {
            "flow": conversation.flow if conversation else None,
            "step": conversation.step if conversation else None,
            "expect": expect_of(conversation),
            "slots": dict(conversation.slots) if conversation else {},
            "updated_at": _iso(conversation.updated_at) if conversation else None,
        },
        "goals": [goal_json(g) for g in goals],
        "checkins": [checkin_json(c) for c in checkins],
        "interests": [interests_json(i) for i in interests],
        "recommendations": await export_recommendations(session, person),
        "classes": await export_classes(session, person),
        "links": await export_links(session, person),
        "alerts": await export_alerts(session, person),
        "nudges": await export_nudges(session, person),
        "digests": await export_digests(session, person),
        "messages": [
            {
                "direction": m.direction,
                "channel": m.channel,
                "text": m.text,
                "buttons": m.buttons,
                "at": _iso(m.created_at),
            }
            for m in messages
        ],
    }


async def erase_person(session: AsyncSession, person: Person) -> None:
    """Delete the person and every row about them.

    Driven by the schema rather than a list, so a table added later is covered the day
    it is added: every column that refers to the person (directly, through one of
    their channel identities, or through a class they teach) is cleared, children
    before parents. Columns declared ON DELETE SET NULL (who acknowledged an alert,
    who made a code) are set to NULL; every other reference is deleted. Done
    explicitly rather than left to foreign-key cascades, which SQLite applies only
    when the pragma is on for that connection.
    """
    pid = person.id
    await _redact_messages_about(session, person)
    owners: dict[str, Any] = {
        "people": pid,
        "channel_identities": select(ChannelIdentity.id).where(ChannelIdentity.person_id == pid),
        "classes": select(SchoolClass.id).where(SchoolClass.teacher_id == pid),
    }
    for table in reversed(SQLModel.metadata.sorted_tables):
        for fk in sorted(table.foreign_keys, key=lambda f: f.parent.name):
            owner = owners.get(fk.column.table.name)
            if owner is None:
                continue
            column = fk.parent
            match = column == owner if fk.column.table.name == "people" else column.in_(owner)
            if fk.ondelete == "SET NULL":
                await session.exec(update(table).where(match).values({column.name: None}))
            else:
                await session.exec(delete(table).where(match))
    await session.exec(delete(Person).where(col(Person.id) == pid))


# What a message to someone else that named an erased learner keeps: its kind, when, to
# whom, and (a digest) which class and week, which say nothing about the learner.
_KEPT_KEYS = ("digest", "alert_id")
# The status of an unsent message that named an erased learner: it will not go.
_WITHDRAWN = "skipped"
_WITHDRAWN_REASON = "withdrawn: a learner it names was erased"


async def _redact_messages_about(session: AsyncSession, person: Person) -> None:
    """Messages to other people that speak of this learner lose their text: a class's
    digest to its teacher, a safeguarding alert to the teachers and the contact, a
    nudge or milestone to their family. Sent ones keep only what names nobody (the
    teacher's export still lists the digest's class and week); unsent ones are
    withdrawn, so nothing about an erased learner goes out after /forget. Found
    through the learner's classes, alerts and family links, before those go."""
    pid = person.id
    classes = set(
        (await session.exec(select(Enrollment.class_id).where(Enrollment.learner_id == pid))).all()
    )
    teachers = set(
        (
            await session.exec(
                select(SchoolClass.teacher_id).where(col(SchoolClass.id).in_(classes))
            )
        ).all()
    )
    alerts = set(
        (await session.exec(select(SafetyAlert.id).where(SafetyAlert.learner_id == pid))).all()
    )
    families = set(
        (await session.exec(select(FamilyLink.family_id).where(FamilyLink.learner_id == pid))).all()
    )
    kinds = [
        and_(col(OutboxMessage.kind) == "digest", col(OutboxMessage.person_id).in_(teachers)),
        and_(
            col(OutboxMessage.kind).in_(("nudge", "milestone")),
            col(OutboxMessage.person_id).in_(families),
        ),
    ]
    if alerts:
        kinds.append(col(OutboxMessage.kind) == "alert")
    candidates = (
        await session.exec(
            select(OutboxMessage).where(col(OutboxMessage.person_id) != pid, or_(*kinds))
        )
    ).all()
    for row in candidates:
        payload = row.payload if isinstance(row.payload, dict) else {}
        if row.kind == "digest":
            about = payload.get("digest")
            if not isinstance(about, dict) or about.get("class_id") not in classes:
                continue
        elif row.kind == "alert" and payload.get("alert_id") not in alerts:
            continue
        values: dict[str, Any] = {
            "payload": {key: payload[key] for key in _KEPT_KEYS if key in payload}
        }
        if row.status in ("pending", "sending"):
            values.update(status=_WITHDRAWN, lease_until=None, last_error=_WITHDRAWN_REASON)
        await session.exec(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == row.id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def recent_messages(session: AsyncSession, person: Person, limit: int) -> list[MessageLog]:
    """The newest `limit` messages both ways, oldest first (for a chat window)."""
    rows = (
        await session.exec(
            select(MessageLog)
            .where(MessageLog.person_id == person.id)
            .order_by(col(MessageLog.created_at).desc(), col(MessageLog.id).desc())
            .limit(limit)
        )
    ).all()
    return list(reversed(rows))


def goal_json(goal: Goal) -> dict[str, Any]:
    return {
        "id": goal.id,
        "status": goal.status,
        "stuck": goal.stuck,
        "topic": goal.topic,
        "wish": goal.wish,
        "outcome": goal.outcome,
        "obstacle": goal.obstacle,
        "plan": goal.plan,
        "measure": goal.measure,
        "deadline": goal.deadline.isoformat() if goal.deadline else None,
        "created_at": _iso(goal.created_at),
        "completed_at": _iso(goal.completed_at),
    }


def checkin_json(checkin: CheckIn) -> dict[str, Any]:
    return {
        "goal_id": checkin.goal_id,
        "rating": checkin.rating,
        "went_well": checkin.went_well,
        "obstacle": checkin.obstacle,
        "next_step": checkin.next_step,
        "mood": checkin.mood,
        "shared": checkin.shared,
        "at": _iso(checkin.created_at),
    }


def interests_json(profile: InterestProfile) -> dict[str, Any]:
    return {
        "scores": profile.scores,
        "top_areas": profile.top_areas,
        "tags": profile.tags,
        "at": _iso(profile.created_at),
    }
