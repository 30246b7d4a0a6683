"""Next steps (/next, "I'm bored"): one concrete step for the most pressing goal.

Goals and earlier check-ins are created straight in the database, so each test
starts from the situation it is about.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import select

from bot.clock import FakeClock
from bot.services import Services
from bot.store.models import CheckIn, Conversation, Goal, Person
from bot.testing.conversation import Chat
from bot.testing.people import seed_goal, seed_learner

MONDAY = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
TODAY = MONDAY.date()
FRACTIONS = "get better at fractions"
ESSAYS = "write better essays"
PLAN = "If I get distracted, then I will put my phone in another room"
HELP = "This might help:"


async def learner(services: Services, clock: FakeClock, **fields: Any) -> Person:
    clock.set(MONDAY)
    return await seed_learner(services.db, services.clock, "learner-1", **fields)


async def add_goal(
    services: Services,
    person: Person,
    wish: str,
    *,
    plan: str | None = None,
    deadline: date | None = None,
    stuck: bool = False,
    last_step: str | None = None,
) -> int:
    """A goal set a month ago; `last_step` adds a check-in last week that chose it."""
    goal_id = await seed_goal(
        services.db,
        person,
        wish,
        created_at=MONDAY - timedelta(days=30),
        plan=plan,
        deadline=deadline,
        stuck=stuck,
    )
    if last_step is not None:
        assert person.id is not None
        async with services.db.transaction() as session:
            session.add(
                CheckIn(
                    goal_id=goal_id,
                    person_id=person.id,
                    rating=2 if stuck else 3,
                    next_step=last_step,
                    created_at=MONDAY - timedelta(days=7),
                )
            )
    return goal_id


async def slots(services: Services, person: Person) -> dict[str, Any]:
    async with services.db.reading() as session:
        conversation = (
            await session.exec(select(Conversation).where(Conversation.person_id == person.id))
        ).one()
        return dict(conversation.slots)


async def test_no_goal_offers_to_set_one_or_explore(services: Services, clock: FakeClock) -> None:
    await learner(services, clock)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /next
        < You don't have an active goal yet. Want to set one, or first find out what you're into?
        = none
    """)
    assert chat.buttons == ["goal", "interests"]
    # The buttons' values are intents: each starts the flow that owns it.
    await chat.press("goal")
    assert chat.last.expect.slot == "goal.wish"


async def test_no_goal_in_spanish_and_off_to_the_interests(
    services: Services, clock: FakeClock
) -> None:
    await learner(services, clock, locale="es")
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > estoy aburrida
        < Aún no tienes ninguna meta activa. ¿Quieres poner una, o descubrir primero qué te gusta?
    """)
    assert chat.buttons == ["goal", "interests"]
    await chat.press("interests")
    assert (chat.last.expect.slot or "").startswith("interests.")


async def test_a_done_goal_is_not_a_next_step(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock)
    goal_id = await add_goal(services, person, FRACTIONS, last_step="do ten problems")
    async with services.db.transaction() as session:
        goal = await session.get(Goal, goal_id)
        assert goal is not None
        goal.status = "done"
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /next
        < You don't have an active goal yet
        <! ten problems
    """)


async def test_the_step_stored_at_the_last_check_in(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, FRACTIONS, plan=PLAN, last_step="do ten problems")
    chat = Chat(services.turns, "learner-1")
    await chat.script(f"""
        > /next
        < For “get better at fractions”, last time you picked: “do ten problems”.
        < How about doing that today?
        < {HELP}
        = none
    """)
    assert len(chat.last.replies) == 2
    assert not [name for name in await slots(services, person) if name.startswith("next.")]


