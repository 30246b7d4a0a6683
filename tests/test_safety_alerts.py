"""Safeguarding in the conversation: the care reply, the alert, who hears of it, /ack,
/alerts, the re-sends, the paused flow, the export.

A school with one learner (Sam) in Ms Rivera's class, another class run by Mr Stone,
Sam's linked family member, and the deployment's safeguarding contact on Slack.
Every test runs on a fixed clock: Monday, November 23, 2026, 15:00 UTC.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.coach.jobs import JobContext
from bot.coach.safety_alerts import export_alerts, resend_unacknowledged_alerts
from bot.engine.messages import Reply
from bot.services import Services
from bot.store.models import (
    AuditEntry,
    ChannelIdentity,
    Enrollment,
    FamilyLink,
    OutboxMessage,
    Person,
    SafetyAlert,
    SchoolClass,
)
from bot.testing.conversation import Chat
from bot.testing.people import seed_learner

MONDAY = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
CONTACT = "slack:U0SAFE"


async def school(
    services: Services, clock: FakeClock, *, learner_locale: str = "en", enrol: bool = True
) -> dict[str, Person]:
    clock.set(MONDAY)
    db, now = services.db, services.clock.now()
    people = {
        "sam": await seed_learner(db, clock, "learner-1", locale=learner_locale),
        "rivera": await seed_learner(
            db, clock, "teacher-a", role="teacher", name="Ms Rivera", timezone="America/New_York"
        ),
        "stone": await seed_learner(db, clock, "teacher-b", role="teacher", name="Mr Stone"),
        "mum": await seed_learner(db, clock, "family-1", role="family", name="Ana"),
        "other": await seed_learner(db, clock, "learner-2", name="Lee"),
    }
    async with db.transaction() as session:
        mine = SchoolClass(teacher_id=people["rivera"].id, name="7B Maths", created_at=now)
        theirs = SchoolClass(teacher_id=people["stone"].id, name="8A Art", created_at=now)
        session.add_all([mine, theirs])
        await session.flush()
        if enrol:
            session.add(Enrollment(class_id=mine.id, learner_id=people["sam"].id, created_at=now))
        session.add(Enrollment(class_id=theirs.id, learner_id=people["other"].id, created_at=now))
        session.add(
            FamilyLink(
                family_id=people["mum"].id,
                learner_id=people["sam"].id,
                consented_at=now,
                created_at=now,
            )
        )
    return people


@pytest.fixture(
    params=["sqlite"] + (["postgres"] if os.environ.get("COACH_TEST_DATABASE_URL") else [])
)
async def services(request: pytest.FixtureRequest, open_services: Callable[..., Any]) -> Services:
    """Services with a safeguarding contact configured, on every backend we test."""
    result: Services = await open_services(request.param, safeguarding_contact=CONTACT)
    return result


async def alerts(services: Services) -> list[SafetyAlert]:
    async with services.db.reading() as session:
        return list((await session.exec(select(SafetyAlert).order_by(col(SafetyAlert.id)))).all())


async def alert_rows(services: Services) -> list[tuple[str, str, str]]:
    """(recipient's name or external id, dedupe key, text) of every alert outbox row."""
    async with services.db.reading() as session:
        rows = await session.exec(
            select(OutboxMessage, Person, ChannelIdentity)
            .join(Person, col(Person.id) == col(OutboxMessage.person_id))
            .join(ChannelIdentity, col(ChannelIdentity.id) == col(OutboxMessage.identity_id))
            .where(OutboxMessage.kind == "alert")
            .order_by(col(OutboxMessage.id))
        )
        return [
            (person.name or identity.external_id, row.dedupe_key, row.payload["reply"]["text"])
            for row, person, identity in rows.all()
        ]


def recipients(rows: list[tuple[str, str, str]]) -> list[str]:
    return sorted(name for name, _, _ in rows)


async def resend(services: Services) -> int:
    context = JobContext(
        db=services.db,
        now=services.clock.now(),
        catalogs=services.dialog.catalogs,
        settings=services.settings,
    )
    return await resend_unacknowledged_alerts(context)


# -- the learner ---------------------------------------------------------------------------


async def test_mid_goal_alarm_gets_care_an_alert_and_the_goal_waits(
    services: Services, clock: FakeClock
) -> None:
    await school(services, clock)
    sam = Chat(services.turns, "learner-1")
    await sam.script("""
        > /goal
        > fractions
        < Imagine you've got there
        = text goal.outcome
        > honestly i just want to die
        < really glad you told me
        < Call or text 988
        < Text HOME to 741741
        < 911
        < trusted adult at your school
        <! Imagine you've got there
        = none
    """)
    [alert] = await alerts(services)
    assert (alert.category, alert.notified_count, alert.acknowledged_at) == ("suicide", 1, None)
    rows = await alert_rows(services)
    # Ms Rivera (Sam's teacher) and the contact: not Mr Stone, never Sam's family.
    assert recipients(rows) == ["Ms Rivera", "U0SAFE"]
    assert {key for _, key, _ in rows} == {
        f"alert:{alert.id}:1:{person_id}" for person_id in await alerted_ids(services)
    }
    for _, _, text in rows:
        assert f"alert #{alert.id}" in text
        assert "Sam" in text
        assert "thoughts of suicide" in text
        assert f"/ack {alert.id}" in text
        assert "die" not in text.lower()  # never the learner's words
    rivera = next(text for name, _, text in rows if name == "Ms Rivera")
    assert "10:00\u202fAM" in rivera  # 15:00 UTC in New York
    assert "7B Maths" in rivera

    # The goal was paused, not lost: the next message offers it back.
    await sam.script("""
        > ok
        < Carry on with
        = yes_no
        > [yes]
        < Imagine you've got there
        = text goal.outcome
        > feel proud
        < What inside you might get in the way
    """)


async def alerted_ids(services: Services) -> set[int]:
    async with services.db.reading() as session:
        found = await session.exec(
            select(OutboxMessage.person_id).where(OutboxMessage.kind == "alert")
        )
        return {person_id for person_id in found.all() if person_id is not None}


async def test_the_alert_rows_are_due_now_and_carry_an_ack_button(
    services: Services, clock: FakeClock
) -> None:
    await school(services, clock)
    await Chat(services.turns, "learner-1").send("my stepdad hits me")
    async with services.db.reading() as session:
        rows = list(
            (await session.exec(select(OutboxMessage).where(OutboxMessage.kind == "alert"))).all()
        )
    assert len(rows) == 2
    [alert] = await alerts(services)
    for row in rows:
        assert row.next_attempt_at == MONDAY
        assert row.status == "pending"
        reply = Reply.from_json(row.payload["reply"])
        assert [b.value for b in reply.buttons] == [f"/ack {alert.id}"]
        assert "abuse or neglect" in reply.text


async def test_a_repeat_while_open_gets_care_but_opens_nothing_new(
    services: Services, clock: FakeClock
) -> None:
    await school(services, clock)
    sam = Chat(services.turns, "learner-1")
    await sam.script("""
        > I want to kill myself
        < 988
        > seriously kms
        < 988
        < trusted adult
    """)
    assert len(await alerts(services)) == 1
    assert len(await alert_rows(services)) == 2
    # A different worry is a different alert, told at once.
    await sam.send("and my dad beats me")
    assert [a.category for a in await alerts(services)] == ["suicide", "abuse"]
    assert len(await alert_rows(services)) == 4


async def test_a_first_message_that_alarms_waits_for_onboarding(
    services: Services, clock: FakeClock
) -> None:
    await school(services, clock)
    newcomer = Chat(services.turns, "new-learner")
    await newcomer.script("""
        > i want to end my life
        < 988
        = none
    """)
    [alert] = await alerts(services)
    # Nobody teaches them yet: the safeguarding contact alone hears of it.
    assert recipients(await alert_rows(services)) == ["U0SAFE"]
    assert alert.category == "suicide"
    await newcomer.send("hi")
    assert newcomer.last.expect.type != "none"  # onboarding starts now


async def test_a_learner_who_writes_in_spanish_is_answered_in_spanish(
    services: Services, clock: FakeClock
) -> None:
    await school(services, clock)  # Sam's language is English
    await Chat(services.turns, "learner-1").script("""
        > me quiero morir
        < Me alegra mucho que me lo cuentes
        < oprime 2
    """)


async def test_idioms_and_staff_messages_open_nothing(services: Services, clock: FakeClock) -> None:
    await school(services, clock)
    await Chat(services.turns, "learner-1").script("""
        > this homework is killing me
        <! 988
    """)
    await Chat(services.turns, "teacher-a").script("""
        > marking is killing me, I want to die
        <! 988
    """)
    assert await alerts(services) == []


async def test_spanish_learner_gets_spanish_care_and_teachers_their_own_language(
    services: Services, clock: FakeClock
) -> None:
    people = await school(services, clock, learner_locale="es")
    async with services.db.transaction() as session:
        rivera = await session.get(Person, people["rivera"].id)
        assert rivera is not None
        rivera.locale = "es"
    sam = Chat(services.turns, "learner-1")
    await sam.script("""
        > ya no quiero vivir
        < Me alegra mucho que me lo cuentes
        < oprime 2
        < AYUDA al 741741
        < 911
        < persona adulta de confianza
    """)
    rows = dict((name, text) for name, _, text in await alert_rows(services))
    assert "pensamientos de suicidio" in rows["Ms Rivera"]
    assert "lun, 23 nov, 10:00" in rows["Ms Rivera"]
    assert "thoughts of suicide" in rows["U0SAFE"]  # the contact reads the default, English


# -- staff -------------------------------------------------------------------------------


async def test_ack_by_the_right_teacher_tells_the_others(
    services: Services, clock: FakeClock
) -> None:
    await school(services, clock)
    await Chat(services.turns, "learner-1").send("I want to kill myself")
    [alert] = await alerts(services)
    clock.advance(minutes=7)
    await Chat(services.turns, "teacher-a").script(f"""
        > /ack {alert.id}
        < Thanks. Alert #{alert.id} about Sam is acknowledged
        < Mon, Nov 23, 10:07\u202fAM
    """)
    [acked] = await alerts(services)
    assert acked.acknowledged_at == MONDAY.replace(minute=7)
    assert acked.acknowledged_by == (await person(services, "teacher-a")).id
    told = [row for row in await alert_rows(services) if ":ack:" in row[1]]
    assert [(name, text) for name, _, text in told] == [
        (
            "U0SAFE",
            f"Safeguarding alert #{alert.id} about Sam was acknowledged by Ms Rivera "
            "(Mon, Nov 23, 3:07\u202fPM).",
        )
    ]
    # A second /ack (the contact's) hears who was first.
    await Chat(services.turns, "U0SAFE", channel="slack").script(f"""
        > /ack {alert.id}
        < already acknowledged by Ms Rivera
    """)


async def test_ack_is_refused_to_another_class_teacher_a_learner_and_the_family(
    services: Services, clock: FakeClock
) -> None:
    await school(services, clock)
    await Chat(services.turns, "learner-1").send("someone touched me down there")
    [alert] = await alerts(services)
    await Chat(services.turns, "teacher-b").script(f"""
        > /ack {alert.id}
        < I can't find alert #{alert.id}
        > /alerts
        < no open safeguarding alerts
    """)
    await Chat(services.turns, "learner-2").script(f"""
        > /ack {alert.id}
        < That command is for school staff
    """)
    await Chat(services.turns, "family-1").script(f"""
        > /ack {alert.id}
        < That command is for school staff
    """)
    [still] = await alerts(services)
    assert still.acknowledged_at is None
    assert all(name != "Ana" for name, _, _ in await alert_rows(services))


async def test_alerts_lists_open_ones_and_ack_without_a_number_asks(
    services: Services, clock: FakeClock
) -> None:
    await school(services, clock)
    await Chat(services.turns, "learner-1").send("i want to kill myself")
    await Chat(services.turns, "learner-2").send("a kid has a knife in his backpack")
    first, second = await alerts(services)
    await Chat(services.turns, "teacher-a").script(f"""
        > /alerts
        < One open safeguarding alert
        < #{first.id} Sam: thoughts of suicide, Mon, Nov 23, 10:00\u202fAM
        <! Lee
        > /ack
        < Which alert?
        < #{first.id} Sam
    """)
    # The safeguarding contact sees every open alert.
    await Chat(services.turns, "U0SAFE", channel="slack").script(f"""
        > /alerts
        < 2 open safeguarding alerts
        < #{second.id} Lee: violence or a threat of violence
    """)
    async with services.db.reading() as session:
        audited = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "alert_list"))
        ).all()
    assert len(audited) == 4  # Rivera read Sam's twice (/alerts, /ack); the contact, both


