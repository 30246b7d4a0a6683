"""Onboarding, first contact and help, turn by turn; join codes; the parsers behind them."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.coach.codes import display_code, parse_join_code
from bot.coach.onboarding import (
    band_for_grade,
    parse_checkin_time,
    tidy_name,
    typed_grade_band,
    within_reminder_hours,
)
from bot.coach.privacy import find_person
from bot.services import Services
from bot.store.models import Person
from bot.testing.conversation import Chat
from bot.testing.people import seed_learner

MONDAY = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


async def person_of(services: Services, user: str = "learner-1") -> Person:
    async with services.db.reading() as session:
        person = await find_person(session, "web", user)
        assert person is not None
        return person


@pytest.fixture
def monday(clock: FakeClock) -> FakeClock:
    clock.set(MONDAY)
    return clock


# -- join codes: recognising one is a pure function ---------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("KD7QM4RX2P", "KD7QM4RX2P"),
        ("KD7QM-4RX2P", "KD7QM4RX2P"),
        ("KD7QM 4RX2P", "KD7QM4RX2P"),
        ("kd7qm-4rx2p", "KD7QM4RX2P"),  # any case
        ("  Kd7Qm4rX2p  ", "KD7QM4RX2P"),
        ("code KD7QM-4RX2P", "KD7QM4RX2P"),
        ("Code: kd7qm4rx2p", "KD7QM4RX2P"),
        ("código KD7QM-4RX2P", "KD7QM4RX2P"),
        ("CÓDIGO KD7QM4RX2P", "KD7QM4RX2P"),
        ("codigo kd7qm 4rx2p", "KD7QM4RX2P"),
        ("/start KD7QM4RX2P", "KD7QM4RX2P"),  # a Telegram deep link
        ("/start@CoachBot KD7QM4RX2P", "KD7QM4RX2P"),
        ("2345678ABC", "2345678ABC"),
        ("ZZZZZZZZZ9", "ZZZZZZZZZ9"),  # one digit is enough
        ("999999999A", "999999999A"),  # and one letter
    ],
)
def test_a_join_code_is_recognised_in_any_case_and_layout(text: str, code: str | None) -> None:
    assert parse_join_code(text) == code


@pytest.mark.parametrize(
    "text",
    [
        "everything",  # ten letters, no digit
        "helloworld",  # and an l and an o besides
        "HELLOWORLD",
        "strawberry",
        "basketball",
        "KD7QM4RX2",  # nine symbols
        "KD7QM4RX2PQ",  # eleven
        "KD7QM--4RX2P",  # two dashes
        "KD7QM - 4RX2P",  # a dash with spaces
        "KD7Q-M4RX2P",  # the dash not after the fifth
        "KD7QM4RX2P!",  # anything after it
        "my code is KD7QM4RX2P",  # anything before it but "code" or /start
        "KD7QM4RX2P please",
        "KO7QM4RX2P",  # O is not in the alphabet (looks like 0)
        "K07QM4RX2P",  # neither is 0
        "KD1QM4RX2P",  # nor 1
        "KDIQM4RX2P",  # nor I
        "KDlQM4RX2P",  # nor l
        "KD7QM4RX2\u212a",  # the Kelvin sign is not a K
        "/start",
        "code",
        "/startKD7QM4RX2P",
        "12345-67890",
        "2345678923",  # all digits: no letter
        "",
        "a2b3c4d5e6f",
    ],
)
def test_near_misses_and_ordinary_words_are_not_codes(text: str) -> None:
    assert parse_join_code(text) is None


def test_a_code_is_shown_in_two_groups_of_five() -> None:
    assert display_code("KD7QM4RX2P") == "KD7QM-4RX2P"


# -- names, grades and times ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Maria", "Maria"),
        ("  maria   jose ", "Maria Jose"),
        ("my name is sam!", "Sam"),
        ("I'm Leo.", "Leo"),
        ("call me DJ", "DJ"),
        ("me llamo lucía", "Lucía"),
        ("Soy Ana", "Ana"),
        ("maría de la cruz", "María de la Cruz"),
        ("ana-sofía", "Ana-Sofía"),
        ("McKenzie", "McKenzie"),  # typed with capitals: left as typed
        ("Sam 😊", "Sam 😊"),
        ("李明", "李明"),
    ],
)
def test_a_name_is_tidied(text: str, name: str) -> None:
    assert tidy_name(text) == name


@pytest.mark.parametrize(
    "text",
    ["hi", "Hola!", "hey", "/goal", "???", "what?", "12345", "😊", "sam@example.com", "www.x.com"],
)
def test_what_is_not_a_name(text: str) -> None:
    assert tidy_name(text) is None


def test_grades_fall_in_their_bands() -> None:
    assert [band_for_grade(g) for g in range(14)] == [
        *["K-2"] * 3,
        *["3-5"] * 3,
        *["6-8"] * 3,
        *["9-12"] * 4,
        None,
    ]
    assert typed_grade_band("2") == "K-2"
    assert typed_grade_band("4") == "3-5"
    assert typed_grade_band("6-8") is None
    assert typed_grade_band("grade") is None


@pytest.mark.parametrize(
    ("text", "expected", "guessed"),
    [
        ("4pm", "16:00", False),
        ("4 pm", "16:00", False),
        ("4 p.m.", "16:00", False),
        ("4:30pm", "16:30", False),
        ("16:00", "16:00", False),
        ("16.15", "16:15", False),
        ("16h", "16:00", False),
        ("16h30", "16:30", False),
        ("07:30", "07:30", False),
        ("7:30 am", "07:30", False),
        ("at 4", "16:00", False),  # a bare 1-8 is the afternoon or evening
        ("around 5ish", "17:00", False),
        ("9", "09:00", False),  # 9-12 is the morning
        ("12pm", "12:00", False),
        ("12am", "00:00", False),
        ("four pm", "16:00", False),
        ("half past four", "16:30", False),
        ("quarter to five", "16:45", False),
        ("a las 4", "16:00", False),
        ("a las 4 y media", "16:30", False),
        ("a las cinco y cuarto", "17:15", False),
        ("a la una", "13:00", False),
        ("a las 8 de la mañana", "08:00", False),
        ("a las 9 de la noche", "21:00", False),
        ("las 10 de la mañana", "10:00", False),
        ("a las once", "11:00", False),
        ("once a week at 4", "16:00", False),  # "once" is 11 only where an hour goes
        ("una vez por semana, a las 4", "16:00", False),
        ("16pm", "16:00", False),
        ("after school", "15:30", True),
        ("right after school!", "15:30", True),
        ("después de clase", "15:30", True),
        ("in the evening", "19:00", True),
        ("por la tarde", "16:00", True),
        ("morning", "08:00", True),
    ],
)
def test_check_in_times_in_both_languages(text: str, expected: str, guessed: bool) -> None:
    parsed = parse_checkin_time(text)
    assert parsed is not None
    assert (parsed.hhmm, parsed.guessed) == (expected, guessed)


@pytest.mark.parametrize("text", ["banana", "soon", "25:00", "4:75", "1600", "16pm am", ""])
def test_what_is_not_a_time(text: str) -> None:
    assert parse_checkin_time(text) is None


def test_reminders_keep_to_waking_hours() -> None:
    assert within_reminder_hours(time(7, 0))
    assert within_reminder_hours(time(21, 0))
    assert not within_reminder_hours(time(6, 59))
    assert not within_reminder_hours(time(21, 1))


# -- the first conversation ------------------------------------------------------------------


async def test_a_whole_first_conversation_sets_the_learner_up(
    chat: Chat, services: Services, monday: FakeClock
) -> None:
    await chat.script("""
        > hi
        < Hi, I'm Coach!
        < I help you set goals
        < Your teacher sees your goals and check-in ratings
        < a linked family member gets a short weekly summary
        < your reflections stay private unless you share them
        < What should I call you?
        = text onboarding.name
        > my name is maria
        < Nice to meet you, Maria!
        < Which language would you like?
        = choice onboarding.locale
        > [en]
        < Which grade are you in?
        = choice onboarding.grade
        > [9-12]
        <! 13 or older
        < Which day suits you?
        = choice onboarding.weekday
        > [3]
        < what time?
        = text onboarding.time_said
        > 4pm
        < I'll check in every Wednesday at 4:00
        < You're all set, Maria!
        < What would you like to do first?
        = none
    """)
    assert chat.buttons == ["interests", "goal", "menu"]
    assert len(chat.last.replies) <= 3
    person = await person_of(services)
    assert person.name == "Maria"
    assert person.locale == "en"
    assert person.grade_band == "9-12"
    assert person.under_13 is False
    assert person.checkin_weekday == 3
    assert person.checkin_time == "16:00"
    assert person.onboarded_at == MONDAY


async def test_a_whole_first_conversation_in_spanish(open_services: Any, monday: FakeClock) -> None:
    services = await open_services("sqlite", default_locale="es")
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > hola
        < ¡Hola, soy Coach!
        < Tu profe ve tus metas
        < tus reflexiones son privadas
        < ¿Cómo quieres que te llame?
        > me llamo lucía
        < ¡Un gusto conocerte, Lucía!
        < ¿En qué idioma prefieres hablar?
        > español
        < ¿En qué grado estás?
        > 3-5
        < Como tienes menos de 13 años, solo compartiré con tu profe
        < ¿Qué día te viene mejor?
        > miércoles
        < ¿Y a qué hora?
        > a las 5 y media
        < te escribiré cada miércoles a las 17:30
        < ¡Listo, Lucía!
        < ¿Por dónde quieres empezar?
    """)
    assert chat.buttons == ["interests", "goal", "menu"]
    person = await person_of(services)
    assert (person.name, person.locale, person.grade_band, person.under_13) == (
        "Lucía",
        "es",
        "3-5",
        True,
    )
    assert (person.checkin_weekday, person.checkin_time) == (3, "17:30")
    assert person.onboarded_at == MONDAY


