"""Understanding short learner messages: intents, yes/no, ratings and numbers.

Learners type on phones, in English or Spanish, with typos and emoji. Everything
here works on whole, short utterances (an intent example ending in "…" may also
match how a message starts) and is deliberately conservative: a wrong
guess sends a learner somewhere they did not ask to go, while `None` only costs
a gentle re-prompt. The dialog engine (`bot.engine.runtime`) calls `normalize`,
`IntentMatcher.match`, `parse_yes_no`, `parse_rating` and `parse_number`;
`bot.engine.topics` and `bot.engine.dates` reuse `similarity`, `close_matches`
and `parse_number`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from babel.numbers import NumberFormatError, parse_decimal
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, Levenshtein

from bot.engine.yamlfile import YamlError, load_yaml

# -- normalising text ------------------------------------------------------------------

# Zero-width joiner: glues multi-person and profession emoji (U+200D) together.
_ZWJ = "\u200d"
# Fitzpatrick skin-tone modifiers (Unicode TR51, U+1F3FB..U+1F3FF): a thumbs-up
# means the same in every skin tone, so they are dropped before matching.
_SKIN_TONES = frozenset(chr(c) for c in range(0x1F3FB, 0x1F400))
# Apostrophes join a word ("don't" -> "dont") rather than split it.
_APOSTROPHES = frozenset("'’ʼ`´")
_SPACES = re.compile(r"\s+")


def _is_emoji(char: str) -> bool:
    # "So" (Symbol, other) holds emoji and pictographs (👍 ✅ ⭐ 😀); Babel and
    # CLDR use the same category for them.
    return unicodedata.category(char) == "So"


def normalize(text: str) -> str:
    """Text reduced to what matching cares about.

    Lowercase, accents stripped ("menú" -> "menu", "sí" -> "si"), punctuation
    replaced by spaces ("warm-up" -> "warm up"), apostrophes removed ("don't" ->
    "dont"), whitespace collapsed. Emoji are kept, each as its own word, so
    "ok👍" becomes "ok 👍". NFKD also unwraps keycap emoji: "4️⃣" becomes "4".
    """
    decomposed = unicodedata.normalize("NFKD", text.lower())
    out: list[str] = []
    for char in decomposed:
        category = unicodedata.category(char)
        if char in _SKIN_TONES:
            continue
        if category in ("Mn", "Me"):
            # Combining marks: the accents NFKD split off, the emoji variation
            # selector U+FE0F and the keycap frame U+20E3.
            continue
        if char in _APOSTROPHES:
            continue
        if category[0] in "LN":
            out.append(char)
        elif _is_emoji(char):
            out.append(f" {char} ")
        elif char == _ZWJ:
            out.append(char)
        else:
            out.append(" ")
    return _SPACES.sub(" ", "".join(out)).strip()


# -- fuzzy similarity ------------------------------------------------------------------


def similarity(a: str, b: str) -> float:
    """How alike two normalized strings are, 0 to 100, forgiving typical typos.

    The larger of two scores:

    * `fuzz.ratio` (Indel distance), which is kind to a missing or doubled letter:
      "paus" against "pause" scores 89.
    * an edit similarity where an adjacent transposition costs half an edit.
      Damerau (1964) found single transpositions among the commonest typing
      slips, and they keep every letter, so "hlep" (87.5) is far more likely to
      mean "help" than "mena" (75) is to mean "menu". The transposition count
      is estimated as Levenshtein minus OSA distance: a swap costs 2 in the
      first and 1 in the second.
    """
    longest = max(len(a), len(b))
    if longest == 0:
        return 100.0
    osa = OSA.distance(a, b)
    swaps = Levenshtein.distance(a, b) - osa
    cost = osa - 0.5 * swaps
    return max(fuzz.ratio(a, b), 100.0 * (1.0 - cost / longest))


def close_matches(query: str, choices: Sequence[str], threshold: float) -> list[tuple[int, float]]:
    """Indexes and scores of the `choices` whose `similarity` to `query` is at least `threshold`.

    A single rapidfuzz pass in C over all choices keeps only candidates whose
    OSA normalized similarity is at least 2*threshold - 100; that cut is safe,
    since reaching `threshold` on either half of `similarity` needs at most
    2*(100 - threshold)% of the longer string in OSA edits (an Indel edit or a
    half-cost swap each bound an OSA edit from above by two). Only those few
    candidates are scored in Python.
    """
    if threshold >= 100:
        return [(i, 100.0) for i, choice in enumerate(choices) if choice == query]
    cutoff = max(0.0, (2 * threshold - 100) / 100)
    found = process.extract(
        query, choices, scorer=OSA.normalized_similarity, score_cutoff=cutoff, limit=None
    )
    result: list[tuple[int, float]] = []
    for choice, _, index in found:
        score = similarity(query, choice)
        if score >= threshold:
            result.append((index, score))
    return result


def intent_threshold(length: int) -> float:
    """The similarity a message of `length` characters needs to count as an intent example.

    Tuned on the tests in tests/test_understand.py and a scan of common English
    and Spanish words and first names, which must not turn into commands:

    * up to 3 characters only an exact match: one edit in "no" or "hi" is a
      different word ("so", "his").
    * 4 characters: 85 lets through one swap ("hlep", 87.5) or one missing
      letter ("paus", 89) but not one wrong letter, which scores 75 and turns
      names into commands ("Mena" -> menu).
    * 5-7 characters: 88, the band where everyday words and names sit one
      letter from a command word: "Paula" -> pausa (80), "seguro" (Spanish
      "sure") -> seguir (83), "Canela" -> cancelar (86). Swaps (90+) and a
      doubled or dropped letter ("helpp", 89) still pass.
    * 8-11 characters: 85, one slip of any kind ("quik warmup", 92).
    * 12 and more: 82, about one slip per 6 characters ("i wnat to set a goal",
      97.5). A message that merely contains an example ("stop procrastinating"
      against "stop") scores far below, 33.
    """
    if length <= 3:
        return 100.0
    if length == 4:
        return 85.0
    if length <= 7:
        return 88.0
    if length <= 11:
        return 85.0
    return 82.0


# -- intents ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IntentMatch:
    """The intent a message matched, how closely (0-100) and the example's locale."""

    intent: str
    score: float
    locale: str


