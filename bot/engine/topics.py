"""The tag vocabulary: what goals and resources are about, and what learners enjoy.

content/vocabulary.yaml lists `topics` (each in one school subject) and
`interests` (each in one Holland RIASEC area), with English and Spanish
synonyms. `Vocabulary.find` picks those terms out of free learner text
("quiero dibujar mejor", "fractoins", "i want to get better at coding games"),
forgiving typos but not guessing: common words match nothing.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from bot.engine.understand import close_matches, intent_threshold, normalize
from bot.engine.yamlfile import YamlError, line_of, load_yaml

Kind = Literal["topic", "interest"]
KINDS: tuple[Kind, ...] = get_args(Kind)

# The ten subjects a topic belongs to; the catalog and the teacher view group by them.
# fmt: off
SUBJECTS = (
    "math", "science", "reading-writing", "languages", "arts-music", "computing",
    "social-studies", "careers", "study-skills", "well-being",
)
# fmt: on
# Holland's six RIASEC interest areas (Holland, "Making Vocational Choices", 1973):
# Realistic, Investigative, Artistic, Social, Enterprising, Conventional.
AREAS = ("R", "I", "A", "S", "E", "C")
LANGUAGES = ("en", "es")
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Function words and filler verbs: an n-gram that starts or ends with one is only
# taken when it is exactly a synonym, never fuzzily ("at coding" is not a typo).
# fmt: off
_EDGE_WORDS = frozenset({
    "a", "an", "the", "to", "of", "in", "on", "at", "for", "and", "or", "with", "about", "my",
    "me", "i", "im", "want", "get", "got", "better", "some", "more", "how", "do", "is", "are",
    "be", "it", "this", "that", "these", "those", "really", "very", "good", "just", "like",
    "learn", "learning", "el", "la", "los", "las", "un", "una", "unos", "unas", "de", "del",
    "en", "y", "o", "al", "con", "para", "por", "mi", "mis", "yo", "que", "quiero", "mejor",
    "mas", "sobre", "como", "es", "lo", "le", "se", "muy",
})
# fmt: on
# An n-gram of up to 4 words: the longest synonyms ("dividing things into parts")
# have four.
MAX_WORDS = 4
# Fuzzy matching needs 5+ characters on both sides: one edit turns a 4-letter
# word into another everyday word ("start" -> "star", "part" -> "art").
_FUZZY_MIN = 5


@dataclass(frozen=True, slots=True)
class Term:
    """One tag: its id, whether it is a topic or an interest, and its subject or RIASEC area."""

    id: str
    kind: Kind
    group: str


@dataclass(frozen=True, slots=True)
class TermMatch:
    """A term found in a message, how closely (0-100), and the learner's words that matched."""

    term: Term
    score: float
    phrase: str


class _Index:
    """The synonyms of one kind: a dict for exact hits and a length-sorted list for fuzzy ones."""

    def __init__(self, synonyms: Mapping[Term, Sequence[str]], kind: Kind) -> None:
        self.exact: dict[str, Term] = {}
        pairs: list[tuple[str, Term]] = []
        for term, phrases in synonyms.items():
            if term.kind != kind:
                continue
            for phrase in phrases:
                text = normalize(phrase)
                if not text:
                    raise ValueError(f"{kind} {term.id!r} has an empty synonym")
                other = self.exact.get(text)
                if other is not None and other != term:
                    raise ValueError(
                        f"synonym {phrase!r} belongs to both {kind}s {other.id!r} and {term.id!r}"
                    )
                if other is None:
                    self.exact[text] = term
                    if len(text) >= _FUZZY_MIN:
                        pairs.append((text, term))
        pairs.sort(key=lambda p: len(p[0]))
        self.texts = [p[0] for p in pairs]
        self.terms = [p[1] for p in pairs]
        self.lengths = [len(p[0]) for p in pairs]

    def lookup(self, gram: str, fuzzy: bool) -> list[tuple[Term, float]]:
        term = self.exact.get(gram)
        if term is not None:
            return [(term, 100.0)]
        if not fuzzy or len(gram) < _FUZZY_MIN:
            return []
        threshold = intent_threshold(len(gram))
        # fuzz.ratio is at most 2*short/(short+long), so only synonyms within
        # this length window can reach the threshold (the typo score's window
        # is narrower still): a bisect instead of a scan.
        share = threshold / 100
        low = bisect.bisect_left(self.lengths, math.ceil(len(gram) * share / (2 - share)))
        high = bisect.bisect_right(self.lengths, math.floor(len(gram) * (2 - share) / share))
        if low >= high:
            return []
        window = self.texts[low:high]
        # A typo almost never hits a word's first letter (Pollock & Zamora, "Automatic
        # spelling correction in scientific and scholarly text", CACM 1984: about 7%
        # of misspellings), while a different word of similar shape often differs
        # there first: "skateboarding" is not "keyboarding" (83 without this rule).
        return [
            (self.terms[low + i], score)
            for i, score in close_matches(gram, window, threshold)
            if window[i][:1] == gram[:1]
        ]


