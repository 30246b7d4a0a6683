"""Goal setting and the goals list: the actions behind the `goal` and `goals` flows.

A goal follows WOOP (Oettingen, "Rethinking Positive Thinking", 2014): the Wish,
its best Outcome, the inner Obstacle, and a Plan written as an if-then
"implementation intention" (Gollwitzer, 1999: "If <obstacle>, then I will ...").
SMART checks ride along: a specific topic from the vocabulary (narrowed with
choices when the wish is vague), an optional measure, and a deadline within a year.

The flows (dialogs/flows/goal.yaml) ask; these actions read the answers, save
the goal and change it later. Slots outlive flows, so every goal starts by
clearing the `goal.` slots and ends by clearing them again.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.engine.actions import ActionContext, ActionRegistry
from bot.engine.messages import Button, Reply
from bot.engine.topics import Term, TermMatch, Vocabulary
from bot.engine.understand import intent_threshold, normalize, similarity
from bot.paths import shipped
from bot.store.models import Goal, Person

# Issue 3: "at most three active goals (the fourth asks which to finish or drop first)".
MAX_ACTIVE_GOALS = 3
# Issue 3: a learner with no idea of a deadline is offered one four weeks away.
SUGGESTED_DAYS = 28
# The parts of a goal a learner can change, in the order the flow asks them.
PARTS = ("wish", "outcome", "obstacle", "plan", "measure", "deadline")
# A wish on a button: longer labels wrap or get cut on a phone-width button.
BUTTON_WISH_CHARS = 32
# A wish in the /goals list: three lines with their dates must fit one message
# of at most 320 characters (issue 3's tone rule, tests/test_tone.py).
LIST_WISH_CHARS = 40
# How many topics a narrowing question offers, before "something else":
# enough to cover the usual subjects, few enough to read at a glance.
NARROW_CHOICES = 5
OTHER = "other"
KEEP = "keep"

# Slots of the goal flow (each named by a step's `slot` or set by an action here).
WISH, TOPIC, OUTCOME, OBSTACLE, PLAN, MEASURE, DEADLINE = (
    "goal.wish",
    "goal.topic",
    "goal.outcome",
    "goal.obstacle",
    "goal.plan",
    "goal.measure",
    "goal.deadline",
)
NARROW_CHOICES_SLOT = "goal.narrow_choices"
NARROW = "goal.narrow"
FULL = "goal.full"
FULL_CHOICES = "goal.full_choices"
TO_CLOSE = "goal.to_close"
CLOSE_HOW = "goal.close_how"
SUGGESTED = "goal.suggested_deadline"
CHANGING = "goal.changing"
CHANGE_PART = "goal.change_part"
EDITING = "goal.editing"
GONE = "goal.gone"
# Set by /goals just before it hands over to the goal flow to change one part.
EDIT_ID = "goal.edit_id"
EDIT_PART = "goal.edit_part"
# The check-in flow (bot/coach/checkins.py) checks in on this goal only when set.
CHECKIN_GOAL = "checkin.goal_id"

# Slots of the goals flow.
GOALS_COUNT = "goals.count"
GOALS_CHOICES = "goals.choices"
GOALS_PICK = "goals.pick"
GOALS_ID = "goals.goal_id"
GOALS_WISH = "goals.wish"
GOALS_PART = "goals.part"

# Broad topics ("math") are narrowed to these, in this order; any id missing from
# the vocabulary is left out. A coaching choice: the parts learners ask about most.
NARROWER: dict[str, tuple[str, ...]] = {
    "math-general": ("fractions", "algebra", "geometry", "word-problems", "arithmetic"),
    "science-general": ("biology", "chemistry", "physics", "space", "experiments"),
    "music-general": ("guitar", "piano", "singing", "drums", "music-theory"),
    "foreign-languages": ("english-language", "spanish-language", "french", "german"),
}
# A vague wish ("school", "stuff") is narrowed to the usual subjects; one about
# grades to the study habits behind them.
COMMON_TOPICS = ("math-general", "reading", "writing", "science-general", "homework-habits")
GRADE_TOPICS = ("test-prep", "homework-habits", "focus", "time-management", "note-taking")
# fmt: off
_GRADE_WORDS = frozenset({
    "grades", "grade", "marks", "gpa", "report card", "notas", "nota", "calificaciones",
    "calificacion", "boletin", "promedio",
})
# Words that say nothing about what to get better at: a wish made only of these is
# vague. Accents are stripped (normalize) before comparing.
_VAGUE_WORDS = frozenset({
    # English
    "i", "im", "want", "wanna", "would", "like", "to", "get", "be", "better", "best", "good",
    "well", "at", "in", "on", "with", "my", "me", "the", "a", "an", "and", "or", "of", "all",
    "some", "more", "just", "really", "very", "so", "much", "improve", "improving", "learn",
    "learning", "do", "doing", "help", "work", "it", "this", "that", "these", "things",
    "thing", "stuff", "everything", "anything", "something", "school", "schoolwork", "class",
    "classes", "subject", "subjects", "homework", "general", "life", "question", "lol", "idk",
    "whatever", "skip", "pass", "nothing", "none", "no", "yes", "ok", "okay", "hmm", "set",
    "goal", "goals", "new",
    # Spanish
    "yo", "quiero", "querria", "ser", "mejor", "mejorar", "aprender", "en", "con", "mi", "mis",
    "el", "la", "los", "las", "un", "una", "y", "o", "de", "del", "todo", "toda", "todas",
    "todos", "mas", "muy", "cosas", "cosa", "algo", "escuela", "colegio", "cole", "clase",
    "clases", "materia", "materias", "tarea", "tareas", "deberes", "estudios", "sacar",
    "mejores", "nada", "vida", "si", "vale", "pues", "eso", "esto", "meta",
    "metas", "objetivo", "nueva", "nuevo", "poner",
    *_GRADE_WORDS,
})
# fmt: on
# How a wish often starts ("I want to get better at fractions"): the words after
# it are the wish. Matched with typos forgiven, the longest lead first. These also
# start the goal flow (the `goal` intent's prefix examples), so the words after
# them, when the flow starts, are taken as the wish.
# fmt: off
_WISH_LEADS = (
    "i want to get better at", "i wanna get better at", "i want to be better at",
    "i would like to get better at", "id like to get better at", "i want to improve my",
    "i want to improve at", "i want to improve in", "i want to improve",
    "i want to learn about", "i want to learn", "i want to work on", "i need help with",
    "help me get better at", "help me with", "get better at", "be better at",
    "better at", "improve my", "improve at", "work on", "learn about",
    "quiero mejorar en", "quiero mejorar mi", "quiero mejorar mis", "quiero mejorar",
    "quiero ser mejor en", "quiero aprender sobre", "quiero aprender a",
    "quiero aprender", "quiero trabajar en", "necesito ayuda con", "ayudame a mejorar en",
    "ayudame con", "mejorar en", "mejorar mi", "mejorar mis", "aprender a",
    "ser mejor en",
)
# Weaker leads, only stripped from an answer to "what do you want to get better
# at?" ("quiero dibujar mejor" → "dibujar mejor"): at the start of the flow they
# would turn "I want to set a goal" into a wish.
_ANSWER_LEADS = (
    "i want to", "i wanna", "i want", "i would like to", "id like to", "improve", "quiero",
    "me gustaria", "quisiera",
)
# fmt: on


def _longest_first(leads: Sequence[str]) -> tuple[str, ...]:
    normalized = {normalize(lead) for lead in leads}
    return tuple(sorted(normalized, key=lambda lead: (-len(lead.split()), -len(lead))))


STARTING_LEADS = _longest_first(_WISH_LEADS)
ANSWER_LEADS = _longest_first((*_WISH_LEADS, *_ANSWER_LEADS))
_TRAILING_PUNCTUATION = re.compile(r"[\s.!,;:…]+$")
_SPACES = re.compile(r"\s+")
# English "I" typed lowercase: "i get distracted", "i'm tired" (no Spanish word is "i").
_LONE_I = re.compile(r"\bi\b(?=['’\s]|$)")
# The start of an obstacle that the plan question already says: "If <obstacle>".
_OBSTACLE_LEAD = re.compile(
    r"^(?:if|when|whenever|maybe|probably|si|cuando|quizas|quizás|tal vez)\s+", re.IGNORECASE
)
# The if-clause and "then I will" a learner may type around their plan:
# "If I get distracted, then I'll put my phone away" → "put my phone away".
_PLAN_IF = re.compile(r"^(?:if|when|si|cuando)\b[^,]*?(?:,\s*|\s+(?=then\b|entonces\b))", re.I)
_PLAN_THEN = re.compile(r"^(?:then|so|entonces|pues)\b[\s,:]*", re.IGNORECASE)
_PLAN_WILL = re.compile(
    r"^(?:i\s+will|i\s*['’]?ll|i\s+would|i\s*['’]d|i\s+am\s+going\s+to|i\s*['’]?m\s+going\s+to|"
    r"i\s*['’]?m\s+gonna|i\s+shall|i\s+can|i)\s+",
    re.IGNORECASE,
)
# Answers that are no answer at all, for the questions the plan cannot do without.
# fmt: off
_NO_ANSWER = frozenset({
    "skip", "pass", "next", "no", "nothing", "none", "nah", "idk", "nope", "whatever",
    "saltar", "paso", "nada", "ninguno", "ninguna", "nose", "no se", "ni idea",
})
# fmt: on


# -- the vocabulary --------------------------------------------------------------------


@functools.cache
def _shipped_vocabulary() -> Vocabulary:
    """The shipped tag vocabulary, for callers without a turn (the engine passes its own)."""
    return Vocabulary.load(shipped("content") / "vocabulary.yaml")


def vocabulary(ctx: ActionContext | None = None) -> Vocabulary:
    """The deployment's vocabulary (COACH_CONTENT_DIR) during a turn, else the shipped one."""
    if ctx is not None and ctx.vocabulary is not None:
        return ctx.vocabulary
    return _shipped_vocabulary()