@dataclass(frozen=True, slots=True)
class _Example:
    text: str
    intent: str
    locale: str


def _command(text: str) -> str | None:
    """The `/command` a message starts with, normalized, without a Telegram `@botname`."""
    stripped = text.strip()
    if not stripped.startswith("/"):
        return None
    word = stripped[1:].split(maxsplit=1)[0] if len(stripped) > 1 else ""
    word = word.split("@", 1)[0]
    name = normalize(word).replace(" ", "")
    return f"/{name}" if name else None


# An example ending in an ellipsis is a prefix: "i want to get better at …".
_ELLIPSES = ("…", "...")


def _prefix(phrase: str) -> str | None:
    """The words of a prefix example without its ellipsis, or None for a whole phrase."""
    stripped = phrase.strip()
    for mark in _ELLIPSES:
        if stripped.endswith(mark):
            return stripped[: -len(mark)]
    return None


class IntentMatcher:
    """Matches a whole message against example phrases, per intent and locale.

    `examples` maps locale -> intent -> phrases. A phrase starting with `/` is a
    command and matches only exactly (case and accents aside). A phrase ending in
    " …" or "..." is a prefix: it matches a message that starts with its words
    ("i want to get better at …" matches "I want to get better at fractions"),
    and only when no whole phrase matched. Every other phrase is normalized once
    here, so `match` is one C-level pass over a few hundred short strings (about
    40 µs for the shipped 240 examples). One phrase listed under two intents is
    a ValueError: the match would be a coin toss.
    """

    def __init__(self, examples: Mapping[str, Mapping[str, Sequence[str]]]) -> None:
        self._examples: list[_Example] = []
        self._prefixes: list[_Example] = []
        self._commands: dict[str, list[_Example]] = {}
        seen: dict[str, _Example] = {}
        seen_prefixes: dict[str, _Example] = {}
        for locale, by_intent in examples.items():
            for intent, phrases in by_intent.items():
                for phrase in phrases:
                    command = _command(phrase)
                    if command is not None:
                        self._commands.setdefault(command, []).append(
                            _Example(command, intent, locale)
                        )
                        continue
                    prefix = _prefix(phrase)
                    text = normalize(phrase if prefix is None else prefix)
                    if not text:
                        raise ValueError(f"{locale}: intent {intent!r} has an empty example")
                    if prefix is not None:
                        # A prefix and a whole phrase with the same words mean different
                        # things ("help me with …" is not "help me with"): checked apart.
                        clash = seen_prefixes.get(text)
                        if clash is not None and clash.intent != intent:
                            raise ValueError(
                                f"{locale}: prefix example {phrase!r} of intent {intent!r} is "
                                f"also an example of {clash.intent!r} ({clash.locale})"
                            )
                        seen_prefixes[text] = _Example(text, intent, locale)
                        self._prefixes.append(seen_prefixes[text])
                        continue
                    other = seen.get(text)
                    if other is not None and other.intent != intent:
                        raise ValueError(
                            f"{locale}: example {phrase!r} of intent {intent!r} is also an "
                            f"example of {other.intent!r} ({other.locale})"
                        )
                    example = _Example(text, intent, locale)
                    seen[text] = example
                    self._examples.append(example)
        self._intents = {e.intent for e in (*self._examples, *self._prefixes)} | {
            e.intent for found in self._commands.values() for e in found
        }
        # Restricted example lists, by the set of intents asked for: the engine
        # asks with the same few sets on every turn.
        self._subsets: dict[frozenset[str], tuple[list[_Example], list[str]]] = {}
        self._prefix_groups: dict[frozenset[str], list[_PrefixGroup]] = {}
        self._longest = max((len(e.text) for e in self._examples), default=0)

    @classmethod
    def load(cls, folder: Path) -> IntentMatcher:
        """Read `<folder>/<locale>.yaml`, each a mapping of intent -> list of phrases.

        Raises ValueError naming the file for anything malformed.
        """
        files = sorted(folder.glob("*.yaml"))
        if not files:
            raise ValueError(f"{folder}: no intent files (<locale>.yaml)")
        examples: dict[str, dict[str, list[str]]] = {}
        for path in files:
            try:
                data = load_yaml(path)
            except YamlError as exc:
                raise ValueError(str(exc)) from None
            if not isinstance(data, dict) or not data:
                raise ValueError(f"{path}: expected a mapping of intent -> list of phrases")
            by_intent: dict[str, list[str]] = {}
            for intent, phrases in data.items():
                if not isinstance(phrases, list) or not phrases:
                    raise ValueError(f"{path}: intent {intent!r} needs a list of phrases")
                if not all(isinstance(p, str) and p.strip() for p in phrases):
                    raise ValueError(f"{path}: intent {intent!r} has a phrase that is not text")
                by_intent[str(intent)] = list(phrases)
            try:
                cls({path.stem: by_intent})  # a clash inside one file, named by its path
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None
            examples[path.stem] = by_intent
        try:
            return cls(examples)
        except ValueError as exc:  # a clash between two files: the message names both locales
            raise ValueError(f"{folder}: {exc}") from None

    def intents(self) -> set[str]:
        """Every intent with at least one example or command."""
        return set(self._intents)

    def _subset(self, intents: Collection[str] | None) -> tuple[list[_Example], list[str]]:
        key = frozenset(self._intents if intents is None else intents)
        cached = self._subsets.get(key)
        if cached is None:
            chosen = [e for e in self._examples if e.intent in key]
            cached = (chosen, [e.text for e in chosen])
            self._subsets[key] = cached
        return cached

    def match(
        self, text: str, locale: str | None = None, *, intents: Collection[str] | None = None
    ) -> IntentMatch | None:
        """The intent the whole of `text` expresses, or None.

        Examples in every locale are searched (a Spanish speaker may type "help");
        on equal scores an example in `locale` wins. `intents` limits which
        intents may match. Only when no whole phrase matches are prefix examples
        tried: the message must start with one.
        """
        allowed = self._intents if intents is None else set(intents)
        command = _command(text)
        if command is not None:
            for example in sorted(
                self._commands.get(command, []), key=lambda e: e.locale != locale
            ):
                if example.intent in allowed:
                    return IntentMatch(example.intent, 100.0, example.locale)
        query = normalize(text)
        if not query:
            return None
        whole = self._match_whole(query, locale, intents)
        if whole is not None or not self._prefixes:
            return whole
        return self._match_prefix(query, locale, allowed)

    def _match_whole(
        self, query: str, locale: str | None, intents: Collection[str] | None
    ) -> IntentMatch | None:
        threshold = intent_threshold(len(query))
        # Reaching 82 needs the shorter string to be at least 69% of the longer
        # (fuzz.ratio is at most 2*short/(short+long)): this message is too long
        # for any example.
        if len(query) > 2 * self._longest + 4:
            return None
        examples, texts = self._subset(intents)
        best: tuple[float, bool] | None = None
        chosen: _Example | None = None
        for index, score in close_matches(query, texts, threshold):
            rank = (score, examples[index].locale == locale)
            if best is None or rank > best:
                best, chosen = rank, examples[index]
        if best is None or chosen is None:
            return None
        return IntentMatch(chosen.intent, best[0], chosen.locale)

    def _match_prefix(
        self, query: str, locale: str | None, allowed: Collection[str]
    ) -> IntentMatch | None:
        """The prefix example the message starts with, compared word for word.

        The message's first words (as many as the example has, and one fewer or
        one more, so a merged or split word still lines up: "iwant to get better
        at") are scored against the example with the same typo tolerance as a
        whole phrase. On equal scores an example in `locale` wins, then the longer
        example ("quiero mejorar en …" over "quiero mejorar …").
        """
        words = query.split()
        best: tuple[float, bool, int] | None = None
        chosen: _Example | None = None
        # Examples of one word count are compared with the same heads of the message,
        # so each head is scored against all of them in one rapidfuzz pass
        # (close_matches) at the group's lowest threshold, then held to each
        # example's own: the same answer as comparing them one by one in Python, which
        # cost a sixth of a turn (bench/turns.py, py-spy).
        for group in self._prefixes_for(allowed):
            for count in (group.size - 1, group.size, group.size + 1):
                if not 1 <= count <= len(words):
                    continue
                head = " ".join(words[:count])
                for index, score in close_matches(head, group.texts, group.lowest):
                    example = group.examples[index]
                    if score < group.thresholds[index]:
                        continue
                    rank = (score, example.locale == locale, len(example.text))
                    if best is None or rank > best:
                        best, chosen = rank, example
        if best is None or chosen is None:
            return None
        return IntentMatch(chosen.intent, best[0], chosen.locale)

    def _prefixes_for(self, allowed: Collection[str]) -> list[_PrefixGroup]:
        """The allowed prefix examples by word count, built once per set of intents."""
        key = frozenset(allowed)
        groups = self._prefix_groups.get(key)
        if groups is None:
            by_size: dict[int, list[_Example]] = {}
            for example in self._prefixes:
                if example.intent in key:
                    by_size.setdefault(example.text.count(" ") + 1, []).append(example)
            groups = []
            for size, examples in sorted(by_size.items()):
                thresholds = [intent_threshold(len(e.text)) for e in examples]
                groups.append(_PrefixGroup(size, examples, [e.text for e in examples], thresholds))
            self._prefix_groups[key] = groups
        return groups