async def test_choosing_español_carries_on_in_spanish(chat: Chat, services: Services) -> None:
    await chat.script("""
        > hi
        > Sam
        < Which language would you like?
        > [es]
        < ¿En qué grado estás?
        = choice onboarding.grade
        > [K-2]
        < solo compartiré con tu profe
        > [5]
        < ¿Y a qué hora?
        > 16h
        < te escribiré cada viernes a las 16:00
        < ¡Listo, Sam!
    """)
    person = await person_of(services)
    assert (person.locale, person.grade_band, person.under_13) == ("es", "K-2", True)
    assert (person.checkin_weekday, person.checkin_time) == (5, "16:00")


async def test_a_learner_in_grades_6_to_8_under_13(chat: Chat, services: Services) -> None:
    await chat.script("""
        > hi
        > Leo
        > [en]
        > [6-8]
        < Are you 13 or older?
        = yes_no onboarding.over_13
        > no
        < Since you're under 13, I'll share only with your teacher until a family member says
        < Which day suits you?
    """)
    person = await person_of(services)
    assert (person.grade_band, person.under_13) == ("6-8", True)


async def test_a_learner_in_grades_6_to_8_aged_13(chat: Chat, services: Services) -> None:
    await chat.script("""
        > hi
        > Leo
        > [en]
        > 6-8
        < Are you 13 or older?
        > yep
        <! under 13
        < Which day suits you?
    """)
    person = await person_of(services)
    assert (person.grade_band, person.under_13) == ("6-8", False)


