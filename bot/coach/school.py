"""Roles, classes and links: the teacher commands, /links, /privacy per role, the export.

Flows: dialogs/flows/teacher.yaml (the teacher's home and menu, /newclass,
/classes, /roster, /familycode), dialogs/flows/family.yaml (/links), the role
branches in dialogs/flows/core.yaml (main, menu, help) and the privacy flow in
dialogs/flows/data.yaml. Who may see whom is decided in bot.coach.access; every
action here that shows a teacher other people's data writes an audit row there.

Class codes are stored hashed (bot.coach.codes), so they cannot be shown again:
/newclass shows a class's code once, and /classes offers a new code for a class,
which stops the old one working (learners already in the class stay in it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from babel.lists import format_list
from rapidfuzz import fuzz
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.coach import access, codes
from bot.coach.onboarding import tidy_name
from bot.coach.timezones import zone_of
from bot.engine.actions import ActionContext, ActionRegistry
from bot.engine.dates import format_date
from bot.engine.understand import normalize
from bot.store.models import Person, SchoolClass

# The model's column is String(100).
MAX_CLASS_NAME = 100
# Similarity (rapidfuzz WRatio, 0-100, on normalised text) at which a typed class or
# learner name counts as naming one: a one-letter slip in "Biology 7B" scores 94,
# while different names scored 80 or less on our tests ("Maria" and "Mario": 80).
NAME_MATCH_SCORE = 85
# Matches this close to the best one are as good a guess: the teacher picks.
NAME_MATCH_TIE = 5
# At most this many buttons: our judgement of what a phone screen shows without
# scrolling; a teacher with more classes types the name instead.
MAX_CHOICES = 10
KEEP = "keep"

# Slots the teacher flows read (declared to `dialogs check` with each action).
ROLE = "school.role"
STOP = "school.stop"
NAMED = "school.named"
NAME_OK = "school.name_ok"
TEACHER_NAME = "school.teacher_name"
CLASS_NAME = "school.class_name"
CLASS_ID = "school.class_id"
CLASS_CHOICES = "school.class_choices"
CLASS_PICK = "school.class_pick"
HAS_CLASSES = "school.has_classes"
LEARNER_SAID = "school.learner_said"
LEARNER_ID = "school.learner_id"
LEARNER_CHOICES = "school.learner_choices"


def role_group(person: Person) -> str:
    """Which home a person has: "teacher" (teachers and admins), "family" or "learner"."""
    if access.is_teacher(person):
        return "teacher"
    return "family" if person.role == "family" else "learner"


def command_argument(said: str) -> str | None:
    """What follows a /command ("/roster Biology 7B" -> "Biology 7B"), or None."""
    if not said.startswith("/"):
        return None
    parts = said.split(maxsplit=1)
    return " ".join(parts[1].split()) if len(parts) > 1 else None


def best_matches(said: str, names: Sequence[tuple[int, str]]) -> list[int]:
    """The ids whose name the text names: exact first, then words that start the name's
    words ("sam" for "Sam Lee", "bio" for "Biology 7B"), then close spellings."""
    wanted = normalize(said)
    if not wanted:
        return []
    normalised = [(key, normalize(name)) for key, name in names]
    exact = [key for key, name in normalised if name == wanted]
    if exact:
        return exact
    words = wanted.split()
    prefixed = [
        key
        for key, name in normalised
        if all(any(part.startswith(w) for part in name.split()) for w in words)
    ]
    if prefixed:
        return prefixed
    scored = [(fuzz.WRatio(wanted, name), key) for key, name in normalised]
    best = max((score for score, _ in scored), default=0.0)
    if best < NAME_MATCH_SCORE:
        return []
    return [key for score, key in scored if score >= best - NAME_MATCH_TIE]


def learner_label(ctx: ActionContext, learner: Person) -> str:
    return learner.name or ctx.render("school.unnamed_learner", {})


def names_list(names: Sequence[str], locale: str) -> str:
    """ "Ana, Sam and Leo" in the person's language (Babel)."""
    return str(format_list(list(names), locale=locale)) if names else ""