async def test_ack_mid_flow_offers_the_flow_back(services: Services, clock: FakeClock) -> None:
    await school(services, clock)
    await Chat(services.turns, "learner-1").send("i want to kill myself")
    [alert] = await alerts(services)
    rivera = Chat(services.turns, "teacher-a")
    await rivera.script(f"""
        > /settings
        > /ack {alert.id}
        < acknowledged
        < Carry on with
    """)


# -- the re-sends ------------------------------------------------------------------------


async def test_unacknowledged_alerts_are_sent_again_every_30_minutes_until_ack(
    services: Services, clock: FakeClock
) -> None:
    await school(services, clock)
    await Chat(services.turns, "learner-1").send("I want to die")
    [alert] = await alerts(services)
    clock.advance(minutes=29)
    assert await resend(services) == 0
    clock.advance(minutes=1)
    assert await resend(services) == 2
    assert await resend(services) == 0  # the same tick again writes nothing twice
    again = [row for row in await alert_rows(services) if row[1].startswith(f"alert:{alert.id}:2:")]
    assert recipients(again) == ["Ms Rivera", "U0SAFE"]
    assert all("Reminder: safeguarding alert" in text for _, _, text in again)
    clock.advance(minutes=30)
    assert await resend(services) == 2
    [alert] = await alerts(services)
    assert alert.notified_count == 3
    await Chat(services.turns, "teacher-a").send(f"/ack {alert.id}")
    clock.advance(minutes=30)
    assert await resend(services) == 0
    clock.advance(hours=5)
    assert await resend(services) == 0