async def test_a_grade_typed_as_a_number_is_the_grade_not_a_button(
    chat: Chat, services: Services
) -> None:
    # "2" would press the second button (3-5); a second-grader means grade 2.
    await chat.script("""
        > hi
        > Ana
        > [en]
        > 2
        < Since you're under 13
        < Which day suits you?
    """)
    person = await person_of(services)
    assert (person.grade_band, person.under_13) == ("K-2", True)


async def test_español_mid_onboarding_re_asks_in_spanish_then_carries_on(
    chat: Chat, services: Services
) -> None:
    await chat.script("""
        > hi
        > Sam
        > [en]
        = choice onboarding.grade
        > español
        < seguimos en español
        < ¿En qué grado estás?
        = choice onboarding.grade
        > [9-12]
        < ¿Qué día te viene mejor?
        > English please
        < English it is
        < Which day suits you?
        > monday
        > 4pm
        < every Monday at 4:00
    """)
    assert (await person_of(services)).locale == "en"


async def test_saying_español_before_the_language_question_answers_it(
    chat: Chat, services: Services
) -> None:
    await chat.script("""
        > hi
        = text onboarding.name
        > español
        < ¿Cómo quieres que te llame?
        > Ana
        < ¡Un gusto conocerte, Ana!
        <! ¿En qué idioma
        < ¿En qué grado estás?
    """)
    assert (await person_of(services)).locale == "es"


