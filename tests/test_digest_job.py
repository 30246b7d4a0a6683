"""The weekly digest job: due at the teacher's day and time in the teacher's own zone,
written once per class and week, never for an empty class or a teacher who stopped;
and the digests a teacher received, in their export.

The school is tests/test_digest.py's: teacher 1 has 7B and Science 9, teacher 2 has 8A.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.coach.digest import export_digests, send_weekly_digests
from bot.coach.jobs import JobContext
from bot.services import Services
from bot.store.models import AuditEntry, ChannelIdentity, OutboxMessage, Person
from tests.test_digest import EXPECTED_EN, add_class, seed_school


def at(month: int, dom: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, dom, hour, minute, tzinfo=UTC)


async def tick(services: Services, clock: FakeClock, when: datetime) -> int:
    clock.set(when)
    context = JobContext(
        db=services.db,
        now=when,
        catalogs=services.dialog.catalogs,
        settings=services.settings,
    )
    return await send_weekly_digests(context)


async def teacher_settings(services: Services, person: Person, **fields: Any) -> None:
    async with services.db.transaction() as session:
        row = await session.get(Person, person.id)
        assert row is not None
        for name, value in fields.items():
            setattr(row, name, value)


async def digests(services: Services) -> list[OutboxMessage]:
    async with services.db.reading() as session:
        rows = await session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.kind == "digest")
            .order_by(col(OutboxMessage.id))
        )
        return list(rows.all())


def keys(rows: list[OutboxMessage]) -> list[str]:
    return [row.dedupe_key for row in rows]


async def test_friday_at_three_in_the_teachers_zone_once_a_week(
    any_services: Services, clock: FakeClock
) -> None:
    school = await seed_school(any_services, clock)
    # New York is UTC-5 in November: 15:00 there is 20:00 UTC. Teacher 2 stays on UTC.
    await teacher_settings(any_services, school.teacher, timezone="America/New_York")
    c7b, science, c8a = school.class_7b, school.class_science, school.class_8a

    assert await tick(any_services, clock, at(11, 27, 14, 59)) == 0
    assert await tick(any_services, clock, at(11, 27, 15, 0)) == 1
    assert keys(await digests(any_services)) == [f"digest:{c8a}:2026-W48"]
    assert await tick(any_services, clock, at(11, 27, 19, 59)) == 0
    assert await tick(any_services, clock, at(11, 27, 20, 0)) == 2
    assert await tick(any_services, clock, at(11, 27, 20, 5)) == 0  # once
    assert await tick(any_services, clock, at(11, 29, 23, 0)) == 0  # all week
    assert await tick(any_services, clock, at(12, 4, 20, 0)) == 3  # and again next Friday
    assert keys(await digests(any_services)) == [
        f"digest:{c8a}:2026-W48",
        f"digest:{c7b}:2026-W48",
        f"digest:{science}:2026-W48",
        f"digest:{c7b}:2026-W49",
        f"digest:{science}:2026-W49",
        f"digest:{c8a}:2026-W49",
    ]


async def test_the_outbox_row_holds_the_digest_for_the_teacher(
    any_services: Services, clock: FakeClock
) -> None:
    school = await seed_school(any_services, clock)
    await tick(any_services, clock, at(11, 27, 16, 0))  # the moment test_digest describes
    row = next(
        r
        for r in await digests(any_services)
        if r.dedupe_key.startswith(f"digest:{school.class_7b}:")
    )
    assert row.person_id == school.teacher.id
    assert row.status == "pending"
    expected = EXPECTED_EN.format(alert=school.alert_id)
    assert row.payload["reply"] == {"text": expected, "buttons": []}
    assert row.payload["parts"] == [expected]
    assert row.payload["digest"] == {"class_id": school.class_7b, "class": "7B", "week": "2026-W48"}
    async with any_services.db.reading() as session:
        identity = await session.get(ChannelIdentity, row.identity_id)
        audited = (
            await session.exec(
                select(AuditEntry.subject_id, AuditEntry.detail).where(
                    AuditEntry.actor_id == school.teacher.id
                )
            )
        ).all()
    assert identity is not None
    assert identity.external_id == "teacher-1"
    seven_b = {p.id for n, p in school.learners.items() if n != "Zed"}
    assert {subject for subject, detail in audited if "2026-W48, weekly" in (detail or "")} == (
        seven_b
    )


async def test_the_teachers_chosen_day_and_both_sides_of_the_date_line(
    services: Services, clock: FakeClock
) -> None:
    school = await seed_school(services, clock)
    # Auckland (UTC+13 in November): Monday 08:00 there is Sunday 19:00 UTC, and that
    # Monday is already ISO week 49. Pago Pago (UTC-11): Friday 15:00 is Saturday 02:00 UTC.
    await teacher_settings(
        services,
        school.teacher,
        timezone="Pacific/Auckland",
        digest_weekday=1,
        digest_time="08:00",
    )
    await teacher_settings(services, school.other_teacher, stopped_at=at(11, 1, 0))
    assert await tick(services, clock, at(11, 22, 18, 59)) == 0
    assert await tick(services, clock, at(11, 22, 19, 0)) == 2  # Monday morning in Auckland
    await teacher_settings(
        services, school.other_teacher, timezone="Pacific/Pago_Pago", stopped_at=None
    )
    assert await tick(services, clock, at(11, 28, 1, 59)) == 0  # Friday 14:59 in Pago Pago
    assert await tick(services, clock, at(11, 28, 2, 0)) == 1
    assert await tick(services, clock, at(11, 29, 18, 59)) == 0
    assert await tick(services, clock, at(11, 29, 19, 0)) == 2
    assert keys(await digests(services)) == [
        f"digest:{school.class_7b}:2026-W48",
        f"digest:{school.class_science}:2026-W48",
        f"digest:{school.class_8a}:2026-W48",
        f"digest:{school.class_7b}:2026-W49",
        f"digest:{school.class_science}:2026-W49",
    ]


async def test_daylight_saving_moves_the_utc_time_not_the_local_one(
    services: Services, clock: FakeClock
) -> None:
    school = await seed_school(services, clock)
    await teacher_settings(services, school.teacher, timezone="America/New_York")
    await teacher_settings(services, school.other_teacher, stopped_at=at(10, 1, 0))
    # Friday, October 30: still daylight time (UTC-4), so 15:00 is 19:00 UTC.
    assert await tick(services, clock, at(10, 30, 18, 59)) == 0
    assert await tick(services, clock, at(10, 30, 19, 0)) == 2
    # Clocks went back on November 1: Friday, November 6, 15:00 is 20:00 UTC.
    assert await tick(services, clock, at(11, 6, 19, 0)) == 0
    assert await tick(services, clock, at(11, 6, 20, 0)) == 2


async def test_a_missed_friday_goes_out_later_that_week_but_never_the_next(
    services: Services, clock: FakeClock
) -> None:
    await seed_school(services, clock)
    assert await tick(services, clock, at(11, 28, 9, 0)) == 3  # Saturday: late, not lost
    # Down all of week 49's Friday and weekend: on Monday of week 50 nothing is due.
    assert await tick(services, clock, at(12, 7, 9, 0)) == 0
    assert all(key.endswith("2026-W48") for key in keys(await digests(services)))


async def test_who_gets_no_digest(services: Services, clock: FakeClock) -> None:
    school = await seed_school(services, clock)
    empty = await add_class(services.db, school.teacher, "Robotics club", [])
    await teacher_settings(services, school.other_teacher, paused_until=at(12, 1, 0))
    assert await tick(services, clock, at(11, 27, 15, 0)) == 2
    assert f"digest:{empty}:2026-W48" not in keys(await digests(services))
    assert f"digest:{school.class_8a}:2026-W48" not in keys(await digests(services))
    # A teacher who blocked the bot everywhere: nothing to write, and nothing audited.
    async with services.db.transaction() as session:
        await session.exec(
            update(ChannelIdentity)
            .where(col(ChannelIdentity.person_id) == school.teacher.id)
            .values(unreachable=True)
        )
    assert await tick(services, clock, at(12, 4, 15, 0)) == 1  # 8A: the pause is over
    assert keys(await digests(services))[-1] == f"digest:{school.class_8a}:2026-W49"
    await teacher_settings(services, school.other_teacher, stopped_at=at(12, 5, 0))
    assert await tick(services, clock, at(12, 11, 15, 0)) == 0


async def test_the_export_lists_the_digests_a_teacher_received(
    any_services: Services, clock: FakeClock
) -> None:
    school = await seed_school(any_services, clock)
    await tick(any_services, clock, at(11, 27, 15, 0))
    sent_at = at(11, 27, 15, 1)
    async with any_services.db.transaction() as session:
        await session.exec(
            update(OutboxMessage)
            .where(col(OutboxMessage.kind) == "digest")
            .where(col(OutboxMessage.dedupe_key).like(f"digest:{school.class_7b}:%"))
            .values(status="sent", sent_at=sent_at)
        )
    async with any_services.db.reading() as session:
        teacher = await session.get(Person, school.teacher.id)
        learner = await session.get(Person, school.learners["Maria"].id)
        assert teacher is not None
        assert learner is not None
        exported = await export_digests(session, teacher)
        nothing = await export_digests(session, learner)
    assert exported == [
        {
            "class_id": school.class_7b,
            "class": "7B",
            "week": "2026-W48",
            "status": "sent",
            "sent_at": sent_at.isoformat(),
        },
        {
            "class_id": school.class_science,
            "class": "Science 9",
            "week": "2026-W48",
            "status": "pending",
            "sent_at": None,
        },
    ]
    assert "Maria" not in json.dumps(exported)  # the learners stay out of the teacher's copy
    assert nothing == []