class Vocabulary:
    """Topics and interests with their synonyms, loaded once and searched on every message."""

    def __init__(
        self,
        synonyms: Mapping[Term, Sequence[str]],
        labels: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """`synonyms` maps each term to its phrases in every language; `labels` gives
        each term id its name per language (the first synonym listed for it).

        Raises ValueError if two terms share an id or one phrase names two terms of a kind.
        """
        self._labels = {k: dict(v) for k, v in (labels or {}).items()}
        self._terms: dict[str, Term] = {}
        for term in synonyms:
            if term.id in self._terms:
                raise ValueError(f"id {term.id!r} is used twice")
            self._terms[term.id] = term
        self._indexes = {kind: _Index(synonyms, kind) for kind in KINDS}

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        """Read content/vocabulary.yaml; a ValueError names the file, the line and the problem."""
        try:
            data = load_yaml(path)
        except YamlError as exc:
            raise ValueError(str(exc)) from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping with `topics` and `interests`")
        unknown = set(data) - {"topics", "interests"}
        if unknown:
            raise ValueError(f"{path}: unknown sections {sorted(unknown)}")
        synonyms: dict[Term, list[str]] = {}
        labels: dict[str, dict[str, str]] = {}
        seen: dict[str, int] = {}
        sections: tuple[tuple[str, Kind, str, Sequence[str]], ...] = (
            ("topics", "topic", "subject", SUBJECTS),
            ("interests", "interest", "area", AREAS),
        )
        for section, kind, group_key, groups in sections:
            entries = data.get(section)
            if not isinstance(entries, list) or not entries:
                raise ValueError(f"{path}: `{section}` must be a non-empty list")
            for entry in entries:
                term, phrases = _entry(path, entry, kind, group_key, groups)
                line = line_of(entry)
                if term.id in seen:
                    raise ValueError(
                        f"{path}:{line}: id {term.id!r} repeats (first on line {seen[term.id]})"
                    )
                seen[term.id] = line
                synonyms[term] = phrases
                labels[term.id] = {
                    code: str(entry[code][0])
                    for code in ("en", "es")
                    if isinstance(entry.get(code), list) and entry[code]
                }
        try:
            return cls(synonyms, labels)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    def topics(self) -> list[Term]:
        """Every topic, in file order."""
        return [t for t in self._terms.values() if t.kind == "topic"]

    def interests(self) -> list[Term]:
        """Every interest, in file order."""
        return [t for t in self._terms.values() if t.kind == "interest"]

    def label(self, id: str, locale: str) -> str:
        """The term in words in `locale` ("fracciones"), else in English, else its id."""
        names = self._labels.get(id, {})
        return names.get(locale) or names.get("en") or id

    def get(self, id: str) -> Term | None:
        """The term with this id, topic or interest."""
        return self._terms.get(id)

    def find(self, text: str, kind: Kind | None = None, limit: int = 3) -> list[TermMatch]:
        """The terms `text` mentions, best first, at most one match per term.

        Every run of 1-4 words is looked up exactly, and fuzzily when it is at
        least 5 characters and does not start or end with a filler word. A run
        claims its words for its kind: in "reading comprehension" the topic
        `reading-comprehension` is found, not also `reading`.
        """
        words = normalize(text).split()
        kinds = KINDS if kind is None else (kind,)
        candidates: list[tuple[float, int, int, str, Term]] = []
        for size in range(min(MAX_WORDS, len(words)), 0, -1):
            for start in range(len(words) - size + 1):
                span = words[start : start + size]
                gram = " ".join(span)
                fuzzy = span[0] not in _EDGE_WORDS and span[-1] not in _EDGE_WORDS
                for k in kinds:
                    for term, score in self._indexes[k].lookup(gram, fuzzy):
                        candidates.append((score, size, start, gram, term))
        # Best score first; on a tie the longer phrase, then the earlier one.
        candidates.sort(key=lambda c: (-c[0], -c[1], c[2]))
        taken: dict[str, list[range]] = {k: [] for k in KINDS}
        found: dict[str, TermMatch] = {}
        for score, size, start, gram, term in candidates:
            if term.id in found:
                continue
            claimed = range(start, start + size)
            if any(claimed.start < o.stop and o.start < claimed.stop for o in taken[term.kind]):
                continue
            taken[term.kind].append(claimed)
            found[term.id] = TermMatch(term, score, gram)
            if len(found) >= limit:
                break
        return sorted(found.values(), key=lambda m: -m.score)


def _entry(
    path: Path, entry: Any, kind: Kind, group_key: str, groups: Sequence[str]
) -> tuple[Term, list[str]]:
    line = line_of(entry)
    where = f"{path}:{line}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: each {kind} is a mapping with id, {group_key}, en, es")
    unknown = set(entry) - {"id", group_key, *LANGUAGES}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    term_id = entry.get("id")
    if not isinstance(term_id, str) or not _ID.match(term_id):
        raise ValueError(f"{where}: id {term_id!r} must be lowercase words joined by hyphens")
    group = entry.get(group_key)
    if group not in groups:
        raise ValueError(f"{where}: {kind} {term_id!r}: {group_key} must be one of {list(groups)}")
    phrases: list[str] = []
    for language in LANGUAGES:
        listed = entry.get(language)
        if not isinstance(listed, list) or not listed:
            raise ValueError(f"{where}: {kind} {term_id!r} needs a list of {language} synonyms")
        for phrase in listed:
            if not isinstance(phrase, str) or not normalize(phrase):
                raise ValueError(f"{where}: {kind} {term_id!r}: {phrase!r} is not a synonym")
            if len(normalize(phrase).split()) > MAX_WORDS:
                raise ValueError(
                    f"{where}: {kind} {term_id!r}: {phrase!r} has more than {MAX_WORDS} words"
                )
            phrases.append(phrase)
    return Term(term_id, kind, str(group)), phrases