async def test_help_mid_onboarding_then_carry_on(chat: Chat, services: Services) -> None:
    await chat.script("""
        > hi
        > Sam
        > [en]
        > [9-12]
        = choice onboarding.weekday
        > help
        < I help you choose goals
        < /mydata
        < Carry on with getting started, or start over?
        = yes_no
        > [yes]
        < Which day suits you?
        = choice onboarding.weekday
        > friday
        > after school
        < I'll read that as 3:30
        < every Friday then
        < You're all set, Sam!
    """)
    person = await person_of(services)
    assert (person.checkin_weekday, person.checkin_time) == (5, "15:30")
    assert person.onboarded_at is not None


async def test_i_dont_know_and_skip_at_every_question(
    chat: Chat, services: Services, monday: FakeClock
) -> None:
    await chat.script("""
        > hi
        > skip
        < No problem, no name needed.
        < Which language would you like?
        > no idea
        < we'll keep going in English
        < Which grade are you in?
        > I don't know
        < we can leave the grade out
        < Are you 13 or older?
        > not sure
        < To be on the safe side, I'll share only with your teacher
        < Which day suits you?
        > skip
        < let's say Monday
        < what time?
        > idk
        < I'll pencil in 3:30
        < every Monday
        < You're all set!
        <! set,
    """)
    person = await person_of(services)
    assert person.name is None
    assert person.locale == "en"
    assert person.grade_band is None
    assert person.under_13 is True  # not knowing keeps sharing with the teacher only
    assert (person.checkin_weekday, person.checkin_time) == (1, "15:30")
    assert person.onboarded_at == MONDAY


async def test_no_thanks_to_a_name_is_a_skip(chat: Chat, services: Services) -> None:
    await chat.script("""
        > hi
        > no thanks
        < No problem, no name needed.
        < Which language would you like?
    """)
    assert (await person_of(services)).name is None


async def test_a_skipped_name_drops_the_channel_display_name(services: Services) -> None:
    from bot.engine.messages import Inbound

    await services.turns.handle(
        Inbound("web", "learner-1", "m1", text="hi", display_name="S. Smith (Dad's phone)")
    )
    assert (await person_of(services)).name == "S. Smith (Dad's phone)"
    await Chat(services.turns, "learner-1").script("""
        > [skip]
        < no name needed
    """)
    assert (await person_of(services)).name is None


async def test_go_back_re_asks_the_question_before(chat: Chat, services: Services) -> None:
    await chat.script("""
        > hi
        > back
        < This is the first question
        < What should I call you?
        > Sam
        > [en]
        > [6-8]
        = yes_no onboarding.over_13
        > go back
        < Which grade are you in?
        > [3-5]
        < Since you're under 13
        > back
        < Which grade are you in?
        > [9-12]
        < Which day suits you?
        > [2]
        = text onboarding.time_said
        > back
        < Which day suits you?
        > [4]
        > 5pm
        < every Thursday at 5:00
    """)
    person = await person_of(services)
    assert (person.grade_band, person.under_13) == ("9-12", False)
    assert (person.checkin_weekday, person.checkin_time) == (4, "17:00")


