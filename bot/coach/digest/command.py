"""/digest [CLASS]: a teacher previews this week's digest now.

Flow: dialogs/flows/digest.yaml. With a class name (typed loosely: "/digest 7b",
"/digest sciense") the teacher gets that class's digest; without one, every
class they teach; with a name none of their classes answers to, a question
listing their classes (another teacher's class is simply not among them).
Anyone who is not a teacher is told, kindly, that digests are for teachers.
A preview is a read of every learner it summarises, so it writes audit rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from babel.dates import format_time, get_day_names
from rapidfuzz import fuzz

from bot.coach.digest.facts import (
    ClassRef,
    Week,
    record_reads,
    summarise,
    teacher_classes,
    zone_of,
)
from bot.coach.digest.text import render_digest
from bot.coach.digest.weekly import digest_time
from bot.coach.goals import vocabulary
from bot.engine.actions import ActionContext, ActionRegistry
from bot.engine.messages import Reply
from bot.engine.understand import normalize

OUTCOME = "digest.outcome"  # teacher, not_teacher, no_classes, unknown, ambiguous
CLASS = "digest.class_id"  # a class id (as text) or ALL
CHOICES = "digest.class_choices"
WANTED = "digest.wanted"
ALL = "all"
# A typed word counts as a word of the class name at this rapidfuzz ratio (0-100):
# one slip in a seven-letter word ("sciense") scores 86, a different word rarely 60.
WORD_SCORE = 80
# A typed word this long may stand for a longer one it begins ("math" for "maths").
PREFIX_CHARS = 3
# "/digest@CoachBot 7B": Telegram adds the bot's name to commands in groups.
_COMMAND = re.compile(r"^/\w+(?:@\w+)?\s*")


def wanted_class(said: str) -> str:
    """The class name typed after the command ("" for none)."""
    return _COMMAND.sub("", said.strip(), count=1).strip() if said.startswith("/") else ""


def match_classes(wanted: str, classes: Sequence[ClassRef]) -> list[ClassRef]:
    """The classes `wanted` names best: one when it is clear, several when it is not.

    An exact name (accents and case aside) wins. Otherwise every typed word must
    match a word of the name: numbers exactly ("7" never finds "Year 8"), other
    words allowing a typo or a prefix; the best-scoring classes are returned.
    """
    key = normalize(wanted)
    if not key:
        return []
    exact = [ref for ref in classes if normalize(ref.name) == key]
    if exact:
        return exact
    scored = [(_score(key.split(), normalize(ref.name).split()), ref) for ref in classes]
    best = max((score for score, _ in scored), default=0.0)
    if best < WORD_SCORE:
        return []
    return [ref for score, ref in scored if score == best]


def _score(typed: list[str], words: list[str]) -> float:
    if not words:
        return 0.0
    return min(max(_word_score(t, w) for w in words) for t in typed)


def _word_score(typed: str, word: str) -> float:
    if typed == word:
        return 100.0
    if any(c.isdigit() for c in typed + word):
        return 0.0  # 7b is not 7c, year 7 is not year 8
    if len(typed) >= PREFIX_CHARS and word.startswith(typed):
        return 100.0
    return float(fuzz.ratio(typed, word))


def register(actions: ActionRegistry) -> None:
    @actions.register("digest.find", sets=(OUTCOME, CLASS, CHOICES, WANTED))
    async def find(ctx: ActionContext) -> None:
        """Who is asking, and which of their classes: sets OUTCOME and CLASS."""
        for slot in (OUTCOME, CLASS, CHOICES, WANTED):
            ctx.slots.pop(slot, None)
        if ctx.person.role != "teacher" or ctx.person.id is None:
            ctx.slots[OUTCOME] = "not_teacher"
            return
        classes = await teacher_classes(ctx.session, ctx.person.id)
        if not classes:
            ctx.slots[OUTCOME] = "no_classes"
            return
        wanted = wanted_class(ctx.said)
        if not wanted:
            ctx.slots[OUTCOME] = "teacher"
            ctx.slots[CLASS] = ALL
            return
        found = match_classes(wanted, classes)
        if len(found) == 1:
            ctx.slots[OUTCOME] = "teacher"
            ctx.slots[CLASS] = str(found[0].id)
            return
        ctx.slots[OUTCOME] = "ambiguous" if found else "unknown"
        ctx.slots[WANTED] = " ".join(wanted.split())[:40]
        offered = found or classes
        ctx.slots[CHOICES] = [{"value": str(ref.id), "label": ref.name} for ref in offered] + [
            {"value": ALL, "label": ctx.render("digest.all_classes", {})}
        ]

    @actions.register("digest.show")
    async def show(ctx: ActionContext) -> None:
        """This week's digest for the chosen class (or all), as it stands now."""
        if ctx.person.role != "teacher" or ctx.person.id is None:
            ctx.say("digest.not_teacher")
            return
        classes = await teacher_classes(ctx.session, ctx.person.id)
        chosen = str(ctx.slots.get(CLASS) or ALL)
        # The choice is checked against the teacher's classes again: a slot is never
        # a licence to read another teacher's class.
        picked = classes if chosen == ALL else [ref for ref in classes if str(ref.id) == chosen]
        if not picked:
            ctx.say("digest.no_classes")
            return
        week = Week.of(ctx.now, zone_of(ctx.person.timezone))
        words = vocabulary(ctx)
        digests = await summarise(ctx.session, picked, week, ctx.now)
        for digest in digests:
            text = render_digest(digest, render=ctx.render, locale=ctx.locale, vocabulary=words)
            ctx.replies.append(Reply(text))
        await record_reads(ctx.session, digests, now=ctx.now, detail="preview")
        ctx.say("digest.preview_note", **_schedule(ctx))


def _schedule(ctx: ActionContext) -> dict[str, str]:
    """The teacher's digest day and time in words ("Friday", "3:00 PM")."""
    weekday, at = digest_time(ctx.person)
    # Babel numbers weekdays from Monday = 0; ISO from Monday = 1.
    day = get_day_names("wide", locale=ctx.locale)[weekday - 1]
    return {"day": day, "time": format_time(at, "short", locale=ctx.locale)}
