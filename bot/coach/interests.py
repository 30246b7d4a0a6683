"""Interest discovery: twelve quick items and one open question become an interest profile.

The `interests` flow (dialogs/flows/interests.yaml) asks two items for each of
Holland's six RIASEC areas, each answered 👍 / 🤷 / 👎 (stored as "like",
"unsure", "dislike"), then "what do you do for fun?", whose words are mapped to
interest tags of content/vocabulary.yaml. `interests.save` turns that into a
score per area and the top areas, stores an `InterestProfile` row (every run
adds one; the newest is the learner's profile) and tells the learner in plain
words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from babel.lists import format_list
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.engine.actions import ActionContext, ActionRegistry
from bot.engine.messages import Button, Reply
from bot.engine.topics import TermMatch, Vocabulary
from bot.engine.understand import close_matches, intent_threshold, normalize, parse_yes_no
from bot.store.models import AREAS, InterestProfile

# Each quiz item (a step of the flow, answered into ANSWER_SLOT) and its RIASEC area.
# tests/test_interests.py checks that the flow asks exactly these.
ITEMS: Mapping[str, str] = {
    "bike": "R",
    "treehouse": "R",
    "sky": "I",
    "planes": "I",
    "comic": "A",
    "song": "A",
    "classmate": "S",
    "new_student": "S",
    "bake_sale": "E",
    "club": "E",
    "collection": "C",
    "stats": "C",
}
ANSWER_SLOT = "interests.answer.{item}"
ANSWER_SLOTS = frozenset(ANSWER_SLOT.format(item=item) for item in ITEMS)
FUN_SLOT = "interests.fun"

# -- scoring -------------------------------------------------------------------------
#
# An area's score is the share of the points its answered items could have earned,
# with 👍 = 2, 🤷 = 1 and 👎 = 0:  score = 100 * points / (2 * answered items).
# With two items that gives 👍👍 100, 👍🤷 75, 👍👎 or 🤷🤷 50, 🤷👎 25, 👎👎 0.
# Skipped items are left out, so one answered item decides alone; an area whose
# items were both skipped has no quiz score.
POINTS: Mapping[str, int] = {"like": 2, "unsure": 1, "dislike": 0}
MAX_POINTS = 2
# Each tag the learner named in an area adds this much (capped at 100): a hobby
# named unprompted counts as much as one item moving one step (🤷 to 👍).
TAG_BOOST = 25
# An area known only from a tag starts where 🤷 to both items would put it.
NEUTRAL = 50
# A top area needs more enthusiasm than doubt: above the 50 of 🤷🤷 (or 👍👎).
# Scores come in steps of 25, so in practice a top area has 75 or more.
TOP_MIN = 60
# The issue asks for "the top two or three areas".
MAX_TOP = 3
# Tags kept from the open question, and how many of them the reply mentions.
MAX_TAGS = 5
TAGS_MENTIONED = 2


def score_areas(answers: Mapping[str, str | None], tag_areas: Iterable[str]) -> dict[str, int]:
    """Area letter → 0-100 from the items' answers (item → like/unsure/dislike/None)
    and the areas of the tags found in the open question (one entry per tag).

    Areas with neither an answered item nor a tag are left out: we know nothing
    about them, and a 0 would read as a dislike.
    """
    points: dict[str, int] = {}
    answered: dict[str, int] = {}
    for item, answer in answers.items():
        if answer is None or answer not in POINTS:
            continue  # skipped
        area = ITEMS[item]
        points[area] = points.get(area, 0) + POINTS[answer]
        answered[area] = answered.get(area, 0) + 1
    boosts: dict[str, int] = {}
    for area in tag_areas:
        boosts[area] = boosts.get(area, 0) + TAG_BOOST
    scores: dict[str, int] = {}
    for area in AREAS:
        if area in answered:
            # 100 * points / (2 * answered), rounded half up in integers.
            total = MAX_POINTS * answered[area]
            base = (200 * points[area] + total) // (2 * total)
        elif area in boosts:
            base = NEUTRAL
        else:
            continue
        scores[area] = min(100, base + boosts.get(area, 0))
    return scores


def top_areas(scores: Mapping[str, int]) -> list[str]:
    """Up to MAX_TOP areas scoring at least TOP_MIN, best first.

    Ties go in RIASEC order (R I A S E C), so the same answers always give the
    same top areas.
    """
    qualifying = [area for area in AREAS if scores.get(area, 0) >= TOP_MIN]
    qualifying.sort(key=lambda area: (-scores[area], AREAS.index(area)))
    return qualifying[:MAX_TOP]


# -- reading an answer in words ------------------------------------------------------
#
# Buttons send "like", "unsure" or "dislike"; typed words are read here, in either
# language, for the items' choice steps (once the engine lets a choice step name a
# reader; until then it matches only the values and the emoji labels). The phrases
# are written naturally and normalized on load: accents and case do not matter.
# "I don't know" never gets here: the engine's dont_know intent sends it to the
# item's *_unsure step; "skip" is the engine's too.
# fmt: off
_PHRASES: Mapping[str, Sequence[str]] = {
    "like": (
        "like", "i like it", "i like that", "like it", "love", "love it", "i love it",
        "i love that", "i'd love that", "i would love that", "i'd love to", "would love to",
        "sounds fun", "that sounds fun", "fun", "so fun", "cool", "so cool", "awesome",
        "great", "amazing", "heck yes", "yay", "enjoy", "i'd enjoy that", "i would enjoy it",
        "a lot", "very much", "me gusta", "me gustaría", "me encanta", "me encantaría",
        "encanta", "me mola", "mola", "me flipa", "guay", "genial", "chido", "qué padre",
        "bacán", "chévere", "súper", "mucho", "muchísimo", "sí mucho", "me apunto",
        "qué divertido", "divertido", "obvio",
        "👍", "😍", "🤩", "❤", "🥰", "😀", "😃", "😄", "😁", "😊", "🙂", "🙌", "💯", "🔥",
        "👌", "✅", "🤘", "😎", "💖", "💕",
    ),
    "unsure": (
        "unsure", "meh", "maybe", "perhaps", "kinda", "kind of", "sort of", "sorta",
        "a bit", "a little", "a little bit", "somewhat", "not sure", "depends",
        "it depends", "so so", "okay i guess", "i guess", "could be", "possibly",
        "probably", "50/50", "in between", "whatever", "mid", "más o menos", "quizás",
        "quizá", "tal vez", "a lo mejor", "puede ser", "puede", "un poco", "regular",
        "depende", "ni fu ni fa", "no sé", "no estoy seguro", "no estoy segura",
        "me da igual", "igual", "así así",
        "🤷", "😐", "🤔", "😶", "😑", "🙃", "🫤", "🤨", "➖",
    ),
    "dislike": (
        "dislike", "nah", "no way", "not for me", "not really", "not much", "boring",
        "so boring", "sounds boring", "ew", "eww", "yuck", "gross", "hate it", "i hate it",
        "i'd hate that", "i would hate that", "never", "no thanks", "not at all",
        "i don't like it", "don't like it", "not my thing", "hard pass", "lame", "no fun",
        "not fun", "no me gusta", "no me gustaría", "nada", "para nada", "qué aburrido",
        "aburrido", "aburrida", "odio", "lo odio", "ni loco", "ni loca", "qué va",
        "no mucho", "nunca", "puaj", "qué pereza", "no es lo mío", "no es para mí",
        "👎", "😒", "🙅", "❌", "😴", "🥱", "🤢", "🤮", "😖", "🙄", "😕", "🙁", "😞",
    ),
}
# Words that change nothing around an answer, and the parts of a combined emoji
# (🤷‍♀️ is 🤷, a zero-width joiner and ♀).
_FILLERS = frozenset({
    "\u200d", "♀", "♂", "hmm", "hm", "um", "umm", "uh", "oh", "well", "i think", "lol",
    "haha", "jaja", "pues", "mmm", "eh", "creo", "creo que", "supongo", "really", "so",
    "muy", "honestly", "la verdad",
})
# fmt: on
_ANSWER_OF: Mapping[str, str] = {
    normalize(phrase): answer for answer, phrases in _PHRASES.items() for phrase in phrases
}
_WORDY = [phrase for phrase in _ANSWER_OF if len(phrase) > 1]  # emoji match only exactly
_LONGEST = max(len(phrase.split()) for phrase in [*_ANSWER_OF, *_FILLERS])


def read_answer(text: str) -> str | None:
    """Read a typed answer, in English or Spanish: "like", "unsure", "dislike" or None.

    "love it", "sí", "meh", "más o menos", "nope", "👍🏽", "🤷‍♀️" and "yes please" are
    all read; so are small typos ("borring"). A message that says two different
    things ("yes and no") is no answer.
    """
    words = normalize(text)
    if not words:
        return None
    if words in _ANSWER_OF:
        return _ANSWER_OF[words]
    yes_no = parse_yes_no(text)
    if yes_no is not None:
        return "like" if yes_no else "dislike"
    found = _read_phrases(words.split())
    if found is not None:
        return found
    matches = close_matches(words, _WORDY, intent_threshold(len(words)))
    if matches:
        best, _ = max(matches, key=lambda match: match[1])
        return _ANSWER_OF[_WORDY[best]]
    return None


def _read_phrases(words: Sequence[str]) -> str | None:
    """Split the words into known phrases (longest first); all must agree on one answer."""
    answers: set[str] = set()
    i = 0
    while i < len(words):
        for size in range(min(_LONGEST, len(words) - i), 0, -1):
            phrase = " ".join(words[i : i + size])
            if phrase in _FILLERS:
                break
            answer = _ANSWER_OF.get(phrase)
            if answer is None:
                yes_no = parse_yes_no(phrase)
                answer = None if yes_no is None else ("like" if yes_no else "dislike")
            if answer is not None:
                answers.add(answer)
                break
        else:
            return None
        i += size
    return answers.pop() if len(answers) == 1 else None


# -- the open question ---------------------------------------------------------------


def find_tags(text: str, vocabulary: Vocabulary) -> list[TermMatch]:
    """The interest tags free text mentions, in the order the learner named them."""
    found = vocabulary.find(text, "interest", limit=MAX_TAGS)
    return sorted(found, key=lambda match: _own_words(text, match.phrase)[0])


_WORD = re.compile(r"\w+")


def _own_words(text: str, phrase: str) -> tuple[int, str]:
    """Where a matched phrase (normalized words) starts in the learner's text, and how
    they wrote it: "fútbol" rather than the normalized "futbol"."""
    originals = _WORD.findall(text)
    normalized = [normalize(word) for word in originals]
    wanted = phrase.split()
    for start in range(len(normalized) - len(wanted) + 1):
        if normalized[start : start + len(wanted)] == wanted:
            return start, " ".join(originals[start : start + len(wanted)])
    return len(originals), phrase  # an apostrophe split the words differently


# -- the profile ---------------------------------------------------------------------


async def latest_profile(session: AsyncSession, person_id: int) -> InterestProfile | None:
    """The learner's interest profile: the newest quiz result, or None before the first."""
    result = await session.exec(
        select(InterestProfile)
        .where(InterestProfile.person_id == person_id)
        .order_by(col(InterestProfile.created_at).desc(), col(InterestProfile.id).desc())
        .limit(1)
    )
    return result.first()