@dataclass(frozen=True, slots=True)
class _PrefixGroup:
    """Prefix examples of one word count, with what scoring them needs."""

    size: int
    examples: list[_Example]
    texts: list[str]
    thresholds: list[float]

    @property
    def lowest(self) -> float:
        return min(self.thresholds)


# -- yes / no --------------------------------------------------------------------------

# fmt: off
_YES = frozenset(
    {
        # English
        "yes", "y", "ya", "ye", "yeah", "yea", "yep", "yup", "yas", "yah", "aye", "sure",
        "ok", "okay", "okey", "oki", "okie", "k", "kk", "alright", "all right", "right",
        "of course", "definitely", "absolutely", "certainly", "totally", "indeed",
        "sounds good", "sounds great", "that sounds good", "sure thing", "why not",
        "lets do it", "lets go", "i do", "i would", "i am", "i will", "yes i do",
        "go ahead", "for sure", "deal", "correct", "true", "please do",
        # Spanish
        "si", "sip", "claro", "claro que si", "vale", "dale", "va", "bueno", "por supuesto",
        "desde luego", "de acuerdo", "perfecto", "obvio", "por que no", "me parece bien",
        "esta bien", "sale", "venga", "cierto", "correcto", "porfa si", "si quiero",
        "ok dale",
        # Emoji
        "👍", "✅", "👌", "✔", "🙆", "🆗",
    }
)
# fmt: on
# fmt: off
_NO = frozenset(
    {
        # English
        "no", "n", "nope", "nah", "nay", "na", "not really", "no thanks", "no thank you",
        "never mind", "nevermind", "not now", "not today", "no way", "i dont", "i do not",
        "i dont think so", "not at all", "definitely not", "absolutely not", "of course not",
        "no i dont", "rather not", "id rather not", "false", "negative", "not yet",
        # Spanish
        "nop", "nel", "no gracias", "para nada", "de ninguna manera", "ni hablar",
        "todavia no", "aun no", "ahora no", "hoy no", "mejor no", "no quiero", "claro que no",
        "por supuesto que no", "en absoluto", "tampoco", "no por ahora",
        # Emoji
        "👎", "❌", "✖", "🙅", "🚫",
    }
)
# fmt: on
# Words that may follow a clear answer without changing it: "yes please", "no thanks".
# fmt: off
_COURTESY = frozenset(
    {
        "please", "thanks", "thank you", "thx", "ty", "pls", "plz", "i think", "i guess",
        "por favor", "gracias", "porfa", "creo", "muchas gracias",
    }
)
# fmt: on
_ANSWER_WORDS: dict[str, bool] = {**dict.fromkeys(_YES, True), **dict.fromkeys(_NO, False)}
# Words forgiven one slip ("yas", "yse", "noep", "shure"). Only these: short
# everyday words sit one edit from many others ("now" is one from "nop"), and
# the slip must keep the first letter, which typists rarely get wrong
# (Yannakoudakis and Fawthrop, 1983, "The rules of spelling errors").
# fmt: off
_FUZZY_ANSWERS: dict[str, bool] = {
    "yes": True, "yeah": True, "yep": True, "yup": True, "sure": True, "okay": True,
    "claro": True, "vale": True, "definitely": True, "absolutely": True, "perfecto": True,
    "nope": False,
}
# fmt: on
_RUNS = re.compile(r"(.)\1+")
# The longest phrase in _YES, _NO and _COURTESY has 4 words ("por supuesto que no").
_LONGEST_PHRASE = 4


