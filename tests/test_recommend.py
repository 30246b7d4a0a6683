"""Recommending: ranking fixtures, boundaries, novelty and feedback over turns, variety,
reasons, and chat searches in both languages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.coach.catalog import Resource
from bot.coach.recommend import (
    REASON_GOAL,
    REASON_GOAL_AND_INTEREST,
    REASON_KEYS,
    REASON_SEARCH,
    Learner,
    Recommender,
    SearchQuery,
    area_labels_from,
    parse_search,
)
from bot.engine.locales import Catalogs
from bot.engine.topics import Vocabulary
from bot.paths import shipped

NOW = datetime(2026, 11, 23, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary.load(shipped("content") / "vocabulary.yaml")


@pytest.fixture(scope="module")
def areas() -> dict[str, dict[str, str]]:
    return area_labels_from(Catalogs.load(shipped("dialogs") / "locales"))


def res(
    id: str,
    topic: str | tuple[str, ...] = "fractions",
    *,
    band: str | tuple[str, ...] = "3-5",
    lang: str = "en",
    type: str = "video",
    provider: str = "Khan Academy",
    minutes: int | None = 10,
    areas: tuple[str, ...] = (),
    tags: tuple[str, ...] = (),
    keywords: tuple[str, ...] = (),
) -> Resource:
    """A resource in one line: only what a test is about differs from the defaults."""
    return Resource(
        id=id,
        name=id.replace("-", " ").title(),
        url=f"https://example.org/{id}",
        description="",
        provider=provider,
        learning_resource_type=type,
        educational_level=(band,) if isinstance(band, str) else band,
        about=(),
        teaches=(topic,) if isinstance(topic, str) else topic,
        keywords=keywords,
        interest_areas=areas,
        interest_tags=tags,
        time_required=None if minutes is None else timedelta(minutes=minutes),
        in_language=lang,
    )


def top(rec: Recommender, learner: Learner, k: int = 3, **kw: Any) -> list[str]:
    kw.setdefault("now", NOW)
    return [r.resource.id for r in rec.recommend(learner, k, **kw)]


FRACTIONS_3_5 = Learner(grade_band="3-5", goal_topics=("fractions",))


# -- ranking fixtures ------------------------------------------------------------------


def test_goal_topic_beats_same_subject_beats_keyword_beats_unrelated(
    vocabulary: Vocabulary,
) -> None:
    rec = Recommender(
        [
            res("volcano-video", "volcanoes"),
            res("keyword-only", "reading", keywords=("fractions",)),
            res("ratios", "ratios"),
            res("fractions", "fractions"),
        ],
        vocabulary,
    )
    # Nothing unrelated is excluded for being unrelated: it just comes last.
    assert top(rec, FRACTIONS_3_5, k=4) == ["fractions", "ratios", "keyword-only", "volcano-video"]


def test_interest_and_preferences_order_resources_of_the_same_topic(
    vocabulary: Vocabulary,
) -> None:
    rec = Recommender(
        [
            res("plain", provider="A"),
            res("builds", areas=("R",), tags=("building-things",), provider="B"),
            res("long-one", minutes=90, provider="C"),
            res("game", type="game", provider="D"),
        ],
        vocabulary,
    )
    learner = Learner(
        grade_band="3-5",
        goal_topics=("fractions",),
        interest_areas=("R",),
        interest_tags=("building-things",),
        preferred_types=("game",),
        minutes_available=20,
    )
    assert top(rec, learner, k=4) == ["builds", "game", "plain", "long-one"]


def test_the_most_urgent_goal_comes_first(vocabulary: Vocabulary) -> None:
    rec = Recommender([res("algebra", "algebra"), res("fractions", "fractions")], vocabulary)
    learner = Learner(grade_band="3-5", goal_topics=("algebra", "fractions"))
    assert top(rec, learner) == ["algebra", "fractions"]


def test_no_goal_and_no_interest_still_gets_something(vocabulary: Vocabulary) -> None:
    rec = Recommender([res("a"), res("b", band="K-2")], vocabulary)
    assert top(rec, Learner(grade_band="3-5")) == ["a", "b"]


# -- grade and language boundaries -----------------------------------------------------


def test_one_band_away_is_allowed_but_ranked_lower_and_two_away_is_excluded(
    vocabulary: Vocabulary,
) -> None:
    rec = Recommender(
        [
            res("k2", band="K-2", provider="A"),
            res("g68", band="6-8", provider="B"),
            res("g912", band="9-12", provider="C"),
            res("g35", band="3-5", provider="D"),
            res("spans", band=("K-2", "9-12"), provider="E"),
        ],
        vocabulary,
    )
    found = top(rec, FRACTIONS_3_5, k=5)
    assert found[0] == "g35"
    assert set(found[1:]) == {"k2", "g68", "spans"}
    assert "g912" not in found
    # Grade 9-12 sees 6-8 one band down, never K-2 or 3-5.
    assert set(top(rec, Learner(grade_band="9-12", goal_topics=("fractions",)), k=5)) == {
        "g912",
        "g68",
        "spans",
    }


def test_other_languages_are_excluded_unless_asked(vocabulary: Vocabulary) -> None:
    rec = Recommender([res("en-one", lang="en"), res("es-one", lang="es")], vocabulary)
    assert top(rec, FRACTIONS_3_5) == ["en-one"]
    spanish = Learner(grade_band="3-5", goal_topics=("fractions",), locale="es")
    assert top(rec, spanish) == ["es-one"]
    assert top(rec, FRACTIONS_3_5, language="es") == ["es-one"]


# -- novelty over several turns ----------------------------------------------------------


def test_what_was_shown_rests_for_fourteen_days(vocabulary: Vocabulary) -> None:
    rec = Recommender([res("a", provider="A"), res("b", provider="B")], vocabulary)
    shown: dict[str, datetime] = {}
    first = top(rec, Learner(grade_band="3-5", goal_topics=("fractions",)), k=1)
    assert first == ["a"]
    shown["a"] = NOW
    learner = Learner(grade_band="3-5", goal_topics=("fractions",), shown=shown)
    tomorrow = NOW + timedelta(days=1)
    assert top(rec, learner, k=1, now=tomorrow) == ["b"]
    shown["b"] = tomorrow
    learner = Learner(grade_band="3-5", goal_topics=("fractions",), shown=dict(shown))
    assert top(rec, learner, now=NOW + timedelta(days=2)) == []
    # Asked for: they come back, after nothing fresher.
    assert top(rec, learner, now=NOW + timedelta(days=2), include_shown=True) == ["a", "b"]
    assert top(rec, learner, now=NOW + timedelta(days=14, hours=12)) == ["a"]
    assert top(rec, learner, now=NOW + timedelta(days=15, hours=1)) == ["a", "b"]


# -- feedback ------------------------------------------------------------------------------


def test_a_like_lifts_a_similar_resource(vocabulary: Vocabulary) -> None:
    rec = Recommender(
        [
            res("other-a", "geometry", provider="CK-12", type="article"),
            res("same-kind", "geometry", provider="PhET", type="interactive"),
            res("liked-one", "ratios", provider="PhET", type="interactive"),
        ],
        vocabulary,
    )
    base = Learner(grade_band="3-5", goal_topics=("geometry",))
    assert top(rec, base, k=2) == ["other-a", "same-kind"]
    liked = Learner(grade_band="3-5", goal_topics=("geometry",), liked=frozenset({"liked-one"}))
    assert top(rec, liked, k=2) == ["same-kind", "other-a"]


def test_a_dislike_hides_that_one_and_lowers_its_neighbours(vocabulary: Vocabulary) -> None:
    rec = Recommender(
        [
            res("disliked", "fractions", provider="A", type="video"),
            res("neighbour", ("ratios", "fractions"), provider="B", type="article"),
            res("other", "ratios", provider="C", type="game"),
        ],
        vocabulary,
    )
    ratios = Learner(grade_band="3-5", goal_topics=("ratios",))
    assert top(rec, ratios) == ["neighbour", "other", "disliked"]
    turn_two = Learner(grade_band="3-5", goal_topics=("ratios",), disliked=frozenset({"disliked"}))
    assert top(rec, turn_two) == ["other", "neighbour"]
    # Hidden even when asked for what was shown before, and from searches.
    assert "disliked" not in top(rec, turn_two, include_shown=True, topic="fractions")


# -- variety -------------------------------------------------------------------------------


def test_top_three_mix_providers_and_types_when_there_is_a_choice(
    vocabulary: Vocabulary,
) -> None:
    same = [res(f"khan-{n}", provider="Khan Academy", type="video") for n in range(5)]
    others = [
        res("ck12-video", provider="CK-12", type="video", minutes=90),
        res("khan-game", provider="Khan Academy", type="game", minutes=90),
        res("phet-sim", provider="PhET", type="interactive", minutes=90),
    ]
    rec = Recommender([*same, *others], vocabulary)
    learner = Learner(grade_band="3-5", goal_topics=("fractions",), minutes_available=20)
    found = rec.recommend(learner, 3, NOW)
    assert len({r.resource.provider for r in found}) >= 2
    assert len({r.resource.learning_resource_type for r in found}) >= 2
    assert found[0].resource.id == "khan-0"  # the best one still leads
    # With no alternative, three alike is still better than nothing.
    assert len(Recommender(same, vocabulary).recommend(learner, 3, NOW)) == 3


# -- reasons -------------------------------------------------------------------------------


def test_a_goal_and_interest_match_says_both_in_the_learners_language(
    vocabulary: Vocabulary, areas: dict[str, dict[str, str]]
) -> None:
    catalog = [
        res("lego-fractions", areas=("R",), lang="en"),
        res("fracciones-lego", areas=("R",), lang="es"),
    ]
    rec = Recommender(catalog, vocabulary, areas)
    learner = Learner(grade_band="3-5", goal_topics=("fractions",), interest_areas=("R", "I"))
    [found] = rec.recommend(learner, 1, NOW)
    assert found.reason_key == REASON_GOAL_AND_INTEREST
    assert found.reason_params == {"area": "building things", "topic": "fractions"}
    spanish = Learner(
        grade_band="3-5", goal_topics=("fractions",), interest_areas=("R",), locale="es"
    )
    [found] = rec.recommend(spanish, 1, NOW)
    assert found.reason_params == {"area": "construir cosas", "topic": "fracciones"}
    # A matching interest tag is named rather than the broad area.
    tagged = Recommender([res("soccer-stats", "statistics", tags=("sports",))], vocabulary)
    sporty = Learner(grade_band="3-5", goal_topics=("statistics",), interest_tags=("sports",))
    [found] = tagged.recommend(sporty, 1, NOW)
    assert found.reason_params == {"area": "sports", "topic": "statistics"}


def test_reasons_are_known_keys(vocabulary: Vocabulary) -> None:
    rec = Recommender([res("a"), res("b", "ratios"), res("c", "volcanoes")], vocabulary)
    found = rec.recommend(FRACTIONS_3_5, 3, NOW)
    assert found[0].reason_key == REASON_GOAL
    assert all(r.reason_key in REASON_KEYS for r in found)


# -- searches ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("videos about volcanoes", SearchQuery(types=("video",), topic="volcanoes")),
        ("vídeos sobre volcanes", SearchQuery(types=("video",), topic="volcanoes")),
        ("algo de fracciones en español", SearchQuery(language="es", topic="fractions")),
        ("fractions in spanish", SearchQuery(language="es", topic="fractions")),
        ("algebra en inglés", SearchQuery(language="en", topic="algebra")),
        ("something short on essays", SearchQuery(topic="essays", max_minutes=15)),
        ("algo corto de ensayos", SearchQuery(topic="essays", max_minutes=15)),
        ("a quick game about coding", SearchQuery(types=("game",), topic="coding", max_minutes=15)),
        ("juegos de menos de 10 minutos", SearchQuery(types=("game",), max_minutes=10)),
        ("under 10 minutes of geometry", SearchQuery(topic="geometry", max_minutes=10)),
        ("un artículo rápido sobre el espacio", SearchQuery(("article",), None, "space", 15)),
        ("spanish videos", SearchQuery(types=("video",), topic="spanish-language")),
    ],
)
def test_search_phrasings(text: str, expected: SearchQuery, vocabulary: Vocabulary) -> None:
    assert parse_search(text, vocabulary) == expected


def test_a_search_filters_by_topic_type_language_and_time(vocabulary: Vocabulary) -> None:
    rec = Recommender(
        [
            res("volcano-video", "volcanoes", type="video", minutes=8),
            res("volcano-long", "volcanoes", type="video", minutes=40, provider="B"),
            res("volcano-game", "volcanoes", type="game", provider="C"),
            res("volcan-video", "volcanoes", type="video", lang="es", minutes=5),
            res("space-video", "space", type="video"),
        ],
        vocabulary,
    )
    query = parse_search("short videos about volcanoes", vocabulary)
    learner = Learner(grade_band="3-5")
    found = rec.recommend(
        learner,
        3,
        NOW,
        language=query.language,
        types=query.types,
        topic=query.topic,
        max_minutes=query.max_minutes,
    )
    assert [r.resource.id for r in found] == ["volcano-video"]
    assert found[0].reason_key == REASON_SEARCH
    query = parse_search("vídeos de volcanes en español", vocabulary)
    assert top(rec, learner, language=query.language, types=query.types, topic=query.topic) == [
        "volcan-video"
    ]