async def _refuse_unless_teacher(ctx: ActionContext) -> bool:
    """Say kindly that this is a teacher's command; True when the person is not a teacher."""
    if access.is_teacher(ctx.person):
        return False
    ctx.say("school.teachers_only")
    ctx.slots[STOP] = True
    return True


# -- the export (wired into bot.coach.privacy.export_person) --------------------------------


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def export_classes(session: AsyncSession, person: Person) -> list[dict[str, Any]]:
    """The person's classes: those a learner is in (with the teacher's name), or those a
    teacher runs (with how many learners; their names are other people's data)."""
    assert person.id is not None
    if access.is_teacher(person):
        classes = await access.own_classes(session, person.id)
        counts = await access.learner_counts(session, [c.id for c in classes if c.id])
        return [
            {
                "id": c.id,
                "name": c.name,
                "role": "teacher",
                "learners": counts.get(c.id or 0, 0),
                "created_at": _iso(c.created_at),
            }
            for c in classes
        ]
    return [
        {
            "id": c.id,
            "name": c.name,
            "role": "learner",
            "teacher": teacher.name if teacher else None,
        }
        for c, teacher in await access.learner_classes(session, person.id)
    ]


async def export_links(session: AsyncSession, person: Person) -> list[dict[str, Any]]:
    """Who the person is linked to: a learner's teachers and family members, or the
    learners a family member is linked to, with when consent was given."""
    assert person.id is not None
    if person.role == "family":
        return [
            {
                "kind": "learner",
                "name": learner.name,
                "linked_at": _iso(link.created_at),
                "consented_at": _iso(link.consented_at),
            }
            for learner, link in await access.linked_learners(session, person.id)
        ]
    if access.is_teacher(person):
        return []
    links: list[dict[str, Any]] = [
        {"kind": "teacher", "name": teacher.name if teacher else None, "class": c.name}
        for c, teacher in await access.learner_classes(session, person.id)
    ]
    links.extend(
        {
            "kind": "family",
            "name": family.name,
            "linked_at": _iso(link.created_at),
            "consented_at": _iso(link.consented_at),
        }
        for family, link in await access.family_links(session, person.id, consented_only=False)
    )
    return links


# -- the actions ----------------------------------------------------------------------------


def register(actions: ActionRegistry) -> None:
    """Register the role, teacher, link and privacy actions."""
    _register_roles(actions)
    _register_classes(actions)
    _register_roster(actions)
    _register_family_codes(actions)
    _register_links(actions)


def _register_roles(actions: ActionRegistry) -> None:
    @actions.register("school.role", sets=(ROLE,))
    async def role(ctx: ActionContext) -> None:
        """Which home this person has (teacher, family, learner): flows branch on it."""
        ctx.slots[ROLE] = role_group(ctx.person)

    @actions.register("school.teacher_status", sets=(NAMED,))
    async def teacher_status(ctx: ActionContext) -> None:
        """Do learners and families have a name to know this teacher by?"""
        ctx.slots[NAMED] = bool(ctx.person.name)

    @actions.register("school.save_teacher_name", sets=(NAME_OK, TEACHER_NAME))
    async def save_teacher_name(ctx: ActionContext) -> None:
        """Store what learners and families call the teacher ("Ms Lee")."""
        name = tidy_name(str(ctx.slots.get(TEACHER_NAME) or ""))
        ctx.slots[NAME_OK] = name is not None
        if name is None:
            ctx.say("teacher.name_unclear")
            return
        ctx.person.name = name
        ctx.slots[TEACHER_NAME] = name


