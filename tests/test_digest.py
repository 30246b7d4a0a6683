"""The teacher's weekly digest: what it says about a class, in English and Spanish,
and /digest, the teacher's preview, with who may (and may not) see it.

One class, 7B, with a known term: five learners whose weeks cover every line of
the digest (Friday, November 27, 2026, 16:00 UTC; ISO week 2026-W48). A second
teacher's class, 8A, has a learner whose data must never show up in 7B's digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.coach.digest import (
    ClassDigest,
    ClassRef,
    Week,
    render_digest,
    sparkline,
    split_message,
    summarise,
)
from bot.coach.digest.command import match_classes
from bot.coach.digest.facts import (
    Attention,
    HelpfulResource,
    Learner,
    OpenAlert,
    SharedReflection,
)
from bot.coach.digest.text import PART_LIMIT, TELEGRAM_LIMIT, text_length
from bot.coach.goals import vocabulary
from bot.services import Services
from bot.store.db import Database
from bot.store.models import (
    AuditEntry,
    CheckIn,
    Enrollment,
    Goal,
    InterestProfile,
    Person,
    RecommendationShown,
    SafetyAlert,
    SchoolClass,
)
from bot.testing.conversation import Chat
from bot.testing.people import seed_learner

FRIDAY = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
JOINED = FRIDAY - timedelta(days=30)
UTC_ZONE = ZoneInfo("UTC")


def day(month: int, dom: int, hour: int = 10) -> datetime:
    return datetime(2026, month, dom, hour, 0, tzinfo=UTC)


@dataclass
class School:
    teacher: Person
    other_teacher: Person
    class_7b: int
    class_science: int
    class_8a: int
    learners: dict[str, Person]
    alert_id: int


async def add_class(db: Database, teacher: Person, name: str, learners: list[Person]) -> int:
    assert teacher.id is not None
    async with db.transaction() as session:
        row = SchoolClass(teacher_id=teacher.id, name=name, created_at=JOINED)
        session.add(row)
        await session.flush()
        assert row.id is not None
        for learner in learners:
            assert learner.id is not None
            session.add(Enrollment(class_id=row.id, learner_id=learner.id, created_at=JOINED))
        return row.id


async def add(db: Database, *rows: Any) -> list[Any]:
    async with db.transaction() as session:
        for row in rows:
            session.add(row)
        await session.flush()
        return list(rows)


async def checkin(
    db: Database, goal_id: int, person: Person, at: datetime, rating: int, **fields: Any
) -> None:
    assert person.id is not None
    await add(
        db, CheckIn(goal_id=goal_id, person_id=person.id, rating=rating, created_at=at, **fields)
    )


async def goal(db: Database, person: Person, wish: str, at: datetime, **fields: Any) -> int:
    """A goal in any state (bot.testing.people.seed_goal makes active ones)."""
    assert person.id is not None
    values: dict[str, Any] = {"status": "active", "created_at": at, "updated_at": at} | fields
    (row,) = await add(db, Goal(person_id=person.id, wish=wish, **values))
    assert row.id is not None
    return int(row.id)


def liked(person: Person, name: str, at: datetime, feedback: int = 1) -> RecommendationShown:
    assert person.id is not None
    slug = name.split()[0].lower()
    return RecommendationShown(
        person_id=person.id,
        resource_id=slug,
        name=name,
        url=f"https://example.org/{slug}",
        tags=[],
        reason="goal",
        feedback=feedback,
        feedback_at=at,
        shown_at=at - timedelta(hours=1),
    )


async def seed_school(
    services: Services, clock: FakeClock, *, teacher_locale: str = "en"
) -> School:
    """7B's term, as the module docstring describes it."""
    db = services.db
    clock.set(JOINED)
    teacher = await seed_learner(
        db, clock, "teacher-1", role="teacher", name="Ms Rivera", locale=teacher_locale
    )
    other = await seed_learner(db, clock, "teacher-2", role="teacher", name="Mr Okafor")
    names = ("Maria", "Leo", "Ana", "Sam", "Noor", "Zed")
    people = {n: await seed_learner(db, clock, f"learner-{n.lower()}", name=n) for n in names}
    class_7b = await add_class(db, teacher, "7B", [people[n] for n in names[:5]])
    science = await add_class(db, teacher, "Science 9", [people["Maria"]])
    class_8a = await add_class(db, other, "8A", [people["Zed"]])
    clock.set(FRIDAY)

    long_ago = day(10, 1)
    maria = await goal(db, people["Maria"], "get better at fractions", long_ago)
    await goal(db, people["Maria"], "read a novel", day(11, 24))  # set this week
    leo = await goal(db, people["Leo"], "learn my times tables", long_ago, stuck=True)
    await goal(db, people["Leo"], "something", day(11, 24), status="dropped")  # not counted
    ana = await goal(db, people["Ana"], "write better essays", long_ago)
    await goal(db, people["Ana"], "the poster", long_ago, status="done", completed_at=day(11, 25))
    sam = await goal(db, people["Sam"], "practise Spanish", long_ago)
    zed = await goal(db, people["Zed"], "zed's goal", long_ago)

    await checkin(db, maria, people["Maria"], day(10, 26), 5)
    await checkin(db, maria, people["Maria"], day(11, 10), 4)
    await checkin(
        db,
        maria,
        people["Maria"],
        day(11, 24),
        4,
        shared=True,
        went_well="I finished two worksheets",
    )
    await checkin(db, leo, people["Leo"], day(11, 3), 3)
    await checkin(db, leo, people["Leo"], day(11, 17), 2)
    await checkin(
        db,
        leo,
        people["Leo"],
        day(11, 25),
        2,
        shared=False,
        went_well="my secret worry about maths",
    )
    await checkin(db, ana, people["Ana"], day(11, 11), 4)
    await checkin(db, ana, people["Ana"], day(11, 18), 3)
    await checkin(db, ana, people["Ana"], day(11, 26), 2)
    await checkin(db, sam, people["Sam"], day(11, 7), 3)
    await checkin(db, zed, people["Zed"], day(11, 25), 1, shared=True, went_well="zed's words")

    def profile(name: str, tags: list[str], at: datetime, areas: list[str] = []) -> Any:  # noqa: B006
        person_id = people[name].id
        assert person_id is not None
        return InterestProfile(person_id=person_id, tags=tags, top_areas=areas, created_at=at)

    await add(
        db,
        profile("Maria", ["sports"], day(10, 2)),  # replaced by her later profile
        profile("Maria", ["coding-robots", "art"], day(10, 20)),
        profile("Leo", ["coding-robots"], day(10, 20)),
        profile("Ana", ["sports"], day(10, 20)),
        profile("Noor", [], day(10, 20), ["S"]),
        profile("Zed", ["animals"], day(10, 20)),
        liked(people["Maria"], "Fractions practice", day(11, 20)),
        liked(people["Leo"], "Fractions practice", day(11, 24)),
        liked(people["Ana"], "Balloons simulation", day(11, 2)),
        liked(people["Ana"], "Old favourite", day(9, 1)),  # before the six weeks
        liked(people["Leo"], "Disliked thing", day(11, 24), feedback=-1),
        liked(people["Zed"], "Zed pick", day(11, 24)),
    )
    noor_id, maria_id, zed_id = people["Noor"].id, people["Maria"].id, people["Zed"].id
    assert noor_id
    assert maria_id
    assert zed_id
    alerts = await add(
        db,
        SafetyAlert(learner_id=noor_id, category="self_harm", opened_at=day(11, 25, 9)),
        SafetyAlert(
            learner_id=maria_id,
            category="violence",
            opened_at=day(11, 20),
            acknowledged_at=day(11, 20, 11),
        ),
        SafetyAlert(learner_id=zed_id, category="abuse", opened_at=day(11, 26)),
    )
    return School(teacher, other, class_7b, science, class_8a, people, alerts[0].id)


