"""Teachers in chat (issue 5): /newclass, /classes, /roster, /familycode, their menu; who
may use each command and name whom; /links; /privacy for each role; the export.

The crossings the issue asks for: a learner or a family member sending a teacher
command, a teacher asking about another class's learner or another teacher's
class. Each test also looks at what the database holds afterwards.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from sqlmodel import SQLModel, select

from bot.clock import FakeClock
from bot.coach import school
from bot.coach.codes import code_hash, parse_join_code
from bot.coach.privacy import find_person
from bot.services import Services
from bot.store.models import AccessCode, AuditEntry, Enrollment, Person, SchoolClass
from bot.testing.conversation import Chat
from bot.testing.people import seed_learner
from bot.testing.school import seed_class, seed_family, seed_teacher

MONDAY = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
TEACHERS_ONLY = "That's a command for teachers"
T = TypeVar("T", bound=SQLModel)


@pytest.fixture
def services(any_services: Services) -> Services:
    """Every test here runs on every backend (PostgreSQL too when COACH_TEST_DATABASE_URL
    is set): codes, enrolments, links and audit rows are database work."""
    return any_services


@pytest.fixture(autouse=True)
def monday(clock: FakeClock) -> None:
    clock.set(MONDAY)


async def rows(services: Services, model: type[T], *where: Any) -> list[T]:
    async with services.db.reading() as session:
        return list((await session.exec(select(model).where(*where))).all())


async def person(services: Services, user: str) -> Person:
    async with services.db.reading() as session:
        found = await find_person(session, "web", user)
        assert found is not None
        return found


def shown_code(chat: Chat) -> str:
    """The code in the last turn's replies (as a learner would type it back)."""
    for text in chat.texts:
        for word in text.replace("\n", " ").split():
            code = parse_join_code(word)
            if code:
                return code
    raise AssertionError("no code shown\n" + "\n".join(chat.transcript))


@pytest.fixture
async def two_teachers(services: Services, clock: FakeClock) -> dict[str, Person]:
    """Ms Lee teaches Biology 7B (Sam, Ana); Mr Ortiz teaches History 8 (Leo, Sam Ortiz)."""
    sam = await seed_learner(services.db, clock, "sam", name="Sam Lee")
    ana = await seed_learner(services.db, clock, "ana", name="Ana")
    leo = await seed_learner(services.db, clock, "leo", name="Leo")
    sam_o = await seed_learner(services.db, clock, "samo", name="Sam Ortiz")
    lee = await seed_teacher(services.db, clock, "lee")
    ortiz = await seed_teacher(services.db, clock, "ortiz", name="Mr Ortiz")
    await seed_class(services.db, clock, lee, "Biology 7B", learners=(sam, ana))
    await seed_class(services.db, clock, ortiz, "History 8", learners=(leo, sam_o))
    return {"sam": sam, "ana": ana, "leo": leo, "samo": sam_o, "lee": lee, "ortiz": ortiz}


# -- /newclass and /classes ---------------------------------------------------------------


async def test_newclass_makes_a_class_and_a_code_a_learner_can_join_with(
    services: Services, clock: FakeClock
) -> None:
    await seed_teacher(services.db, clock, "lee")
    lee = Chat(services.turns, "lee")
    await lee.script("""
        > /newclass   Biology   7B
        < Biology 7B is ready! Learners join by sending me this code
        < I keep only a scrambled copy
    """)
    code = shown_code(lee)
    [made] = await rows(services, SchoolClass)
    assert made.name == "Biology 7B"
    [stored] = await rows(services, AccessCode)
    assert (stored.kind, stored.class_id, stored.code_hash) == ("class", made.id, code_hash(code))
    assert not stored.single_use
    assert stored.expires_at is None
    await seed_learner(services.db, clock, "sam")
    await Chat(services.turns, "sam").script(f"""
        > {code}
        < You've joined Biology 7B with Ms Lee
    """)


