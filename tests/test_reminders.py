"""Check-in reminders over simulated weeks: the learner's day and time in their own
zone (through daylight saving changes), one gentle follow-up only if they did not
check in, quiet hours, /pause and /stop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from bot.clock import FakeClock
from bot.coach.jobs import JobContext
from bot.coach.reminders import CheckinReminders, checkin_reminders
from bot.delivery.testing import Sent, SimulatedTerm
from bot.services import Services
from bot.store.models import CheckIn, OutboxMessage, Person
from bot.testing.conversation import Chat
from bot.testing.people import seed_goal, seed_learner

NEW_YORK = {"timezone": "America/New_York"}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(sent: list[Sent], zone: str = "America/New_York") -> list[tuple[str, str]]:
    """(local time, first words) for each message, to read like a calendar."""
    from zoneinfo import ZoneInfo

    return [
        (m.at.astimezone(ZoneInfo(zone)).strftime("%a %d %b %H:%M"), m.text.split(":")[0])
        for m in sent
    ]


async def learner(services: Services, clock: FakeClock, user: str, **fields: Any) -> Person:
    values: dict[str, Any] = {"checkin_weekday": 1, "checkin_time": "16:00", **NEW_YORK}
    values.update(fields)
    return await seed_learner(services.db, clock, user, channel="telegram", **values)


async def check_in(services: Services, person: Person, goal_id: int, rating: int = 4) -> None:
    assert person.id is not None
    async with services.db.transaction() as session:
        session.add(
            CheckIn(
                goal_id=goal_id,
                person_id=person.id,
                rating=rating,
                created_at=services.clock.now(),
            )
        )


async def test_weekly_reminders_keep_local_time_across_the_march_dst_change(
    services: Services, clock: FakeClock
) -> None:
    clock.set(utc(2026, 3, 2, 5, 0))  # Monday 2 March, midnight in New York
    maria = await learner(services, clock, "tg-maria", name="Maria")
    goal = await seed_goal(services.db, maria, "read more", created_at=clock.now())
    term = SimulatedTerm(services, clock, step=timedelta(hours=1))

    week_one = await term.run_until(utc(2026, 3, 9, 5, 0))
    # Monday 16:00 EST, then the follow-up on Wednesday: no check-in came.
    assert local(week_one) == [
        ("Mon 02 Mar 16:00", "Hi Maria! It's check-in time"),
        ("Wed 04 Mar 16:00", "No pressure, Maria"),
    ]
    assert [m.at for m in week_one] == [utc(2026, 3, 2, 21, 0), utc(2026, 3, 4, 21, 0)]
    assert week_one[0].buttons == ("checkin",)

    # Week two, after the clocks went forward on Sunday 8 March: still 16:00 local
    # (20:00 UTC now). She checks in on Tuesday, so no follow-up.
    await term.run_until(utc(2026, 3, 10, 15, 0))
    await check_in(services, maria, goal)
    week_two = term.sender.sent[2:] + await term.run_until(utc(2026, 3, 16, 4, 0))
    assert local(week_two) == [("Mon 09 Mar 16:00", "Hi Maria! It's check-in time")]
    assert week_two[0].at == utc(2026, 3, 9, 20, 0)


async def test_the_november_change_and_one_follow_up_only(
    services: Services, clock: FakeClock
) -> None:
    clock.set(utc(2026, 10, 26, 4, 0))
    await learner(services, clock, "tg-sam", name="Sam", checkin_weekday=6, checkin_time="10:00")
    term = SimulatedTerm(services, clock, step=timedelta(hours=1))

    sent = await term.run_until(utc(2026, 11, 9, 16, 0))
    # Saturday 31 October is EDT, Saturday 7 November EST: 10:00 local both times.
    # One follow-up each week (Monday), never a second.
    assert local(sent) == [
        ("Sat 31 Oct 10:00", "Hi Sam! It's check-in time"),
        ("Mon 02 Nov 10:00", "No pressure, Sam"),
        ("Sat 07 Nov 10:00", "Hi Sam! It's check-in time"),
        ("Mon 09 Nov 10:00", "No pressure, Sam"),
    ]
    assert [m.at for m in sent] == [
        utc(2026, 10, 31, 14, 0),
        utc(2026, 11, 2, 15, 0),
        utc(2026, 11, 7, 15, 0),
        utc(2026, 11, 9, 15, 0),
    ]


async def test_a_reminder_in_quiet_hours_waits_for_the_morning(
    services: Services, clock: FakeClock
) -> None:
    clock.set(utc(2026, 1, 5, 5, 0))  # Monday midnight in New York
    await learner(services, clock, "tg-owl", name=None, checkin_time="21:30")
    term = SimulatedTerm(services, clock, step=timedelta(hours=1))

    sent = await term.run_until(utc(2026, 1, 10, 5, 0))
    assert local(sent) == [
        ("Tue 06 Jan 08:00", "Hi! It's check-in time"),
        ("Thu 08 Jan 08:00", "No pressure"),
    ]


async def test_a_learners_own_quiet_hours_win(services: Services, clock: FakeClock) -> None:
    clock.set(utc(2026, 1, 5, 5, 0))
    await learner(
        services, clock, "tg-late", checkin_time="21:30", quiet_start="23:00", quiet_end="07:00"
    )
    term = SimulatedTerm(services, clock, step=timedelta(minutes=30))
    sent = await term.run_until(utc(2026, 1, 6, 5, 0))
    assert local(sent) == [("Mon 05 Jan 21:30", "Hi Sam! It's check-in time")]


async def test_no_reminders_while_paused_or_stopped(services: Services, clock: FakeClock) -> None:
    clock.set(utc(2026, 1, 5, 5, 0))
    pause_ends = utc(2026, 1, 15, 12, 0)
    await learner(services, clock, "tg-paused", name="Pia", paused_until=pause_ends)
    await learner(services, clock, "tg-stopped", name="Stu", stopped_at=clock.now())
    term = SimulatedTerm(services, clock, step=timedelta(hours=1))

    sent = await term.run_until(utc(2026, 1, 20, 5, 0))
    # Pia's Monday 5 and Monday 12 fall in her pause; Monday 19 does not.
    assert local(sent) == [("Mon 19 Jan 16:00", "Hi Pia! It's check-in time")]


async def test_the_reminder_speaks_the_learners_language_and_starts_the_check_in(
    services: Services, clock: FakeClock
) -> None:
    clock.set(utc(2026, 1, 5, 20, 55))
    lucia = await learner(services, clock, "tg-lucia", name="Lucía", locale="es")
    await seed_goal(services.db, lucia, "leer más", created_at=clock.now() - timedelta(days=9))
    term = SimulatedTerm(services, clock, step=timedelta(minutes=5))

    sent = await term.run_until(utc(2026, 1, 5, 21, 5))
    assert [m.text.split(":")[0] for m in sent] == ["¡Hola, Lucía! Es hora de la revisión"]
    assert sent[0].buttons == ("checkin",)
    chat = Chat(services.turns, "tg-lucia", channel="telegram")
    await chat.script("""
        > [checkin]
        < cómo te sientes
    """)


async def test_the_reminder_job_on_every_backend(any_services: Services, clock: FakeClock) -> None:
    clock.set(utc(2026, 1, 5, 16))  # Monday 16:00 UTC
    sam = await seed_learner(any_services.db, clock, "tg-sam", channel="telegram")
    clock.set(utc(2026, 1, 5, 16, 1))

    def context() -> JobContext:
        return JobContext(
            any_services.db, clock.now(), any_services.dialog.catalogs, any_services.settings
        )

    assert await checkin_reminders(context()) == 1
    assert await checkin_reminders(context()) == 0
    clock.set(utc(2026, 1, 7, 16, 1))
    assert await checkin_reminders(context()) == 0  # the reminder was never sent
    async with any_services.db.transaction() as session:
        row = (await session.exec(select(OutboxMessage))).one()
        assert row.dedupe_key == f"reminder:{sam.id}:2026-01-05"
        row.status = "sent"
    assert await checkin_reminders(context()) == 1
    async with any_services.db.reading() as session:
        keys = sorted((await session.exec(select(OutboxMessage.dedupe_key))).all())
    assert keys == [f"reminder:{sam.id}:2026-01-05", f"reminder:{sam.id}:2026-01-05:followup"]


async def test_the_scheduled_job_looks_only_at_appointments_since_its_last_tick(
    services: Services, clock: FakeClock
) -> None:
    """After its first tick the job reads only learners whose appointment fell since the
    previous tick, yet every learner still gets each weekly reminder once, on time."""
    job = CheckinReminders()
    start = utc(2026, 11, 2)  # a Monday
    clock.set(start - timedelta(days=30))
    zones = ["America/New_York", "Pacific/Auckland", "Pacific/Pago_Pago", "Europe/Madrid"]
    people = []
    for n, zone in enumerate(zones * 3):
        people.append(
            await seed_learner(
                services.db,
                clock,
                f"learner-{n}",
                channel="telegram",
                timezone=zone,
                checkin_weekday=1 + n % 7,
                checkin_time=f"{8 + n:02d}:30",
            )
        )
    clock.set(start)
    for _ in range(14 * 24 * 2):  # every half hour for two weeks
        await job(JobContext(services.db, clock.now(), services.dialog.catalogs, services.settings))
        clock.advance(minutes=30)
    async with services.db.reading() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    for person in people:
        mine = [r for r in rows if r.person_id == person.id]
        # Two weeks: two appointments, three when the first tick caught one up.
        assert len(mine) in (2, 3), (person.timezone, person.checkin_weekday)
        for row in mine:
            assert row.created_at == start or row.created_at - row.next_attempt_at < timedelta(
                minutes=30
            )
    assert len({r.dedupe_key for r in rows}) == len(rows)