EXPECTED_EN = """\
📋 7B: weekly digest, week of Nov 23
Checked in this week: 3 of 5 learners (60%)
Goals this week: 1 set, 1 completed
Average rating this week: 2.7 out of 5
Six-week trend: ·█▅▆▄▄ (· = a week without ratings)

Needs attention (4):
• Ana: ratings falling (4 → 3 → 2)
• Leo: stuck on a goal
• Noor: no check-in since joining 30 days ago
• Sam: no check-in for 20 days

⚠️ 1 open safeguarding alert:
• Noor, since Wed, Nov 25: /ack {alert}

Top interests: coding (2), art (1), and sports (1)
Most helpful resources (👍 in the last six weeks):
• Fractions practice (2 👍): https://example.org/fractions
• Balloons simulation (1 👍): https://example.org/balloons

Shared with you this week:
• Maria: went well: “I finished two worksheets”"""


async def build(services: Services, school: School, locale: str) -> str:
    ref = ClassRef(school.class_7b, "7B", school.teacher.id or 0)
    week = Week.of(FRIDAY, UTC_ZONE)
    async with services.db.reading() as session:
        (digest,) = await summarise(session, [ref], week, FRIDAY)

    def render(key: str, params: Any) -> str:
        return services.dialog.catalogs.render(key, locale, params)

    return render_digest(digest, render=render, locale=locale, vocabulary=vocabulary())


