"""Goal setting (/goal, WOOP with SMART checks) and the goals list (/goals), turn by turn.

Every conversation runs on a fixed clock: Monday, November 23, 2026, 15:00 UTC.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.coach import goals
from bot.coach.privacy import find_person
from bot.engine.locales import Catalogs
from bot.paths import shipped
from bot.services import Services
from bot.store.models import Conversation, Goal, Person
from bot.testing.conversation import Chat
from bot.testing.people import seed_learner

MONDAY = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
EXPORT_GOAL_KEYS = {
    "id",
    "status",
    "stuck",
    "topic",
    "wish",
    "outcome",
    "obstacle",
    "plan",
    "measure",
    "deadline",
    "created_at",
    "completed_at",
}
# The prefix examples the report asks the lead to add to dialogs/intents (under `goal`).
PREFIX_EXAMPLES = {
    "en": ["i want to get better at …", "i want to improve my …", "help me with …"],
    "es": ["quiero mejorar en …", "quiero aprender …", "ayúdame con …"],
}


@pytest.fixture
async def learner(services: Services, clock: FakeClock) -> Chat:
    """An English-speaking learner past onboarding, on a Monday afternoon."""
    clock.set(MONDAY)
    await seed_learner(services.db, services.clock, "learner-1")
    return Chat(services.turns, "learner-1")


@pytest.fixture
async def aprendiz(services: Services, clock: FakeClock) -> Chat:
    """The same, in Spanish."""
    clock.set(MONDAY)
    await seed_learner(services.db, services.clock, "learner-1", locale="es")
    return Chat(services.turns, "learner-1")


async def person_of(services: Services, user: str = "learner-1") -> Person:
    async with services.db.reading() as session:
        person = await find_person(session, "web", user)
        assert person is not None
        return person


async def goals_of(services: Services, user: str = "learner-1") -> list[Goal]:
    person = await person_of(services, user)
    async with services.db.reading() as session:
        rows = await session.exec(
            select(Goal).where(Goal.person_id == person.id).order_by(col(Goal.id))
        )
        return list(rows.all())


async def slots_of(services: Services, user: str = "learner-1") -> dict[str, Any]:
    person = await person_of(services, user)
    async with services.db.reading() as session:
        conversation = (
            await session.exec(select(Conversation).where(Conversation.person_id == person.id))
        ).one()
        return dict(conversation.slots)


async def add_goal(
    services: Services,
    wish: str,
    deadline: date | None = date(2026, 12, 18),
    *,
    stuck: bool = False,
    user: str = "learner-1",
) -> int:
    """A saved active goal, straight into the database."""
    person = await person_of(services, user)
    assert person.id is not None
    async with services.db.transaction() as session:
        goal = Goal(
            person_id=person.id,
            wish=wish,
            topic=None,
            plan="ask for help",
            obstacle="I get stuck",
            deadline=deadline,
            stuck=stuck,
            created_at=services.clock.now(),
            updated_at=services.clock.now(),
        )
        session.add(goal)
        await session.flush()
        assert goal.id is not None
        return goal.id


async def to_deadline(chat: Chat, wish: str = "fractions") -> None:
    """Answer everything up to the deadline question."""
    await chat.script(f"""
        > /goal
        > {wish}
        > feel proud
        > I get distracted
        > put my phone away
        > skip
        = date goal.deadline
    """)


# -- the whole goal --------------------------------------------------------------------


async def test_a_whole_goal_with_typos_and_free_text(learner: Chat, services: Services) -> None:
    await learner.script("""
        > /goal
        < What do you want to get better at?
        = text goal.wish
        > fractoins
        < Fractions it is!
        < What would be the best thing about it?
        = text goal.outcome
        > id actually understand what the teacher is saying lol
        < What inside you might get in the way?
        < I get distracted
        = text goal.obstacle
        > when i get distracted by my phone.
        < Finish this sentence: “If I get distracted by my phone, then I will…”
        = text goal.plan
        > If I get distracted by my phone, then I'll put it in the kitchen
        < How will you know you got there?
        = text goal.measure
        > 8/10 on the next quiz
        < By when would you like to get there?
        = date goal.deadline
        > next Friday
        < Got it: Friday, December 4, 2026.
        < 🎯 Fractions
        < 💡 Plan: put it in the kitchen
        < 📅 By Friday, December 4, 2026
        = choice goal.confirmed
        > [yes]
        < Saved! 🎉
        < What would you like to do now?
        = none
    """)
    assert learner.buttons == ["next", "checkin"]
    (goal,) = await goals_of(services)
    assert goal.status == "active"
    assert goal.topic == "fractions"
    assert goal.wish == "Fractions"
    assert goal.outcome == "id actually understand what the teacher is saying lol"
    assert goal.obstacle == "I get distracted by my phone"
    assert goal.plan == "put it in the kitchen"
    assert goal.measure == "8/10 on the next quiz"
    assert goal.deadline == date(2026, 12, 4)
    assert goal.created_at == goal.updated_at == MONDAY
    assert goal.completed_at is None
    assert not [k for k in await slots_of(services) if k.startswith("goal.")]


async def test_a_whole_goal_in_spanish(aprendiz: Chat, services: Services) -> None:
    await aprendiz.script("""
        > /goal
        < ¿En qué quieres mejorar?
        > quiero dibujar mejor
        < ¡Dibujo, buena elección!
        < ¿Qué sería lo mejor de eso?
        > poder hacer mis propios cómics
        < ¿Qué podría frenarte, desde dentro?
        > me rindo cuando me sale mal
        < «Si me rindo cuando me sale mal, entonces…»
        > entonces dibujo otra vez solo los ojos
        < ¿Cómo sabrás que lo has conseguido?
        > saltar
        < ¿Para cuándo te gustaría conseguirlo?
        > el próximo viernes
        < Anotado: viernes, 4 de diciembre de 2026.
        < 🎯 Dibujar mejor
        < 💡 Plan: dibujo otra vez solo los ojos
        < 📅 Para el viernes, 4 de diciembre de 2026
        > sí
        < ¡Guardada!
        < ¿Qué te gustaría hacer ahora?
    """)
    (goal,) = await goals_of(services)
    assert (goal.topic, goal.wish) == ("drawing", "Dibujar mejor")
    assert goal.obstacle == "me rindo cuando me sale mal"
    assert goal.plan == "dibujo otra vez solo los ojos"
    assert goal.measure is None
    assert goal.deadline == date(2026, 12, 4)


# -- the wish: vague, broad, "I don't know" -------------------------------------------


async def test_a_vague_wish_is_narrowed_with_choices(learner: Chat, services: Services) -> None:
    await learner.script("""
        > /goal
        > school stuff
        < a bit more specific
        < Which of these is closest
        = choice goal.narrow
    """)
    assert learner.buttons == [
        "math-general",
        "reading",
        "writing",
        "science-general",
        "homework-habits",
        "other",
    ]
    await learner.script("""
        > purple
        < Please pick one of the buttons
        = choice goal.narrow
        > writing
        < What would be the best thing about it?
        = text goal.outcome
    """)
    slots = await slots_of(services)
    assert (slots["goal.topic"], slots["goal.wish"]) == ("writing", "Writing")


async def test_a_wish_about_grades_offers_study_habits(learner: Chat, services: Services) -> None:
    await learner.script("""
        > /goal
        > get better grades
        < a bit more specific
    """)
    assert learner.buttons[:5] == [
        "test-prep",
        "homework-habits",
        "focus",
        "time-management",
        "note-taking",
    ]
    await learner.script("""
        > [other]
        < Tell me in a few words
        = text goal.wish
        > juggling three balls
        < What would be the best thing about it?
    """)
    slots = await slots_of(services)
    assert (slots["goal.topic"], slots["goal.wish"]) == (None, "Juggling three balls")


async def test_a_broad_subject_offers_its_parts_or_in_general(
    learner: Chat, services: Services
) -> None:
    await learner.script("""
        > /goal
        > math
        < Math covers a lot of ground!
        < Which of these is closest
    """)
    assert learner.buttons == [
        "fractions",
        "algebra",
        "geometry",
        "word-problems",
        "math-general",
        "other",
    ]
    assert "Math in general" in [b.label for r in learner.last.replies for b in r.buttons]
    await learner.script("""
        > math in general
        < What would be the best thing about it?
    """)
    slots = await slots_of(services)
    assert (slots["goal.topic"], slots["goal.wish"]) == ("math-general", "Math")


async def test_a_vague_wish_in_spanish(aprendiz: Chat, services: Services) -> None:
    await aprendiz.script("""
        > /meta
        > la escuela en general
        < Vamos a concretarlo un poco
        < ¿Cuál se parece más
        > matemáticas
        < ¿Qué sería lo mejor de eso?
    """)
    slots = await slots_of(services)
    assert (slots["goal.topic"], slots["goal.wish"]) == ("math-general", "Matemáticas")


async def test_algebra_stuff_needs_no_narrowing(learner: Chat, services: Services) -> None:
    await learner.script("""
        > /goal
        > algebra stuff
        < Algebra it is!
        = text goal.outcome
    """)
    slots = await slots_of(services)
    assert (slots["goal.topic"], slots["goal.wish"]) == ("algebra", "Algebra stuff")


async def test_i_dont_know_what_to_work_on_gets_ideas(learner: Chat, services: Services) -> None:
    await learner.script("""
        > /goal
        > i dont know
        < here are a few places people often start
        = choice goal.narrow
        > [reading]
        < What would be the best thing about it?
    """)
    assert (await slots_of(services))["goal.wish"] == "Reading"


async def test_no_wish_at_all_ends_kindly(learner: Chat, services: Services) -> None:
    await learner.script("""
        > /goal
        > idk
        > [other]
        > no idea
        < A goal can wait until something comes to mind
        = none
    """)
    assert await goals_of(services) == []


# -- outcome, obstacle and plan: "I don't know", skip ----------------------------------


async def test_i_dont_know_through_outcome_obstacle_and_plan(
    learner: Chat, services: Services
) -> None:
    await learner.script("""
        > /goal
        > geometry
        > not sure
        < Some people say
        = text goal.outcome
        > dunno
        < it may come to you later
        < What inside you might get in the way?
        > idk
        < Let's plan for the one almost everyone meets: when it gets hard.
        < “If it gets hard, then I will…”
        > no idea
        < Some ideas
        = text goal.plan
        > i dont know
        < Let's start with this: take a short break and then try one small step.
        < How will you know you got there?
        > idk
        < By when would you like to get there?
        > in 3 weeks
        < 💡 Plan: take a short break and then try one small step
        > yes
    """)
    (goal,) = await goals_of(services)
    assert goal.outcome is None
    assert goal.obstacle == "it gets hard"
    assert goal.plan == "take a short break and then try one small step"
    assert goal.measure is None
    assert goal.deadline == date(2026, 12, 14)


async def test_skip_leaves_the_measure_empty(learner: Chat, services: Services) -> None:
    await learner.script("""
        > /goal
        > essays
        > better grades in English
        > I put it off
        > then I will write for just 5 minutes
        = text goal.measure
    """)
    assert learner.buttons == ["skip"]
    await learner.script("""
        > [skip]
        = date goal.deadline
        > in two weeks
        > yes
    """)
    (goal,) = await goals_of(services)
    assert goal.measure is None
    assert goal.plan == "write for just 5 minutes"
    assert goal.obstacle == "I put it off"


async def test_skip_is_no_obstacle_or_plan(learner: Chat, services: Services) -> None:
    await learner.script("""
        > /goal
        > spelling
        > skip
        = text goal.obstacle
        > nothing
        < when it gets hard
        > skip
        < Let's start with this
        = text goal.measure
    """)
    slots = await slots_of(services)
    assert slots["goal.outcome"] is None
    assert slots["goal.obstacle"] == "it gets hard"
    assert slots["goal.plan"] == "take a short break and then try one small step"


# -- the deadline ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "confirmed", "stored"),
    [
        ("next Friday", "Friday, December 4, 2026", date(2026, 12, 4)),
        ("end of the month", "Monday, November 30, 2026", date(2026, 11, 30)),
        ("in 3 weeks", "Monday, December 14, 2026", date(2026, 12, 14)),
        ("by Dec 24", "Thursday, December 24, 2026", date(2026, 12, 24)),
    ],
)
async def test_deadlines_in_english(
    learner: Chat, services: Services, said: str, confirmed: str, stored: date
) -> None:
    await to_deadline(learner)
    await learner.script(f"""
        > {said}
        < Got it: {confirmed}.
        < 📅 By {confirmed}
        = choice goal.confirmed
        > yes
    """)
    assert [g.deadline for g in await goals_of(services)] == [stored]


@pytest.mark.parametrize(
    ("said", "confirmed"),
    [
        ("el próximo viernes", "viernes, 4 de diciembre de 2026"),
        ("a fin de mes", "lunes, 30 de noviembre de 2026"),
        ("en tres semanas", "lunes, 14 de diciembre de 2026"),
    ],
)
async def test_deadlines_in_spanish(aprendiz: Chat, said: str, confirmed: str) -> None:
    await to_deadline(aprendiz, "fracciones")
    await aprendiz.script(f"""
        > {said}
        < Anotado: {confirmed}.
        < 📅 Para el {confirmed}
    """)


async def test_a_past_or_far_deadline_is_asked_again(learner: Chat) -> None:
    await to_deadline(learner)
    await learner.script("""
        > November 2, 2026
        < Monday, November 2, 2026 has already passed
        = date goal.deadline
        > 2028-01-10
        < more than 365 days away
        = date goal.deadline
        > soon-ish
        < didn't catch a date
        < Let's not get stuck on this one
        < By when would you like to get there?
        = date goal.deadline
        > yesterday
        < has already passed
        > in a month
        < Got it: Wednesday, December 23, 2026.
    """)


async def test_no_idea_of_a_deadline_gets_four_weeks(learner: Chat, services: Services) -> None:
    await to_deadline(learner)
    await learner.script("""
        > no idea
        < How about four weeks from today: Monday, December 21, 2026?
        = yes_no goal.take_suggestion
        > yes
        < Got it: Monday, December 21, 2026.
        < 📅 By Monday, December 21, 2026
        > yes
    """)
    assert [g.deadline for g in await goals_of(services)] == [date(2026, 12, 21)]


async def test_a_declined_suggestion_asks_again(aprendiz: Chat, services: Services) -> None:
    await to_deadline(aprendiz, "fracciones")
    await aprendiz.script("""
        > ni idea
        < ¿Qué te parece dentro de cuatro semanas, el lunes, 21 de diciembre de 2026?
        > no
        < ¿Qué fecha te va mejor?
        = date goal.deadline
        > el 18 de diciembre
        < Anotado: viernes, 18 de diciembre de 2026.
        > sí
    """)
    assert [g.deadline for g in await goals_of(services)] == [date(2026, 12, 18)]


# -- the summary -----------------------------------------------------------------------


async def test_change_something_at_the_summary(learner: Chat, services: Services) -> None:
    await to_deadline(learner)
    await learner.script("""
        > in 2 weeks
        < 💡 Plan: put my phone away
        > [change]
        < Which part would you like to change?
        = choice goal.change_part
        > plan
        < “If I get distracted, then I will…”
        = text goal.plan
        > I will leave my phone in my bag
        < 💡 Plan: leave my phone in my bag
        = choice goal.confirmed
        > change something
        > [wish]
        < What do you want to get better at?
        > decimals
        < Decimals it is!
        < 🎯 Decimals
        < 📅 By Monday, December 7, 2026
        = choice goal.confirmed
        > Yes
        < Saved!
    """)
    (goal,) = await goals_of(services)
    assert (goal.wish, goal.topic) == ("Decimals", "decimals-percentages")
    assert goal.plan == "leave my phone in my bag"
    assert goal.obstacle == "I get distracted"
    assert goal.outcome == "feel proud"


async def test_the_summary_fits_one_message_at_the_longest(
    learner: Chat, services: Services
) -> None:
    catalogs = Catalogs.load(shipped("dialogs") / "locales")
    slots = {
        "goal.wish": "w" * 80,
        "goal.plan": "p" * 100,
        "goal.deadline": "2026-09-30",  # the longest date in words: "miércoles, 30 de ..."
    }
    for code in ("en", "es"):
        assert len(catalogs.render("goal.ask_confirm", code, slots)) <= 320


# -- interruptions ---------------------------------------------------------------------


async def test_help_in_the_middle_of_a_goal_then_carry_on(
    learner: Chat, services: Services
) -> None:
    await learner.script("""
        > /goal
        > fractions
        > feel smart
        = text goal.obstacle
        > help
        < Carry on with setting a goal, or start over?
        = yes_no
        > carry on
        < What inside you might get in the way?
        = text goal.obstacle
        > I get bored
        < “If I get bored, then I will…”
    """)
    assert (await slots_of(services))["goal.outcome"] == "feel smart"


async def test_espanol_in_the_middle_of_a_goal(learner: Chat, services: Services) -> None:
    await learner.script("""
        > /goal
        > fractions
        = text goal.outcome
        > español
        < seguimos en español
        < ¿Qué sería lo mejor de eso?
        = text goal.outcome
        > entender las clases
        < ¿Qué podría frenarte, desde dentro?
        > me aburro
        < «Si me aburro, entonces…»
        = text goal.plan
    """)
    assert (await person_of(services)).locale == "es"
    assert (await slots_of(services))["goal.outcome"] == "entender las clases"


async def test_go_back_re_asks_the_previous_part(learner: Chat, services: Services) -> None:
    await learner.script("""
        > /goal
        > fractions
        > feel smart
        = text goal.obstacle
        > go back
        < What would be the best thing about it?
        = text goal.outcome
        > help my little brother
        < What inside you might get in the way?
    """)
    assert (await slots_of(services))["goal.outcome"] == "help my little brother"


async def test_a_half_done_goal_survives_a_restart(open_services: Any, clock: FakeClock) -> None:
    clock.set(MONDAY)
    first: Services = await open_services("sqlite")
    await seed_learner(first.db, first.clock, "learner-7")
    chat = Chat(first.turns, "learner-7")
    await chat.script("""
        > /goal
        > algebra
        > pass my test
        = text goal.obstacle
    """)
    await first.close()
    second: Services = await open_services("sqlite")
    chat = Chat(second.turns, "learner-7")
    await chat.script("""
        > I give up too fast
        < “If I give up too fast, then I will…”
        > try one more problem
        > skip
        > next friday
        < 🎯 Algebra
        > yes
        < Saved!
    """)
    (goal,) = await goals_of(second, "learner-7")
    assert (goal.topic, goal.outcome, goal.plan) == (
        "algebra",
        "pass my test",
        "try one more problem",
    )


# -- at most three goals ---------------------------------------------------------------


async def test_a_fourth_goal_asks_which_to_finish_or_drop(
    learner: Chat, services: Services
) -> None:
    ids = [await add_goal(services, wish) for wish in ("Fractions", "Essays", "Guitar")]
    await learner.script("""
        > /goal
        < You already have three goals on the go
        = choice goal.to_close
    """)
    assert learner.buttons == [str(i) for i in ids] + ["keep"]
    await learner.script("""
        > essays
        < Did you reach it, or would you rather drop it for now?
        > [done]
        < Well done on “Essays”!
        < What do you want to get better at?
        = text goal.wish
        > coding
        > make a game
        > I get stuck on bugs
        > ask in the coding club
        > skip
        > in 4 weeks
        > yes
        < Saved!
    """)
    saved = await goals_of(services)
    assert [(g.wish, g.status) for g in saved] == [
        ("Fractions", "active"),
        ("Essays", "done"),
        ("Guitar", "active"),
        ("Coding", "active"),
    ]
    assert saved[1].completed_at == MONDAY


async def test_a_fourth_goal_can_drop_one_or_keep_them_all(
    learner: Chat, services: Services
) -> None:
    for wish in ("Fractions", "Essays", "Guitar"):
        await add_goal(services, wish)
    await learner.script("""
        > /goal
        > [keep]
        < three goals is a lot to juggle already
        = none
    """)
    assert len(await goals_of(services)) == 3
    await learner.script("""
        > /goal
        > guitar
        > drop it
        < “Guitar” is dropped
        < What do you want to get better at?
    """)
    statuses = [(g.wish, g.status, g.completed_at) for g in await goals_of(services)]
    assert statuses[2] == ("Guitar", "dropped", None)


async def test_a_fourth_goal_in_spanish(aprendiz: Chat, services: Services) -> None:
    for wish in ("Fracciones", "Ensayos", "Guitarra"):
        await add_goal(services, wish)
    await aprendiz.script("""
        > /meta
        < Ya tienes tres metas en marcha
        > ensayos
        < ¿La conseguiste o prefieres dejarla por ahora?
        > dejarla
        < Vale, dejamos «Ensayos».
        < ¿En qué quieres mejorar?
        = text goal.wish
        > empezar de nuevo
    """)
    assert [g.status for g in await goals_of(services)] == ["active", "dropped", "active"]
    await add_goal(services, "Química")
    await aprendiz.script("""
        > /meta
        < Para hacer sitio
        > quedarme con las tres
        < tres metas ya son bastantes
        = none
    """)
    assert len(await goals_of(services)) == 4


# -- /goals ----------------------------------------------------------------------------


async def test_goals_with_none_offers_to_set_one(learner: Chat) -> None:
    await learner.script("""
        > /goals
        < You don't have a goal yet. Want to set one now?
        = yes_no goals.want_new
        > sure
        < What do you want to get better at?
        = text goal.wish
    """)


async def test_goals_lists_each_with_its_date_and_stuck_marker(
    learner: Chat, services: Services
) -> None:
    await add_goal(services, "Fractions", date(2026, 12, 4))
    await add_goal(services, "Essays", date(2027, 1, 15), stuck=True)
    await learner.script("""
        > my goals
        < Your 2 goals:
        < • Fractions, by Friday, December 4, 2026
        < • Essays, by Friday, January 15, 2027 (stuck for now)
        < Which one would you like to look at?
        = choice goals.pick
    """)
    assert learner.last.replies[0].text.count("stuck") == 1


async def test_three_long_goals_fit_one_message(learner: Chat, services: Services) -> None:
    for letter in "abc":
        await add_goal(services, letter * 80, date(2026, 9, 30), stuck=True)
    await learner.script("""
        > /goals
        < Your 3 goals:
        = choice goals.pick
    """)
    listing = learner.last.replies[0].text
    assert listing.count("…") == 3
    assert len(listing) <= 320
    assert all(len(b.label) <= goals.BUTTON_WISH_CHARS for b in learner.last.replies[-1].buttons)


async def test_goals_in_spanish(aprendiz: Chat, services: Services) -> None:
    await add_goal(services, "Fracciones", date(2026, 12, 4), stuck=True)
    await add_goal(services, "Guitarra", None)
    await aprendiz.script("""
        > /metas
        < Tus 2 metas:
        < • Fracciones, para el viernes, 4 de diciembre de 2026 (atascada por ahora)
        < • Guitarra
        < ¿Cuál quieres ver?
        > guitarra
        < ¿Qué quieres hacer con «Guitarra»?
        > ya la conseguí
        < ¡Lo conseguiste: «Guitarra»! 🎉
        > mis metas
        > fracciones
        > dejarla
        < ¿Dejamos «Fracciones»?
        > sí
        < Vale, dejamos «Fracciones».
        > /metas
        < Todavía no tienes ninguna meta
        > no
        < Di «meta» cuando quieras
    """)
    assert [g.status for g in await goals_of(services)] == ["dropped", "done"]


async def test_goals_edit_a_part(learner: Chat, services: Services) -> None:
    goal_id = await add_goal(services, "Fractions")
    await learner.script("""
        > /goals
        < Your goal:
        < What would you like to do with “Fractions”?
        = choice goals.action
        > [edit]
        < Which part would you like to change?
        > [plan]
        < “If I get stuck, then I will…”
        = text goal.plan
        > then I will ask my teacher after class
        < I've updated “Fractions”
        = none
    """)
    (goal,) = await goals_of(services)
    assert (goal.id, goal.plan, goal.updated_at) == (goal_id, "ask my teacher after class", MONDAY)
    await learner.script("""
        > /goals
        > [edit]
        > deadline
        = date goal.deadline
        > next friday
        < Got it: Friday, December 4, 2026.
        < I've updated “Fractions”
    """)
    assert (await goals_of(services))[0].deadline == date(2026, 12, 4)


async def test_goals_edit_the_wish_in_spanish(aprendiz: Chat, services: Services) -> None:
    await add_goal(services, "Fracciones")
    await aprendiz.script("""
        > mis metas
        < Tu meta:
        < ¿Qué quieres hacer con «Fracciones»?
        > cambiar una parte
        > lo que quiero
        < ¿En qué quieres mejorar?
        > ecuaciones
        < ¡Álgebra, buena elección!
        < He actualizado «Ecuaciones»
    """)
    (goal,) = await goals_of(services)
    assert (goal.wish, goal.topic) == ("Ecuaciones", "algebra")


async def test_goals_mark_done(learner: Chat, services: Services) -> None:
    await add_goal(services, "Fractions")
    second = await add_goal(services, "Essays")
    await learner.script(
        """
        > /goals
        > [{second}]
        < What would you like to do with “Essays”?
        > [done]
        < You did it: “Essays”! 🎉
        < Ready for the next one?
        = none
    """.replace("{second}", str(second))
    )
    assert learner.buttons == ["goal"]
    done = (await goals_of(services))[1]
    assert (done.status, done.completed_at) == ("done", MONDAY)


async def test_goals_drop_asks_first(learner: Chat, services: Services) -> None:
    await add_goal(services, "Guitar")
    await learner.script("""
        > /goals
        > drop it
        < Drop “Guitar”?
        = yes_no goals.drop_ok
        > no
        < it stays on your list
    """)
    assert (await goals_of(services))[0].status == "active"
    await learner.script("""
        > /goals
        > [drop]
        > yes
        < “Guitar” is dropped
    """)
    (goal,) = await goals_of(services)
    assert (goal.status, goal.completed_at) == ("dropped", None)


async def test_goals_check_in_hands_over_with_the_goal_chosen(
    learner: Chat, services: Services
) -> None:
    await add_goal(services, "Fractions")
    second = await add_goal(services, "Essays")
    await learner.script(f"""
        > /goals
        > [{second}]
        > [checkin]
        > skip
        < Essays
        <! Fractions
    """)
    export = await services.turns.export("web", "learner-1")
    assert export is not None
    assert export["conversation"]["flow"] in ("checkin", "checkin_goal")


# -- the export ------------------------------------------------------------------------


async def test_the_export_shows_each_goal(learner: Chat, services: Services) -> None:
    await to_deadline(learner)
    await learner.script("""
        > next friday
        > yes
    """)
    export = await services.turns.export("web", "learner-1")
    assert export is not None
    (entry,) = export["goals"]
    assert set(entry) == EXPORT_GOAL_KEYS
    assert entry["deadline"] == "2026-12-04"
    assert entry["status"] == "active"
    assert entry["topic"] == "fractions"
    assert entry["wish"] == "Fractions"
    assert entry["created_at"] == MONDAY.isoformat()
    assert entry["completed_at"] is None
    assert entry["stuck"] is False


# -- starting with the wish: "I want to get better at fractions" -----------------------


@pytest.fixture
async def prefixed(open_services: Any, tmp_path: Path, clock: FakeClock) -> Services:
    """Services whose intents also hold the prefix examples the report asks for."""
    clock.set(MONDAY)
    dialogs = tmp_path / "dialogs"
    shutil.copytree(shipped("dialogs"), dialogs)
    for code, examples in PREFIX_EXAMPLES.items():
        path = dialogs / "intents" / f"{code}.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["goal"] = [*data["goal"], *examples]
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    services: Services = await open_services("sqlite", dialogs_dir=dialogs)
    await seed_learner(services.db, services.clock, "learner-1")
    return services


async def test_starting_with_the_wish_skips_the_question(prefixed: Services) -> None:
    chat = Chat(prefixed.turns, "learner-1")
    await chat.script("""
        > I wnat to get better at fractions
        < Fractions it is!
        < What would be the best thing about it?
        <! What do you want to get better at?
        = text goal.outcome
    """)
    assert (await slots_of(prefixed))["goal.topic"] == "fractions"


async def test_starting_with_a_vague_wish_narrows_it(prefixed: Services) -> None:
    chat = Chat(prefixed.turns, "learner-1")
    await chat.script("""
        > help me with school
        < a bit more specific
        = choice goal.narrow
    """)


async def test_starting_with_the_wish_in_spanish(prefixed: Services) -> None:
    chat = Chat(prefixed.turns, "learner-1")
    await chat.script("""
        > español
        > quiero mejorar en matemáticas
        < Matemáticas: ¡hay mucho donde elegir!
        = choice goal.narrow
        > fracciones
        < ¿Qué sería lo mejor de eso?
    """)
    assert (await slots_of(prefixed))["goal.wish"] == "Fracciones"


async def test_a_wish_waits_while_room_is_made(prefixed: Services) -> None:
    for wish in ("Fractions", "Essays", "Guitar"):
        await add_goal(prefixed, wish)
    chat = Chat(prefixed.turns, "learner-1")
    await chat.script("""
        > i want to get better at algebra
        < You already have three goals
        > fractions
        > [done]
        < Well done on “Fractions”!
        < Algebra it is!
        < What would be the best thing about it?
    """)


async def test_a_plain_goal_request_still_asks_the_wish(prefixed: Services) -> None:
    chat = Chat(prefixed.turns, "learner-1")
    await chat.script("""
        > i want to set a goal
        < What do you want to get better at?
        = text goal.wish
    """)


# -- reading learner words -------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "wish"),
    [
        ("I want to get better at fractions", "fractions"),
        ("i wnat to get better at Long Division!", "Long Division"),
        ("help me with my essays", "my essays"),
        ("quiero mejorar en álgebra", "álgebra"),
        ("Ayúdame con la ortografía", "la ortografía"),
        ("set a goal", None),
        ("fractions", None),
        ("I want to get better at", ""),
    ],
)
def test_strip_lead(said: str, wish: str | None) -> None:
    assert goals.strip_lead(said) == wish


@pytest.mark.parametrize(
    ("said", "plan"),
    [
        ("put my phone away", "put my phone away"),
        ("Then I will put my phone away.", "put my phone away"),
        ("then i'll take a break", "take a break"),
        ("If I get distracted, then I'm going to close the tab", "close the tab"),
        ("if i get bored then i will stretch", "stretch"),
        ("I ask my sister for help", "ask my sister for help"),
        ("entonces apago el móvil", "apago el móvil"),
        ("Si me distraigo, entonces voy a respirar", "voy a respirar"),
    ],
)
def test_tidy_plan(said: str, plan: str) -> None:
    assert goals.tidy_plan(said) == plan


@pytest.mark.parametrize(
    ("said", "obstacle"),
    [
        ("I get distracted", "I get distracted"),
        ("when i get tired.", "I get tired"),
        ("Getting distracted by my phone", "getting distracted by my phone"),
        ("Si me distraigo", "me distraigo"),
        ("TikTok", "TikTok"),
    ],
)
def test_tidy_obstacle(said: str, obstacle: str) -> None:
    assert goals.tidy_obstacle(said) == obstacle


@pytest.mark.parametrize(
    ("wish", "vague"),
    [
        ("school", True),
        ("stuff", True),
        ("everything", True),
        ("get better grades", True),
        ("sacar mejores notas", True),
        ("juggling", False),
        ("algebra stuff", False),
    ],
)
def test_is_vague(wish: str, vague: bool) -> None:
    assert goals.is_vague(wish) is vague
