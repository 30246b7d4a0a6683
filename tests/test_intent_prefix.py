"""Prefix intent examples: "i want to get better at …" matches a message that starts so."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.engine.understand import IntentMatch, IntentMatcher

EXAMPLES = {
    "en": {
        "goal": [
            "set a goal",
            "i want to get better at …",
            "i want to improve my …",
            "help me with …",
        ],
        "help": ["help", "help me"],
        "skip": ["skip"],
    },
    "es": {
        "goal": ["una meta", "quiero mejorar en …", "quiero aprender …", "ayúdame con ..."],
    },
}


@pytest.fixture(scope="module")
def matcher() -> IntentMatcher:
    return IntentMatcher(EXAMPLES)


def intent_of(found: IntentMatch | None) -> str | None:
    return found.intent if found else None


@pytest.mark.parametrize(
    "text",
    [
        "I want to get better at fractions",
        "i want to get better at long division and fractions please",
        "i wnat to get better at fractions",  # a swap in the prefix
        "iwant to get better at algebra",  # two words run together
        "I want to improve my handwriting",
        "help me with my essay",
        "Help me with: science!",
        "I want to get better at",  # the prefix alone: the flow asks what at
    ],
)
def test_a_message_starting_with_a_prefix_matches(matcher: IntentMatcher, text: str) -> None:
    assert intent_of(matcher.match(text, "en")) == "goal"


@pytest.mark.parametrize(
    "text",
    ["quiero mejorar en matemáticas", "Quiero aprender a dibujar", "ayudame con la ortografía"],
)
def test_spanish_prefixes(matcher: IntentMatcher, text: str) -> None:
    assert matcher.match(text, "es") == IntentMatch("goal", 100.0, "es")


@pytest.mark.parametrize(
    "text",
    [
        "fractions",
        "my friend said i want to get better at fractions",  # not at the start
        "better at fractions",
        "i want pizza",
        "quiero",
        "ayúdame",
        "help me please with",
    ],
)
def test_a_prefix_elsewhere_or_cut_short_does_not_match(matcher: IntentMatcher, text: str) -> None:
    assert intent_of(matcher.match(text, "en")) != "goal"


def test_a_whole_phrase_wins_over_a_prefix(matcher: IntentMatcher) -> None:
    # "help me" is a whole example of help; "help me with …" a prefix of goal.
    assert matcher.match("help me", "en") == IntentMatch("help", 100.0, "en")
    assert matcher.match("help me with fractions", "en") == IntentMatch("goal", 100.0, "en")


def test_whole_phrases_still_match_as_before(matcher: IntentMatcher) -> None:
    assert matcher.match("set a goal", "en") == IntentMatch("goal", 100.0, "en")
    assert matcher.match("set a goal for fractions", "en") is None


def test_prefixes_respect_the_intents_asked_for(matcher: IntentMatcher) -> None:
    assert matcher.match("help me with fractions", "en", intents=["help", "skip"]) is None
    found = matcher.match("help me with fractions", "en", intents=["goal"])
    assert intent_of(found) == "goal"


def test_a_long_message_can_still_start_with_a_prefix(matcher: IntentMatcher) -> None:
    # Whole-phrase matching gives up on messages far longer than any example.
    long = "i want to get better at " + "fractions and decimals and percentages " * 5
    assert intent_of(matcher.match(long, "en")) == "goal"


def test_a_prefix_intent_is_known(matcher: IntentMatcher) -> None:
    only_prefix = IntentMatcher({"en": {"goal": ["i want to get better at …"]}})
    assert only_prefix.intents() == {"goal"}
    assert {"goal", "help", "skip"} <= matcher.intents()


def test_one_prefix_under_two_intents_is_refused() -> None:
    with pytest.raises(ValueError, match="also an example of"):
        IntentMatcher({"en": {"goal": ["help me with …"], "help": ["Help me with..."]}})


def test_a_prefix_and_a_whole_phrase_may_share_words() -> None:
    matcher = IntentMatcher({"en": {"goal": ["help me with …"], "help": ["help me with"]}})
    assert matcher.match("help me with", "en") == IntentMatch("help", 100.0, "en")
    assert matcher.match("help me with maths", "en") == IntentMatch("goal", 100.0, "en")


def test_an_empty_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="empty example"):
        IntentMatcher({"en": {"goal": ["…"]}})


def test_prefixes_load_from_files(tmp_path: Path) -> None:
    (tmp_path / "en.yaml").write_text("goal:\n  - i want to get better at …\n", encoding="utf-8")
    (tmp_path / "es.yaml").write_text('goal:\n  - "quiero mejorar en ..."\n', encoding="utf-8")
    matcher = IntentMatcher.load(tmp_path)
    assert matcher.match("quiero mejorar en inglés") == IntentMatch("goal", 100.0, "es")
    assert matcher.match("I want to get better at Spanish") == IntentMatch("goal", 100.0, "en")