async def test_nobody_to_tell_is_logged_without_the_text(
    open_services: Callable[..., Any], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    services: Services = await open_services("sqlite")  # no safeguarding contact
    await school(services, clock, enrol=False)
    with caplog.at_level(logging.INFO):
        await Chat(services.turns, "learner-1").script("""
            > I want to kill myself
            < 988
            < Please think about telling an adult you trust today
            <! trusted adult at your school
        """)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == ["safety alert has nobody to notify"]
    assert not any("kill" in r.getMessage() for r in caplog.records)
    assert len(await alerts(services)) == 1


# -- the export ----------------------------------------------------------------------------


async def test_the_learner_export_says_when_and_acknowledged_when_not_who(
    services: Services, clock: FakeClock
) -> None:
    await school(services, clock)
    await Chat(services.turns, "learner-1").send("I cut myself last night")
    [alert] = await alerts(services)
    clock.advance(minutes=12)
    await Chat(services.turns, "teacher-a").send(f"/ack {alert.id}")
    sam, lee = await person(services, "learner-1"), await person(services, "learner-2")
    async with services.db.reading() as session:
        assert await export_alerts(session, sam) == [
            {
                "opened_at": "2026-11-23T15:00:00+00:00",
                "category": "self_harm",
                "acknowledged_at": "2026-11-23T15:12:00+00:00",
            }
        ]
        assert await export_alerts(session, lee) == []


async def person(services: Services, user: str) -> Person:
    async with services.db.reading() as session:
        found = (
            await session.exec(
                select(Person)
                .join(ChannelIdentity, col(ChannelIdentity.person_id) == col(Person.id))
                .where(ChannelIdentity.external_id == user)
            )
        ).one()
        return found