def topic_label(topic: str, locale: str, ctx: ActionContext | None = None) -> str:
    """The topic in words, in the learner's language ("fracciones"); its id if unknown."""
    return vocabulary(ctx).label(topic, locale)


def _is_broad(term: Term) -> bool:
    return term.id in NARROWER


def best_topic(text: str, ctx: ActionContext | None = None) -> TermMatch | None:
    """The topic a wish is about, if the vocabulary finds one."""
    found = vocabulary(ctx).find(text, "topic", limit=1)
    return found[0] if found else None


# -- reading learner text --------------------------------------------------------------


def tidy(text: str) -> str:
    """Spaces collapsed and trailing full stops or commas dropped: how the answer is kept."""
    return _TRAILING_PUNCTUATION.sub("", _SPACES.sub(" ", text).strip())


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word with an ellipsis when it is longer."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0] if " " in text[: limit - 1] else text[: limit - 1]
    return cut.rstrip(" ,.;:") + "…"


def strip_lead(text: str, leads: Sequence[str] = ANSWER_LEADS) -> str | None:
    """The wish after a lead like "I want to get better at", or None if there is no lead.

    The lead is matched on normalized words, typos forgiven; what follows is
    returned in the learner's own spelling (accents, capitals).
    """
    tokens = text.split()
    words = normalize(text).split()
    for lead in leads:
        size = len(lead.split())
        if len(words) < size:
            continue
        if similarity(" ".join(words[:size]), lead) < intent_threshold(len(lead)):
            continue
        # Walk the learner's tokens until they cover `size` normalized words.
        covered, index = 0, 0
        while index < len(tokens) and covered < size:
            covered += len(normalize(tokens[index]).split())
            index += 1
        if covered != size:
            continue  # a token straddles the lead's end ("at:fractions"): no clean cut
        return tidy(" ".join(tokens[index:]))
    return None


