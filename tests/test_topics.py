"""The tag vocabulary: the shipped file is sound, and free text finds the right terms."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bot.engine.topics import AREAS, SUBJECTS, Kind, Term, TermMatch, Vocabulary
from bot.paths import shipped

VOCABULARY = shipped("content") / "vocabulary.yaml"


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary.load(VOCABULARY)


def ids(found: list[TermMatch]) -> list[str]:
    return [m.term.id for m in found]


# -- the shipped vocabulary ------------------------------------------------------------


def test_the_vocabulary_covers_every_subject_and_area(vocabulary: Vocabulary) -> None:
    topics, interests = vocabulary.topics(), vocabulary.interests()
    assert len(topics) >= 60
    assert len(interests) >= 30
    assert set(Counter(t.group for t in topics)) == set(SUBJECTS)
    assert set(Counter(t.group for t in interests)) == set(AREAS)
    assert all(t.kind == "topic" for t in topics)
    assert all(t.kind == "interest" for t in interests)


def test_get_finds_topics_and_interests(vocabulary: Vocabulary) -> None:
    assert vocabulary.get("fractions") == Term("fractions", "topic", "math")
    assert vocabulary.get("art") == Term("art", "interest", "A")
    assert vocabulary.get("no-such-thing") is None


# -- finding terms in learner text -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("fractions", "topic", "fractions"),
        ("fractoins", "topic", "fractions"),
        ("Fracciones", "topic", "fractions"),
        ("quebrados", "topic", "fractions"),
        ("algebra stuff", "topic", "algebra"),
        ("Álgebra", "topic", "algebra"),
        ("i want to get better at coding games", "topic", "coding"),
        ("volcanos", "topic", "volcanoes"),
        ("volcanes", "topic", "volcanoes"),
        ("quiero dibujar mejor", "topic", "drawing"),
        ("quiero dibujar mejor", "interest", "art"),
        ("i like doodling", "interest", "art"),
        ("histroy", "topic", "history"),
        ("scince homework", "topic", "science-general"),
        ("web desing", "topic", "web-design"),
        ("time managment", "topic", "time-management"),
        ("i keep procrastinating", "topic", "time-management"),
        ("reading comprehension", "topic", "reading-comprehension"),
        ("comprensión lectora", "topic", "reading-comprehension"),
        ("dividing things into parts", "topic", "fractions"),
        ("i want to learn python", "topic", "python"),
        ("multiplication tables", "topic", "multiplication"),
        ("las tablas de multiplicar", "topic", "multiplication"),
        ("public speaking", "topic", "confidence"),
        ("i am so stressed", "topic", "stress"),
        ("math", "topic", "math-general"),
        ("mates", "topic", "math-general"),
        ("me gustan los videojuegos", "interest", "video-games"),
        ("fútbol", "interest", "sports"),
        ("I love LEGO", "interest", "building-things"),
        ("helping people", "interest", "helping-others"),
        ("student council", "interest", "leading"),
        ("collecting pokemon cards", "interest", "collecting"),
    ],
)
def test_find_the_best_term(vocabulary: Vocabulary, text: str, kind: Kind, expected: str) -> None:
    found = vocabulary.find(text, kind)
    assert found, text
    assert found[0].term.id == expected


@pytest.mark.parametrize(
    "text",
    [
        "school",
        "stuff",
        "hello",
        "hola",
        "homework",
        "teacher",
        "class",
        "my grades",
        "better grades",
        "start",
        "ready",  # one letter more than the synonym "read", but 4 letters are exact-only
        "bread",
        "i am ready",
        "part of my homework is hard",
        "yes",
        "no",
        "ok",
        "i don't know",
        "nothing",
        "something",
        "thanks",
        "gracias",
        "good morning",
        "i want to be better",
        "musik",  # one wrong letter in five is too far
        "",
        "👍",
    ],
)
def test_find_nothing(vocabulary: Vocabulary, text: str) -> None:
    assert vocabulary.find(text) == []


def test_find_orders_by_score_and_keeps_one_match_per_term(vocabulary: Vocabulary) -> None:
    found = vocabulary.find("fractoins, fractions and more fractions and algebra", "topic")
    assert ids(found) == ["fractions", "algebra"]
    assert found[0].score == 100
    assert found[0].phrase == "fractions"


def test_find_reports_the_learners_words_and_the_score(vocabulary: Vocabulary) -> None:
    (match,) = vocabulary.find("fractoins", "topic")
    assert match.phrase == "fractoins"
    assert 90 < match.score < 100


def test_a_longer_phrase_claims_its_words(vocabulary: Vocabulary) -> None:
    # "reading comprehension" is one topic, not also `reading`.
    assert ids(vocabulary.find("reading comprehension", "topic")) == ["reading-comprehension"]


def test_find_respects_kind_and_limit(vocabulary: Vocabulary) -> None:
    text = "i like to draw and play soccer and i need help with fractions and essays"
    assert ids(vocabulary.find(text, "interest")) == ["art", "sports"]
    topics = ids(vocabulary.find(text, "topic", limit=5))
    assert set(topics) == {"drawing", "fractions", "essays"}
    assert len(vocabulary.find(text, "topic", limit=1)) == 1
    both = vocabulary.find(text, limit=10)
    assert {m.term.kind for m in both} == {"topic", "interest"}


# -- loading ---------------------------------------------------------------------------

GOOD_TOPIC = "  - {id: fractions, subject: math, en: [fractions], es: [fracciones]}\n"
GOOD_INTEREST = "  - {id: art, area: A, en: [drawing], es: [dibujar]}\n"


def write(tmp_path: Path, topics: str = GOOD_TOPIC, interests: str = GOOD_INTEREST) -> Path:
    path = tmp_path / "vocabulary.yaml"
    path.write_text(f"topics:\n{topics}interests:\n{interests}", encoding="utf-8")
    return path


def test_load_a_small_vocabulary(tmp_path: Path) -> None:
    vocabulary = Vocabulary.load(write(tmp_path))
    assert vocabulary.topics() == [Term("fractions", "topic", "math")]
    assert vocabulary.interests() == [Term("art", "interest", "A")]
    assert ids(vocabulary.find("drawing")) == ["art"]


@pytest.mark.parametrize(
    ("topics", "interests", "problem"),
    [
        (GOOD_TOPIC * 2, GOOD_INTEREST, "id 'fractions' repeats"),
        (GOOD_TOPIC, "  - {id: fractions, area: A, en: [x], es: [y]}\n", "repeats"),
        ("  - {id: x, subject: cooking, en: [a], es: [b]}\n", GOOD_INTEREST, "subject must be"),
        (GOOD_TOPIC, "  - {id: x, area: Q, en: [a], es: [b]}\n", "area must be"),
        ("  - {id: Bad Id, subject: math, en: [a], es: [b]}\n", GOOD_INTEREST, "lowercase"),
        ("  - {id: x, subject: math, en: [a]}\n", GOOD_INTEREST, "es synonyms"),
        ("  - {id: x, subject: math, en: [], es: [b]}\n", GOOD_INTEREST, "en synonyms"),
        ("  - {id: x, subject: math, en: [7], es: [b]}\n", GOOD_INTEREST, "not a synonym"),
        ("  - {id: x, subject: math, en: [a b c d e], es: [b]}\n", GOOD_INTEREST, "4 words"),
        ("  - {id: x, subject: math, en: [a], es: [b], fr: [c]}\n", GOOD_INTEREST, "unknown"),
        ("  - just a string\n", GOOD_INTEREST, "is a mapping"),
        (
            GOOD_TOPIC + "  - {id: y, subject: math, en: [Fractions], es: [z]}\n",
            GOOD_INTEREST,
            "belongs to both",
        ),
        ("", GOOD_INTEREST, "non-empty list"),
    ],
)
def test_a_malformed_vocabulary_is_named(
    tmp_path: Path, topics: str, interests: str, problem: str
) -> None:
    path = write(tmp_path, topics, interests)
    with pytest.raises(ValueError, match=r"vocabulary\.yaml") as caught:
        Vocabulary.load(path)
    assert problem in str(caught.value)


def test_a_vocabulary_that_is_not_yaml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "vocabulary.yaml"
    path.write_text("topics: [\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"vocabulary\.yaml"):
        Vocabulary.load(path)


def test_the_same_synonym_may_tag_a_topic_and_an_interest(tmp_path: Path) -> None:
    path = write(tmp_path, "  - {id: drawing, subject: arts-music, en: [drawing], es: [dibujo]}\n")
    vocabulary = Vocabulary.load(path)
    assert sorted(ids(vocabulary.find("drawing"))) == ["art", "drawing"]
