"""Interest discovery (/interests), turn by turn in English and Spanish, and its scoring."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.coach.interests import (
    ITEMS,
    find_tags,
    latest_profile,
    read_answer,
    score_areas,
    top_areas,
)
from bot.coach.privacy import find_person
from bot.engine.locales import Catalogs
from bot.paths import shipped
from bot.services import Services
from bot.store.models import InterestProfile
from bot.testing.conversation import Chat
from bot.testing.people import seed_learner

MONDAY = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


@pytest.fixture
async def learner(services: Services, clock: FakeClock) -> Chat:
    """Sam, onboarded, English, at rest on a Monday afternoon."""
    clock.set(MONDAY)
    await seed_learner(services.db, services.clock, "learner-1")
    return Chat(services.turns, "learner-1")


@pytest.fixture
async def aprendiz(services: Services, clock: FakeClock) -> Chat:
    """Ana, onboarded, Spanish, at rest on a Monday afternoon."""
    clock.set(MONDAY)
    await seed_learner(services.db, services.clock, "aprendiz-1", name="Ana", locale="es")
    return Chat(services.turns, "aprendiz-1")


async def profiles(services: Services, user: str = "learner-1") -> list[InterestProfile]:
    async with services.db.reading() as session:
        person = await find_person(session, "web", user)
        assert person is not None
        rows = await session.exec(
            select(InterestProfile)
            .where(InterestProfile.person_id == person.id)
            .order_by(col(InterestProfile.id))
        )
        return list(rows.all())


# The answers behind FIXED_SCORES: item by item, in the order the flow asks them.
FIXED_RUN = """
    > /interests
    < so I can suggest things that fit you
    < Would you enjoy fixing a bike
    = choice interests.answer.bike
    > [like]                                    # R
    < making your own comic
    > [dislike]                                 # A
    < why the sky is blue
    > [unsure]                                  # I
    < 4 of 12! Would you enjoy helping a classmate
    > [like]                                    # S
    < running a bake sale
    > [dislike]                                 # E
    < sorting a collection
    > [unsure]                                  # C
    < making up a song or a dance
    > [unsure]                                  # A
    < 8 of 12! Would you enjoy testing which paper plane
    > [like]                                    # I
    < scores and stats for a team
    > skip                                      # C, left out of the score
    < building a treehouse
    > [like]                                    # R
    < starting a club
    > [dislike]                                 # E
    < Last one! Would you enjoy showing a new student
    > [unsure]                                  # S
    < what do you do for fun?
    = text interests.fun
    > I like drawing and playing football
    < Drawing and football: nice!
    < You light up around building things, figuring things out, and helping people.
    < Where to from here?
    = none
