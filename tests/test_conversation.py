"""The shipped flows, turn by turn: every step kind, validation, interruptions, resuming."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.clock import FakeClock
from bot.services import Services
from bot.store.models import Conversation, Person
from bot.testing.conversation import Chat
from bot.testing.people import seed_learner

MONDAY = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


@pytest.fixture
async def chat(services: Services) -> Chat:
    """A learner past onboarding (its own tests are in test_onboarding.py), at rest."""
    await seed_learner(services.db, services.clock, "learner-1")
    return Chat(services.turns, "learner-1")


async def person_of(services: Services, user: str = "learner-1") -> Person:
    async with services.db.reading() as session:
        from bot.coach.privacy import find_person

        person = await find_person(session, "web", user)
        assert person is not None
        return person


async def slots_of(services: Services, user: str = "learner-1") -> dict[str, Any]:
    person = await person_of(services, user)
    async with services.db.reading() as session:
        conversation = (
            await session.exec(select(Conversation).where(Conversation.person_id == person.id))
        ).one()
        return dict(conversation.slots)


async def test_a_returning_learner_is_welcomed_back_to_the_menu(chat: Chat) -> None:
    await chat.script("""
        > hi
        < Sam
        < What would you like to do?
        = choice menu.choice
    """)
    assert chat.buttons == ["goal", "goals", "checkin", "next", "resources", "interests", "help"]


async def test_warm_up_happy_path_stores_every_answer(
    chat: Chat, services: Services, clock: FakeClock
) -> None:
    clock.set(MONDAY)
    await chat.script("""
        > /warmup
        < What should I call you?
        = text profile.name
        > Maria
        < Nice to meet you, Maria!
        = rating warmup.mood
        > [5]
        < Love to hear it
        < plan a little study time
        = yes_no warmup.wants_plan
        > yep
        < How many minutes a day
        = number warmup.minutes
        > 30
        < When is your next test
        = date warmup.deadline
        > next friday
        < Got it: Friday, December 4, 2026
        < 150 minutes a week
        < Friday, December 4, 2026 is 11 days away: about 8 study sessions
        < That's a plan
        = none
    """)
    assert (await person_of(services)).name == "Maria"
    slots = await slots_of(services)
    assert slots["warmup.mood"] == 5
    assert slots["warmup.wants_plan"] is True
    assert slots["warmup.minutes"] == 30
    assert slots["warmup.deadline"] == "2026-12-04"


async def test_rating_branches_on_the_answer(chat: Chat) -> None:
    await chat.script("""
        > /warmup
        > Sam
        > 😞
        < rough one
        = yes_no
        > nah
        < No problem
        = none
    """)


async def test_middle_rating_takes_the_default_branch(chat: Chat) -> None:
    await chat.script("""
        > /warmup
        > Sam
        > three
        < Thanks for telling me
    """)


async def test_choice_by_typed_label_number_or_typo(chat: Chat, services: Services) -> None:
    await chat.script("""
        > menu
        > my goals
        < set one
    """)
    for n, typed in enumerate(["2", "my goles", "MIS METAS"]):
        await seed_learner(services.db, services.clock, f"learner-{n + 2}")
        other = Chat(services.turns, f"learner-{n + 2}")
        await other.script(f"""
            > menu
            > {typed}
            <! pick one of the buttons
        """)
        assert other.last.expect.slot != "menu.choice"


async def test_each_kind_of_question_re_prompts_kindly(chat: Chat, clock: FakeClock) -> None:
    clock.set(MONDAY)
    await chat.script("""
        > menu
        > purple elephant
        < pick one of the buttons
        = choice menu.choice
        > /warmup
        > Maria
        > seven
        < Pick a number from 1 to 5
        = rating warmup.mood
        > 4
        > maybe later perhaps
        < A yes or a no
        = yes_no
        > yes
        > lots
        < I need a number here
        > 2.5
        < A whole number
        > 1000
        < Pick a number from 5 to 240
        = number warmup.minutes
        > 20 minutes
        < When is your next test
        > banana
        < didn't catch a date
        > yesterday
        < has already passed
        > 2028-01-10
        < more than 365 days away
        = date warmup.deadline
        > in two weeks
        < Got it: Monday, December 7, 2026
    """)


async def test_a_too_long_name_is_refused(chat: Chat) -> None:
    await chat.script(f"""
        > /warmup
        > {"x" * 41}
        < 40 characters or fewer
        = text profile.name
    """)


async def test_three_misses_offer_a_way_out(chat: Chat) -> None:
    await chat.script("""
        > /warmup
        > Maria
        > purple
        < Pick a number
        > green
        < Pick a number
        > orange
        < Let's not get stuck
        < How's your week going
    """)
    assert chat.buttons == ["menu", "help"]
    await chat.script("""
        > 3
        < Thanks for telling me
    """)


async def test_an_optional_question_can_be_skipped(chat: Chat, services: Services) -> None:
    await chat.script("""
        > /warmup
        > Maria
        > 4
        > yes
        > 25
        = date warmup.deadline
        > skip
        < 125 minutes a week
        <! days away
        < That's a plan
    """)
    assert (await slots_of(services))["warmup.deadline"] is None


async def test_help_in_the_middle_then_carry_on(chat: Chat) -> None:
    await chat.script("""
        > /warmup
        > Maria
        = rating warmup.mood
        > hlep
        < I help you choose goals
        < Carry on with the warm-up, or start over?
        = yes_no
        > [yes]
        < How's your week going
        = rating warmup.mood
        > 4
        < Love to hear it
    """)


async def test_help_in_the_middle_then_start_over(chat: Chat) -> None:
    await chat.script("""
        > /warmup
        > /help
        < Carry on with the warm-up
        > no
        < fresh start
        < What would you like to do?
        = choice menu.choice
    """)
    assert "resume" not in chat.buttons


async def test_the_menu_offers_to_carry_on(chat: Chat) -> None:
    await chat.script("""
        > /warmup
        > Maria
        > menu
        < What would you like to do?
        = choice menu.choice
    """)
    assert chat.buttons[0] == "resume"
    await chat.script("""
        > [resume]
        < How's your week going
        = rating warmup.mood
    """)


async def test_restart_clears_the_flow(chat: Chat) -> None:
    await chat.script("""
        > /warmup
        > Maria
        > start over
        < I've stopped that
        < What would you like to do?
        = choice menu.choice
    """)
    assert "resume" not in chat.buttons


async def test_pause_holds_reminders_and_keeps_the_place(
    chat: Chat, services: Services, clock: FakeClock
) -> None:
    clock.set(MONDAY)
    await chat.script("""
        > /warmup
        > Maria
        > pause
        < Paused: no reminders from me until Monday, December 7, 2026
        < say "carry on"
        = none
    """)
    person = await person_of(services)
    assert person.paused_until == datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    await chat.script("""
        > carry on
        < Reminders are on again
        < How's your week going
        = rating warmup.mood
    """)
    assert (await person_of(services)).paused_until is None


async def test_switching_language_in_the_middle_re_asks_in_spanish(
    chat: Chat, services: Services
) -> None:
    await chat.script("""
        > /warmup
        > Maria
        > español
        < seguimos en español
        < ¿Qué tal va tu semana
        = rating warmup.mood
        > 5
        < ¡Qué bien!
        > English please
        < English it is
        < plan a little study time
    """)
    assert (await person_of(services)).locale == "en"


async def test_the_whole_warm_up_in_spanish(chat: Chat, clock: FakeClock) -> None:
    clock.set(MONDAY)
    await chat.script("""
        > español
        < ¿Qué te gustaría hacer?
        > /warmup
        < ¿Cómo quieres que te llame?
        > Lucía
        < ¡Encantado, Lucía!
        > tres
        < Gracias por contármelo
        > sí
        < ¿Cuántos minutos al día
        > treinta
        < ¿Cuándo es tu próximo examen
        > el próximo viernes
        < Anotado: viernes, 4 de diciembre de 2026
        < 150 minutos a la semana
        < Faltan 11 días
        < ¡Ya tienes un plan!
    """)


async def test_an_idle_conversation_resumes_with_a_recap(chat: Chat, clock: FakeClock) -> None:
    clock.set(MONDAY)
    await chat.script("""
        > /warmup
        > Maria
    """)
    clock.advance(hours=30)
    await chat.script("""
        > hey
        < Welcome back! Last time we were in the middle of the warm-up
        < We'd got to: how your week is going
        < Carry on with the warm-up, or start over?
        > carry on
        < How's your week going
        = rating warmup.mood
    """)


async def test_a_short_break_does_not_interrupt(chat: Chat, clock: FakeClock) -> None:
    clock.set(MONDAY)
    await chat.script("""
        > /warmup
        > Maria
    """)
    clock.advance(hours=2)
    await chat.script("""
        > 4
        < Love to hear it
    """)


async def test_gibberish_when_idle_gets_a_fallback_and_the_menu(chat: Chat) -> None:
    await chat.script("""
        > help
        < I help you choose goals
        = none
        > qwzx vbnm
        < didn't quite get that
        < What would you like to do?
        = choice menu.choice
    """)


async def test_a_restart_of_the_service_mid_conversation_loses_nothing(
    open_services: Any, tmp_path: Path
) -> None:
    first: Services = await open_services("sqlite")
    await seed_learner(first.db, first.clock, "learner-9")
    chat = Chat(first.turns, "learner-9")
    await chat.script("""
        > /warmup
        > Maria
        = rating warmup.mood
    """)
    await first.close()
    second: Services = await open_services("sqlite")
    chat = Chat(second.turns, "learner-9")
    await chat.script("""
        > 2
        < rough one
        = yes_no warmup.wants_plan
    """)
    assert (await person_of(second, "learner-9")).name == "Maria"


async def test_a_new_person_gets_the_deployment_defaults(open_services: Any) -> None:
    services: Services = await open_services(
        "sqlite", default_locale="es", timezone="America/Mexico_City"
    )
    chat = Chat(services.turns, "nuevo")
    await chat.script("""
        > hola
        < Coach
    """)
    person = await person_of(services, "nuevo")
    assert (person.locale, person.timezone) == ("es", "America/Mexico_City")
    async with services.db.reading() as session:
        assert len((await session.exec(select(Person))).all()) == 1


async def test_go_back_re_asks_the_previous_question(chat: Chat, services: Services) -> None:
    await chat.script("""
        > /warmup
        > Mara
        = rating warmup.mood
        > go back
        < What should I call you?
        = text profile.name
        > Maria
        < Nice to meet you, Maria!
        = rating warmup.mood
    """)
    assert (await person_of(services)).name == "Maria"


async def test_go_back_at_the_first_question_says_so(chat: Chat) -> None:
    await chat.script("""
        > /warmup
        > back
        < first question
        < What should I call you?
    """)


async def test_i_dont_know_encourages_or_skips(chat: Chat, services: Services) -> None:
    await chat.script("""
        > /warmup
        > Maria
        > 3
        > yes
        > idk
        < nobody knows everything
        < How many minutes a day
        = number warmup.minutes
        > 15
        = date warmup.deadline
        > no idea
        < 75 minutes a week
    """)
    assert (await slots_of(services))["warmup.deadline"] is None


async def test_no_turn_sends_more_than_three_messages(chat: Chat) -> None:
    await chat.script("""
        > /warmup
        > Maria
        > 4
        > yes
        > 30
        > in two weeks
    """)
    # Date confirmation, weekly total, days left and the closing line: four
    # sentences, joined into at most three messages.
    assert len(chat.last.replies) <= 3
    chat.expect_reply("Got it")
    chat.expect_reply("That's a plan")


async def test_coming_back_to_the_menu_after_a_day_just_answers(
    chat: Chat, clock: FakeClock
) -> None:
    await chat.script("""
        > menu
        = choice menu.choice
    """)
    clock.advance(hours=30)
    await chat.script("""
        > purple
        < pick one of the buttons
        = choice menu.choice
    """)


async def test_starting_over_mid_onboarding_starts_onboarding_again(services: Services) -> None:
    newcomer = Chat(services.turns, "newcomer")
    await newcomer.script("""
        > hi
        = text onboarding.name
        > help
        < Carry on
        > [no]
        < fresh start
        < What should I call you?
        = text onboarding.name
    """)