async def test_im_bored_in_spanish_gives_the_stored_step(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock, locale="es")
    await add_goal(services, person, "mejorar en fracciones", last_step="hacer diez problemas")
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > me aburro
        < Para «mejorar en fracciones», la última vez elegiste: «hacer diez problemas».
        < ¿Qué tal hacerlo hoy?
        < Esto te puede ayudar: Aritmética de fracciones
    """)


async def test_a_deadline_in_two_days_gets_a_focused_step(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, FRACTIONS, last_step="do ten problems")
    await add_goal(
        services, person, ESSAYS, deadline=TODAY + timedelta(days=2), last_step="write the intro"
    )
    chat = Chat(services.turns, "learner-1")
    await chat.script(f"""
        > I'm bored
        < “write better essays” is due in 2 days (Wednesday, November 25, 2026).
        < How about giving “write the intro” 25 focused minutes today, with nothing else open?
        < {HELP}
        <! fractions
    """)
    assert len(chat.last.replies) == 3


async def test_deadline_tomorrow_or_today_without_a_step(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock)
    goal_id = await add_goal(services, person, ESSAYS, deadline=TODAY + timedelta(days=1))
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > whats next
        < “write better essays” is due tomorrow (Tuesday, November 24, 2026).
        < How about picking the one part that matters most and giving it 25 focused minutes today?
    """)
    async with services.db.transaction() as session:
        goal = await session.get(Goal, goal_id)
        assert goal is not None
        goal.deadline = TODAY
    await chat.script("""
        > /next
        < “write better essays” is due today!
    """)


async def test_a_deadline_four_days_away_is_not_yet_urgent(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock)
    await add_goal(
        services, person, ESSAYS, deadline=TODAY + timedelta(days=4), last_step="write the intro"
    )
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /next
        < last time you picked: “write the intro”
        <! due
    """)


async def test_days_left_count_in_the_learners_time_zone(
    services: Services, clock: FakeClock
) -> None:
    # Monday 15:00 in UTC is already Tuesday 04:00 in Auckland.
    person = await learner(services, clock, timezone="Pacific/Auckland")
    await add_goal(services, person, ESSAYS, deadline=date(2026, 11, 26))
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /next
        < is due in 2 days (Thursday, November 26, 2026)
    """)


async def test_spanish_deadline_counts_days(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock, locale="es")
    await add_goal(
        services,
        person,
        "escribir mejores redacciones",
        deadline=TODAY + timedelta(days=3),
        plan="Si me bloqueo, entonces voy a escribir un esquema",
    )
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /next
        < «escribir mejores redacciones» es para dentro de 3 días (jueves, 26 de noviembre de 2026).
        < ¿Qué tal dedicarle hoy 25 minutos a «escribir un esquema», sin nada más abierto?
    """)


async def test_a_passed_deadline_suggests_a_check_in(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, ESSAYS, deadline=TODAY - timedelta(days=1))
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /next
        < The date you set for “write better essays” (Sunday, November 22, 2026) has passed
        < just say "check in"
    """)


async def test_a_stuck_goal_gets_a_smaller_step(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, FRACTIONS, stuck=True, last_step="do a whole worksheet")
    await add_goal(services, person, ESSAYS, last_step="write the intro")
    chat = Chat(services.turns, "learner-1")
    await chat.script(f"""
        > /next
        < “get better at fractions” has felt hard lately, so let's go small:
        < just the first 10 minutes of “do a whole worksheet”. Small steps still count.
        < {HELP}
        <! essays
    """)


async def test_a_stuck_goal_in_spanish(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock, locale="es")
    await add_goal(
        services,
        person,
        "mejorar en fracciones",
        stuck=True,
        plan="Si me distraigo, entonces voy a apagar el móvil",
    )
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /siguiente
        < «mejorar en fracciones» te está costando últimamente, así que vamos poco a poco:
        < solo 10 minutos con «mejorar en fracciones», con tu plan a mano: «apagar el móvil».
    """)


async def test_no_check_in_yet_starts_with_the_plan(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, FRACTIONS, plan=PLAN)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /next
        < For “get better at fractions”, how about starting with your own plan:
        < your own plan: “put my phone in another room”?
    """)


async def test_no_plan_and_no_check_in_starts_small(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, FRACTIONS)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /next
        < For “get better at fractions”, a good first step: just 10 minutes on it today.
    """)


async def test_the_resource_fits_the_chosen_goal_and_is_new_each_time(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, FRACTIONS, last_step="do ten problems")
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /next
        < This might help: Fraction arithmetic
        < https://www.khanacademy.org/math/arithmetic/fraction-arithmetic
        > /next
        < This might help: Prealgebra 2e
        <! Fraction arithmetic
    """)


async def test_bored_in_the_middle_of_a_check_in_then_carry_on(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, FRACTIONS, last_step="do ten problems")
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > skip
        = rating checkin.rating
        > I'm bored
        < last time you picked: “do ten problems”
        < Carry on with your check-in, or start over?
        > yes
        < About your goal: “get better at fractions”
        = rating checkin.rating
    """)