async def test_newclass_asks_the_name_and_refuses_a_duplicate(
    services: Services, clock: FakeClock
) -> None:
    lee = await seed_teacher(services.db, clock, "lee")
    await seed_class(services.db, clock, lee, "Biology 7B")
    await Chat(services.turns, "lee").script("""
        > /newclass
        < What's the class called?
        = text school.class_name
        > biology 7b
        < You already have a class called biology 7b
        < What's the class called?
        > Maths 8
        < Maths 8 is ready!
        = none
    """)
    assert sorted(c.name for c in await rows(services, SchoolClass)) == ["Biology 7B", "Maths 8"]


async def test_classes_lists_counts_and_a_new_code_replaces_the_old(
    services: Services, clock: FakeClock, two_teachers: dict[str, Person]
) -> None:
    lee = Chat(services.turns, "lee")
    await lee.script("""
        > /classes
        < Biology 7B: 2 learners
        <! History 8
        < Lost a join code?
        = choice school.class_pick
    """)
    [biology] = await rows(services, SchoolClass, SchoolClass.name == "Biology 7B")
    assert str(biology.id) in lee.buttons
    await lee.press(str(biology.id))
    lee.expect_reply("The new join code for Biology 7B is")
    new = shown_code(lee)
    live = await rows(services, AccessCode, AccessCode.class_id == biology.id)
    assert [c.code_hash for c in live if c.revoked_at is None] == [code_hash(new)]
    await seed_learner(services.db, clock, "zoe")
    await Chat(services.turns, "zoe").script(f"""
        > {new}
        < You've joined Biology 7B
    """)


async def test_classes_with_no_class_says_how_to_start_one(
    services: Services, clock: FakeClock
) -> None:
    await seed_teacher(services.db, clock, "lee")
    await Chat(services.turns, "lee").script("""
        > /classes
        < You don't have any classes yet
        = none
    """)


# -- /roster ------------------------------------------------------------------------------


async def test_roster_shows_the_names_and_writes_an_audit_row_per_learner(
    services: Services, two_teachers: dict[str, Person]
) -> None:
    await Chat(services.turns, "lee").script("""
        > /roster biolgy 7b
        < Biology 7B: 2 learners
        < • Ana
        < • Sam Lee
        <! Leo
    """)
    audit = await rows(services, AuditEntry)
    assert {(a.actor_id, a.subject_id, a.action) for a in audit} == {
        (two_teachers["lee"].id, two_teachers["sam"].id, "roster"),
        (two_teachers["lee"].id, two_teachers["ana"].id, "roster"),
    }
    assert all(a.at == MONDAY for a in audit)


async def test_a_teacher_cannot_see_another_teachers_class(
    services: Services, two_teachers: dict[str, Person]
) -> None:
    await Chat(services.turns, "lee").script("""
        > /roster History 8
        < I can't find a class called "History 8" among yours
        <! Leo
        = choice school.class_id
    """)
    assert await rows(services, AuditEntry) == []


async def test_roster_asks_which_class_when_there_are_several(
    services: Services, clock: FakeClock, two_teachers: dict[str, Person]
) -> None:
    await seed_class(services.db, clock, two_teachers["lee"], "Maths 8")
    chat = Chat(services.turns, "lee")
    await chat.script("""
        > /roster
        < Which class?
        = choice school.class_id
        > maths 8
        < Nobody has joined Maths 8 yet
    """)


# -- /familycode --------------------------------------------------------------------------


async def test_familycode_for_an_own_learner_is_single_use_for_14_days_and_audited(
    services: Services, two_teachers: dict[str, Person]
) -> None:
    lee = Chat(services.turns, "lee")
    await lee.script("""
        > /familycode ana
        < Here's a family code for Ana
        < It works once, until Monday, January 19, 2026
    """)
    code = shown_code(lee)
    [stored] = await rows(services, AccessCode, AccessCode.kind == "family")
    assert stored.code_hash == code_hash(code)
    assert stored.learner_id == two_teachers["ana"].id
    assert stored.single_use
    [audit] = await rows(services, AuditEntry)
    assert (audit.actor_id, audit.subject_id, audit.action) == (
        two_teachers["lee"].id,
        two_teachers["ana"].id,
        "family_code",
    )


