"""The safety screen: does a learner's message suggest suicide, self-harm, abuse or violence?

Every inbound learner message passes through `screen` before the dialog sees it
(bot/coach/safety_alerts.py does the rest: the care reply, the alert, the
notifications). The screen is pure (text in, a `Finding` or None out) and fast:
regular expressions over a normalised copy of the text, with rapidfuzz correcting
typos of a few distinctive words. The language itself is data, in
content/safety/patterns.yaml, with its sources and the normalisation explained
there; tests/test_safety_screen.py holds the corpus it must pass.

The normalised text (the learner's words) is never logged at INFO: a `Finding`
carries it for tests and debugging only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import OSA

from bot.engine.yamlfile import YamlError, line_of, load_yaml
from bot.paths import shipped
from bot.store.models import ALERT_CATEGORIES

LANGUAGES = ("en", "es")
PATTERNS_FILE = Path("safety") / "patterns.yaml"
# Typo tolerance (optimal string alignment: a swap of two letters is one slip). Shorter
# words are left alone: at four letters nearly every slip is another real word.
FUZZY_MIN_LENGTH = 5
FUZZY_TWO_SLIPS_FROM = 9
# Sentence breaks: a negation only reaches to the end of its sentence, and no pattern
# spans two. "!" inside a word is leetspeak (k!ll), not a break.
_SENTENCES = re.compile(r"[.?;:\n¡¿]+|!+(?![a-z0-9])")
_TOKEN = re.compile(r"[a-z0-9@$!|]+")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a"})
_LEET_EXTRA = str.maketrans({"$": "s", "!": "i", "|": "l"})
_REPEATS = re.compile(r"([a-z])\1+")
_PIECES = re.compile(r"[a-z0-9]+")
# How many distinct tokens the screen remembers how to read (a few MB at most).
TOKEN_MEMORY = 50_000
# In a pattern's source, a doubled letter is collapsed like the text's, except right
# after a backslash (`\bb` is a word boundary then a b).
_PATTERN_REPEATS = re.compile(r"(?<!\\)([a-z])\1+")
_MACRO = re.compile(r"<([a-z_]+)>")
_WORD = re.compile(r"[a-z]+")
_BREAK = " | "
SECTIONS = {
    "words",
    "abbreviations",
    "emoji",
    "anchors",
    "keep",
    "but_words",
    "idioms",
    "negations",
    "categories",
}


class SafetyPatternError(ValueError):
    """content/safety/patterns.yaml cannot be used: the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Finding:
    """What the screen found: the alert category, the language whose pattern matched,
    and the normalised words that matched (the learner's text: never log it at INFO)."""

    category: str
    language: str
    phrase: str