"""
# R 👍👍 = 100, +25 for football, capped at 100; I 🤷👍 = 75; A 👎🤷 = 25, +25 for
# drawing = 50; S 👍🤷 = 75; E 👎👎 = 0; C 🤷 alone (stats skipped) = 50.
FIXED_SCORES = {"R": 100, "I": 75, "A": 50, "S": 75, "E": 0, "C": 50}


def items(answer: str, count: int = len(ITEMS)) -> str:
    """Script lines answering `count` items alike (all twelve by default)."""
    return "\n".join(f"> {answer}" for _ in range(count))


# -- whole runs ----------------------------------------------------------------------


async def test_a_run_with_buttons_stores_the_scores_the_formula_gives(
    learner: Chat, services: Services
) -> None:
    await learner.script(FIXED_RUN)
    assert learner.buttons == ["goal", "next", "resources"]
    [profile] = await profiles(services)
    assert profile.scores == FIXED_SCORES
    assert profile.top_areas == ["R", "I", "S"]  # I and S tie at 75: RIASEC order
    assert profile.tags == ["art", "sports"]
    assert profile.created_at == MONDAY
    # The raw answers and the learner's words are not kept beside the profile.
    export = await services.turns.export("web", "learner-1")
    assert export is not None
    assert [slot for slot in export["conversation"]["slots"] if "interests" in slot] == []


async def test_the_next_step_buttons_start_the_goal_and_next_flows(learner: Chat) -> None:
    await learner.script(f"""
        > /interests
        {items("[like]")}
        > skip
        < Where to from here?
        > [goal]
        = text goal.wish
    """)
    await learner.script(f"""
        > /interests
        {items("[like]")}
        > skip
        > [next]
        <! didn't quite get that
    """)


async def test_a_spanish_run_with_buttons(aprendiz: Chat, services: Services) -> None:
    await aprendiz.script("""
        > /intereses
        < para sugerirte cosas que vayan contigo
        < ¿Te gustaría arreglar una bici
        > [dislike]
        < hacer tu propio cómic
        > [like]
        < por qué el cielo es azul
        > [like]
        < ¡4 de 12!
        > [dislike]
        < venta de pasteles
        > [dislike]
        < ordenar una colección
        > [dislike]
        < inventarte una canción
        > [like]
        < ¡8 de 12!
        > [unsure]
        < estadísticas de un equipo
        > [dislike]
        < casa en un árbol
        > [dislike]
        < crear un club
        > [dislike]
        < ¡La última!
        > [dislike]
        < ¿qué haces para divertirte?
        > Me gusta dibujar y jugar al fútbol
        < Dibujar y fútbol: ¡qué bien!
        < Se nota que lo tuyo es crear cosas y averiguar el porqué de las cosas.
        < ¿Y ahora?
        = none
    """)
    assert aprendiz.buttons == ["goal", "next", "resources"]
    [profile] = await profiles(services, "aprendiz-1")
    # A 👍👍 + dibujar = 100 (capped); I 👍🤷 = 75; R 👎👎 + fútbol = 25.
    assert profile.scores == {"R": 25, "I": 75, "A": 100, "S": 0, "E": 0, "C": 0}
    assert profile.top_areas == ["A", "I"]
    assert profile.tags == ["art", "sports"]


async def test_answers_in_words_and_emoji_in_both_languages(
    learner: Chat, services: Services
) -> None:
    await learner.script("""
        > /interests
        > love it                   # bike: R
        > nope                      # comic: A
        > 🤷🏽‍♀️                       # sky: I
        > yes please                # classmate: S
        > meh                       # bake sale: E
        > 👎                        # collection: C
        > me encanta                # song: A
        > 👍🏾                        # planes: I
        > más o menos               # stats: C
        > sí                        # treehouse: R
        > no                        # club: E
        > sounds fun                # new student: S
        < what do you do for fun?
        > skip
        < You light up around building things, helping people, and figuring things out.
    """)
    [profile] = await profiles(services)
    assert profile.scores == {"R": 100, "I": 75, "A": 50, "S": 100, "E": 25, "C": 25}
    assert profile.top_areas == ["R", "S", "I"]
    assert profile.tags == []


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("love it", "like"),
        ("Love it!!", "like"),
        ("yes", "like"),
        ("yesss please", "like"),
        ("sounds fun", "like"),
        ("👍", "like"),
        ("👍🏽", "like"),
        ("😍😍", "like"),
        ("sí", "like"),
        ("Me encanta", "like"),
        ("me gustaría", "like"),
        ("meh", "unsure"),
        ("kinda", "unsure"),
        ("maybe", "unsure"),
        ("🤷", "unsure"),
        ("🤷‍♀️", "unsure"),
        ("más o menos", "unsure"),
        ("mas o menos", "unsure"),
        ("tal vez", "unsure"),
        ("nope", "dislike"),
        ("no", "dislike"),
        ("nah, boring", "dislike"),
        ("borring", "dislike"),
        ("not for me", "dislike"),
        ("👎", "dislike"),
        ("no me gusta", "dislike"),
        ("para nada", "dislike"),
        ("like", "like"),
        ("dislike", "dislike"),
    ],
)
def test_typed_answers_are_read_in_both_languages(typed: str, expected: str) -> None:
    assert read_answer(typed) == expected


@pytest.mark.parametrize(
    "typed", ["yes and no", "purple elephant", "I like fixing bikes with my uncle", "", "🙂 👎"]
)
def test_mixed_or_unrelated_words_are_no_answer(typed: str) -> None:
    assert read_answer(typed) is None


# -- I don't know, skip, back, off-topic ---------------------------------------------


async def test_dont_know_counts_as_unsure_and_skip_leaves_an_item_out(
    learner: Chat, services: Services
) -> None:
    await learner.script("""
        > /interests
        > I don't know              # bike: R 🤷
        < I'll count that as a 🤷
        < making your own comic
        = choice interests.answer.comic
        > skip                      # comic: A, left out
        < why the sky is blue
        > idk                       # sky: I 🤷
        < count that as a 🤷
        > [like]                    # classmate: S
        > [like]                    # bake sale: E
        > [like]                    # collection: C
        > skip                      # song: A, left out: no A score at all
        > [like]                    # planes: I
        > [dislike]                 # stats: C
        > [unsure]                  # treehouse: R
        > [like]                    # club: E
        > [like]                    # new student: S
        < what do you do for fun?
        > I don't know
        <! Got it
        <! nice!
        < You light up around helping people, taking the lead, and figuring things out.
    """)
    [profile] = await profiles(services)
    assert profile.scores == {"R": 50, "I": 75, "S": 100, "E": 100, "C": 50}
    assert profile.top_areas == ["S", "E", "I"]
    assert profile.tags == []


async def test_spanish_no_se_and_saltar(aprendiz: Chat, services: Services) -> None:
    await aprendiz.script(f"""
        > /intereses
        > no sé
        < lo cuento como un 🤷
        < hacer tu propio cómic
        > saltar
        < por qué el cielo es azul
        {items("[dislike]", 10)}
        < ¿qué haces para divertirte?
        > saltar
        < Nada de esto te ha enganchado mucho
    """)
    [profile] = await profiles(services, "aprendiz-1")
    # R 🤷👎 = 25; A only 👎 (the comic skipped) = 0; every other area 👎👎 = 0.
    assert profile.scores == {"R": 25, "I": 0, "A": 0, "S": 0, "E": 0, "C": 0}
    assert profile.top_areas == []


async def test_go_back_asks_the_previous_item_again(learner: Chat) -> None:
    await learner.script("""
        > /interests
        > [dislike]
        < making your own comic
        > go back
        < fixing a bike
        = choice interests.answer.bike
        > [like]
        < making your own comic
    """)


async def test_an_off_topic_answer_is_re_asked_then_offers_a_way_out(learner: Chat) -> None:
    await learner.script("""
        > /interests
        > purple elephant
        < pick one of the buttons
        = choice interests.answer.bike
        > banana phone
        < pick one of the buttons
        > wibble
        < You can skip it, try once more, or head to the menu
        = choice interests.answer.bike
    """)
    assert "skip" in learner.buttons
    await learner.script("""
        > [skip]
        < making your own comic
    """)


# -- interruptions -------------------------------------------------------------------


async def test_help_mid_quiz_then_carry_on(learner: Chat) -> None:
    await learner.script("""
        > /interests
        > [like]
        > [like]
        < why the sky is blue
        > help
        < Carry on with the interest quiz, or start over?
        > yes
        < why the sky is blue
        = choice interests.answer.sky
        > [like]
        < 4 of 12!
    """)


async def test_ayuda_mid_quiz_then_seguir(aprendiz: Chat) -> None:
    await aprendiz.script("""
        > /intereses
        > [like]
        < hacer tu propio cómic
        > ayuda
        < ¿Seguimos con el test de intereses
        > sí
        < hacer tu propio cómic
        = choice interests.answer.comic
    """)


async def test_espanol_mid_quiz_switches_and_carries_on(learner: Chat, services: Services) -> None:
    await learner.script(f"""
        > /interests
        > [like]
        < making your own comic
        > español
        < español
        < ¿Te gustaría hacer tu propio cómic?
        = choice interests.answer.comic
        {items("[like]", 11)}
        < ¿qué haces para divertirte?
        > English please
        < what do you do for fun?
        > skip
        < You light up around building things, figuring things out, and creating things.
    """)
    [profile] = await profiles(services)
    assert profile.scores == dict.fromkeys("RIASEC", 100)


# -- the open question ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        ("I like drawing and playing football", ["art", "sports"]),
        ("Me gusta dibujar y jugar al fútbol", ["art", "sports"]),
        ("football, and drawing", ["sports", "art"]),  # in the order they were named
        ("minecraft and reading manga", ["video-games", "reading-for-fun"]),
        ("patinar con mis amigos", ["action-sports", "hanging-out"]),
        ("nothing much", []),
    ],
)
def test_the_open_question_finds_interest_tags(
    text: str, tags: list[str], services: Services
) -> None:
    found = find_tags(text, services.dialog.vocabulary)
    assert [match.term.id for match in found] == tags


async def test_words_we_do_not_recognise_get_a_kind_got_it_and_no_tags(
    learner: Chat, services: Services
) -> None:
    await learner.script(f"""
        > /interests
        {items("[unsure]")}
        > mostly I just chill
        < Got it, thanks for telling me!
        < Nothing here really grabbed you, and that's okay!
        = none
    """)
    [profile] = await profiles(services)
    assert profile.tags == []
    assert profile.top_areas == []


# -- results -------------------------------------------------------------------------


async def test_disliking_everything_gives_no_top_area_and_a_kind_message(
    learner: Chat, services: Services
) -> None:
    await learner.script(f"""
        > /interests
        {items("[dislike]")}
        > skip
        < Nothing here really grabbed you, and that's okay!
        <! You light up
        < Where to from here?
    """)
    [profile] = await profiles(services)
    assert profile.scores == dict.fromkeys("RIASEC", 0)
    assert profile.top_areas == []


async def test_a_re_run_adds_a_newer_profile_that_wins(
    learner: Chat, services: Services, clock: FakeClock
) -> None:
    await learner.script(f"""
        > /interests
        {items("[dislike]")}
        > skip
    """)
    clock.set(MONDAY + timedelta(days=7))
    await learner.script(f"""
        > /interests
        < 12 short questions
        {items("[like]")}
        > skip
        < You light up around
    """)
    first, second = await profiles(services)
    assert first.top_areas == []
    assert second.top_areas == ["R", "I", "A"]
    async with services.db.reading() as session:
        person = await find_person(session, "web", "learner-1")
        assert person is not None
        assert person.id is not None
        newest = await latest_profile(session, person.id)
    assert newest is not None
    assert newest.id == second.id


async def test_the_export_lists_every_profile(learner: Chat, services: Services) -> None:
    await learner.script(FIXED_RUN)
    await learner.script(f"""
        > /interests
        {items("[dislike]")}
        > skip
    """)
    export = await services.turns.export("web", "learner-1")
    assert export is not None
    assert export["interests"] == [
        {
            "scores": FIXED_SCORES,
            "top_areas": ["R", "I", "S"],
            "tags": ["art", "sports"],
            "at": "2026-11-23T15:00:00+00:00",
        },
        {
            "scores": dict.fromkeys("RIASEC", 0),
            "top_areas": [],
            "tags": [],
            "at": "2026-11-23T15:00:00+00:00",
        },
    ]


# -- scoring, without the chat -------------------------------------------------------


def answers(**given: str | None) -> dict[str, str | None]:
    return {item: given.get(item) for item in ITEMS}


def test_scores_are_the_share_of_points_with_skipped_items_left_out() -> None:
    scores = score_areas(answers(bike="like", treehouse="unsure", sky="dislike", comic="like"), [])
    # R 👍🤷 = 3/4; I 👎 and a skip = 0/2; A 👍 and a skip = 2/2; no other answers.
    assert scores == {"R": 75, "I": 0, "A": 100}


def test_tags_add_to_their_area_capped_and_start_unknown_areas_neutral() -> None:
    scores = score_areas(answers(bike="like", treehouse="like", sky="dislike"), ["R", "I", "E"])
    assert scores == {"R": 100, "I": 25, "E": 75}


def test_top_areas_need_a_minimum_and_ties_go_in_riasec_order() -> None:
    assert top_areas({"R": 50, "I": 50, "A": 25}) == []
    assert top_areas({"C": 75, "S": 75, "E": 100, "R": 50}) == ["E", "S", "C"]
    assert top_areas(dict.fromkeys("CESAIR", 100)) == ["R", "I", "A"]


# -- the flow and its words ----------------------------------------------------------


def test_the_flow_asks_each_item_once_mixing_areas(services: Services) -> None:
    flow = services.dialog.flows.flows["interests"]
    asked: list[str] = []
    step = flow.steps[flow.start]
    while step.next != "end":
        step = flow.steps[step.next or ""]
        if step.slot and step.slot.startswith("interests.answer."):
            item = step.slot.removeprefix("interests.answer.")
            asked.append(item)
            assert step.name == item
            assert step.optional
            assert step.expect == "choice"
            assert [c.value for c in step.choices] == ["like", "unsure", "dislike"]
            unsure = flow.steps[step.unknown or ""]
            assert unsure.action == "interests.unsure"
            assert unsure.args == {"slot": step.slot}
            assert unsure.next == step.next
    assert sorted(asked) == sorted(ITEMS)
    areas = [ITEMS[item] for item in asked]
    assert all(a != b for a, b in itertools.pairwise(areas))
    assert sorted(areas[:6]) == sorted("RIASEC")


def test_every_sentence_the_module_says_exists_in_both_languages() -> None:
    catalogs = Catalogs.load(shipped("dialogs") / "locales")
    keys = [
        "interests.tags_noted",
        "interests.got_it",
        "interests.result",
        "interests.result_none",
        "interests.next_prompt",
        "interests.next_button.goal",
        "interests.next_button.next",
        *(f"interests.area.{area}" for area in "RIASEC"),
    ]
    assert [key for key in keys if not catalogs.has(key)] == []
    # Spanish joins the area phrases with "y", which would have to be "e" before i-/hi-.
    for area in "RIASEC":
        phrase = catalogs.render(f"interests.area.{area}", "es")
        assert not phrase.lower().startswith(("i", "hi")), phrase
