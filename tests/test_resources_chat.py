"""Resources in chat: /resources, "more", searches, 👍 / 👎, and what is stored.

The shipped catalog (content/catalog) is the data: these tests read like the chat a
learner would have with it, and check the rows the export and the digest rely on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import col, select

from bot.clock import FakeClock
from bot.coach.catalog import GRADE_BANDS
from bot.coach.resources import ResourceLibrary
from bot.services import Services
from bot.store.models import CatalogResource, InterestProfile, Person, RecommendationShown
from bot.testing.conversation import Chat
from bot.testing.people import seed_goal, seed_learner

MONDAY = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


async def learner(services: Services, clock: FakeClock, **fields: Any) -> Person:
    clock.set(MONDAY)
    return await seed_learner(services.db, services.clock, "learner-1", **fields)


async def shown(services: Services) -> list[RecommendationShown]:
    async with services.db.reading() as session:
        rows = await session.exec(select(RecommendationShown).order_by(col(RecommendationShown.id)))
        return list(rows.all())


def resource_ids(chat: Chat) -> list[str]:
    """The resources of the last turn, read off their 👍 buttons."""
    return [b.removeprefix("like:") for b in chat.buttons if b.startswith("like:")]


def library(services: Services) -> ResourceLibrary:
    found = services.dialog.extras["resources"]
    assert isinstance(found, ResourceLibrary)
    return found


async def test_three_for_the_goal_each_with_a_reason_and_thumbs(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock, grade_band="3-5")
    await seed_goal(
        services.db, person, "get better at fractions", created_at=MONDAY, topic="fractions"
    )
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /resources
        < Here are 3 I picked for you:
        < Fraction arithmetic (Khan Academy, course · 30 min)
        < https://www.khanacademy.org/math/arithmetic/fraction-arithmetic
        < Because your goal is fractions.
        = none
    """)
    assert len(chat.last.replies) == 3
    ids = resource_ids(chat)
    assert len(ids) == 3
    assert chat.buttons[-1] == "resources"  # "More" on the last one
    rows = await shown(services)
    assert [row.resource_id for row in rows] == ids
    assert all(row.reason == "Because your goal is fractions." for row in rows[:2])
    assert all(row.shown_at == MONDAY for row in rows)
    assert "fractions" in rows[0].tags


async def test_more_shows_new_ones_until_fourteen_days_have_passed(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock, grade_band="3-5")
    await seed_goal(
        services.db, person, "get better at fractions", created_at=MONDAY, topic="fractions"
    )
    chat = Chat(services.turns, "learner-1")
    await chat.send("/resources")
    first = resource_ids(chat)
    await chat.script("""
        > more
        < Here are 3 more:
    """)
    second = resource_ids(chat)
    assert not set(first) & set(second)
    await chat.press("resources")  # the "More" button
    third = resource_ids(chat)
    assert not set(third) & (set(first) | set(second))

    clock.advance(days=13)
    await chat.send("/resources")
    assert not set(resource_ids(chat)) & set(first)
    clock.advance(days=2)  # first shown 15 days ago: allowed again
    await chat.send("/resources")
    assert set(resource_ids(chat)) & set(first)


async def test_thumbs_down_hides_it_for_good_and_thumbs_up_finds_similar(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock, grade_band="3-5")
    await seed_goal(
        services.db, person, "get better at fractions", created_at=MONDAY, topic="fractions"
    )
    chat = Chat(services.turns, "learner-1")
    await chat.send("/resources")
    disliked, liked = resource_ids(chat)[:2]
    await chat.press(f"dislike:{disliked}")
    chat.expect_reply("Got it: I won't show")
    chat.expect_reply("again, and I'll show fewer like it.")
    assert chat.buttons == ["resources"]  # no menu after it, just "More"
    await chat.press(f"like:{liked}")
    chat.expect_reply("Thanks! I'll look for more like")

    for _ in range(4):
        clock.advance(days=15)
        await chat.send("/resources")
        assert disliked not in resource_ids(chat)
    rows = await shown(services)
    assert {(r.resource_id, r.feedback) for r in rows if r.feedback} == {
        (disliked, -1),
        (liked, 1),
    }


async def test_feedback_in_the_middle_of_a_goal_asks_the_question_again(
    services: Services, clock: FakeClock
) -> None:
    await learner(services, clock)
    chat = Chat(services.turns, "learner-1")
    await chat.send("/resources")
    picked = resource_ids(chat)[0]
    await chat.script(f"""
        > /goal
        = text goal.wish
        > [like:{picked}]
        < Thanks! I'll look for more like
        = text goal.wish
    """)


async def test_feedback_on_something_never_shown_is_thanked_not_stored(
    services: Services, clock: FakeClock
) -> None:
    await learner(services, clock)
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > [like:khan-fraction-arithmetic]
        < I can't find that suggestion any more
    """)
    assert await shown(services) == []


async def test_searches_in_english(services: Services, clock: FakeClock) -> None:
    await learner(services, clock, grade_band="6-8")
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > videos about volcanoes
        < I couldn't find exactly that, so here's the closest I have:
        < USGS Volcano Hazards Program
        < You asked for volcanoes.
        > games about coding
        < for coding:
        < Blockly Games
        <! Volcano
    """)
    async with services.db.reading() as session:
        rows = (await session.exec(select(RecommendationShown))).all()
    games = [r for r in rows if r.reason == "You asked for coding."]
    assert games
    catalog = library(services).shipped
    assert all(catalog.resources[r.resource_id].learning_resource_type == "game" for r in games)


