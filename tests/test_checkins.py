"""The reflection check-in (/checkin), turn by turn, in English and Spanish.

Goals are created straight in the database (the goal flow is tested on its own),
then the learner checks in through the real turn service; each test also looks
at what the database holds afterwards.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import col, select

from bot.clock import FakeClock
from bot.coach.checkins import plan_action, weekly_streak
from bot.services import Services
from bot.store.models import CheckIn, Conversation, Goal, Person, RecommendationShown
from bot.testing.conversation import Chat
from bot.testing.people import seed_goal, seed_learner

MONDAY = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
FRACTIONS = "get better at fractions"
ESSAYS = "write better essays"
DISTRACTED_PLAN = "If I get distracted, then I will put my phone in another room"


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
    minutes_ago: int = 0,
) -> int:
    created = services.clock.now() - timedelta(days=30, minutes=minutes_ago)
    return await seed_goal(
        services.db, person, wish, created_at=created, plan=plan, deadline=deadline, stuck=stuck
    )


async def rows(services: Services) -> list[CheckIn]:
    async with services.db.reading() as session:
        result = await session.exec(select(CheckIn).order_by(col(CheckIn.id)))
        return list(result.all())


async def goal(services: Services, goal_id: int) -> Goal:
    async with services.db.reading() as session:
        found = await session.get(Goal, goal_id)
        assert found is not None
        return found


async def slots(services: Services, person: Person) -> dict[str, Any]:
    async with services.db.reading() as session:
        conversation = (
            await session.exec(select(Conversation).where(Conversation.person_id == person.id))
        ).one()
        return dict(conversation.slots)


def never_joined(chat: Chat) -> None:
    """No turn needed more than three messages (the engine joins extras with a blank line)."""
    assert not [line for line in chat.transcript if "\n\n" in line]


async def quick_checkin(chat: Chat, rating: str = "[4]") -> None:
    """One goal, a rating and nothing else: the shortest check-in there is."""
    await chat.script(f"""
        > /checkin
        > skip
        = rating checkin.rating
        > {rating}
        > skip
        > skip
        > skip
        = none
    """)


# -- the whole check-in ----------------------------------------------------------------


async def test_two_goals_rated_by_button_words_and_emoji(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock)
    fractions = await add_goal(services, person, FRACTIONS, minutes_ago=2)
    essays = await add_goal(services, person, ESSAYS, minutes_ago=1)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        < Let's check in on your 2 goals, one at a time
        < how are you feeling today
        = rating checkin.mood
        > 🙂
        < About your goal: “get better at fractions”
        = rating checkin.rating
        > [3]
        < What went well
        = text checkin.went_well
        > I finished two worksheets
        < What got in the way
        = text checkin.obstacle
        > skip
        < What's one next step
        = text checkin.next_step
        > do ten problems on Tuesday
        < that's saved
        < About your goal: “write better essays”
        = rating checkin.rating
        > pretty good
        < What went well
        > I planned my essay first
        > my phone
        > write the intro on Thursday
        < that's saved
        < share what you wrote today with your teacher and family
        = yes_no checkin.share
        > no thanks
        < stays private
        < See you next week
        <! in a row
        = none
    """)
    never_joined(chat)
    saved = await rows(services)
    assert [(r.goal_id, r.rating, r.mood, r.shared) for r in saved] == [
        (fractions, 3, 4, False),
        (essays, 4, 4, False),
    ]
    assert (saved[0].went_well, saved[0].obstacle, saved[0].next_step) == (
        "I finished two worksheets",
        None,
        "do ten problems on Tuesday",
    )
    assert (saved[1].went_well, saved[1].obstacle, saved[1].next_step) == (
        "I planned my essay first",
        "my phone",
        "write the intro on Thursday",
    )
    assert saved[0].created_at == MONDAY
    # Nothing of the session lingers for the next check-in.
    assert not [name for name in await slots(services, person) if name.startswith("checkin.")]

    export = await services.turns.export("web", "learner-1")
    assert export is not None
    assert export["checkins"][1] == {
        "goal_id": essays,
        "rating": 4,
        "went_well": "I planned my essay first",
        "obstacle": "my phone",
        "next_step": "write the intro on Thursday",
        "mood": 4,
        "shared": False,
        "at": MONDAY.isoformat(),
    }