async def test_a_teacher_cannot_make_a_family_code_for_another_class_learner(
    services: Services, two_teachers: dict[str, Person]
) -> None:
    await Chat(services.turns, "lee").script("""
        > /familycode Leo
        < I can't find "Leo" in your classes
        = none
    """)
    assert await rows(services, AccessCode, AccessCode.kind == "family") == []
    assert await rows(services, AuditEntry) == []


async def test_familycode_asks_for_the_name_and_which_one_when_two_match(
    services: Services, clock: FakeClock, two_teachers: dict[str, Person]
) -> None:
    other_sam = await seed_learner(services.db, clock, "sam2", name="Sam Green")
    await seed_class(services.db, clock, two_teachers["lee"], "Maths 8", learners=(other_sam,))
    chat = Chat(services.turns, "lee")
    await chat.script("""
        > /familycode
        < Which learner is the family code for?
        = text school.learner_said
        > sam
        < Which one do you mean?
        = choice school.learner_id
    """)
    # Sam Ortiz is in another teacher's class: never offered.
    assert chat.buttons == [str(two_teachers["sam"].id), str(other_sam.id)]
    await chat.press(str(other_sam.id))
    chat.expect_reply("Here's a family code for Sam Green")


# -- teacher commands refuse everyone else ------------------------------------------------


@pytest.mark.parametrize(
    "command", ["/newclass Art", "/classes", "/roster Biology 7B", "/familycode Ana"]
)
async def test_a_learner_sending_a_teacher_command_is_told_kindly(
    services: Services, two_teachers: dict[str, Person], command: str
) -> None:
    await Chat(services.turns, "sam").script(f"""
        > {command}
        < {TEACHERS_ONLY}
        <! Ana
    """)
    assert len(await rows(services, SchoolClass)) == 2
    assert await rows(services, AuditEntry) == []
    assert await rows(services, AccessCode, AccessCode.kind == "family") == []


async def test_a_family_member_sending_a_teacher_command_is_told_kindly(
    services: Services, clock: FakeClock, two_teachers: dict[str, Person]
) -> None:
    await seed_family(services.db, clock, two_teachers["sam"], "maria", consented_at=MONDAY)
    await Chat(services.turns, "maria").script("""
        > /roster Biology 7B
        < That's a command for teachers
        <! Ana
        > /familycode Sam
        < That's a command for teachers
    """)
    assert await rows(services, AuditEntry) == []


# -- homes and menus by role --------------------------------------------------------------


async def test_a_teachers_plain_message_gets_the_teacher_menu_not_onboarding(
    services: Services, clock: FakeClock
) -> None:
    await seed_teacher(services.db, clock, "lee", onboarded_at=None)
    await Chat(services.turns, "lee").script("""
        > hi
        < Welcome back, Ms Lee!
        < What would you like to do?
        = choice teacher.menu_choice
        > [classes]
        < You don't have any classes yet
        > what's the weather like
        < What would you like to do?
        = choice teacher.menu_choice
        > help
        < /roster CLASS who's in a class
        <! /goal
    """)


async def test_the_teacher_menu_in_spanish(services: Services, clock: FakeClock) -> None:
    await seed_teacher(services.db, clock, "lee", locale="es")
    await Chat(services.turns, "lee").script("""
        > menú
        < ¿Qué te gustaría hacer?
        = choice teacher.menu_choice
        > /nuevaclase Historia
        < ¡Historia está lista!
    """)


async def test_a_family_members_free_text_gets_the_family_help(
    services: Services, clock: FakeClock
) -> None:
    sam = await seed_learner(services.db, clock, "sam")
    await seed_family(services.db, clock, sam, "maria", consented_at=MONDAY)
    await Chat(services.turns, "maria").script("""
        > Thanks! She did great this week
        < I send you short updates about Sam
        < Talking about goals at home
        < /settings your language, time zone and how often you hear from me
        <! Set a goal
        = none
        > menu
        < /pause no updates for two weeks
    """)


# -- /links and /privacy ------------------------------------------------------------------