def is_vague(text: str) -> bool:
    """Whether a wish names nothing to work on ("school", "get better grades", "stuff")."""
    words = normalize(text).split()
    return all(word in _VAGUE_WORDS for word in words)


def _about_grades(text: str) -> bool:
    words = normalize(text).split()
    pairs = {" ".join(words[i : i + 2]) for i in range(len(words) - 1)}
    return bool(_GRADE_WORDS & (set(words) | pairs))


def no_answer(text: str) -> bool:
    """ "skip", "nothing", "nada": not an obstacle or a plan anyone could use."""
    return normalize(text) in _NO_ANSWER


def tidy_obstacle(text: str) -> str:
    """The obstacle as it reads after "If": "When I get bored." → "I get bored"."""
    obstacle = tidy(_OBSTACLE_LEAD.sub("", tidy(text)))
    return _lower_first(obstacle)


def tidy_plan(text: str) -> str:
    """The plan without the if-clause or "then I will" the question already says."""
    plan = tidy(text)
    for pattern in (_PLAN_IF, _PLAN_THEN, _PLAN_WILL):
        plan = pattern.sub("", plan, count=1).strip()
    return _lower_first(tidy(plan))


def _lower_first(text: str) -> str:
    """Lowercase the first letter to sit mid-sentence, unless the word is "I" or a name;
    a lone "i" (phones type it lowercase) becomes "I"."""
    text = _LONE_I.sub("I", text)
    first = text.split(" ", 1)[0]
    if (
        not first
        or first == "I"
        or first.startswith(("I'", "I’"))
        or first[1:] != first[1:].lower()
    ):
        return text  # "I", "I'm", "TikTok", "PE": a name or an acronym keeps its capitals
    return text[0].lower() + text[1:]