async def test_spanish_check_in_with_words_emoji_and_sharing(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock, locale="es")
    await add_goal(services, person, "mejorar en fracciones", minutes_ago=2)
    await add_goal(services, person, "escribir mejores redacciones", minutes_ago=1)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        < Vamos a revisar tus 2 metas, una por una
        < cómo te sientes hoy
        > 😀
        < Sobre tu meta: «mejorar en fracciones»
        = rating checkin.rating
        > bastante bien
        < Qué salió bien
        > terminé dos fichas
        < Qué te lo puso difícil
        > saltar
        < próximo paso
        > hacer diez problemas el martes
        < queda guardado
        < Sobre tu meta: «escribir mejores redacciones»
        > [2]
        < Qué salió bien
        > hice un esquema
        > el móvil
        > escribir la introducción el jueves
        < Gracias por tu sinceridad
        < compartir lo que escribiste hoy con tu profe y tu familia
        = yes_no checkin.share
        > sí
        < tu profe y tu familia pueden leer tus reflexiones de hoy
        < Hasta la semana que viene
        = none
    """)
    saved = await rows(services)
    assert [(r.rating, r.mood, r.shared) for r in saved] == [(4, 5, True), (2, 5, True)]
    assert saved[0].obstacle is None
    assert saved[1].obstacle == "el móvil"


async def test_under_13_shares_with_the_teacher_only(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock, under_13=True)
    await add_goal(services, person, FRACTIONS)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > skip
        > 4
        > I practised
        > skip
        > skip
        < share what you wrote today with your teacher?
        <! family
        > yes
        < your teacher can read
        <! family
    """)
    assert [r.shared for r in await rows(services)] == [True]


async def test_ratings_alone_need_no_sharing_question(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, FRACTIONS)
    chat = Chat(services.turns, "learner-1")
    await quick_checkin(chat)
    chat.expect_reply("Thanks, that's saved")
    chat.expect_reply("Thanks for checking in")
    chat.expect_no_reply("share")
    assert [(r.rating, r.went_well, r.shared) for r in await rows(services)] == [(4, None, False)]


# -- I don't know, skip, go back, off-topic ---------------------------------------------


async def test_dont_know_and_skip_along_the_way(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock)
    fractions = await add_goal(services, person, FRACTIONS, plan=DISTRACTED_PLAN, minutes_ago=2)
    await add_goal(services, person, ESSAYS, minutes_ago=1)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > skip
        < About your goal: “get better at fractions”
        > I don't know
        < No stress
        < A 3 means somewhere in the middle
        < About your goal: “get better at fractions”
        = rating checkin.rating
        > 2
        = text checkin.went_well
        > idk
        < What got in the way
        > I kept getting distracted
        = text checkin.next_step
        > I don't know
        < Since “I kept getting distracted” got in the way, how about trying your plan:
        < your plan: “put my phone in another room”? Want that as your next step?
        = yes_no checkin.take_suggestion
        > yes
        < Thanks for being honest
        < About your goal: “write better essays”
        > skip
        < we'll leave that one for today
        < share what you wrote today
        > skip
        < stays private
        = none
    """)
    never_joined(chat)
    saved = await rows(services)
    assert len(saved) == 1  # the skipped goal has no check-in
    assert (saved[0].goal_id, saved[0].rating, saved[0].mood) == (fractions, 2, None)
    assert (saved[0].went_well, saved[0].obstacle, saved[0].next_step) == (
        None,
        "I kept getting distracted",
        "put my phone in another room",
    )
    assert saved[0].shared is False


async def test_dont_know_without_a_plan_suggests_ten_minutes(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, "learn to code")
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > skip
        > 4
        > skip
        > skip
        > no idea
        < How about this: 10 minutes on “learn to code” before our next check-in. Want that
        > nope
        < What would you like to try instead?
        = text checkin.next_step
        > make a tiny game
        < that's saved
    """)
    assert [r.next_step for r in await rows(services)] == ["make a tiny game"]