async def test_a_learner_sees_who_is_linked_to_them(
    services: Services, clock: FakeClock, two_teachers: dict[str, Person]
) -> None:
    await seed_family(services.db, clock, two_teachers["sam"], "maria", consented_at=MONDAY)
    await seed_family(services.db, clock, two_teachers["sam"], "dad", name=None)
    await Chat(services.turns, "sam").script("""
        > /links
        < Biology 7B, with Ms Lee
        < Maria (family), who gets short updates
        < A family member, who gets nothing until they say yes
        <! History
    """)
    await Chat(services.turns, "leo").script("""
        > who is linked to me
        < History 8, with Mr Ortiz
        <! Maria
    """)
    await seed_learner(services.db, clock, "alone")
    await Chat(services.turns, "alone").script("""
        > /links
        < Nobody is linked to you yet
    """)


async def test_a_family_member_sees_the_learners_they_are_linked_to(
    services: Services, clock: FakeClock, two_teachers: dict[str, Person]
) -> None:
    await seed_family(services.db, clock, two_teachers["sam"], "maria", consented_at=MONDAY)
    await Chat(services.turns, "maria").script("""
        > /links
        < You're linked to Sam Lee.
    """)


async def test_privacy_states_the_rules_for_each_role(
    services: Services, clock: FakeClock, two_teachers: dict[str, Person]
) -> None:
    kid = await seed_learner(services.db, clock, "kid", name="Kim", under_13=True)
    await seed_family(services.db, clock, kid, "maria")
    await Chat(services.turns, "lee").script("""
        > /privacy
        < learners in your own classes only
        < recorded in an audit log
        <! your goals
    """)
    await Chat(services.turns, "maria").script("""
        > /privacy
        < what you get as family of Kim
        < For a learner under 13, nothing about them goes to anyone but their teacher
        < Kim can see that you're linked
    """)
    await Chat(services.turns, "kid").script("""
        > /privacy
        < As you're under 13, nothing goes beyond your teacher
        < Maria (family), who gets nothing until they say yes
    """)
    await Chat(services.turns, "sam").script("""
        > /privacy
        < Your teacher sees your goals
        < Biology 7B, with Ms Lee
    """)


# -- the export ---------------------------------------------------------------------------


async def test_the_export_holds_classes_and_links_for_each_role(
    services: Services, clock: FakeClock, two_teachers: dict[str, Person]
) -> None:
    await seed_family(services.db, clock, two_teachers["sam"], "maria", consented_at=MONDAY)
    sam, lee, maria = [await person(services, user) for user in ("sam", "lee", "maria")]
    async with services.db.reading() as session:
        assert await school.export_classes(session, sam) == [
            {"id": 1, "name": "Biology 7B", "role": "learner", "teacher": "Ms Lee"}
        ]
        assert await school.export_links(session, sam) == [
            {"kind": "teacher", "name": "Ms Lee", "class": "Biology 7B"},
            {
                "kind": "family",
                "name": "Maria",
                "linked_at": MONDAY.isoformat(),
                "consented_at": MONDAY.isoformat(),
            },
        ]
        [taught] = await school.export_classes(session, lee)
        assert (taught["name"], taught["learners"], taught["role"]) == ("Biology 7B", 2, "teacher")
        assert await school.export_links(session, lee) == []
        assert await school.export_links(session, maria) == [
            {
                "kind": "learner",
                "name": "Sam Lee",
                "linked_at": MONDAY.isoformat(),
                "consented_at": MONDAY.isoformat(),
            }
        ]
    assert len(await rows(services, Enrollment)) == 4


# -- matching names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "found"),
    [
        ("Biology 7B", [1]),
        ("biolgy 7b", [1]),
        ("bio", [1]),
        ("7b", [1]),
        ("sam", [3, 4]),
        ("Maria", []),
        ("history", []),
        ("", []),
    ],
)
def test_best_matches(said: str, found: list[int]) -> None:
    names = [(1, "Biology 7B"), (2, "Mario"), (3, "Sam Lee"), (4, "Samuel")]
    assert school.best_matches(said, names) == found
