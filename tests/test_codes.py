"""Access codes (issue 5): how they are made and stored, and redeeming each kind in chat.

Every crossing the issue names for codes: a used, expired, revoked or someone
else's code gets the same kind answer; five wrong codes in 10 minutes lock code
entry for an hour (and it opens again after it); a learner cannot use their own
family code; a family code works from the first message or the middle of a flow.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlmodel import SQLModel, col, select

from bot.clock import FakeClock
from bot.coach import access, codes
from bot.coach.codes import (
    ALPHABET,
    CODE_BITS,
    CODE_LENGTH,
    code_hash,
    display_code,
    new_code,
    parse_join_code,
)
from bot.coach.privacy import find_person
from bot.services import Services
from bot.store.models import (
    AccessCode,
    CodeAttempt,
    Enrollment,
    FamilyLink,
    Person,
    SchoolClass,
)
from bot.testing.conversation import Chat
from bot.testing.people import seed_learner
from bot.testing.school import seed_class, seed_code, seed_family, seed_teacher

MONDAY = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
NOT_RECOGNISED = "I don't recognise it"
T = TypeVar("T", bound=SQLModel)


@pytest.fixture
def services(any_services: Services) -> Services:
    """Every test here runs on every backend (PostgreSQL too when COACH_TEST_DATABASE_URL
    is set): codes, enrolments, links and audit rows are database work."""
    return any_services


@pytest.fixture(autouse=True)
def monday(clock: FakeClock) -> None:
    clock.set(MONDAY)


async def person(services: Services, user: str) -> Person:
    async with services.db.reading() as session:
        found = await find_person(session, "web", user)
        assert found is not None
        return found


async def rows(services: Services, model: type[T], *where: Any) -> list[T]:
    async with services.db.reading() as session:
        return list((await session.exec(select(model).where(*where))).all())


# -- making and storing codes -------------------------------------------------------------


def test_the_alphabet_has_no_look_alikes_and_codes_carry_over_40_bits() -> None:
    assert not set("0O1IL") & set(ALPHABET)
    assert len(set(ALPHABET)) == len(ALPHABET) == 31
    assert pytest.approx(CODE_LENGTH * math.log2(31)) == CODE_BITS
    # Redrawing codes without a digit or a letter costs less than a tenth of a bit.
    rejected = (23 / 31) ** 10 + (8 / 31) ** 10
    assert CODE_BITS + math.log2(1 - rejected) > 49


def test_new_codes_are_random_typable_and_read_back() -> None:
    made = [new_code() for _ in range(2000)]
    assert len(set(made)) == len(made)
    for code in made:
        assert len(code) == CODE_LENGTH
        assert set(code) <= set(ALPHABET)
        # Every code we make is one the chat recognises, however it is typed.
        assert parse_join_code(display_code(code)) == code
        assert parse_join_code(display_code(code).lower()) == code
    # Every symbol turns up: the draw is spread over the whole alphabet.
    assert set("".join(made)) == set(ALPHABET)


def test_the_hash_ignores_case_and_the_dash() -> None:
    code = new_code()
    assert code_hash(code) == code_hash(display_code(code).lower())
    assert re.fullmatch(r"[0-9a-f]{64}", code_hash(code))


async def test_only_the_hash_is_stored(services: Services, clock: FakeClock) -> None:
    code = await seed_code(services.db, clock, "teacher")
    [row] = await rows(services, AccessCode)
    assert row.code_hash == code_hash(code)
    stored = repr(row.model_dump())
    assert code not in stored
    assert display_code(code) not in stored
    assert row.single_use
    assert row.expires_at == MONDAY + timedelta(days=7)


# -- teacher invites ----------------------------------------------------------------------


async def test_a_teacher_invite_makes_a_teacher_who_is_greeted_with_what_they_can_do(
    services: Services, clock: FakeClock
) -> None:
    code = await seed_code(services.db, clock, "teacher")
    chat = Chat(services.turns, "lee")
    await chat.script(f"""
        > /start {display_code(code)}
        < Welcome to Coach as a teacher
        < What should learners and families call you?
        = text school.teacher_name
        > ms lee
        < Thanks, Ms Lee!
        < /newclass NAME a class and its join code
        < What would you like to do?
        = choice teacher.menu_choice
    """)
    teacher = await person(services, "lee")
    assert (teacher.role, teacher.name) == ("teacher", "Ms Lee")
    [row] = await rows(services, AccessCode)
    assert (row.used_by, row.used_at) == (teacher.id, MONDAY)


async def test_a_teacher_invite_works_once_and_for_seven_days(
    services: Services, clock: FakeClock
) -> None:
    used = await seed_code(services.db, clock, "teacher")
    await Chat(services.turns, "lee").send(used)
    stale = await seed_code(services.db, clock, "teacher")
    clock.advance(days=7, seconds=1)
    other = Chat(services.turns, "someone")
    await other.script(f"""
        > hi
        > {used}
        < {NOT_RECOGNISED}
        < What should I call you?
        > {stale}
        < {NOT_RECOGNISED}
    """)
    assert (await person(services, "someone")).role == "learner"


async def test_a_teacher_code_mid_onboarding_leaves_onboarding_behind(
    services: Services, clock: FakeClock
) -> None:
    code = await seed_code(services.db, clock, "teacher")
    chat = Chat(services.turns, "lee")
    await chat.script(f"""
        > hi
        < What should I call you?
        > Ms Lee
        < Which language would you like?
        > code {code}
        < Welcome to Coach as a teacher
        < Welcome back, Ms Lee!
        < What would you like to do?
        = choice teacher.menu_choice
        <! Which language
    """)


# -- class codes --------------------------------------------------------------------------


async def test_a_class_code_enrols_a_learner_once_and_in_several_classes(
    services: Services, clock: FakeClock
) -> None:
    teacher = await seed_teacher(services.db, clock)
    _, biology = await seed_class(services.db, clock, teacher, "Biology 7B")
    _, maths = await seed_class(services.db, clock, teacher, "Maths 8")
    await seed_learner(services.db, clock, "sam")
    chat = Chat(services.turns, "sam")
    await chat.script(f"""
        > {display_code(biology)}
        < You've joined Biology 7B with Ms Lee
        < What would you like to do?
        > {biology.lower()}
        < You're already in Biology 7B
        > /start {maths}
        < You've joined Maths 8 with Ms Lee
    """)
    sam = await person(services, "sam")
    assert len(await rows(services, Enrollment, Enrollment.learner_id == sam.id)) == 2


async def test_a_class_code_at_first_contact_then_onboarding(
    services: Services, clock: FakeClock
) -> None:
    teacher = await seed_teacher(services.db, clock)
    _, code = await seed_class(services.db, clock, teacher, "Biology 7B")
    await Chat(services.turns, "new").script(f"""
        > /start {code}
        < You've joined Biology 7B with Ms Lee
        < What should I call you?
        = text onboarding.name
    """)


async def test_a_replaced_or_archived_class_code_stops_working(
    services: Services, clock: FakeClock
) -> None:
    teacher = await seed_teacher(services.db, clock)
    class_id, old = await seed_class(services.db, clock, teacher, "Biology 7B")
    new = await seed_code(services.db, clock, "class", class_id=class_id)
    _, archived = await seed_class(services.db, clock, teacher, "Last year")
    async with services.db.transaction() as session:
        for row in (await session.exec(select(SchoolClass))).all():
            if row.name == "Last year":
                row.archived_at = clock.now()
    await seed_learner(services.db, clock, "sam")
    await Chat(services.turns, "sam").script(f"""
        > {old}
        < {NOT_RECOGNISED}
        > {archived}
        < {NOT_RECOGNISED}
        > {new}
        < You've joined Biology 7B
    """)


async def test_teachers_and_families_are_not_enrolled_by_a_class_code(
    services: Services, clock: FakeClock
) -> None:
    teacher = await seed_teacher(services.db, clock)
    learner = await seed_learner(services.db, clock, "sam")
    _, code = await seed_class(services.db, clock, teacher, "Biology 7B")
    await seed_family(services.db, clock, learner, "maria", consented_at=clock.now())
    await Chat(services.turns, "teacher-1").script(f"""
        > {code}
        < That's a class code: learners send it to join
    """)
    await Chat(services.turns, "maria").script(f"""
        > {code}
        < That's a class code: it's for learners to send
    """)
    assert await rows(services, Enrollment) == []


# -- family codes -------------------------------------------------------------------------


async def family_code_for(services: Services, clock: FakeClock, **learner: object) -> str:
    teacher = await seed_teacher(services.db, clock)
    sam = await seed_learner(services.db, clock, "sam", **learner)
    await seed_class(services.db, clock, teacher, "Biology 7B", learners=(sam,))
    return await seed_code(services.db, clock, "family", learner_id=sam.id, created_by=teacher.id)


async def test_a_family_code_links_then_asks_language_consent_and_frequency(
    services: Services, clock: FakeClock
) -> None:
    code = await family_code_for(services, clock, under_13=True)
    await Chat(services.turns, "maria").script(f"""
        > /start {code}
        < You're now linked to Sam as family
        < Which language would you like me to use?
        = choice family.locale
        > [en]
        < With your OK, I'll send you short updates
        < As Sam is under 13, nothing about them goes to anyone but their teacher
        < May I send you updates about Sam?
        = yes_no family.consent
        > yes
        < How often would you like to hear from me?
        > [milestones]
        < I'll write only when Sam reaches a goal
        = none
        > thanks!
        < I send you short updates about Sam
        < Talking about goals at home
        < /pause no updates for two weeks
    """)
    maria = await person(services, "maria")
    assert (maria.role, maria.nudge_frequency) == ("family", "milestones")
    [link] = await rows(services, FamilyLink)
    assert (link.family_id, link.consented_at) == (maria.id, MONDAY)


async def test_a_family_member_who_says_no_is_told_kindly_and_gets_nothing(
    services: Services, clock: FakeClock
) -> None:
    code = await family_code_for(services, clock)
    await Chat(services.turns, "maria").script(f"""
        > {code}
        > [es]
        < ¿Puedo enviarte novedades sobre Sam?
        > no
        < Está perfecto: no compartiré nada sobre Sam contigo
        <! ¿Cada cuánto
        = none
        > hola
        < dijiste que no a las novedades
    """)
    [link] = await rows(services, FamilyLink)
    assert link.consented_at is None
    maria = await person(services, "maria")
    assert maria.locale == "es"
    async with services.db.reading() as session:
        assert not await access.may_see(session, maria, link.learner_id)


async def test_a_family_code_mid_onboarding_starts_the_family_setup(
    services: Services, clock: FakeClock
) -> None:
    code = await family_code_for(services, clock)
    await Chat(services.turns, "maria").script(f"""
        > hi
        < What should I call you?
        > {code}
        < You're now linked to Sam
        < Which language would you like me to use?
        <! What should I call you?
    """)
    assert (await person(services, "maria")).role == "family"


async def test_a_used_stale_or_someone_elses_family_code_is_not_recognised(
    services: Services, clock: FakeClock
) -> None:
    code = await family_code_for(services, clock)
    await Chat(services.turns, "maria").send(code)  # the rightful family member
    sam = await person(services, "sam")
    stale = await seed_code(services.db, clock, "family", learner_id=sam.id)
    clock.advance(days=14, seconds=1)
    stranger = Chat(services.turns, "stranger")
    await stranger.script(f"""
        > hi
        > {code}
        < {NOT_RECOGNISED}
        > {stale}
        < {NOT_RECOGNISED}
        < What should I call you?
    """)
    assert (await person(services, "stranger")).role == "learner"
    links = await rows(services, FamilyLink)
    assert [link.family_id for link in links] == [(await person(services, "maria")).id]


async def test_a_learner_cannot_use_a_family_code(services: Services, clock: FakeClock) -> None:
    code = await family_code_for(services, clock)
    teacher = await person(services, "teacher-1")
    other = await seed_learner(services.db, clock, "leo")
    await seed_class(services.db, clock, teacher, "Maths", learners=(other,))
    await Chat(services.turns, "sam").script(f"""
        > {code}
        < it's for someone in your family to send from their own phone
    """)
    await Chat(services.turns, "leo").script(f"""
        > {code}
        < a family member sends it from their own phone
    """)
    assert await rows(services, FamilyLink) == []
    # Still unused: the rightful family member can send it.
    [row] = await rows(services, AccessCode, AccessCode.kind == "family")
    assert row.used_at is None


async def test_a_second_learner_adds_a_link_without_asking_the_language_again(
    services: Services, clock: FakeClock
) -> None:
    code = await family_code_for(services, clock)
    leo = await seed_learner(services.db, clock, "leo", name="Leo")
    second = await seed_code(services.db, clock, "family", learner_id=leo.id)
    chat = Chat(services.turns, "maria")
    await chat.script(f"""
        > {code}
        > [en]
        > yes
        > [weekly]
        > {second}
        < You're now linked to Leo too
        < May I send you updates about Leo?
        <! Which language
        > yes
        < All set!
        <! How often would you like
    """)
    assert len(await rows(services, FamilyLink, col(FamilyLink.consented_at).is_not(None))) == 2


# -- wrong codes lock code entry ------------------------------------------------------------


async def test_five_wrong_codes_lock_code_entry_for_an_hour(
    services: Services, clock: FakeClock
) -> None:
    teacher = await seed_teacher(services.db, clock)
    _, good = await seed_class(services.db, clock, teacher, "Biology 7B")
    # 15:00 UTC is 9:00 in Chicago: the lock message speaks the learner's time.
    await seed_learner(services.db, clock, "sam", timezone="America/Chicago")
    chat = Chat(services.turns, "sam")
    for _ in range(4):
        await chat.send(new_code())
        chat.expect_reply(NOT_RECOGNISED)
        chat.expect_no_reply("paused")
        clock.advance(minutes=2)
    await chat.send(new_code())  # the fifth, 8 minutes after the first
    chat.expect_reply("code entry is paused until 10:08")
    await chat.send(good)  # even a good code waits
    chat.expect_reply("Please try again after 10:08")
    chat.expect_no_reply("joined")
    assert len(await rows(services, CodeAttempt)) == 5  # tries while locked are not counted
    clock.advance(minutes=59)
    await chat.send(good)
    chat.expect_reply("try again after")
    clock.advance(minutes=1)
    await chat.send(good)
    chat.expect_reply("You've joined Biology 7B")


async def test_wrong_codes_spread_over_more_than_ten_minutes_do_not_lock(
    services: Services, clock: FakeClock
) -> None:
    await seed_learner(services.db, clock, "sam")
    chat = Chat(services.turns, "sam")
    for _ in range(8):
        await chat.send(new_code())
        chat.expect_no_reply("paused")
        clock.advance(minutes=3)


async def test_the_lock_is_per_person_and_said_in_their_language(
    services: Services, clock: FakeClock
) -> None:
    await seed_learner(services.db, clock, "ana", locale="es", timezone="Europe/Madrid")
    await seed_learner(services.db, clock, "sam")
    ana = Chat(services.turns, "ana")
    for _ in range(5):
        await ana.send(new_code())
    # 15:00 UTC is 16:00 in Madrid; locked for an hour.
    ana.expect_reply("pausé la entrada de códigos hasta las 17:00")
    sam = Chat(services.turns, "sam")
    await sam.send(new_code())
    sam.expect_no_reply("paused")


async def test_the_lock_window_helpers(services: Services, clock: FakeClock) -> None:
    sam = await seed_learner(services.db, clock, "sam")
    assert sam.id is not None
    async with services.db.transaction() as session:
        for minutes in (0, 1, 2, 3):
            await codes.record_wrong_code(session, sam.id, MONDAY + timedelta(minutes=minutes))
        assert await codes.locked_until(session, sam.id, MONDAY + timedelta(minutes=4)) is None
        await codes.record_wrong_code(session, sam.id, MONDAY + timedelta(minutes=10))
        # The fifth is exactly 10 minutes after the first: still within the window.
        until = await codes.locked_until(session, sam.id, MONDAY + timedelta(minutes=10))
        assert until == MONDAY + timedelta(minutes=70)
        assert await codes.locked_until(session, sam.id, until) is None
        # A try long after the lock clears the old ones: they can never count again.
        await codes.record_wrong_code(session, sam.id, until + timedelta(minutes=20))
        kept = (await session.exec(select(CodeAttempt.at))).all()
        assert kept == [until + timedelta(minutes=20)]