def _squeeze(word: str) -> str:
    """Repeated letters collapsed: "yesss" -> "yes", "noooo" -> "no", "siii" -> "si"."""
    return _RUNS.sub(r"\1", word)


def _answer_word(phrase: str) -> bool | None:
    if phrase in _ANSWER_WORDS:
        return _ANSWER_WORDS[phrase]
    squeezed = _squeeze(phrase)
    if squeezed in _ANSWER_WORDS:
        return _ANSWER_WORDS[squeezed]
    if " " in phrase or len(phrase) < 3 or not phrase.isalpha():
        return None
    values = {
        value
        for word, value in _FUZZY_ANSWERS.items()
        if word[0] == phrase[0]
        and abs(len(word) - len(phrase)) <= 1
        and OSA.distance(word, phrase) <= 1
    }
    # "yap" is one slip from "yep" and "yup", both yes; a slip that lands on both
    # a yes and a no is no answer at all.
    return values.pop() if len(values) == 1 else None


def parse_yes_no(text: str) -> bool | None:
    """True for a yes, False for a no, None for anything else, in English or Spanish.

    The message is split into known phrases (longest first); it is an answer only
    if every part is a yes (or every part a no), optionally with courtesy words:
    "yes please", "sí claro", "no thanks", "👍👍". "yes no", "no idea" or
    "maybe later" are None. One typo in a word of three or more letters is
    forgiven ("yas", "nop").
    """
    words = normalize(text).split()
    if not words:
        return None
    found: set[bool] = set()
    i = 0
    while i < len(words):
        for size in range(min(_LONGEST_PHRASE, len(words) - i), 0, -1):
            phrase = " ".join(words[i : i + size])
            if phrase in _COURTESY:
                i += size
                break
            value = _answer_word(phrase)
            if value is not None:
                found.add(value)
                i += size
                break
        else:
            return None
    return found.pop() if len(found) == 1 else None