# -- what the digest says ----------------------------------------------------------------


async def test_the_digest_of_a_known_class_in_english(
    any_services: Services, clock: FakeClock
) -> None:
    school = await seed_school(any_services, clock)
    text = await build(any_services, school, "en")
    assert text == EXPECTED_EN.format(alert=school.alert_id)


async def test_the_digest_in_spanish(any_services: Services, clock: FakeClock) -> None:
    school = await seed_school(any_services, clock)
    lines = (await build(any_services, school, "es")).splitlines()
    assert lines[0] == "📋 7B: resumen de la semana del 23 nov"
    assert "Han hecho su revisión esta semana: 3 de 5 alumnos (60\xa0%)" in lines
    assert "Metas esta semana: 1 nueva, 1 cumplida" in lines
    assert "Nota media esta semana: 2,7 de 5" in lines
    assert "Tendencia de seis semanas: ·█▅▆▄▄ (· = una semana sin notas)" in lines
    assert "Necesitan atención (4):" in lines
    assert "• Ana: notas a la baja (4 → 3 → 2)" in lines
    assert "• Leo: se ha atascado en una meta" in lines
    assert "• Noor: ninguna revisión desde que se unió hace 30 días" in lines
    assert "• Sam: sin revisión desde hace 20 días" in lines
    assert f"• Noor, desde el mié, 25 nov: /ack {school.alert_id}" in lines
    assert "Intereses principales: programar (2), arte (1) y deportes (1)" in lines
    assert "• Maria: le fue bien: “I finished two worksheets”" in lines


async def test_only_shared_reflections_and_only_this_class(
    any_services: Services, clock: FakeClock
) -> None:
    school = await seed_school(any_services, clock)
    text = await build(any_services, school, "en")
    assert "I finished two worksheets" in text  # Maria chose to share it
    assert "secret worry" not in text  # Leo did not
    assert "zed" not in text.lower()  # another teacher's class
    assert "Disliked" not in text
    assert "Old favourite" not in text


def test_the_sparkline_maps_one_to_five_and_shows_gaps() -> None:
    assert sparkline([1, 2, 3, 4, 5, None]) == "▁▃▅▆█·"
    assert sparkline([1.4, 2.5, 3.6, 4.6]) == "▂▄▆▇"
    assert sparkline([None] * 6) == "······"


def render_en(services: Services, digest: ClassDigest) -> str:
    def render(key: str, params: Any) -> str:
        return services.dialog.catalogs.render(key, "en", params)

    return render_digest(digest, render=render, locale="en", vocabulary=vocabulary())


def class_of_35(longest: bool) -> ClassDigest:
    """35 learners, all needing attention, every optional list full. Usually one reason
    each and ordinary text; `longest`: names at the clip length, all three reasons each,
    and resources and reflections as long as they can be (the longest digest there is)."""
    week = Week.of(FRIDAY, UTC_ZONE)
    if longest:
        names = [f"Alexandra Montgomery-Smith {n:03d}" for n in range(35)]  # 30 characters
    else:
        names = [f"Maria Fernanda {n:02d}" for n in range(35)]
    learners = [Learner(n, name) for n, name in enumerate(names)]
    digest = ClassDigest(ClassRef(1, "Year 7 mathematics, group B", 1), week, FRIDAY, learners)
    digest.checked_in = 20
    digest.weekly_average = [3.0, 3.5, None, 4.0, 2.5, 3.2]
    digest.attention = [
        Attention(learner, quiet_days=21, stuck_goals=2, falling=(5, 4, 2))
        if longest
        else Attention(learner, quiet_days=15)
        for learner in learners
    ]
    digest.alerts = [OpenAlert(1000 + n, learners[n], FRIDAY) for n in range(3)]
    tags = ("coding-robots", "art", "sports", "animals", "making-music")
    digest.interests = [(tag, 30) for tag in tags]
    text = "word " * 40 if longest else "I practised with the flashcards every evening"
    name = text if longest else "Khan Academy: Fractions on the number line"
    url = "https://example.org/" + ("r" * 60 if longest else "fractions")
    digest.resources = [HelpfulResource(name, url, 35) for _ in range(3)]
    digest.reflections = [SharedReflection(learners[n], text, text, None) for n in range(3)]
    return digest


