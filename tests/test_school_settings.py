"""/settings for every role (issue 5): time zone by IANA name or city, language, a
learner's check-in, a teacher's digest, a family member's updates and consent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from bot.clock import FakeClock
from bot.coach.privacy import find_person
from bot.coach.timezones import resolve_zone
from bot.services import Services
from bot.store.models import FamilyLink, Person
from bot.testing.conversation import Chat
from bot.testing.people import seed_learner
from bot.testing.school import seed_family, seed_teacher

MONDAY = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def monday(clock: FakeClock) -> None:
    clock.set(MONDAY)


async def person(services: Services, user: str) -> Person:
    async with services.db.reading() as session:
        found = await find_person(session, "web", user)
        assert found is not None
        return found


@pytest.mark.parametrize(
    ("said", "zone"),
    [
        ("America/Chicago", "America/Chicago"),
        ("america/new york", "America/New_York"),
        ("Chicago", "America/Chicago"),
        ("chicgo", "America/Chicago"),
        ("Nueva York", "America/New_York"),
        ("Ciudad de México", "America/Mexico_City"),
        ("Londres", "Europe/London"),
        ("pacific time", "America/Los_Angeles"),
        ("Auckland", "Pacific/Auckland"),
        ("Kiritimati", "Pacific/Kiritimati"),
        ("UTC", "UTC"),
        ("Mars", None),
        ("my house", None),
        ("", None),
    ],
)
def test_time_zones_by_name_or_city(said: str, zone: str | None) -> None:
    assert resolve_zone(said) == zone


async def test_a_learner_changes_time_zone_by_city_after_a_miss(
    services: Services, clock: FakeClock
) -> None:
    await seed_learner(services.db, clock, "sam")
    await Chat(services.turns, "sam").script("""
        > /settings
        < Time zone: UTC
        < Weekly check-in: Monday at 4:00
        <! Class digest
        = choice settings.what
        > time zone
        < Which time zone are you in?
        > Atlantis
        < I don't know a time zone called "Atlantis"
        < Which time zone are you in?
        > Auckland
        < Done: your time zone is Pacific/Auckland, where it's 4:00
        = none
    """)
    assert (await person(services, "sam")).timezone == "Pacific/Auckland"


async def test_three_unknown_zones_leave_it_as_it_was(services: Services, clock: FakeClock) -> None:
    await seed_learner(services.db, clock, "sam", timezone="Europe/Madrid")
    await Chat(services.turns, "sam").script("""
        > /settings
        > [timezone]
        > nowhere
        > somewhere
        > anywhere
        < nothing's changed
        = none
    """)
    assert (await person(services, "sam")).timezone == "Europe/Madrid"


async def test_a_learner_moves_the_check_in(services: Services, clock: FakeClock) -> None:
    await seed_learner(services.db, clock, "sam")
    await Chat(services.turns, "sam").script("""
        > /settings
        > [checkin]
        < Which day suits you for the weekly check-in?
        > [3]
        < And what time?
        > 3am
        < outside the hours I send messages
        > after school
        < Done: I'll check in every Wednesday at 3:30
    """)
    sam = await person(services, "sam")
    assert (sam.checkin_weekday, sam.checkin_time) == (3, "15:30")


async def test_language_changes_the_words_at_once(services: Services, clock: FakeClock) -> None:
    await seed_learner(services.db, clock, "sam")
    await Chat(services.turns, "sam").script("""
        > /settings
        > [language]
        > [es]
        < Listo: te escribiré en español
    """)
    assert (await person(services, "sam")).locale == "es"


async def test_a_teacher_sets_the_digest_day_and_time(services: Services, clock: FakeClock) -> None:
    await seed_teacher(services.db, clock, "lee", locale="es")
    chat = Chat(services.turns, "lee")
    await chat.script("""
        > /ajustes
        < Resumen de clase: viernes a las 15:00
        <! Revisión semanal
        = choice settings.what
    """)
    assert chat.buttons == ["timezone", "language", "digest", "quiet_hours", "done"]
    await chat.script("""
        > [digest]
        > [4]
        > 14:15
        < Listo: el resumen de tu clase llegará cada jueves a las 14:15
    """)
    lee = await person(services, "lee")
    assert (lee.digest_weekday, lee.digest_time) == (4, "14:15")


async def test_a_family_member_changes_how_often_and_consent(
    services: Services, clock: FakeClock
) -> None:
    sam = await seed_learner(services.db, clock, "sam")
    await seed_family(services.db, clock, sam, "maria", consented_at=MONDAY)
    chat = Chat(services.turns, "maria")
    await chat.script("""
        > /settings
        < Updates: once a week
    """)
    assert chat.buttons == ["timezone", "language", "nudges", "sharing", "quiet_hours", "done"]
    await chat.script("""
        > [nudges]
        > only for milestones
        < Updates: only when a goal is reached
        > /settings
        > [sharing]
        < May I send you updates about Sam?
        > no
        < I won't share anything about Sam with you
    """)
    maria = await person(services, "maria")
    assert maria.nudge_frequency == "milestones"
    async with services.db.reading() as session:
        [link] = (await session.exec(select(FamilyLink))).all()
    assert link.consented_at is None
    await chat.script("""
        > /settings
        > [sharing]
        > yes
        < Updates about Sam can come to you now
    """)
    async with services.db.reading() as session:
        [link] = (await session.exec(select(FamilyLink))).all()
    assert link.consented_at == MONDAY


async def test_nothing_changes_when_nothing_is_chosen(services: Services, clock: FakeClock) -> None:
    await seed_learner(services.db, clock, "sam")
    await Chat(services.turns, "sam").script("""
        > change my settings
        > [done]
        < Okay, nothing's changed
    """)


async def test_a_family_member_sets_quiet_hours_and_a_nudge_waits_for_their_end(
    services: Services, clock: FakeClock
) -> None:
    await seed_learner(services.db, clock, "fam-1", role="family", timezone="America/Chicago")
    chat = Chat(services.turns, "fam-1")
    await chat.script("""
        > /settings
        < • Quiet hours: the school's usual evening and night hours
        > [quiet_hours]
        < From what time in the evening should I stay quiet?
        > whenever
        < And from what time in the morning may I write again?
        > 7am
        < I couldn't read two different times there
        < From what time in the evening should I stay quiet?
        > 9pm
        > 7am
        < Done: nothing from me between 9:00
        < except something urgent about safety.
    """)
    stored = await person(services, "fam-1")
    assert (stored.quiet_start, stored.quiet_end) == ("21:00", "07:00")
    # The delivery rules read the person's own window: 22:30 in Chicago moves to 07:00.
    from zoneinfo import ZoneInfo

    from bot.coach.delivery_rules import QuietHours, next_allowed, quiet_hours_of

    zone = ZoneInfo("America/Chicago")
    late = datetime(2026, 1, 6, 22, 30, tzinfo=zone)
    window = quiet_hours_of(stored, QuietHours.parse("20:00-08:00"))
    assert next_allowed(late, zone, window) == datetime(2026, 1, 7, 7, 0, tzinfo=zone)
    await chat.script("""
        > /ajustes
        < • Quiet hours: 9:00
    """)