# -- numbers in words ------------------------------------------------------------------

# fmt: off
_UNITS: dict[str, int] = {
    # English
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19,
    # Spanish, accents already stripped by normalize ("veintidós" -> "veintidos")
    "cero": 0, "uno": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6,
    "siete": 7, "ocho": 8, "nueve": 9, "diez": 10, "once": 11, "doce": 12, "trece": 13,
    "catorce": 14, "quince": 15, "dieciseis": 16, "diecisiete": 17, "dieciocho": 18,
    "diecinueve": 19, "veintiun": 21, "veintiuno": 21, "veintidos": 22, "veintitres": 23,
    "veinticuatro": 24, "veinticinco": 25, "veintiseis": 26, "veintisiete": 27,
    "veintiocho": 28, "veintinueve": 29,
}
# fmt: on
# fmt: off
_TENS: dict[str, int] = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
    "veinte": 20, "treinta": 30, "cuarenta": 40, "cincuenta": 50, "sesenta": 60,
    "setenta": 70, "ochenta": 80, "noventa": 90,
}
# fmt: on
_HUNDRED = frozenset({"hundred", "cien", "ciento"})
# "twenty and five" is not English, but "treinta y dos" is how Spanish says 32.
_AND = frozenset({"and", "y"})


def _words_number(words: Sequence[str], start: int) -> tuple[int, int] | None:
    """A number spelled out from `words[start]`: (value, words used), or None.

    Covers 0-999 the way people type amounts: "twenty five", "treinta y dos",
    "a hundred", "cien", "ciento veinte", "one hundred and five".
    """
    i = start
    value = 0
    if i + 1 < len(words) and words[i] in ("a", "one") and words[i + 1] == "hundred":
        value, i = 100, i + 2
    elif words[i] in _HUNDRED:
        value, i = 100, i + 1
    elif i + 1 < len(words) and words[i] in _UNITS and words[i + 1] == "hundred":
        value, i = 100 * _UNITS[words[i]], i + 2
    if value:
        if i < len(words) and words[i] in _AND and i + 1 < len(words):
            rest = _words_below_hundred(words, i + 1)
            if rest is not None:
                return value + rest[0], i + 1 + rest[1] - start
        rest = _words_below_hundred(words, i) if i < len(words) else None
        if rest is not None:
            return value + rest[0], i + rest[1] - start
        return value, i - start
    below = _words_below_hundred(words, start)
    return below