def test_a_class_of_35_needing_attention_fits_one_message(services: Services) -> None:
    usual = render_en(services, class_of_35(longest=False))
    assert usual.count("no check-in for 15 days") == 35
    # One part: one Telegram message, one Slack section.
    assert split_message(usual, PART_LIMIT) == [usual]


def test_the_longest_digest_splits_cleanly(services: Services) -> None:
    longest = render_en(services, class_of_35(longest=True))
    assert longest.count("; stuck on 2 goals; ratings falling (5 → 4 → 2)") == 35
    parts = split_message(longest, TELEGRAM_LIMIT)
    assert len(parts) == 2
    assert all(text_length(part) <= TELEGRAM_LIMIT for part in parts)
    # The cut falls between two sections: the second part starts with a heading.
    assert parts[1].startswith("⚠️ 3 open safeguarding alerts:")
    assert "\n\n".join(parts) == longest


# -- cutting to size ----------------------------------------------------------------------


def test_split_message_cuts_at_sections_then_lines_within_telegram_limit() -> None:
    section = "\n".join(f"• learner {n}: no check-in for 15 days" for n in range(40))
    text = "\n\n".join(f"📋 Class {c}\n{section}" for c in range(5))
    parts = split_message(text, TELEGRAM_LIMIT)
    assert len(parts) > 1
    assert all(text_length(part) <= TELEGRAM_LIMIT for part in parts)
    # Sections that fit are never cut: each part starts at a class heading here.
    assert all(part.startswith("📋 Class") for part in parts)
    # Nothing lost, nothing cut mid-line.
    assert [line for p in parts for line in p.splitlines() if line] == [
        line for line in text.splitlines() if line
    ]


def test_split_message_cuts_a_long_section_between_lines() -> None:
    text = "heading\n" + "\n".join("x" * 90 for _ in range(100))  # one 9,100-char section
    parts = split_message(text, TELEGRAM_LIMIT)
    assert len(parts) == 3
    assert all(text_length(p) <= TELEGRAM_LIMIT for p in parts)
    assert all(set(line) == {"x"} and len(line) == 90 for p in parts[1:] for line in p.split("\n"))


def test_split_message_counts_emoji_as_telegram_does_and_cuts_a_long_line_at_a_space() -> None:
    text = " ".join(["🙂🙂🙂"] * 1000)  # 6,999 characters, 12,999 UTF-16 code units
    parts = split_message(text, TELEGRAM_LIMIT)
    assert all(text_length(p) <= TELEGRAM_LIMIT for p in parts)
    assert all(not p.startswith(" ") and not p.endswith(" ") for p in parts)
    assert " ".join(parts) == text
    assert split_message("short", TELEGRAM_LIMIT) == ["short"]


# -- /digest ----------------------------------------------------------------------------


async def test_a_teacher_previews_one_class_by_a_loosely_typed_name(
    services: Services, clock: FakeClock
) -> None:
    school = await seed_school(services, clock)
    chat = Chat(services.turns, "teacher-1")
    await chat.script("""
        > /digest 7b
        < 📋 7B: weekly digest
        < Checked in this week: 3 of 5 learners
        < Noor: no check-in since joining 30 days ago
        < That's this week so far. The digest itself goes out every Friday
        <! Science 9
        = none
    """)
    assert chat.texts[0] == EXPECTED_EN.format(alert=school.alert_id)
    async with services.db.reading() as session:
        audited = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "digest"))
        ).all()
    assert {a.subject_id for a in audited} == {
        school.learners[n].id for n in ("Maria", "Leo", "Ana", "Sam", "Noor")
    }
    assert {a.actor_id for a in audited} == {school.teacher.id}


async def test_without_a_name_every_class_of_the_teacher(
    services: Services, clock: FakeClock
) -> None:
    await seed_school(services, clock)
    chat = Chat(services.turns, "teacher-1")
    await chat.script("""
        > /digest
        < 📋 7B: weekly digest
        < 📋 Science 9: weekly digest
        < Checked in this week: 1 of 1 learner (100%)
        <! 8A
    """)


async def test_another_teachers_class_is_not_found_and_never_shown(
    services: Services, clock: FakeClock
) -> None:
    await seed_school(services, clock)
    chat = Chat(services.turns, "teacher-1")
    await chat.script("""
        > /digest 8A
        < I can't find a class called “8A” among yours.
        < Which class would you like to see?
        <! Zed
        = choice digest.class_id
    """)
    labels = [b.label for r in chat.last.replies for b in r.buttons]
    assert labels == ["7B", "Science 9", "All of them"]
    await chat.script("""
        > Science 9
        < 📋 Science 9: weekly digest
        <! Zed
    """)