async def test_a_suggestion_taken_or_left_open(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, "learn to code", plan="then I'll watch one tutorial.")
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > skip
        > 4
        > skip
        > skip
        > not sure
        < Here's one from your own plan: “watch one tutorial”
        > not sure
        < We can pick one next time
        < that's saved
    """)
    await chat.script("""
        > /checkin
        > skip
        > 4
        > skip
        > skip
        > dunno
        > yes please
        < that's saved
    """)
    assert [r.next_step for r in await rows(services)] == [None, "watch one tutorial"]


async def test_spanish_dont_know_gets_a_suggestion(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock, locale="es")
    await add_goal(
        services,
        person,
        "mejorar en fracciones",
        plan="Si me distraigo, entonces voy a apagar el móvil",
    )
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        < Vamos a revisar tu meta
        > saltar
        > no sé
        < Sin presión
        > 3
        > saltar
        > saltar
        > ni idea
        < Aquí va uno de tu propio plan: «apagar el móvil»
        > vale
        < queda guardado
    """)
    assert [r.next_step for r in await rows(services)] == ["apagar el móvil"]


async def test_going_back_after_saving_updates_the_same_check_in(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock)
    fractions = await add_goal(services, person, FRACTIONS)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > skip
        > 5
        > I aced the quiz
        > go back
        < What went well
        = text checkin.went_well
        > I aced the quiz!
        > skip
        > more practice
        < Have you reached this goal?
        > go back
        < What's one next step
        > practice every day
        < Have you reached this goal?
        = yes_no checkin.goal_done
        > no
        < Keep going
    """)
    saved = await rows(services)
    assert [(r.went_well, r.next_step) for r in saved] == [
        ("I aced the quiz!", "practice every day")
    ]
    assert (await goal(services, fractions)).status == "active"


async def test_back_at_the_first_question_of_a_goal_stays_there(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, FRACTIONS)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > skip
        > go back
        < first question
        < About your goal
        = rating checkin.rating
    """)


async def test_an_off_topic_rating_is_re_asked_then_offers_a_way_out(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, FRACTIONS)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > skip
        > banana
        < Pick a number from 1 to 5
        = rating checkin.rating
        > purple
        < Pick a number from 1 to 5
        > seven
        < Let's not get stuck
        < You can skip it
    """)
    assert chat.buttons == ["skip", "menu", "help"]
    await chat.script("""
        > [skip]
        < we'll leave that one for today
        < Nothing saved this time
        = none
    """)
    assert await rows(services) == []


# -- a 5, stuck, unstuck ----------------------------------------------------------------


async def test_a_five_that_completes_the_goal_is_celebrated(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock)
    fractions = await add_goal(services, person, FRACTIONS, stuck=True)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > skip
        > ⭐⭐⭐⭐⭐
        > I can do all the worksheets now
        > skip
        > skip
        < A 5, brilliant! Have you reached this goal?
        = yes_no checkin.goal_done
        > yes!
        < 🎉 You did it! “get better at fractions” is done
        < share what you wrote today
    """)
    done = await goal(services, fractions)
    assert (done.status, done.completed_at, done.stuck) == ("done", MONDAY, False)
    await chat.script("""
        > no
        > /checkin
        < You don't have a goal to check in on yet
    """)