def _register_classes(actions: ActionRegistry) -> None:
    @actions.register("school.newclass_start", sets=(STOP, CLASS_NAME))
    async def newclass_start(ctx: ActionContext) -> None:
        """/newclass NAME: a teacher's new class, named in the command or asked for."""
        ctx.slots[STOP] = False
        ctx.slots[CLASS_NAME] = command_argument(ctx.said)
        await _refuse_unless_teacher(ctx)

    @actions.register("school.create_class", sets=(NAME_OK,))
    async def create_class(ctx: ActionContext) -> None:
        """Make the class and its join code, shown once (only its hash is kept)."""
        assert ctx.person.id is not None
        name = " ".join(str(ctx.slots.get(CLASS_NAME) or "").split())
        ctx.slots[NAME_OK] = False
        if not name or len(name) > MAX_CLASS_NAME:
            ctx.say("newclass.name_too_long", max=MAX_CLASS_NAME)
            return
        classes = await access.own_classes(ctx.session, ctx.person.id)
        if any(normalize(c.name) == normalize(name) for c in classes):
            ctx.say("newclass.exists", class_name=name)
            return
        school_class = SchoolClass(teacher_id=ctx.person.id, name=name, created_at=ctx.now)
        ctx.session.add(school_class)
        await ctx.session.flush()
        assert school_class.id is not None
        code = await codes.issue_code(
            ctx.session,
            kind="class",
            now=ctx.now,
            class_id=school_class.id,
            created_by=ctx.person.id,
        )
        ctx.slots[NAME_OK] = True
        ctx.say("newclass.created", class_name=name, code=codes.display_code(code))

    @actions.register("school.list_classes", sets=(STOP, HAS_CLASSES, CLASS_CHOICES))
    async def list_classes(ctx: ActionContext) -> None:
        """/classes: each class with its learner count; a new code may be asked for."""
        ctx.slots[HAS_CLASSES] = False
        if await _refuse_unless_teacher(ctx):
            return
        assert ctx.person.id is not None
        classes = await access.own_classes(ctx.session, ctx.person.id)
        if not classes:
            ctx.say("classes.none")
            return
        counts = await access.learner_counts(ctx.session, [c.id for c in classes if c.id])
        lines = [
            ctx.render("classes.line", {"class_name": c.name, "count": counts.get(c.id or 0, 0)})
            for c in classes
        ]
        ctx.say("classes.list", count=len(classes), lines="\n".join(lines))
        ctx.slots[HAS_CLASSES] = True
        ctx.slots[CLASS_CHOICES] = [
            {"value": str(c.id), "label": c.name} for c in classes[: MAX_CHOICES - 1]
        ] + [{"value": KEEP, "label": ctx.render("classes.no_new_code", {})}]

    @actions.register("school.new_class_code")
    async def new_class_code(ctx: ActionContext) -> None:
        """A new join code for one of the teacher's classes; the old one stops working."""
        assert ctx.person.id is not None
        picked = ctx.slots.get(CLASS_PICK)
        if picked in (None, KEEP) or not str(picked).isdigit():
            ctx.say("classes.kept")
            return
        school_class = await access.own_class(ctx.session, ctx.person.id, int(str(picked)))
        if school_class is None:
            ctx.say("school.class_gone")
            return
        assert school_class.id is not None
        code = await codes.issue_code(
            ctx.session,
            kind="class",
            now=ctx.now,
            class_id=school_class.id,
            created_by=ctx.person.id,
        )
        ctx.say("classes.new_code", class_name=school_class.name, code=codes.display_code(code))


async def _pick_class(ctx: ActionContext, said: str | None) -> None:
    """Set CLASS_ID when `said` (or having one class) settles it, else CLASS_CHOICES."""
    assert ctx.person.id is not None
    ctx.slots[CLASS_ID] = None
    ctx.slots[CLASS_CHOICES] = None
    classes = await access.own_classes(ctx.session, ctx.person.id)
    if not classes:
        ctx.say("school.no_classes")
        ctx.slots[STOP] = True
        return
    if said is None:
        candidates = classes
    else:
        ids = set(best_matches(said, [(c.id or 0, c.name) for c in classes]))
        candidates = [c for c in classes if c.id in ids]
        if not candidates:
            # Only the teacher's own classes are searched: another teacher's class of
            # that name is "not found" too, and nothing says it exists.
            ctx.say("roster.not_found", class_name=said)
            candidates = classes
            ctx.slots[CLASS_CHOICES] = _class_choices(candidates)
            return
    if len(candidates) == 1:
        ctx.slots[CLASS_ID] = str(candidates[0].id)
    else:
        ctx.slots[CLASS_CHOICES] = _class_choices(candidates)