async def test_each_answer_is_checked_with_a_kind_re_prompt(chat: Chat, services: Services) -> None:
    await chat.script(f"""
        > hi
        > hi
        < that doesn't look like a name
        < What should I call you?
        = text onboarding.name
        > ???
        < that doesn't look like a name
        > {"x" * 41}
        < 40 characters or fewer
        = text onboarding.name
        > Maria
        > purple
        < pick one of the buttons
        = choice onboarding.locale
        > English
        > the blue one
        < pick one of the buttons
        = choice onboarding.grade
        > [6-8]
        > maybe later perhaps
        < A yes or a no
        = yes_no onboarding.over_13
        > yes
        > someday
        < pick one of the buttons
        = choice onboarding.weekday
        > tuesday
        > banana
        < I didn't catch a time
        < what time?
        = text onboarding.time_said
        > 11pm
        < 11:00
        < outside the hours I send reminders (7:00
        = text onboarding.time_said
        > 6:30pm
        < every Tuesday at 6:30
    """)
    person = await person_of(services)
    assert (person.name, person.checkin_weekday, person.checkin_time) == ("Maria", 2, "18:30")


async def test_three_unreadable_times_get_a_default_not_a_loop(
    chat: Chat, services: Services
) -> None:
    await chat.script("""
        > hi
        > Sam
        > [en]
        > [9-12]
        > [1]
        > banana
        < didn't catch a time
        > 3am
        < outside the hours
        > when I feel like it
        < Let's not get stuck on this
        < I'll pencil in 3:30
        < You're all set
    """)
    assert (await person_of(services)).checkin_time == "15:30"


async def test_the_offer_after_onboarding_leads_on(chat: Chat) -> None:
    await chat.script("""
        > hi
        > Sam
        > [en]
        > [9-12]
        > [1]
        > 4pm
        < What would you like to do first?
        > [menu]
        < What would you like to do?
        = choice menu.choice
    """)


@pytest.mark.parametrize("value", ["interests", "goal"])
async def test_the_offer_buttons_start_the_quiz_or_a_goal(chat: Chat, value: str) -> None:
    await chat.script("""
        > hi
        > Sam
        > [en]
        > [9-12]
        > [1]
        > 4pm
    """)
    await chat.press(value)
    chat.expect_no_reply("didn't quite get that")
    assert chat.last.expect.slot is not None
    assert chat.last.expect.slot.split(".")[0] in ("interests", "goal")


# -- join codes in the conversation ------------------------------------------------------------


async def test_a_code_at_first_contact_is_answered_then_onboarding_starts(
    chat: Chat, services: Services
) -> None:
    await chat.script("""
        > /start KD7QM4RX2P
        < That looks like a join code (KD7QM-4RX2P), but I don't recognise it
        < check it with your teacher
        < Hi, I'm Coach!
        < What should I call you?
        = text onboarding.name
    """)
    assert len(chat.last.replies) <= 3
    assert (await person_of(services)).name is None


async def test_a_code_mid_flow_is_answered_then_the_same_question_again(
    chat: Chat, services: Services
) -> None:
    await chat.script("""
        > hi
        > kd7qm-4rx2p
        < I don't recognise it
        < What should I call you?
        = text onboarding.name
        > Sam
        > [en]
        = choice onboarding.grade
        > code KD7QM 4RX2P
        < I don't recognise it
        < Which grade are you in?
        = choice onboarding.grade
        > [9-12]
        < Which day suits you?
    """)
    assert (await person_of(services)).name == "Sam"  # the code never became a name


async def test_a_code_is_answered_in_spanish(chat: Chat, services: Services) -> None:
    await seed_learner(services.db, services.clock, "learner-1", locale="es")
    await chat.script("""
        > código KD7QM-4RX2P
        < Parece un código para unirte (KD7QM-4RX2P), pero no lo reconozco
        < revisarlo con tu profe
        < ¿Qué te gustaría hacer?
    """)