async def test_a_spanish_teacher_gets_spanish(services: Services, clock: FakeClock) -> None:
    await seed_school(services, clock, teacher_locale="es")
    chat = Chat(services.turns, "teacher-1")
    await chat.script("""
        > /digest ciencia
        < No encuentro ninguna clase tuya que se llame «ciencia»
        > /digest science
        < 📋 Science 9: resumen de la semana del 23 nov
        < El resumen se envía cada viernes a las 15:00
    """)


@pytest.mark.parametrize("role", ["learner", "family", "admin"])
async def test_anyone_but_a_teacher_is_refused_kindly(
    services: Services, clock: FakeClock, role: str
) -> None:
    school = await seed_school(services, clock)
    person = school.learners["Maria"]
    async with services.db.transaction() as session:
        row = await session.get(Person, person.id)
        assert row is not None
        row.role = role
    chat = Chat(services.turns, "learner-maria")
    await chat.script("""
        > /digest 7B
        < The weekly digest is for teachers
        <! Needs attention
        <! Noor
    """)
    async with services.db.reading() as session:
        audited = (await session.exec(select(AuditEntry))).all()
    assert audited == []


async def test_a_teacher_without_classes_is_told_how_to_make_one(
    services: Services, clock: FakeClock
) -> None:
    clock.set(FRIDAY)
    await seed_learner(services.db, clock, "teacher-9", role="teacher", name="New")
    chat = Chat(services.turns, "teacher-9")
    await chat.script("""
        > /digest
        < You don't have any classes yet. Make one with /newclass
    """)


async def test_an_empty_class_gets_one_line(services: Services, clock: FakeClock) -> None:
    clock.set(FRIDAY)
    teacher = await seed_learner(services.db, clock, "teacher-9", role="teacher", name="New")
    await add_class(services.db, teacher, "Robotics club", [])
    chat = Chat(services.turns, "teacher-9")
    await chat.script("""
        > /digest robotics
        < 📋 Robotics club: nobody has joined this class yet
    """)


def test_class_names_match_loosely_but_never_across_numbers() -> None:
    classes = [
        ClassRef(1, "7B", 1),
        ClassRef(2, "7C", 1),
        ClassRef(3, "Science 8A", 1),
        ClassRef(4, "Maths 9", 1),
        ClassRef(5, "Maths 10", 1),
        ClassRef(6, "Year 8", 1),
    ]
    names = {ref.id: ref.name for ref in classes}

    def found(wanted: str) -> list[str]:
        return [names[ref.id] for ref in match_classes(wanted, classes)]

    assert found("7b") == ["7B"]
    assert found("sciense") == ["Science 8A"]
    assert found("8a") == ["Science 8A"]
    assert found("maths 10") == ["Maths 10"]
    assert found("maths") == ["Maths 9", "Maths 10"]  # ambiguous: the teacher picks
    assert found("year 7") == []
    assert found("art") == []
    assert found("") == []


async def test_ratings_and_reflections_outside_the_week_are_not_this_weeks(
    services: Services, clock: FakeClock
) -> None:
    """A preview mid-week counts Monday to now, in the teacher's own time zone."""
    school = await seed_school(services, clock)
    async with services.db.transaction() as session:
        teacher = await session.get(Person, school.teacher.id)
        assert teacher is not None
        teacher.timezone = "Pacific/Auckland"  # Monday 00:00 there is Sunday 11:00 UTC
    # Sunday, November 22, 12:00 UTC is already Monday in Auckland: this week there.
    sam = school.learners["Sam"]
    async with services.db.reading() as session:
        goal_id = (
            await session.exec(select(Goal.id).where(Goal.person_id == sam.id).limit(1))
        ).one()
    assert goal_id is not None
    await checkin(services.db, goal_id, sam, day(11, 22, 12), 5)
    chat = Chat(services.turns, "teacher-1")
    await chat.send("/digest 7B")
    assert "Checked in this week: 4 of 5 learners (80%)" in chat.texts[0]
    assert "Sam: no check-in" not in chat.texts[0]


async def test_the_audit_log_names_the_class_and_week(services: Services, clock: FakeClock) -> None:
    school = await seed_school(services, clock)
    await Chat(services.turns, "teacher-1").send("/digest 7B")
    async with services.db.reading() as session:
        details = set(
            (
                await session.exec(
                    select(AuditEntry.detail).where(col(AuditEntry.action) == "digest")
                )
            ).all()
        )
    assert details == {f"class {school.class_7b}, 2026-W48, preview"}