def _class_choices(classes: Sequence[SchoolClass]) -> list[dict[str, str]]:
    return [{"value": str(c.id), "label": c.name} for c in classes[:MAX_CHOICES]]


def _register_roster(actions: ActionRegistry) -> None:
    @actions.register("school.roster_start", sets=(STOP, CLASS_ID, CLASS_CHOICES))
    async def roster_start(ctx: ActionContext) -> None:
        """/roster CLASS: the class named (fuzzy, among the teacher's own), or a choice."""
        ctx.slots[STOP] = False
        if await _refuse_unless_teacher(ctx):
            return
        await _pick_class(ctx, command_argument(ctx.said))

    @actions.register("school.roster_show")
    async def roster_show(ctx: ActionContext) -> None:
        """The names of the learners in one of the teacher's classes (audited)."""
        assert ctx.person.id is not None
        picked = str(ctx.slots.get(CLASS_ID) or "")
        school_class = (
            await access.own_class(ctx.session, ctx.person.id, int(picked))
            if picked.isdigit()
            else None
        )
        if school_class is None:
            ctx.say("school.class_gone")
            return
        assert school_class.id is not None
        learners = await access.class_roster(ctx.session, school_class.id)
        if not learners:
            ctx.say("roster.empty", class_name=school_class.name)
            return
        names = sorted((learner_label(ctx, p) for p in learners), key=str.casefold)
        ctx.say(
            "roster.list",
            class_name=school_class.name,
            count=len(learners),
            names="\n".join(f"• {n}" for n in names),
        )
        await access.audit(
            ctx.session,
            actor_id=ctx.person.id,
            subject_ids=[p.id for p in learners if p.id is not None],
            action="roster",
            now=ctx.now,
            detail=f"class {school_class.id}",
        )


async def _pick_learner(ctx: ActionContext, said: str) -> None:
    """Set LEARNER_ID when the name settles it, LEARNER_CHOICES for several, or STOP."""
    assert ctx.person.id is not None
    pairs = await access.own_learners(ctx.session, ctx.person.id)
    learners: dict[int, tuple[Person, list[SchoolClass]]] = {}
    for learner, school_class in pairs:
        assert learner.id is not None
        learners.setdefault(learner.id, (learner, []))[1].append(school_class)
    ids = best_matches(said, [(i, p.name or "") for i, (p, _) in learners.items()])
    if not ids:
        # Only the teacher's own learners are searched, so a learner of another class
        # is "not found" like a name nobody has.
        ctx.say("familycode.not_found", learner=said)
        ctx.slots[STOP] = True
        return
    if len(ids) == 1:
        ctx.slots[LEARNER_ID] = str(ids[0])
        return
    ctx.slots[LEARNER_CHOICES] = [
        {
            "value": str(i),
            "label": f"{learner_label(ctx, learners[i][0])} ({learners[i][1][0].name})",
        }
        for i in ids[:MAX_CHOICES]
    ]