async def test_a_five_that_is_not_done_yet_keeps_going(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock, locale="es")
    fractions = await add_goal(services, person, "mejorar en fracciones")
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > saltar
        > genial
        > saltar
        > saltar
        > saltar
        < ¡Un 5, genial! ¿Ya has cumplido esta meta?
        > todavía no
        < Sigue así
        < Gracias por hacer la revisión
    """)
    assert (await goal(services, fractions)).status == "active"


async def test_spanish_five_completes_the_goal(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock, locale="es")
    fractions = await add_goal(services, person, "mejorar en fracciones")
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > saltar
        > [5]
        > saltar
        > saltar
        > saltar
        > sí
        < 🎉 ¡Lo lograste! «mejorar en fracciones» está cumplida
    """)
    assert (await goal(services, fractions)).status == "done"


async def test_two_low_weeks_mark_stuck_and_a_three_clears_it(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock)
    fractions = await add_goal(services, person, FRACTIONS, plan=DISTRACTED_PLAN)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > skip
        > [2]
        > skip
        > skip
        > do 5 problems
        < Thanks for being honest
        <! smaller
        < share what you wrote
        > no
    """)
    assert (await goal(services, fractions)).stuck is False

    clock.advance(days=7)
    await chat.script("""
        > /checkin
        > skip
        > bad
        > skip
        > tests
        > do 5 problems
        < This goal has felt hard for a while
        < how about just the first 10 minutes of “do 5 problems”? Want that as your next step?
        = yes_no checkin.use_smaller
        > yes
        < Small steps still count
        < This might help: Fraction arithmetic
        < https://www.khanacademy.org/math/arithmetic/fraction-arithmetic
        < share what you wrote
    """)
    assert len(chat.last.replies) == 3
    assert (await goal(services, fractions)).stuck is True
    assert (await rows(services))[-1].next_step == "just the first 10 minutes of “do 5 problems”"
    await chat.script("""
        > no
        < That's 2 weeks in a row!
    """)

    clock.advance(days=7)
    await chat.script("""
        > /checkin
        > skip
        > 😞
        > skip
        > skip
        > skip
        < how about just 10 minutes on “get better at fractions”, with your plan ready:
        < with your plan ready: “put my phone in another room”?
        > no
        < it's your call
        < This might help:
    """)
    assert (await goal(services, fractions)).stuck is True

    clock.advance(days=7)
    await quick_checkin(chat, "so-so")
    chat.expect_reply("That's up from last time")
    assert (await goal(services, fractions)).stuck is False
    assert [r.rating for r in await rows(services)] == [2, 2, 1, 3]
    never_joined(chat)


async def test_spanish_stuck_offers_a_smaller_step(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock, locale="es")
    fractions = await add_goal(services, person, "mejorar en fracciones")
    assert person.id is not None
    async with services.db.transaction() as session:
        session.add(
            CheckIn(
                goal_id=fractions,
                person_id=person.id,
                rating=1,
                created_at=MONDAY - timedelta(days=7),
            )
        )
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > saltar
        > mal
        > saltar
        > saltar
        > saltar
        < Esta meta te está costando
        < ¿qué tal solo 10 minutos con «mejorar en fracciones»?
        > vale
        < Los pasos pequeños también cuentan
        < Esto te puede ayudar: Aritmética de fracciones
        < quieres compartir
        > no
        < queda en privado
        < ¡Ya van 2 semanas seguidas!
    """)
    assert (await goal(services, fractions)).stuck is True
    assert (await rows(services))[-1].next_step == "solo 10 minutos con «mejorar en fracciones»"