def _upper_first(text: str) -> str:
    """A wish as a title: "fractions" → "Fractions" (the rest as the learner typed it)."""
    return text[:1].upper() + text[1:]


def _today(ctx: ActionContext) -> date:
    try:
        zone = ZoneInfo(ctx.person.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return ctx.now.astimezone(zone).date()


# -- the database ----------------------------------------------------------------------


async def active_goals(session: AsyncSession, person: Person) -> list[Goal]:
    """The person's active goals, oldest first."""
    rows = await session.exec(
        select(Goal)
        .where(Goal.person_id == person.id, Goal.status == "active")
        .order_by(col(Goal.created_at), col(Goal.id))
    )
    return list(rows.all())


async def own_active_goal(ctx: ActionContext, goal_id: Any) -> Goal | None:
    """The active goal with this id, if it is this person's (slots are data: trust nothing)."""
    try:
        number = int(goal_id)
    except (TypeError, ValueError):
        return None
    goal = await ctx.session.get(Goal, number)
    if goal is None or goal.person_id != ctx.person.id or goal.status != "active":
        return None
    return goal


def finish(goal: Goal, now: datetime) -> None:
    goal.status = "done"
    goal.completed_at = now
    goal.updated_at = now


def drop(goal: Goal, now: datetime) -> None:
    goal.status = "dropped"
    goal.updated_at = now


def _clear(slots: dict[str, Any], prefix: str) -> None:
    for key in [k for k in slots if k.startswith(prefix)]:
        del slots[key]


def _choices(ctx: ActionContext, topics: Sequence[str]) -> list[dict[str, str]]:
    known = {t.id for t in vocabulary(ctx).topics()}
    return [
        {"value": topic, "label": topic_label(topic, ctx.locale, ctx).capitalize()}
        for topic in topics
        if topic in known
    ]


def _other(ctx: ActionContext) -> dict[str, str]:
    return {"value": OTHER, "label": ctx.render("goal.something_else", {})}


def _load(slots: dict[str, Any], goal: Goal) -> None:
    """Put a saved goal into the flow's slots, to change one part of it."""
    slots.update(
        {
            WISH: goal.wish,
            TOPIC: goal.topic,
            OUTCOME: goal.outcome,
            OBSTACLE: goal.obstacle,
            PLAN: goal.plan,
            MEASURE: goal.measure,
            DEADLINE: goal.deadline.isoformat() if goal.deadline else None,
        }
    )


def _text(slots: dict[str, Any], key: str) -> str | None:
    value = slots.get(key)
    return tidy(str(value)) or None if value is not None else None


def _deadline(slots: dict[str, Any]) -> date | None:
    value = slots.get(DEADLINE)
    return date.fromisoformat(value) if isinstance(value, str) and value else None


# -- the actions -----------------------------------------------------------------------


def register(actions: ActionRegistry) -> None:
    _register_goal(actions)
    _register_goals(actions)


def _register_goal(actions: ActionRegistry) -> None:
    @actions.register(
        "goal.start",
        sets=(WISH, TOPIC, FULL, FULL_CHOICES, CHANGING, CHANGE_PART, EDITING, GONE),
    )
    async def start(ctx: ActionContext) -> None:
        """Start afresh: a wish in the words that started the flow, room for a new goal,
        or (sent by /goals) one part of a saved goal to change."""
        edit_id, edit_part = ctx.slots.get(EDIT_ID), ctx.slots.get(EDIT_PART)
        _clear(ctx.slots, "goal.")
        if edit_id is not None:
            goal = await own_active_goal(ctx, edit_id)
            if goal is None or edit_part not in PARTS:
                ctx.slots[GONE] = True
                ctx.say("goals.gone")
                return
            _load(ctx.slots, goal)
            ctx.slots[EDITING] = goal.id
            ctx.slots[CHANGE_PART] = edit_part
            ctx.slots[CHANGING] = True
            return
        said = ctx.said.strip()
        if said and not said.startswith("/"):
            wish = strip_lead(said, STARTING_LEADS)
            if wish:
                ctx.slots[WISH] = wish
        goals = await active_goals(ctx.session, ctx.person)
        if len(goals) >= MAX_ACTIVE_GOALS:
            ctx.slots[FULL] = True
            ctx.slots[FULL_CHOICES] = [
                {"value": str(g.id), "label": clip(g.wish, BUTTON_WISH_CHARS)} for g in goals
            ] + [{"value": KEEP, "label": ctx.render("goal.keep_all", {})}]

    @actions.register("goal.close")
    async def close(ctx: ActionContext) -> None:
        """Finish or drop the goal chosen to make room for a new one."""
        goal = await own_active_goal(ctx, ctx.slots.get(TO_CLOSE))
        if goal is None:
            return  # already closed elsewhere: there is room either way
        if ctx.slots.get(CLOSE_HOW) == "done":
            finish(goal, ctx.now)
            ctx.say("goal.closed_done", wish=clip(goal.wish, LIST_WISH_CHARS))
        else:
            drop(goal, ctx.now)
            ctx.say("goal.closed_dropped", wish=clip(goal.wish, LIST_WISH_CHARS))

    @actions.register("goal.read_wish", sets=(WISH, TOPIC, NARROW_CHOICES_SLOT))
    async def read_wish(ctx: ActionContext) -> None:
        """Find the topic in the wish; a broad or vague wish gets choices to narrow it."""
        raw = str(ctx.slots.get(WISH) or "")
        wish = strip_lead(raw) or tidy(raw)
        match = best_topic(wish, ctx)
        ctx.slots[NARROW_CHOICES_SLOT] = None
        ctx.slots[TOPIC] = match.term.id if match else None
        if match is not None and _is_broad(match.term):
            label = topic_label(match.term.id, ctx.locale, ctx).capitalize()
            ctx.slots[NARROW_CHOICES_SLOT] = [
                *_choices(ctx, NARROWER[match.term.id][: NARROW_CHOICES - 1]),
                {"value": match.term.id, "label": ctx.render("goal.in_general", {"topic": label})},
                _other(ctx),
            ]
            ctx.say("goal.narrow_broad", topic=label)
        elif match is not None:
            if match.score < 100 and normalize(wish) == match.phrase:
                # Only the topic, with a typo ("fractoins"): keep it spelled right.
                wish = topic_label(match.term.id, ctx.locale, ctx)
            ctx.say("goal.topic_ok", topic=topic_label(match.term.id, ctx.locale, ctx).capitalize())
        elif is_vague(wish):
            topics = GRADE_TOPICS if _about_grades(wish) else COMMON_TOPICS
            ctx.slots[NARROW_CHOICES_SLOT] = [*_choices(ctx, topics), _other(ctx)]
            ctx.say("goal.narrow_vague")
        ctx.slots[WISH] = _upper_first(wish)

    @actions.register("goal.ideas", sets=(NARROW_CHOICES_SLOT,))
    async def ideas(ctx: ActionContext) -> None:
        """ "I don't know" what to get better at: a few common places to start."""
        ctx.slots[NARROW_CHOICES_SLOT] = [*_choices(ctx, COMMON_TOPICS), _other(ctx)]
        ctx.say("goal.ideas")

    @actions.register("goal.narrowed", sets=(WISH, TOPIC))
    async def narrowed(ctx: ActionContext) -> None:
        """The topic picked from the choices becomes the wish (unless "something else")."""
        pick = ctx.slots.get(NARROW)
        if pick == OTHER or not isinstance(pick, str):
            return
        if pick != ctx.slots.get(TOPIC) or not ctx.slots.get(WISH):
            # "school" → Math: the pick says it better; "math" → "math in general" keeps it.
            ctx.slots[WISH] = _upper_first(topic_label(pick, ctx.locale, ctx))
        ctx.slots[TOPIC] = pick

    @actions.register("goal.read_own", sets=(WISH, TOPIC))
    async def read_own(ctx: ActionContext) -> None:
        """The wish in the learner's own words, after "something else": taken as it is."""
        raw = str(ctx.slots.get(WISH) or "")
        wish = strip_lead(raw) or tidy(raw)
        match = best_topic(wish, ctx)
        ctx.slots[WISH] = _upper_first(wish)
        ctx.slots[TOPIC] = match.term.id if match else None

    @actions.register("goal.read_obstacle", sets=(OBSTACLE,))
    async def read_obstacle(ctx: ActionContext) -> None:
        """Tidy the obstacle to follow "If"; no real answer gets the commonest one."""
        raw = str(ctx.slots.get(OBSTACLE) or "")
        if no_answer(raw) or not tidy_obstacle(raw):
            ctx.slots[OBSTACLE] = ctx.render("goal.default_obstacle", {})
            ctx.say("goal.obstacle_defaulted", obstacle=ctx.slots[OBSTACLE])
            return
        ctx.slots[OBSTACLE] = tidy_obstacle(raw)

    @actions.register("goal.default_obstacle", sets=(OBSTACLE,))
    async def default_obstacle(ctx: ActionContext) -> None:
        """ "I don't know" what might get in the way: plan for the commonest obstacle."""
        ctx.slots[OBSTACLE] = ctx.render("goal.default_obstacle", {})
        ctx.say("goal.obstacle_defaulted", obstacle=ctx.slots[OBSTACLE])

    @actions.register("goal.read_plan", sets=(PLAN,))
    async def read_plan(ctx: ActionContext) -> None:
        """Keep just what they will do, with or without the "then I will" around it."""
        raw = str(ctx.slots.get(PLAN) or "")
        plan = "" if no_answer(raw) else tidy_plan(raw)
        if not plan:
            plan = ctx.render("goal.default_plan", {})
            ctx.say("goal.plan_defaulted", plan=plan)
        ctx.slots[PLAN] = plan

    @actions.register("goal.default_plan", sets=(PLAN,))
    async def default_plan(ctx: ActionContext) -> None:
        """Still no plan after the ideas: start with a small one they can change."""
        ctx.slots[PLAN] = ctx.render("goal.default_plan", {})
        ctx.say("goal.plan_defaulted", plan=ctx.slots[PLAN])

    @actions.register("goal.suggest_deadline", sets=(SUGGESTED,))
    async def suggest_deadline(ctx: ActionContext) -> None:
        """No idea of a date: suggest four weeks from today, in their time zone."""
        ctx.slots[SUGGESTED] = (_today(ctx) + timedelta(days=SUGGESTED_DAYS)).isoformat()

    @actions.register("goal.use_suggestion", sets=(DEADLINE,))
    async def use_suggestion(ctx: ActionContext) -> None:
        ctx.slots[DEADLINE] = ctx.slots.get(SUGGESTED)
        ctx.say("engine.date_confirm", date=ctx.slots[DEADLINE])

    @actions.register("goal.change", sets=(CHANGING,))
    async def change(ctx: ActionContext) -> None:
        """From now on each re-asked part returns to the summary."""
        ctx.slots[CHANGING] = True

    @actions.register("goal.save")
    async def save(ctx: ActionContext) -> None:
        """Save the confirmed goal, celebrate, and offer what to do next."""
        slots = ctx.slots
        assert ctx.person.id is not None
        wish = _text(slots, WISH)
        if wish is None:  # the flow never gets here without a wish; be safe anyway
            ctx.say("goals.gone")
            return
        ctx.session.add(
            Goal(
                person_id=ctx.person.id,
                status="active",
                topic=slots.get(TOPIC),
                wish=wish,
                outcome=_text(slots, OUTCOME),
                obstacle=_text(slots, OBSTACLE),
                plan=_text(slots, PLAN),
                measure=_text(slots, MEASURE),
                deadline=_deadline(slots),
                created_at=ctx.now,
                updated_at=ctx.now,
            )
        )
        await ctx.session.flush()
        _clear(slots, "goal.")
        ctx.say("goal.saved")
        buttons = (
            Button(ctx.render("goal.button.next", {}), "next"),
            Button(ctx.render("goal.button.checkin", {}), "checkin"),
        )
        ctx.replies.append(Reply(ctx.render("goal.what_next", {}), buttons))

    @actions.register("goal.save_edit")
    async def save_edit(ctx: ActionContext) -> None:
        """Write the one part changed from /goals back to the saved goal."""
        slots = ctx.slots
        goal = await own_active_goal(ctx, slots.get(EDITING))
        part = slots.get(CHANGE_PART)
        if goal is None or part not in PARTS:
            _clear(slots, "goal.")
            ctx.say("goals.gone")
            return
        if part == "wish":
            goal.wish = _text(slots, WISH) or goal.wish
            goal.topic = slots.get(TOPIC)
        elif part == "deadline":
            goal.deadline = _deadline(slots) or goal.deadline
        else:
            setattr(goal, part, _text(slots, f"goal.{part}"))
        goal.updated_at = ctx.now
        _clear(slots, "goal.")
        _clear(slots, "goals.")
        ctx.say("goals.updated", wish=clip(goal.wish, LIST_WISH_CHARS))


def _register_goals(actions: ActionRegistry) -> None:
    @actions.register("goals.list", sets=(GOALS_COUNT, GOALS_CHOICES, GOALS_ID, GOALS_WISH))
    async def list_goals(ctx: ActionContext) -> None:
        """Show the active goals (wish, deadline in words, stuck or not) as one message."""
        _clear(ctx.slots, "goals.")
        goals = await active_goals(ctx.session, ctx.person)
        ctx.slots[GOALS_COUNT] = len(goals)
        if not goals:
            return
        lines = [ctx.render("goals.header", {"count": len(goals)})]
        for goal in goals:
            params: dict[str, Any] = {"wish": clip(goal.wish, LIST_WISH_CHARS)}
            key = "goals.line_undated"
            if goal.deadline is not None:
                params["date"] = goal.deadline
                key = "goals.line"
            line = ctx.render(key, params)
            if goal.stuck:
                line = f"{line} {ctx.render('goals.stuck', {})}"
            lines.append(line)
        ctx.replies.append(Reply("\n".join(lines)))
        ctx.slots[GOALS_CHOICES] = [
            {"value": str(g.id), "label": clip(g.wish, BUTTON_WISH_CHARS)} for g in goals
        ] + [{"value": "new", "label": ctx.render("goals.new", {})}]
        if len(goals) == 1:
            ctx.slots[GOALS_ID] = goals[0].id
            ctx.slots[GOALS_WISH] = clip(goals[0].wish, LIST_WISH_CHARS)

    @actions.register("goals.pick", sets=(GOALS_ID, GOALS_WISH))
    async def pick(ctx: ActionContext) -> None:
        """The goal chosen from the list, if it is still active."""
        goal = await own_active_goal(ctx, ctx.slots.get(GOALS_PICK))
        ctx.slots[GOALS_ID] = goal.id if goal else None
        ctx.slots[GOALS_WISH] = clip(goal.wish, LIST_WISH_CHARS) if goal else None
        if goal is None:
            ctx.say("goals.gone")

    @actions.register("goals.checkin", sets=(CHECKIN_GOAL,))
    async def checkin(ctx: ActionContext) -> None:
        """Hand over to the check-in flow with this goal chosen."""
        ctx.slots[CHECKIN_GOAL] = ctx.slots.get(GOALS_ID)

    @actions.register("goals.edit", sets=(EDIT_ID, EDIT_PART))
    async def edit(ctx: ActionContext) -> None:
        """Hand over to the goal flow to re-ask one part of this goal."""
        ctx.slots[EDIT_ID] = ctx.slots.get(GOALS_ID)
        ctx.slots[EDIT_PART] = ctx.slots.get(GOALS_PART)

    @actions.register("goals.done")
    async def done(ctx: ActionContext) -> None:
        """Mark the goal done and celebrate; offer a new one."""
        goal = await own_active_goal(ctx, ctx.slots.get(GOALS_ID))
        if goal is None:
            ctx.say("goals.gone")
            return
        finish(goal, ctx.now)
        ctx.say("goals.done", wish=clip(goal.wish, LIST_WISH_CHARS))
        buttons = (Button(ctx.render("goals.new", {}), "goal"),)
        ctx.replies.append(Reply(ctx.render("goals.after_done", {}), buttons))
        _clear(ctx.slots, "goals.")

    @actions.register("goals.drop")
    async def drop_goal(ctx: ActionContext) -> None:
        """Drop the goal (it stays in their data, as dropped)."""
        goal = await own_active_goal(ctx, ctx.slots.get(GOALS_ID))
        if goal is None:
            ctx.say("goals.gone")
            return
        drop(goal, ctx.now)
        ctx.say("goals.dropped", wish=clip(goal.wish, LIST_WISH_CHARS))
        _clear(ctx.slots, "goals.")
