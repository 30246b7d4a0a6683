"""Family nudges over simulated weeks: the weekly line and question on both sides of
the date line, sharing rules, consent and frequency, milestones, the cap of three a
week, quiet hours, /pause, /stop and /start, and the export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import select

from bot.clock import FakeClock
from bot.coach.jobs import JobContext
from bot.coach.nudges import export_nudges, milestone_nudges, weekly_nudges
from bot.delivery.testing import SimulatedTerm
from bot.services import Services
from bot.store.models import ChannelIdentity, CheckIn, FamilyLink, Goal, OutboxMessage, Person
from bot.testing.conversation import Chat
from bot.testing.people import seed_goal, seed_learner

SATURDAY = datetime(2026, 1, 10, 0, 0, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


async def family(
    services: Services,
    clock: FakeClock,
    user: str,
    learner: Person,
    *,
    consented: bool = True,
    **fields: Any,
) -> Person:
    """A family member on Telegram, linked to `learner` (consented unless told not)."""
    values: dict[str, Any] = {"role": "family", "name": None, "nudge_frequency": "weekly"}
    values.update(fields)
    person = await seed_learner(services.db, clock, user, channel="telegram", **values)
    assert person.id is not None
    assert learner.id is not None
    async with services.db.transaction() as session:
        session.add(
            FamilyLink(
                family_id=person.id,
                learner_id=learner.id,
                consented_at=clock.now() if consented else None,
                created_at=clock.now(),
            )
        )
    return person


async def maria(services: Services, clock: FakeClock, **fields: Any) -> Person:
    values: dict[str, Any] = {"name": "Maria", "checkin_weekday": None, "checkin_time": None}
    values.update(fields)
    return await seed_learner(services.db, clock, "web-maria", **values)


async def checkin(
    services: Services,
    learner: Person,
    goal_id: int,
    rating: int,
    at: datetime,
    *,
    went_well: str | None = None,
    shared: bool = False,
) -> None:
    assert learner.id is not None
    async with services.db.transaction() as session:
        session.add(
            CheckIn(
                goal_id=goal_id,
                person_id=learner.id,
                rating=rating,
                went_well=went_well,
                shared=shared,
                created_at=at,
            )
        )


async def complete(services: Services, goal_id: int, at: datetime) -> None:
    async with services.db.transaction() as session:
        goal = await session.get(Goal, goal_id)
        assert goal is not None
        goal.status, goal.completed_at = "done", at


def local(when: datetime, zone: str) -> str:
    return when.astimezone(ZoneInfo(zone)).strftime("%a %d %b %H:%M")


async def test_the_weekly_nudge_on_both_sides_of_the_date_line(
    services: Services, clock: FakeClock
) -> None:
    clock.set(utc(2025, 12, 20))
    learner = await maria(services, clock)
    goal = await seed_goal(
        services.db, learner, "finish my science project", created_at=clock.now()
    )
    for day, rating in ((31, 2), (1, 3)):  # the week before: 2.5 on average
        await checkin(
            services,
            learner,
            goal,
            rating,
            utc(2026 if day == 1 else 2025, 1 if day == 1 else 12, day, 15),
        )
    for day in (7, 8):  # this week: 4
        await checkin(services, learner, goal, 4, utc(2026, 1, day, 15))
    clock.set(SATURDAY)
    await family(services, clock, "tg-auckland", learner, timezone="Pacific/Auckland")
    await family(services, clock, "tg-pago", learner, timezone="Pacific/Pago_Pago")
    term = SimulatedTerm(services, clock, step=timedelta(hours=1))

    await term.run_until(utc(2026, 1, 12, 12))
    auckland, pago = term.sender.to("tg-auckland"), term.sender.to("tg-pago")
    assert [local(m.at, "Pacific/Auckland") for m in auckland] == ["Sun 11 Jan 18:00"]
    assert [local(m.at, "Pacific/Pago_Pago") for m in pago] == ["Sun 11 Jan 18:00"]
    # Sunday evening in each place: a day apart in UTC.
    assert (auckland[0].at, pago[0].at) == (utc(2026, 1, 11, 5), utc(2026, 1, 12, 5))
    for message in (auckland[0], pago[0]):
        assert message.text.splitlines() == [
            "Your weekly update from Coach:",
            "",
            "Maria checked in 2 times this week, and the ratings went up from 2.5 to 4 "
            "out of 5 on average.",
            "Ask Maria: what helped you most this week?",
            "",
            "Say /pause for a two-week break from these updates, or /stop to end them.",
        ]


async def test_a_quiet_week_in_spanish_and_shared_words_only_when_shared(
    services: Services, clock: FakeClock
) -> None:
    clock.set(utc(2025, 12, 29))
    learner = await maria(services, clock)
    sam = await seed_learner(services.db, clock, "web-sam", name="Sam")
    goal = await seed_goal(services.db, sam, "run 5 km", created_at=clock.now())
    await checkin(services, sam, goal, 4, utc(2026, 1, 2, 15), went_well="my notes", shared=False)
    await checkin(services, sam, goal, 3, utc(2026, 1, 6, 15), went_well="a secret", shared=False)
    await checkin(
        services, sam, goal, 2, utc(2026, 1, 7, 15), went_well="running with my dad", shared=True
    )
    clock.set(SATURDAY)
    await family(services, clock, "tg-abuela", learner, locale="es", timezone="America/Mexico_City")
    parent = await family(services, clock, "tg-sams-dad", sam)
    await SimulatedTerm(services, clock, step=timedelta(hours=1)).run_until(utc(2026, 1, 12, 6))

    async with services.db.reading() as session:
        texts = {
            row.person_id: row.payload["reply"]["text"]
            for row in (await session.exec(select(OutboxMessage))).all()
        }
    spanish = texts[next(k for k in texts if k != parent.id)]
    assert "Fue una semana tranquila para Maria" in spanish
    assert "Pregúntale a Maria: ¿en qué te gustaría mejorar este mes?" in spanish
    english = texts[parent.id]
    assert "the ratings dipped from 4 to 2.5 out of 5 on average" in english
    assert 'Sam shared what went well: "running with my dad"' in english
    assert "Ask Sam: what got in the way" in english
    assert "secret" not in english
    assert "notes" not in english


async def test_no_consent_no_nudge_and_frequency_is_respected(
    services: Services, clock: FakeClock
) -> None:
    clock.set(SATURDAY)
    learner = await maria(services, clock)
    goal = await seed_goal(services.db, learner, "learn my times tables", created_at=clock.now())
    await family(services, clock, "tg-unconsented", learner, consented=False)
    await family(services, clock, "tg-off", learner, nudge_frequency="off")
    await family(services, clock, "tg-milestones", learner, nudge_frequency="milestones")
    await family(services, clock, "tg-not-asked", learner, nudge_frequency=None)
    term = SimulatedTerm(services, clock, step=timedelta(hours=1))

    clock.set(utc(2026, 1, 11, 14))
    await complete(services, goal, clock.now())
    await term.run_until(utc(2026, 1, 12, 6))
    heard = {(m.external_id, m.text.split(":")[0]) for m in term.sender.sent}
    assert heard == {
        ("tg-milestones", "Good news"),
        ("tg-not-asked", "Good news"),
        ("tg-not-asked", "Your weekly update from Coach"),
    }
    weekly = next(m for m in term.sender.to("tg-not-asked") if m.text.startswith("Your"))
    assert 'Maria completed a goal this week: "learn my times tables"' in weekly.text
    assert "Ask Maria: what are you proudest of, and what's next?" in weekly.text


async def test_milestones_go_the_same_day_or_when_the_quiet_hours_end(
    services: Services, clock: FakeClock
) -> None:
    clock.set(utc(2026, 1, 5, 12))
    learner = await maria(services, clock)
    afternoon = await seed_goal(services.db, learner, "read a novel", created_at=clock.now())
    evening = await seed_goal(services.db, learner, "draw a comic", created_at=clock.now())
    old = await seed_goal(services.db, learner, "tidy my desk", created_at=clock.now())
    await complete(services, old, utc(2026, 1, 5, 13))  # before the family member joined
    clock.set(utc(2026, 1, 5, 14))
    await family(services, clock, "tg-dad", learner, timezone="America/Chicago")
    term = SimulatedTerm(services, clock, step=timedelta(minutes=30))

    clock.set(utc(2026, 1, 6, 20, 0))  # Tuesday 14:00 in Chicago
    await complete(services, afternoon, clock.now())
    await term.run_until(utc(2026, 1, 7, 3, 30))  # 21:30 in Chicago
    await complete(services, evening, clock.now())
    await term.run_until(utc(2026, 1, 7, 16))
    sent = term.sender.to("tg-dad")
    assert [(local(m.at, "America/Chicago"), m.text.splitlines()[0]) for m in sent] == [
        ("Tue 06 Jan 14:00", 'Good news: Maria just completed a goal: "read a novel".'),
        ("Wed 07 Jan 08:00", 'Good news: Maria just completed a goal: "draw a comic".'),
    ]


async def test_the_fourth_message_of_a_week_waits_for_the_next(
    services: Services, clock: FakeClock
) -> None:
    clock.set(utc(2026, 1, 5, 6))  # Monday 07:00 in Paris
    zone = "Europe/Paris"
    learner = await maria(services, clock)
    goals = [
        await seed_goal(services.db, learner, f"goal {n}", created_at=clock.now()) for n in range(5)
    ]
    await family(services, clock, "tg-mum", learner, timezone=zone)
    term = SimulatedTerm(services, clock, step=timedelta(hours=1))
    for day, goal in zip((5, 6, 7, 8), goals, strict=False):  # Monday to Thursday, 13:00
        await term.run_until(utc(2026, 1, day, 12))
        await complete(services, goal, clock.now())
    await term.run_until(utc(2026, 1, 13, 12))

    sent = [(local(m.at, zone), m.text.split(":")[0]) for m in term.sender.to("tg-mum")]
    assert sent == [
        ("Mon 05 Jan 13:00", "Good news"),
        ("Tue 06 Jan 13:00", "Good news"),
        ("Wed 07 Jan 13:00", "Good news"),
        # The fourth milestone and Sunday's update wait for Monday, when quiet hours end.
        ("Mon 12 Jan 08:00", "Good news"),
        ("Mon 12 Jan 08:00", "Your weekly update from Coach"),
    ]
    assert "goal 3" in term.sender.to("tg-mum")[3].text


async def test_pause_stop_and_start_for_a_family_member(
    services: Services, clock: FakeClock
) -> None:
    clock.set(SATURDAY)
    learner = await maria(services, clock)
    dad = await family(services, clock, "tg-dad", learner)
    chat = Chat(services.turns, "tg-dad", channel="telegram")
    term = SimulatedTerm(services, clock, step=timedelta(hours=1))

    await chat.script("""
        > /pause
        < Paused
        < January 24
    """)
    await term.run_until(utc(2026, 1, 24))
    assert term.sender.to("tg-dad") == []  # Sundays 11 and 18 fall in the pause

    await chat.script("""
        > /stop
        < This stops every reminder and update
        = yes_no stop.confirm
        > no
        < nothing changes
    """)
    await chat.script("""
        > /stop
        > yes
        < no more messages from me unless you write first
        < /start
    """)
    await term.run_until(utc(2026, 2, 9))
    assert term.sender.to("tg-dad") == []  # the pause is over, but he stopped
    async with services.db.reading() as session:
        stopped = await session.get(Person, dad.id)
        assert stopped is not None
        assert stopped.stopped_at is not None

    await chat.script("""
        > /start
        < Welcome back! Reminders and updates are on again.
    """)
    await term.run_until(utc(2026, 2, 16))
    assert [m.at for m in term.sender.to("tg-dad")] == [utc(2026, 2, 15, 18)]

    async with services.db.reading() as session:
        person = await session.get(Person, dad.id)
        assert person is not None
        exported = await export_nudges(session, person)
    assert [(e["kind"], e["status"]) for e in exported] == [("nudge", "sent")]
    assert exported[0]["sent_at"] == "2026-02-15T18:00:00+00:00"
    assert str(exported[0]["text"]).startswith("Your weekly update from Coach:")


async def test_a_learners_stop_is_confirmed_and_resume_also_restarts(
    services: Services, clock: FakeClock
) -> None:
    clock.set(SATURDAY)
    await seed_learner(services.db, clock, "web-sam", name="Sam")
    chat = Chat(services.turns, "web-sam")
    await chat.script("""
        > /stop
        > skip
        < nothing changes
        > /stop
        > yes
        < Done
        > /resume
        < Welcome back! Reminders and updates are on again.
    """)
    async with services.db.reading() as session:
        sam = (await session.exec(select(Person).where(Person.name == "Sam"))).one()
    assert sam.stopped_at is None


async def test_the_cap_and_the_jobs_on_every_backend(
    any_services: Services, clock: FakeClock
) -> None:
    clock.set(utc(2026, 1, 8, 12))  # Thursday
    learner = await maria(any_services, clock)
    mum = await family(any_services, clock, "tg-mum", learner)
    assert mum.id is not None
    async with any_services.db.transaction() as session:
        identity = (
            await session.exec(
                select(ChannelIdentity).where(ChannelIdentity.external_id == "tg-mum")
            )
        ).one()
        assert identity.id is not None
        for n in range(3):  # three messages already this week
            session.add(
                OutboxMessage(
                    identity_id=identity.id,
                    person_id=mum.id,
                    kind="nudge",
                    payload={"reply": {"text": "x", "buttons": []}},
                    dedupe_key=f"earlier:{n}",
                    status="sent",
                    next_attempt_at=clock.now() - timedelta(days=n),
                    sent_at=clock.now() - timedelta(days=n),
                    created_at=clock.now(),
                )
            )
    goal = await seed_goal(any_services.db, learner, "swim a length", created_at=clock.now())
    await complete(any_services, goal, clock.now())
    context = JobContext(
        any_services.db, clock.now(), any_services.dialog.catalogs, any_services.settings
    )
    assert await milestone_nudges(context) == 1
    assert await milestone_nudges(context) == 0  # written once
    async with any_services.db.reading() as session:
        row = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.kind == "milestone"))
        ).one()
    # Next Monday, when the quiet hours (UTC here) end.
    assert row.next_attempt_at == utc(2026, 1, 12, 8)
    clock.set(utc(2026, 1, 11, 18))
    sunday = JobContext(
        any_services.db, clock.now(), any_services.dialog.catalogs, any_services.settings
    )
    assert await weekly_nudges(sunday) == 1
