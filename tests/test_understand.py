"""Intents, yes/no, ratings and numbers: what learners type, and what must not match."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.engine.understand import (
    IntentMatch,
    IntentMatcher,
    intent_threshold,
    normalize,
    parse_number,
    parse_rating,
    parse_yes_no,
    similarity,
)
from bot.paths import shipped

INTENTS = shipped("dialogs") / "intents"
ENGINE_INTENTS = ("pause", "resume", "cancel", "language_en", "language_es")


@pytest.fixture(scope="module")
def matcher() -> IntentMatcher:
    return IntentMatcher.load(INTENTS)


# -- normalize -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Menú", "menu"),
        ("¡Hola, Qué  TAL!", "hola que tal"),
        ("  sí  ", "si"),
        ("don't", "dont"),
        ("warm-up", "warm up"),
        ("ok👍", "ok 👍"),
        ("👍🏽", "👍"),
        ("4️⃣", "4"),
        ("⭐️⭐️", "⭐ ⭐"),
        ("Español\n\tpor favor", "espanol por favor"),
        ("/HELP", "help"),
        ("...", ""),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


# -- similarity and thresholds ---------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "at_least", "below"),
    [
        ("hlep", "help", 87, 88),  # a swap costs half an edit
        ("mena", "menu", 0, 76),  # a wrong letter costs a whole one
        ("paus", "pause", 88, 90),  # a dropped letter: fuzz.ratio
        ("help", "help", 100, 101),
    ],
)
def test_similarity_forgives_swaps_more_than_substitutions(
    a: str, b: str, at_least: float, below: float
) -> None:
    assert at_least <= similarity(a, b) < below


@pytest.mark.parametrize(
    ("length", "threshold"), [(1, 100), (3, 100), (4, 85), (5, 88), (7, 88), (8, 85), (12, 82)]
)
def test_intent_threshold_by_length(length: int, threshold: float) -> None:
    assert intent_threshold(length) == threshold


# -- intents ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("help", "help"),
        ("hlep", "help"),
        ("helpp", "help"),
        ("/help", "help"),
        ("/HELP", "help"),
        ("/help@CoachBot", "help"),
        ("/help me now", "help"),
        ("ayuda", "help"),
        ("Ayúdame", "help"),
        ("i need help", "help"),
        ("menu", "menu"),
        ("menú", "menu"),
        ("MENU!", "menu"),
        ("/menu", "menu"),
        ("opciones", "menu"),
        ("i want to set a goal", "goal"),
        ("i wnat to set a goal", "goal"),
        ("quiero poner una meta", "goal"),
        ("pause", "pause"),
        ("paus", "pause"),
        ("stop", "pause"),
        ("pausa", "pause"),
        ("carry on", "resume"),
        ("continuar", "resume"),
        ("start over", "cancel"),
        ("empezar de nuevo", "cancel"),
        ("/reset", "cancel"),
        ("skip", "skip"),
        ("no sé", "dont_know"),
        ("English please", "language_en"),
        ("inglés", "language_en"),
        ("español", "language_es"),
        ("/español", "language_es"),
        ("/espanol", "language_es"),
        ("hi", "greet"),
        ("hey", "greet"),
        ("hola", "greet"),
        ("buenos días", "greet"),
        ("quick warm up", "warmup"),
        ("quik warmup", "warmup"),
        ("calentamiento", "warmup"),
    ],
)
def test_intent_matches(matcher: IntentMatcher, text: str, intent: str) -> None:
    found = matcher.match(text, "en")
    assert found is not None, text
    assert found.intent == intent


@pytest.mark.parametrize(
    "text",
    [
        # Containing an example is not being one.
        "stop procrastinating",
        "can you help me with my homework later",
        "i want to pause my music practice",
        # Names and everyday words one letter away from a command word.
        "Mena",
        "Paula",
        "Maria",
        "Lucía",
        "Sam",
        "Canela",
        "Helen",
        "seguro",
        "start",
        # Answers the engine must read as answers.
        "yes",
        "no",
        "nah",
        "yep",
        "4",
        "never mind",
        "purple",
        "banana",
        "qwzx vbnm",
        "maybe later perhaps",
        "",
        "   ",
        "?!",
        "/unknowncommand",
    ],
)
def test_intent_does_not_match(matcher: IntentMatcher, text: str) -> None:
    assert matcher.match(text, "en") is None


def test_short_messages_match_only_exactly(matcher: IntentMatcher) -> None:
    assert matcher.match("hi", "en") is not None
    assert matcher.match("hiy", "en") is None  # 3 characters, one edit from "hii"
    assert matcher.match("hu", "en") is None


def test_intents_restricts_the_candidates(matcher: IntentMatcher) -> None:
    assert matcher.match("help", "en", intents=ENGINE_INTENTS) is None
    assert matcher.match("/help", "en", intents=["menu"]) is None
    found = matcher.match("pause", "en", intents=ENGINE_INTENTS)
    assert found == IntentMatch("pause", 100.0, "en")
    assert matcher.match("skip", "en", intents=["skip"]) is not None
    assert matcher.match("skip", "en", intents=[]) is None


def test_every_locale_is_searched_and_the_asked_one_wins_ties() -> None:
    matcher = IntentMatcher({"en": {"menu": ["menu"]}, "es": {"menu": ["menú"]}})
    assert matcher.match("menu", "es") == IntentMatch("menu", 100.0, "es")
    assert matcher.match("menu", "en") == IntentMatch("menu", 100.0, "en")
    spanish_only = IntentMatcher({"es": {"help": ["ayuda"]}})
    assert spanish_only.match("ayuda", "en") == IntentMatch("help", 100.0, "es")


def test_the_best_score_wins_over_the_asked_locale() -> None:
    matcher = IntentMatcher({"en": {"pause": ["pause"]}, "es": {"resume": ["pauser"]}})
    found = matcher.match("pause", "es")
    assert found is not None
    assert (found.intent, found.locale) == ("pause", "en")


def test_shipped_intents_cover_the_engine_and_the_flows(matcher: IntentMatcher) -> None:
    assert {*ENGINE_INTENTS, "skip", "help", "menu", "greet", "warmup"} <= matcher.intents()


def test_one_phrase_under_two_intents_is_refused() -> None:
    with pytest.raises(ValueError, match="also an example of"):
        IntentMatcher({"en": {"pause": ["Stop"], "cancel": ["stop!"]}})


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("- just\n- a list\n", "expected a mapping"),
        ("help: help\n", "needs a list"),
        ("help: []\n", "needs a list"),
        ("help: [help, 3]\n", "not text"),
        ("help: [help]\nhelp: [ayuda]\n", "duplicate key"),
        ("help: [help\n", ""),
        ("pause: [stop]\ncancel: [Stop]\n", "also an example of"),
    ],
)
def test_a_malformed_intent_file_is_named(tmp_path: Path, content: str, problem: str) -> None:
    (tmp_path / "en.yaml").write_text("help: [help]\n", encoding="utf-8")
    (tmp_path / "es.yaml").write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=r"es\.yaml") as caught:
        IntentMatcher.load(tmp_path)
    assert problem in str(caught.value)


def test_an_empty_intent_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no intent files"):
        IntentMatcher.load(tmp_path)


def test_load_reads_locales_from_file_names(tmp_path: Path) -> None:
    (tmp_path / "en.yaml").write_text("help: [help, /help]\n", encoding="utf-8")
    (tmp_path / "es.yaml").write_text("help: [ayuda]\n", encoding="utf-8")
    matcher = IntentMatcher.load(tmp_path)
    assert matcher.intents() == {"help"}
    assert matcher.match("ayuda") == IntentMatch("help", 100.0, "es")
    assert matcher.match("/help") == IntentMatch("help", 100.0, "en")


# -- yes / no --------------------------------------------------------------------------

YES = [
    "yes",
    "y",
    "Yes!",
    "YES",
    "yeah",
    "yep",
    "yup",
    "sure",
    "ok",
    "okay",
    "of course",
    "definitely",
    "absolutely",
    "sounds good",
    "yes please",
    "sure thing",
    "sí",
    "si",
    "Sí, claro",
    "claro",
    "vale",
    "dale",
    "por supuesto",
    "de acuerdo",
    "👍",
    "👍🏽",
    "✅",
    "👌",
    "ok 👍",
    "yess",
    "yas",
    "yse",
    "siii",
]
NO = [
    "no",
    "n",
    "No.",
    "nope",
    "nah",
    "not really",
    "no thanks",
    "no, thanks",
    "never mind",
    "no gracias",
    "para nada",
    "👎",
    "❌",
    "noo",
    "nooo",
    "nop",
    "noep",
    "i don't think so",
    "ahora no",
]
NEITHER = [
    "maybe",
    "maybe later perhaps",
    "yes no",
    "sí pero no",
    "no idea",
    "no sé",
    "not sure",
    "now",
    "hello",
    "idk",
    "sup",
    "",
    "   ",
    "👍👎",
    "banana",
    "4",
]


@pytest.mark.parametrize("text", YES)
def test_yes(text: str) -> None:
    assert parse_yes_no(text) is True


@pytest.mark.parametrize("text", NO)
def test_no(text: str) -> None:
    assert parse_yes_no(text) is False


@pytest.mark.parametrize("text", NEITHER)
def test_neither_yes_nor_no(text: str) -> None:
    assert parse_yes_no(text) is None


# -- ratings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rating"),
    [
        ("4", 4),
        (" 4 ", 4),
        ("4/5", 4),
        ("4 / 5", 4),
        ("4 out of 5", 4),
        ("4 de 5", 4),
        ("a 4", 4),
        ("I'd say a 4", 4),
        ("4 stars", 4),
        ("four", 4),
        ("a four", 4),
        ("cuatro", 4),
        ("tres", 3),
        ("one", 1),
        ("1️⃣", 1),
        ("5️⃣", 5),
        ("⭐⭐⭐", 3),
        ("⭐️⭐️⭐️⭐️", 4),
        ("⭐", 1),
        ("😞", 1),
        ("😢", 1),
        ("🙁", 2),
        ("😕", 2),
        ("😐", 3),
        ("🙂", 4),
        ("😊", 4),
        ("😀", 5),
        ("😄", 5),
        ("🤩", 5),
        ("🥳", 5),
        ("🙂🙂", 4),
        ("terrible", 1),
        ("awful", 1),
        ("horrible", 1),
        ("fatal", 1),
        ("rough", 1),
        ("bad", 2),
        ("meh", 2),
        ("mal", 2),
        ("ok", 3),
        ("okay", 3),
        ("so-so", 3),
        ("regular", 3),
        ("más o menos", 3),
        ("not bad", 3),
        ("good", 4),
        ("pretty good", 4),
        ("it was good", 4),
        ("bien", 4),
        ("buena", 4),
        ("great", 5),
        ("excellent", 5),
        ("amazing", 5),
        ("genial", 5),
        ("fue genial", 5),
        ("excelente", 5),
        ("exelente", 5),
        ("terible", 1),
        ("muy bien", 5),
        ("good 🙂", 4),
    ],
)
def test_rating(text: str, rating: int) -> None:
    assert parse_rating(text) == rating


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "6",
        "7",
        "seven",
        "siete",
        "3.5",
        "3,5",
        "3 or 4",
        "1 2",
        "8/10",
        "⭐⭐⭐⭐⭐⭐",
        "🔟",
        "purple",
        "green",
        "orange",
        "lots",
        "",
        "good 😞",
        "yes",
    ],
)
def test_not_a_rating(text: str) -> None:
    assert parse_rating(text) is None


@pytest.mark.parametrize(
    ("text", "low", "high", "rating"),
    [
        ("10", 1, 10, 10),
        ("🔟", 1, 10, 10),
        ("8/10", 1, 10, 8),
        ("0", 0, 10, 0),
        ("great", 0, 10, 10),
        ("awful", 0, 10, 0),
        ("good", 0, 10, 8),  # 7.5 rounds half up
        ("😐", 1, 3, 2),
        ("4", 1, 3, None),
    ],
)
def test_rating_on_other_scales(text: str, low: int, high: int, rating: int | None) -> None:
    assert parse_rating(text, low, high) == rating


# -- numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "locale", "number"),
    [
        ("20", "en", 20),
        ("20 minutes", "en", 20),
        ("about 45 min", "en", 45),
        ("unos 30 minutos", "es", 30),
        ("1,5", "es", 1.5),
        ("1,500", "en", 1500),
        ("1.500", "es", 1500),
        ("2.5", "en", 2.5),
        ("1.5", "es", 1.5),  # impossible grouping in Spanish: read as a decimal
        ("1,5", "en", 1.5),
        ("1,500.5", "en", 1500.5),
        ("1.500,5", "es", 1500.5),
        ("1000", "en", 1000),
        ("-5", "en", -5),
        ("4️⃣", "en", 4),
        ("zero", "en", 0),
        ("seven", "en", 7),
        ("twenty", "en", 20),
        ("twenty five", "en", 25),
        ("twenty-five minutes", "en", 25),
        ("fifteen minutes", "en", 15),
        ("a hundred", "en", 100),
        ("one hundred and five", "en", 105),
        ("ninety", "en", 90),
        ("cuatro", "es", 4),
        ("treinta", "es", 30),
        ("veinticinco", "es", 25),
        ("veintidós", "es", 22),
        ("treinta y dos", "es", 32),
        ("cien", "es", 100),
        ("ciento veinte", "es", 120),
        ("once", "es", 11),
    ],
)
def test_number(text: str, locale: str, number: float) -> None:
    found = parse_number(text, locale)
    assert found == number
    assert isinstance(found, float)


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("lots", "en"),
        ("banana", "en"),
        ("", "en"),
        ("20 or 30", "en"),
        ("20-30", "en"),
        ("once a week", "en"),
        ("12,34,5", "en"),
        ("muchos", "es"),
        ("half an hour", "en"),
    ],
)
def test_not_a_number(text: str, locale: str) -> None:
    assert parse_number(text, locale) is None