def _register_family_codes(actions: ActionRegistry) -> None:
    @actions.register(
        "school.familycode_start", sets=(STOP, LEARNER_SAID, LEARNER_ID, LEARNER_CHOICES)
    )
    async def familycode_start(ctx: ActionContext) -> None:
        """/familycode LEARNER: a learner in one of the teacher's classes, fuzzy by name."""
        ctx.slots[STOP] = False
        ctx.slots[LEARNER_ID] = None
        ctx.slots[LEARNER_CHOICES] = None
        ctx.slots[LEARNER_SAID] = command_argument(ctx.said)
        if await _refuse_unless_teacher(ctx):
            return
        assert ctx.person.id is not None
        if not await access.own_learners(ctx.session, ctx.person.id):
            ctx.say("familycode.no_learners")
            ctx.slots[STOP] = True

    @actions.register("school.familycode_find", sets=(STOP, LEARNER_ID, LEARNER_CHOICES))
    async def familycode_find(ctx: ActionContext) -> None:
        """Find the learner the teacher named."""
        ctx.slots[LEARNER_ID] = None
        ctx.slots[LEARNER_CHOICES] = None
        await _pick_learner(ctx, str(ctx.slots.get(LEARNER_SAID) or ""))

    @actions.register("school.familycode_make")
    async def familycode_make(ctx: ActionContext) -> None:
        """A single-use family code for the learner, valid 14 days (audited)."""
        assert ctx.person.id is not None
        picked = str(ctx.slots.get(LEARNER_ID) or "")
        learner_id = int(picked) if picked.isdigit() else None
        if learner_id is None or not await access.teaches(ctx.session, ctx.person.id, learner_id):
            ctx.say("school.learner_gone")
            return
        learner = await ctx.session.get(Person, learner_id)
        assert learner is not None
        code = await codes.issue_code(
            ctx.session,
            kind="family",
            now=ctx.now,
            learner_id=learner_id,
            created_by=ctx.person.id,
        )
        expires = (
            (ctx.now + codes.FAMILY_CODE_LIFETIME).astimezone(zone_of(ctx.person.timezone)).date()
        )
        ctx.say(
            "familycode.made",
            learner=learner_label(ctx, learner),
            code=codes.display_code(code),
            date=format_date(expires, ctx.locale),
        )
        await access.audit(
            ctx.session,
            actor_id=ctx.person.id,
            subject_ids=[learner_id],
            action="family_code",
            now=ctx.now,
        )


def _register_links(actions: ActionRegistry) -> None:
    @actions.register("school.links")
    async def links(ctx: ActionContext) -> None:
        """/links: who is linked to this person (a learner's classes, teachers, family)."""
        person = ctx.person
        assert person.id is not None
        if person.role == "family":
            learners = await access.linked_learners(ctx.session, person.id)
            if not learners:
                ctx.say("links.family_none")
                return
            ctx.say(
                "links.family",
                learners=names_list([learner_label(ctx, p) for p, _ in learners], ctx.locale),
            )
            return
        if access.is_teacher(person):
            ctx.say("links.teacher")
            return
        found = await _learner_links(ctx, person)
        if found is None:
            ctx.say("links.none")
        else:
            ctx.say("links.learner", lines=found)

    @actions.register("school.privacy_links")
    async def privacy_links(ctx: ActionContext) -> None:
        """After a learner's privacy rules: who those rules mean for them, by name."""
        assert ctx.person.id is not None
        found = await _learner_links(ctx, ctx.person)
        if found is not None:
            ctx.say("privacy.your_links", lines=found)

    @actions.register("school.privacy_family")
    async def privacy_family(ctx: ActionContext) -> None:
        """A family member's rules: what they get about which learner, and their choices."""
        assert ctx.person.id is not None
        learners = await access.linked_learners(ctx.session, ctx.person.id)
        names = names_list([learner_label(ctx, p) for p, _ in learners], ctx.locale)
        names = names or ctx.render("family.someone", {})
        ctx.say("privacy.family_role", learners=names)
        if any(p.under_13 is not False for p, _ in learners):
            ctx.say("privacy.family_role_under_13")
        ctx.say("privacy.family_role_choices", learners=names)


async def _learner_links(ctx: ActionContext, person: Person) -> str | None:
    """One line per class (with its teacher) and per family member (with their consent)."""
    assert person.id is not None
    lines: list[str] = []
    for school_class, teacher in await access.learner_classes(ctx.session, person.id):
        if teacher is not None and teacher.name:
            params = {"class_name": school_class.name, "teacher": teacher.name}
            lines.append(ctx.render("links.class_line", params))
        else:
            lines.append(ctx.render("links.class_line_unnamed", {"class_name": school_class.name}))
    for member, link in await access.family_links(ctx.session, person.id, consented_only=False):
        key = "links.family_line_consented" if link.consented_at else "links.family_line_waiting"
        if not member.name:
            key += "_unnamed"
        lines.append(ctx.render(key, {"family": member.name}))
    return "\n".join(lines) if lines else None