def _fold(text: str) -> str:
    """Lower case without accents or apostrophes: "¿Quién?" -> "¿quien?", "don't" -> "dont"."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return text.replace("'", "").replace("\u2019", "").replace("`", "")


def _deleet(token: str) -> str:
    """k1ll -> kill, $elf -> self: only inside words that hold a letter (13 stays 13)."""
    if token.isdigit() or not any(c.isalpha() for c in token):
        return token.strip("!|")
    return token.strip("!|").translate(_LEET).translate(_LEET_EXTRA)


def _pattern_source(source: str) -> str:
    return _PATTERN_REPEATS.sub(r"\1", _fold(source))


class Screen:
    """The compiled patterns of one patterns file."""

    def __init__(self, data: Mapping[str, Any], path: Path | None = None) -> None:
        self.path = path
        where = str(path or "patterns")
        unknown = set(data) - SECTIONS
        if unknown:
            raise SafetyPatternError(f"{where}:1: unknown sections {sorted(unknown)}")
        self._words = {str(k): str(v) for k, v in (data.get("words") or {}).items()}
        self._abbreviations = {
            _fold(str(k)): self._normalise_words(str(v))
            for k, v in (data.get("abbreviations") or {}).items()
        }
        self._emoji = {str(k): str(v) for k, v in (data.get("emoji") or {}).items()}
        self._emoji_re = (
            re.compile("|".join(re.escape(e) for e in self._emoji)) if self._emoji else None
        )
        self._anchors = tuple(self._normalise_words(str(w)) for w in data.get("anchors") or [])
        # Raw token -> the words it reads as; tokens repeat across messages ("the",
        # "homework"), so each is worked out once (bounded: see _remember).
        self._tokens: dict[str, str] = {}
        self._but = re.compile(
            r"(?<![a-z])(?:"
            + "|".join(re.escape(self._normalise_words(str(w))) for w in data["but_words"])
            + r")(?![a-z])"
        )
        self._idioms = self._alternation(data.get("idioms") or {}, where, "idioms")
        self._negations = self._alternation(data.get("negations") or {}, where, "negations")
        categories = data.get("categories") or {}
        missing = set(ALERT_CATEGORIES) - set(categories)
        extra = set(categories) - set(ALERT_CATEGORIES)
        if missing or extra:
            raise SafetyPatternError(
                f"{where}:{line_of(categories)}: categories must be exactly "
                f"{list(ALERT_CATEGORIES)} (missing {sorted(missing)}, unknown {sorted(extra)})"
            )
        self._categories: list[tuple[str, str, re.Pattern[str]]] = []
        for category in ALERT_CATEGORIES:
            by_language = categories[category]
            for language in LANGUAGES:
                patterns = (by_language or {}).get(language)
                if not patterns:
                    raise SafetyPatternError(
                        f"{where}:{line_of(by_language)}: {category} has no {language} patterns"
                    )
                compiled = self._compile(patterns, f"{where}: {category}.{language}")
                self._categories.append((category, language, compiled))
        # Every word the patterns spell out is a real word to them: never "corrected".
        self._known = frozenset(
            _WORD.findall(" ".join(self._all_sources(data)))
            + [w for a in self._abbreviations.values() for w in a.split()]
            + [self._normalise_words(str(w)) for w in data.get("keep") or []]
        )

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> Screen:
        try:
            data = load_yaml(path)
        except YamlError as exc:
            raise SafetyPatternError(str(exc)) from None
        if not isinstance(data, dict):
            raise SafetyPatternError(f"{path}:1: a patterns file is a mapping of sections")
        return cls(data, path)

    @staticmethod
    def _normalise_words(text: str) -> str:
        return _REPEATS.sub(r"\1", _fold(text)).strip()

    def _expand(self, source: str, where: str) -> str:
        def macro(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self._words:
                raise SafetyPatternError(f"{where}: unknown word list <{name}>")
            return self._words[name]

        return _pattern_source(_MACRO.sub(macro, str(source)))

    def _compile(self, sources: Iterable[Any], where: str) -> re.Pattern[str]:
        parts = []
        for source in sources:
            expanded = self._expand(source, where)
            try:
                re.compile(expanded)
            except re.error as exc:
                raise SafetyPatternError(f"{where}: {source!r}: {exc}") from None
            parts.append(f"(?:{expanded})")
        # Whole words only: "skill" never matches "kill".
        return re.compile(r"(?<![a-z0-9])(?:" + "|".join(parts) + r")(?![a-z0-9])")

    def _alternation(self, by_language: Mapping[str, Any], where: str, section: str) -> Any:
        sources = [s for language in LANGUAGES for s in by_language.get(language) or []]
        return self._compile(sources, f"{where}: {section}") if sources else None

    def _all_sources(self, data: Mapping[str, Any]) -> list[str]:
        sources: list[str] = []
        for section in ("idioms", "negations"):
            for patterns in (data.get(section) or {}).values():
                sources.extend(self._expand(p, section) for p in patterns or [])
        for by_language in (data.get("categories") or {}).values():
            for patterns in (by_language or {}).values():
                sources.extend(self._expand(p, "categories") for p in patterns or [])
        return sources

    # -- screening -------------------------------------------------------------------------

    def normalise(self, text: str) -> str:
        """The text as the patterns see it: sentences joined by " | ", words cleaned up."""
        if self._emoji_re is not None:
            text = self._emoji_re.sub(lambda m: f" {self._emoji[m.group(0)]} ", text)
        sentences = []
        for sentence in _SENTENCES.split(_fold(text)):
            words = [self._read(raw) for raw in _TOKEN.findall(sentence)]
            line = " ".join(w for w in words if w)
            if line:
                sentences.append(line)
        return _BREAK.join(sentences)

    def _read(self, raw: str) -> str:
        """One raw token as the patterns see it: leet undone, repeats dropped, shorthand
        expanded, a typo of an anchor word corrected."""
        known = self._tokens.get(raw)
        if known is not None:
            return known
        words = []
        for piece in _PIECES.findall(_REPEATS.sub(r"\1", _deleet(raw))):
            expansion = self._abbreviations.get(piece)
            words.append(expansion if expansion is not None else self._correct(piece))
        read = " ".join(words)
        if len(self._tokens) >= TOKEN_MEMORY:
            self._tokens.clear()  # a flood of random strings: start again, stay bounded
        self._tokens[raw] = read
        return read

    def _correct(self, word: str) -> str:
        if len(word) < FUZZY_MIN_LENGTH or word in self._known or word.isdigit():
            return word
        allowed = 2 if len(word) >= FUZZY_TWO_SLIPS_FROM else 1
        best = process.extractOne(word, self._anchors, scorer=OSA.distance, score_cutoff=allowed)
        return str(best[0]) if best is not None else word

    def check(self, text: str) -> Finding | None:
        """The first category whose patterns match `text`, or None."""
        if not text or not text.strip():
            return None
        normalised = self.normalise(text)
        if self._idioms is not None:
            normalised = self._idioms.sub(_BREAK, normalised)
        if self._negations is not None:
            normalised = self._negations.sub(self._cancel_negation, normalised)
        for category, language, pattern in self._categories:
            found = pattern.search(normalised)
            if found is not None:
                return Finding(category, language, found.group(0).strip())
        return None

    def _cancel_negation(self, match: re.Match[str]) -> str:
        """Cut out "I'd never hurt myself", unless the sentence goes on "but ..."."""
        rest = match.string[match.end() :]
        sentence_end = rest.find("|")
        rest = rest if sentence_end < 0 else rest[:sentence_end]
        return match.group(0) if self._but.search(rest) else _BREAK


@lru_cache(maxsize=8)
def load_screen(path: Path | None = None) -> Screen:
    """The screen for a patterns file (the shipped one by default), loaded once."""
    return Screen.load(path or shipped("content") / PATTERNS_FILE)


def screen(text: str) -> Finding | None:
    """Screen one message with the shipped patterns."""
    return load_screen().check(text)