def _words_below_hundred(words: Sequence[str], start: int) -> tuple[int, int] | None:
    word = words[start]
    if word in _UNITS:
        return _UNITS[word], 1
    if word not in _TENS:
        return None
    tens = _TENS[word]
    nxt = start + 1
    if nxt + 1 < len(words) and words[nxt] in _AND and 1 <= _UNITS.get(words[nxt + 1], 0) <= 9:
        return tens + _UNITS[words[nxt + 1]], 3
    if nxt < len(words) and 1 <= _UNITS.get(words[nxt], 0) <= 9:
        return tens + _UNITS[words[nxt]], 2
    return tens, 1


def _numbers_in_words(words: Sequence[str]) -> list[int]:
    found: list[int] = []
    i = 0
    while i < len(words):
        spelled = _words_number(words, i)
        if spelled is None:
            i += 1
            continue
        found.append(spelled[0])
        i += spelled[1]
    return found


# -- numbers ---------------------------------------------------------------------------

# Digits with "." or "," inside: "20", "1,5", "1.500,25". A sign only where it
# cannot be a hyphen between words.
_NUMBER = re.compile(r"(?<![\w.,])[-+]?\d+(?:[.,]\d+)*")


def _other_locale(locale: str) -> str:
    return "es" if locale.split("_")[0].split("-")[0] == "en" else "en"


def _decimal(token: str, locale: str) -> Decimal | None:
    """`token` read with `locale`'s separators, else with the other locale's.

    Babel's strict mode rejects impossible grouping ("1.5" in Spanish, where "."
    groups thousands), and the other reading is then what the person meant:
    a Spanish speaker typing "1.5" in English mode or the reverse.
    """
    for code in (locale, _other_locale(locale)):
        try:
            return parse_decimal(token, locale=code, strict=True)
        except NumberFormatError:
            continue
    return None