def register(actions: ActionRegistry) -> None:
    actions.reader("interests.answer")(read_answer)

    @actions.register("interests.unsure")
    async def unsure(ctx: ActionContext) -> None:
        """Record "I don't know" to an item as a 🤷 (args: slot, the item's slot)."""
        slot = str(ctx.args.get("slot"))
        if slot not in ANSWER_SLOTS:
            raise ValueError(f"interests.unsure: {slot!r} is not a quiz item's slot")
        ctx.slots[slot] = "unsure"

    @actions.register("interests.save")
    async def save(ctx: ActionContext) -> None:
        """Score the answers, store a new profile, say what it shows, and forget the
        raw answers: the profile keeps what matters, and the learner's own words need
        not stay in the conversation."""
        assert ctx.person.id is not None
        assert ctx.vocabulary is not None, "the engine passes its vocabulary to actions"
        answers = {item: ctx.slots.get(ANSWER_SLOT.format(item=item)) for item in ITEMS}
        fun = str(ctx.slots.get(FUN_SLOT) or "").strip()
        matches = find_tags(fun, ctx.vocabulary) if fun else []
        scores = score_areas(answers, [match.term.group for match in matches])
        top = top_areas(scores)
        ctx.session.add(
            InterestProfile(
                person_id=ctx.person.id,
                scores=scores,
                top_areas=top,
                tags=[match.term.id for match in matches],
                created_at=ctx.now,
            )
        )
        if matches:
            named = [_own_words(fun, match.phrase)[1] for match in matches[:TAGS_MENTIONED]]
            listed = format_list(named, locale=ctx.locale)
            ctx.say("interests.tags_noted", tags=listed[:1].upper() + listed[1:])
        elif fun:
            ctx.say("interests.got_it")
        if top:
            phrases = [ctx.render(f"interests.area.{area}", {}) for area in top]
            ctx.say("interests.result", areas=format_list(phrases, locale=ctx.locale))
        else:
            ctx.say("interests.result_none")
        # Plain buttons, not a question: the flow ends here, and the engine starts the
        # flow a pressed button names.
        ctx.replies.append(
            Reply(
                ctx.render("interests.next_prompt", {}),
                (
                    Button(ctx.render("interests.next_button.goal", {}), "goal"),
                    Button(ctx.render("interests.next_button.next", {}), "next"),
                    Button(ctx.render("interests.next_button.resources", {}), "resources"),
                ),
            )
        )
        for slot in [name for name in ctx.slots if name.startswith("interests.")]:
            del ctx.slots[slot]