async def test_a_spanish_search_from_an_english_speaker_finds_spanish_resources(
    services: Services, clock: FakeClock
) -> None:
    await learner(services, clock, grade_band="3-5")
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > algo de fracciones en español
        < Here are 2 for fractions:
        < Aritmética de fracciones (Khan Academy
        < es.khanacademy.org
        < You asked for fractions.
    """)
    catalog = library(services).shipped
    assert {catalog.resources[i].in_language for i in resource_ids(chat)} == {"es"}


async def test_something_short_keeps_to_fifteen_minutes(
    services: Services, clock: FakeClock
) -> None:
    await learner(services, clock, grade_band="6-8")
    chat = Chat(services.turns, "learner-1")
    await chat.send("something short on sleep")
    catalog = library(services).shipped
    picked = [catalog.resources[i] for i in resource_ids(chat)]
    assert picked
    assert all(
        r.time_required is not None and r.time_required <= timedelta(minutes=15) for r in picked
    )


async def test_a_spanish_learner_gets_spanish_and_asks_for_english(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock, locale="es", grade_band="6-8")
    await seed_goal(
        services.db, person, "mejorar en fracciones", created_at=MONDAY, topic="fractions"
    )
    chat = Chat(services.turns, "learner-1")
    await chat.script("""
        > /recursos
        < Aquí tienes
        < Porque tu meta es fracciones.
    """)
    catalog = library(services).shipped
    assert {catalog.resources[i].in_language for i in resource_ids(chat)} == {"es"}
    await chat.script("""
        > videos de fracciones en inglés
        < Pediste algo de fracciones.
    """)
    assert {catalog.resources[i].in_language for i in resource_ids(chat)} == {"en"}


async def test_grade_is_never_more_than_one_band_away(services: Services, clock: FakeClock) -> None:
    catalog = library(services).shipped
    for band in GRADE_BANDS:
        user = f"learner-{band}"
        clock.set(MONDAY)
        await seed_learner(services.db, services.clock, user, grade_band=band)
        chat = Chat(services.turns, user)
        index = GRADE_BANDS.index(band)
        allowed = set(GRADE_BANDS[max(0, index - 1) : index + 2])
        for _ in range(5):
            await chat.send("more")
            for rid in resource_ids(chat):
                levels = set(catalog.resources[rid].educational_level)
                assert not levels or levels & allowed, (band, rid, levels)


async def test_interests_shape_what_comes_without_a_goal(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock, grade_band="6-8")
    assert person.id is not None
    async with services.db.transaction() as session:
        session.add(
            InterestProfile(
                person_id=person.id,
                scores={"R": 90, "I": 70, "A": 10, "S": 10, "E": 10, "C": 10},
                top_areas=["R", "I"],
                tags=["coding-robots"],
                created_at=MONDAY,
            )
        )
    label = services.dialog.vocabulary.label("coding-robots", "en")
    chat = Chat(services.turns, "learner-1")
    await chat.script(f"""
        > /resources
        < Because you like {label}.
    """)
    catalog = library(services).shipped
    first = catalog.resources[resource_ids(chat)[0]]
    assert "coding-robots" in first.interest_tags


async def test_a_schools_own_resource_joins_after_an_import(
    services: Services, clock: FakeClock
) -> None:
    """A row in catalog_resources (what `coach catalog import` writes) is recommended
    once the library notices it, and replaces a shipped one with the same id."""
    person = await learner(services, clock, grade_band="6-8")
    await seed_goal(
        services.db, person, "learn about volcanoes", created_at=MONDAY, topic="volcanoes"
    )
    chat = Chat(services.turns, "learner-1")
    await chat.send("/resources")
    assert "school-volcano-lab" not in resource_ids(chat)
    async with services.db.transaction() as session:
        session.add(
            CatalogResource(
                id="school-volcano-lab",
                data={
                    "id": "school-volcano-lab",
                    "name": "Our volcano lab worksheet",
                    "url": "https://school.example.org/volcano-lab",
                    "description": "Mr. Diaz's baking-soda volcano lab.",
                    "provider": "Lincoln Middle School",
                    "learningResourceType": "activity",
                    "educationalLevel": ["6-8"],
                    "about": ["science"],
                    "teaches": ["volcanoes"],
                    "timeRequired": "PT40M",
                    "inLanguage": "en",
                },
                origin="science-dept.csv",
                created_at=MONDAY,
                updated_at=MONDAY,
            )
        )
    clock.advance(days=15)  # past the refresh interval (and the novelty window)
    await chat.script("""
        > /resources
        < Our volcano lab worksheet (Lincoln Middle School, activity · 40 min)
        < Because your goal is volcanoes.
    """)


async def test_the_export_lists_what_was_shown_and_the_feedback(
    services: Services, clock: FakeClock
) -> None:
    person = await learner(services, clock, grade_band="3-5")
    await seed_goal(
        services.db, person, "get better at fractions", created_at=MONDAY, topic="fractions"
    )
    chat = Chat(services.turns, "learner-1")
    await chat.send("/resources")
    first = resource_ids(chat)[0]
    await chat.press(f"like:{first}")
    exported = await services.turns.export("web", "learner-1")
    assert exported is not None
    items = exported["recommendations"]
    assert [item["resource_id"] for item in items] == [r.resource_id for r in await shown(services)]
    assert items[0] == {
        "resource_id": first,
        "name": "Fraction arithmetic",
        "url": "https://www.khanacademy.org/math/arithmetic/fraction-arithmetic",
        "tags": items[0]["tags"],
        "reason": "Because your goal is fractions.",
        "feedback": "up",
        "feedback_at": MONDAY.isoformat(),
        "time": MONDAY.isoformat(),
    }
    assert "fractions" in items[0]["tags"]
    assert items[1]["feedback"] is None