def parse_number(text: str, locale: str) -> float | None:
    """The one number in `text`, in digits or in words, or None.

    "20", "20 minutes", "unos 30 minutos", "1,5" (es), "1,500" (en), "twenty five",
    "veinticinco", "treinta y dos", "a hundred", "cien". Other words around the
    number are ignored; two numbers ("20 or 30") are ambiguous, so None.
    Whole numbers come back as int-valued floats (20.0).
    """
    lowered = unicodedata.normalize("NFKC", text).strip().lower()
    tokens = _NUMBER.findall(lowered)
    values: list[float] = []
    for token in tokens:
        parsed = _decimal(token, locale)
        if parsed is None:
            return None
        values.append(float(parsed))
    words = normalize(_NUMBER.sub(" ", lowered)).split()
    if _other_locale(locale) == "es":
        # English "once" is one time, not the Spanish eleven: "once a week".
        words = [w for w in words if w != "once"]
    values.extend(float(n) for n in _numbers_in_words(words))
    # Four hundred nines is a float's infinity: no number anyone means, and int() of it
    # raises.
    if len(values) != 1 or not math.isfinite(values[0]):
        return None
    return values[0]


# -- ratings ---------------------------------------------------------------------------

# Faces from saddest to happiest, on the 1-5 scale the rating buttons show
# (dialogs/locales/*.yaml engine.rating: 😞 🙁 😐 🙂 😀).
# fmt: off
_FACES: dict[str, int] = {
    "😞": 1, "😢": 1, "😭": 1, "😫": 1, "😩": 1, "😖": 1,
    "🙁": 2, "😕": 2, "☹": 2, "😟": 2, "😔": 2,
    "😐": 3, "😑": 3, "😶": 3,
    "🙂": 4, "😊": 4, "☺": 4,
    "😀": 5, "😄": 5, "😃": 5, "😁": 5, "🤩": 5, "🥳": 5, "😍": 5,
}
# fmt: on
_STARS = frozenset({"⭐", "★", "🌟"})
# "🔟" has no digit inside for NFKD to expose, unlike the keycaps 0️⃣..9️⃣.
_KEYCAP_TEN = "🔟"
# fmt: off
_FEELINGS: dict[str, int] = {
    # 1
    "terrible": 1, "awful": 1, "horrible": 1, "rough": 1, "very bad": 1, "really bad": 1,
    "the worst": 1, "fatal": 1, "muy mal": 1, "pesimo": 1, "pesima": 1, "malisimo": 1,
    "malisima": 1,
    # 2
    "bad": 2, "meh": 2, "not good": 2, "not great": 2, "not so good": 2, "pretty bad": 2,
    "kinda bad": 2, "mal": 2, "mala": 2, "malo": 2, "no muy bien": 2, "no tan bien": 2,
    "regular tirando a mal": 2,
    # 3
    "ok": 3, "okay": 3, "so so": 3, "fine": 3, "alright": 3, "all right": 3, "not bad": 3,
    "average": 3, "normal": 3, "regular": 3, "mas o menos": 3, "asi asi": 3, "ni bien ni mal": 3,
    "normalito": 3,
    # 4
    "good": 4, "pretty good": 4, "quite good": 4, "nice": 4, "bien": 4, "buena": 4,
    "bueno": 4, "bastante bien": 4,
    # 5
    "great": 5, "excellent": 5, "amazing": 5, "awesome": 5, "fantastic": 5, "perfect": 5,
    "the best": 5, "very good": 5, "really good": 5, "super": 5, "wonderful": 5,
    "genial": 5, "excelente": 5, "muy bien": 5, "increible": 5, "fantastica": 5,
    "fantastico": 5, "perfecta": 5, "perfecto": 5, "buenisima": 5, "buenisimo": 5,
    "super bien": 5, "estupenda": 5, "estupendo": 5, "muy buena": 5, "muy bueno": 5,
}
# fmt: on
# Opening words that do not change the rating: "it was good", "fue genial".
# fmt: off
_RATING_LEAD = (
    "it was", "its", "it is", "it has been", "its been", "was", "has been", "been",
    "my week was", "honestly", "id say", "i would say", "maybe", "probably",
    "like", "about", "a", "an", "fue", "ha sido", "esta", "estuvo", "la verdad", "diria que",
    "yo diria", "como", "un", "una", "quizas", "tal vez",
)
_RATING_TAIL = (
    "i guess", "i think", "thanks", "creo", "gracias", "stars", "star", "estrellas", "estrella",
    "points", "puntos",
)
# fmt: on
_OUT_OF = re.compile(r"^(\d+)\s*(?:/|out of|of|de|sobre)\s*(\d+)$")
_FUZZY_FEELINGS = {w: v for w, v in _FEELINGS.items() if len(w) >= 5 and " " not in w}