async def test_a_goal_without_a_catalog_match_points_to_resources(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, "tidy my room every day", stuck=True)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > skip
        > 1
        > skip
        > skip
        > skip
        > no
        < Want something to read, watch or try for this? Say /resources any time.
        <! This might help
    """)
    async with services.db.reading() as session:
        assert (await session.exec(select(RecommendationShown))).all() == []


async def test_the_resource_for_a_stuck_goal_is_stored_and_takes_a_thumbs_up(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, FRACTIONS, stuck=True)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > skip
        > 1
        > skip
        > skip
        > skip
        > no
        < This might help: Fraction arithmetic
        > [like:khan-fraction-arithmetic]
        < Thanks! I'll look for more like “Fraction arithmetic”.
    """)
    async with services.db.reading() as session:
        shown = (await session.exec(select(RecommendationShown))).all()
    assert [(row.resource_id, row.feedback) for row in shown] == [("khan-fraction-arithmetic", 1)]


# -- streaks ----------------------------------------------------------------------------


async def test_streak_counts_local_weeks_in_auckland(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock, timezone="Pacific/Auckland")
    await add_goal(services, person, FRACTIONS)
    chat = Chat(services.turns, "learner-1")
    await quick_checkin(chat)  # Tuesday 24 November in Auckland: ISO week 48
    chat.expect_no_reply("in a row")
    # Sunday 29 November in UTC (still week 48 there), but Monday 30 November in
    # Auckland: a new local week, so the streak grows.
    clock.set(datetime(2026, 11, 29, 12, 0, tzinfo=UTC))
    await quick_checkin(chat)
    chat.expect_reply("That's 2 weeks in a row!")
    clock.advance(days=7)
    await quick_checkin(chat)
    chat.expect_reply("That's 3 weeks in a row!")
    clock.advance(days=1)  # the same week again: the streak holds, no mention
    await quick_checkin(chat)
    chat.expect_no_reply("in a row")
    chat.expect_reply("Thanks for checking in")
    clock.advance(days=14)  # a week missed: the streak starts again
    await quick_checkin(chat)
    chat.expect_no_reply("in a row")


async def test_the_same_moments_in_utc_are_one_week(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, FRACTIONS)
    chat = Chat(services.turns, "learner-1")
    await quick_checkin(chat)
    clock.set(datetime(2026, 11, 29, 12, 0, tzinfo=UTC))
    await quick_checkin(chat)
    chat.expect_no_reply("in a row")
    clock.advance(days=7)
    await quick_checkin(chat)
    chat.expect_reply("That's 2 weeks in a row!")


def test_weekly_streak_ends_this_week() -> None:
    from zoneinfo import ZoneInfo

    utc = ZoneInfo("UTC")
    weeks = [MONDAY - timedelta(weeks=n) for n in (1, 2, 4)]
    # Nothing this week yet: no streak "ending this week".
    assert weekly_streak(weeks, utc, MONDAY.date()) == 0
    assert weekly_streak([MONDAY, *weeks], utc, MONDAY.date()) == 3


# -- interruptions, other ways in -------------------------------------------------------


async def test_help_in_the_middle_then_carry_on(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, FRACTIONS)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > skip
        > [4]
        < What went well
        > help
        < /checkin
        < Carry on with your check-in, or start over?
        = yes_no
        > [yes]
        < What went well
        = text checkin.went_well
        > I practised every day
        > skip
        > skip
        < that's saved
    """)
    assert [r.went_well for r in await rows(services)] == ["I practised every day"]


async def test_spanish_mid_check_in_switches_and_carries_on(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, FRACTIONS)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > [3]
        > [4]
        < What went well
        > español
        < seguimos en español
        < ¿Qué salió bien
        = text checkin.went_well
        > terminé la tarea
        < ¿Qué te lo puso difícil?
        > saltar
        > English please
        < English it is
        < What's one next step
        > practise on Monday
        < that's saved
    """)
    saved = await rows(services)
    assert [(r.mood, r.rating, r.went_well, r.next_step) for r in saved] == [
        (3, 4, "terminé la tarea", "practise on Monday")
    ]