# -- main: first contact, and coming back -----------------------------------------------------


async def test_an_onboarded_learner_is_welcomed_back_to_the_menu(
    chat: Chat, services: Services, monday: FakeClock
) -> None:
    await seed_learner(services.db, services.clock, "learner-1")
    await chat.script("""
        > hi
        < Welcome back, Sam!
        <! What should I call you?
        < What would you like to do?
        = choice menu.choice
    """)
    other = Chat(services.turns, "learner-2")
    await seed_learner(services.db, services.clock, "learner-2", name=None, locale="es")
    await other.script("""
        > /start
        < ¡Hola de nuevo!
        <! de nuevo,
        < ¿Qué te gustaría hacer?
    """)


async def test_help_lists_the_commands_in_both_languages(chat: Chat, services: Services) -> None:
    await seed_learner(services.db, services.clock, "learner-1")
    await chat.script("""
        > /help
        < I help you choose goals
        < /goal
        < /goals
        < /checkin
        < /next
        < /interests
        < /privacy
        < /mydata
        < /forget
        < /pause and /resume
        < "menu"
    """)
    other = Chat(services.turns, "learner-2")
    await seed_learner(services.db, services.clock, "learner-2", locale="es")
    await other.script("""
        > ayuda
        < Te ayudo a elegir metas
        < /meta una meta nueva
        < /misdatos
        < /olvidar
        < «menú»
    """)


async def test_no_se_saltar_and_atras_in_spanish(open_services: Any) -> None:
    services = await open_services("sqlite", default_locale="es")
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > hola
        > saltar
        < Sin problema, no hace falta.
        < ¿En qué idioma prefieres hablar?
        > ni idea
        < seguimos en español
        < ¿En qué grado estás?
        > no sé
        < dejamos el grado a un lado
        < ¿Tienes 13 años o más?
        > atrás
        < ¿En qué grado estás?
        > [6-8]
        > no lo sé
        < Por si acaso, solo compartiré con tu profe
        < ¿Qué día te viene mejor?
        > saltar
        < pongamos el lunes
        > no sé
        < lo dejo a las 15:30, después de clase, cada lunes
        < ¡Listo!
    """)
    person = await person_of(services)
    assert (person.name, person.locale, person.grade_band, person.under_13) == (
        None,
        "es",
        "6-8",
        True,
    )
    assert (person.checkin_weekday, person.checkin_time) == (1, "15:30")


async def test_a_half_done_onboarding_resumes_after_a_day_away(
    chat: Chat, services: Services, monday: FakeClock
) -> None:
    await chat.script("""
        > hi
        > Sam
        > [en]
        = choice onboarding.grade
    """)
    monday.advance(hours=30)
    await chat.script("""
        > hey
        < Welcome back! Last time we were in the middle of getting started.
        < We'd got to: which grade you're in
        < Carry on with getting started, or start over?
        > [yes]
        < Which grade are you in?
        > [9-12]
        < Which day suits you?
    """)
    assert (await person_of(services)).name == "Sam"


# -- a greeting in the middle ----------------------------------------------------------------


async def test_hello_mid_onboarding_starts_it_afresh_and_only_once(chat: Chat) -> None:
    await chat.script("""
        > hi
        > Sam
        > [en]
        = choice onboarding.grade
        > hello
        < Hi, I'm Coach!
        > Sam
        > [en]
        > [9-12]
        > [1]
        > 4pm
        < You're all set, Sam!
        <! Carry on with getting started
    """)


# -- engine behaviour onboarding needs (strict: passes once the engine changes) -------------


async def test_español_at_the_language_question_answers_it(chat: Chat) -> None:
    await chat.script("""
        > hi
        > Sam
        = choice onboarding.locale
        > español
        < ¿En qué grado estás?
        = choice onboarding.grade
    """)