def _strip_edges(words: list[str]) -> list[str]:
    changed = True
    while changed and words:
        changed = False
        for lead in _RATING_LEAD:
            parts = lead.split()
            if words[: len(parts)] == parts and len(words) > len(parts):
                words = words[len(parts) :]
                changed = True
                break
        for tail in _RATING_TAIL:
            parts = tail.split()
            if words[-len(parts) :] == parts and len(words) > len(parts):
                words = words[: -len(parts)]
                changed = True
                break
    return words


def _feeling(phrase: str) -> int | None:
    if phrase in _FEELINGS:
        return _FEELINGS[phrase]
    if " " in phrase or len(phrase) < 5:
        return None
    values = {
        v
        for w, v in _FUZZY_FEELINGS.items()
        if abs(len(w) - len(phrase)) <= 1 and OSA.distance(w, phrase) <= 1
    }
    return values.pop() if len(values) == 1 else None


def _on_scale(value: int, low: int, high: int) -> int:
    """A 1-5 feeling or face placed on a low..high scale, rounding halves up."""
    if (low, high) == (1, 5):
        return value
    scaled = Decimal(low) + Decimal(value - 1) * Decimal(high - low) / Decimal(4)
    return int(scaled.to_integral_value(rounding="ROUND_HALF_UP"))


def parse_rating(text: str, low: int = 1, high: int = 5) -> int | None:
    """A rating from `low` to `high` however the learner gives it, or None.

    Digits ("4", "4/5", "4 out of 5", "a 4"), number words ("four", "cuatro"),
    keycaps (4️⃣), a row of stars (⭐⭐⭐ is 3), faces (😞 1 .. 😀 5) and feeling
    words ("awful" 1, "meh" 2, "so-so" 3, "good" 4, "great" 5, in English and
    Spanish). Faces and feeling words are defined on 1-5 and stretched
    linearly onto other scales. Anything out of range, fractional or
    ambiguous is None.
    """
    value = _rating_value(text, low, high)
    if value is None or not low <= value <= high:
        return None
    return value


def _rating_value(text: str, low: int, high: int) -> int | None:
    raw = text.strip()
    if not raw:
        return None
    if raw == _KEYCAP_TEN:
        return 10
    compact = raw.replace("\ufe0f", "").replace(" ", "")
    if compact and all(c in _STARS for c in compact):
        return len(compact)
    # "3.5" is no rating; look before normalize splits it into two numbers.
    lowered = unicodedata.normalize("NFKC", raw).lower()
    if re.search(r"\d[.,]\d", lowered):
        return None
    # normalize drops the slash of "4/5"; spell it out first.
    words = _strip_edges(normalize(re.sub(r"(\d)\s*/\s*(\d)", r"\1 out of \2", raw)).split())
    if not words:
        return None
    faces = {_FACES[w] for w in words if w in _FACES}
    rest = [w for w in words if w not in _FACES]
    if faces and not rest:
        return _on_scale(faces.pop(), low, high) if len(faces) == 1 else None
    words = _strip_edges(rest)
    phrase = " ".join(words)
    number = _rating_number(words, high)
    if number is not None:
        value = number
    else:
        feeling = _feeling(phrase)
        if feeling is None:
            return None
        value = _on_scale(feeling, low, high)
    if faces and faces != {value}:
        return None  # "good 😞": the face and the words disagree
    return value


def _rating_number(words: list[str], high: int) -> int | None:
    spelled = [str(_UNITS[w]) if w in _UNITS else w for w in words]
    phrase = " ".join(spelled)
    out_of = _OUT_OF.match(phrase)
    if out_of is not None:
        # "8/10" on a 1-5 scale is a different scale, not an 8.
        value, scale = _small(out_of.group(1)), _small(out_of.group(2))
        return value if scale == high else None
    # isdecimal, not isdigit: "፩" (Ethiopic one) is a digit that int() refuses.
    digits = [w for w in spelled if w.isdecimal()]
    if len(spelled) == 1 and digits:
        return _small(digits[0])
    return None


def _small(digits: str) -> int | None:
    """Decimal digits as an int, or None past any scale: int() refuses strings of more
    than 4300 digits, and NFKD turns 2200 "⑳" into 4400 of them."""
    return int(digits) if len(digits) <= 9 else None