async def test_help_in_spanish_then_carry_on(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock, locale="es")
    await add_goal(services, person, "mejorar en fracciones")
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > saltar
        > ayuda
        < ¿Seguimos con tu revisión o empezamos de nuevo?
        > sí
        < Sobre tu meta: «mejorar en fracciones»
        = rating checkin.rating
    """)


async def test_no_active_goal_offers_to_set_one(services: Services, clock: FakeClock) -> None:
    await learner(services, clock)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        < You don't have a goal to check in on yet. Want to set one together?
        = none
    """)
    assert chat.buttons == ["goal", "menu"]
    spanish = Chat(services.turns, "learner-2")
    await seed_learner(services.db, services.clock, "learner-2", locale="es")
    await spanish.script("""
        > check in
        < Aún no tienes ninguna meta para revisar
    """)
    assert spanish.buttons == ["goal", "menu"]


async def test_a_goal_chosen_before_the_check_in_is_the_only_one(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, FRACTIONS, minutes_ago=2)
    essays = await add_goal(services, person, ESSAYS, minutes_ago=1)
    # What /goals does before handing over to the check-in.
    async with services.db.transaction() as session:
        conversation = (
            await session.exec(select(Conversation).where(Conversation.person_id == person.id))
        ).one()
        conversation.slots = {"checkin.goal_id": essays}
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        < Let's check in on your goal.
        > skip
        < About your goal: “write better essays”
        > 4
        > skip
        > skip
        > skip
        <! About your goal
        < Thanks for checking in
    """)
    assert [r.goal_id for r in await rows(services)] == [essays]
    # The choice was for that check-in only: the next one covers every goal.
    await chat.script("""
        > /checkin
        < your 2 goals
    """)


async def test_an_interrupted_check_in_does_not_narrow_the_next_one(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, FRACTIONS, minutes_ago=2)
    await add_goal(services, person, ESSAYS, minutes_ago=1)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > skip
        < About your goal: “get better at fractions”
        > start over
        < I've stopped that
        > /checkin
        < your 2 goals
        > skip
        < About your goal: “get better at fractions”
    """)


async def test_check_in_again_mid_way_starts_afresh(services: Services, clock: FakeClock) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, FRACTIONS)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > skip
        = rating checkin.rating
        > check in
        < Let's check in on your goal
        = rating checkin.mood
        > skip
        > 4
        > skip
        > skip
        > skip
        < Thanks for checking in
        <! Carry on
        = none
    """)
    assert len(await rows(services)) == 1


async def test_back_at_the_sharing_question_stays_there(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock)
    await add_goal(services, person, FRACTIONS)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /checkin
        > skip
        > 4
        > I practised
        > skip
        > skip
        = yes_no checkin.share
        > back
        < first question
        < want to share what you wrote today
        = yes_no checkin.share
        > yes
        < your teacher and family can read
    """)
    assert [r.shared for r in await rows(services)] == [True]


async def test_checking_in_on_one_goal_from_the_goal_list(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock)
    fractions = await add_goal(services, person, FRACTIONS, minutes_ago=2)
    await add_goal(services, person, ESSAYS, minutes_ago=1)
    chat = Chat(services.turns, "learner-1")
    # A check-in left half-done on this very goal must not blur the choice.
    await chat.script("""
        > /checkin
        > skip
        < About your goal: “get better at fractions”
        > /goals
    """)
    await chat.press(str(fractions))
    await chat.script("""
        > [checkin]
        < Let's check in on your goal.
        > skip
        < About your goal: “get better at fractions”
        > 4
        > skip
        > skip
        > skip
        < Thanks for checking in
    """)
    assert [r.goal_id for r in await rows(services)] == [fractions]


def test_plan_action_takes_the_then_part() -> None:
    assert plan_action(DISTRACTED_PLAN) == "put my phone in another room"
    assert plan_action("If I'm tired, then I'll do just one problem.") == "do just one problem"
    assert plan_action("Si me aburro, entonces voy a cambiar de tema") == "cambiar de tema"
    assert plan_action("read for ten minutes") == "read for ten minutes"
    assert plan_action("   ") is None
    assert plan_action(None) is None
