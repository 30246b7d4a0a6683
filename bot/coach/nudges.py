"""Family nudges (issue 5): a weekly line about the learner's week with one thing to
ask them, milestones when a goal is completed, and /stop and /start.

Two scheduler jobs (bot/coach/jobs.py):

- `weekly_nudges`: at the deployment's nudge time (default Sunday 18:00) in each
  family member's own time zone and language, one message covering each learner
  they are linked to and allowed to hear about: one specific, improvement-minded
  line (a goal completed or set, check-ins and how ratings moved against the week
  before; a quiet week said kindly) and one conversation starter. Key
  `nudge:{family}:{local ISO week}`.
- `milestone_nudges`: a goal completed -> a short note to each family member
  who hears milestones, the same day within allowed hours. Key
  `milestone:{family}:{goal}`.

What a family member hears follows the rules: a consented FamilyLink
(bot/coach/access.family_may_hear); goals and ratings by default, reflection
text only from a check-in the learner marked shared; their nudge_frequency
(weekly, milestones, off; not yet asked counts as weekly, the issue's default);
quiet hours; /pause and /stop; and at most three proactive messages in their
local week, everything included: a fourth waits for the next week.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.coach.access import family_may_hear
from bot.coach.delivery_rules import (
    QuietHours,
    is_paused,
    iso_week,
    next_allowed,
    parse_hhmm,
    quiet_hours_of,
    week_bounds,
    weekly_occurrence,
    zone_of,
)
from bot.coach.jobs import JobContext
from bot.engine.actions import ActionContext, ActionRegistry
from bot.engine.locales import Catalogs
from bot.engine.messages import Reply
from bot.store.models import CheckIn, FamilyLink, Goal, OutboxMessage, Person
from bot.store.outbox import enqueue

# Issue 5: "At most three messages a week per family member, everything included".
WEEKLY_CAP = 3
# Kinds that are not proactive (replies answer the person) or must never wait
# (safeguarding alerts) are left out of the count.
UNCOUNTED_KINDS = ("reply", "alert")
# Rows that never reached the person do not use up their week.
UNCOUNTED_STATUSES = ("failed", "skipped")
# A weekly nudge whose time passed while no scheduler ran is still sent this late.
CATCH_UP = timedelta(hours=12)
# A goal completed longer ago than this is no longer news (and the scheduler ran
# many times since): only fresher ones make a milestone.
MILESTONE_WINDOW = timedelta(hours=24)
# Average ratings (1-5) closer than this count as steady: half a point is one
# check-in moving by one step in a week of two.
RATING_STEP = 0.5
# Shared reflections are quoted at most this long, so one learner's line stays a line.
QUOTE_CHARS = 140
# How many weeks ahead a capped message may be pushed looking for room.
MAX_WEEKS_AHEAD = 8
HEARS_WEEKLY = ("weekly", None)
HEARS_MILESTONES = ("weekly", "milestones", None)


# -- the weekly cap ----------------------------------------------------------------------


async def proactive_count(
    session: AsyncSession, person_id: int, start: datetime, end: datetime
) -> int:
    """Proactive messages to `person_id` sent, or due to go, in [start, end)."""
    when = func.coalesce(col(OutboxMessage.sent_at), col(OutboxMessage.next_attempt_at))
    count = (
        await session.exec(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.person_id == person_id)
            .where(col(OutboxMessage.kind).not_in(UNCOUNTED_KINDS))
            .where(col(OutboxMessage.status).not_in(UNCOUNTED_STATUSES))
            .where(when >= start)
            .where(when < end)
        )
    ).one()
    return int(count)


async def within_cap(
    session: AsyncSession, person: Person, wanted: datetime, quiet: QuietHours
) -> datetime:
    """`wanted`, or the first allowed moment of the first later week with room."""
    assert person.id is not None
    zone = zone_of(person.timezone)
    when = wanted
    for _ in range(MAX_WEEKS_AHEAD):
        start, end = week_bounds(when, zone)
        if await proactive_count(session, person.id, start, end) < WEEKLY_CAP:
            return when
        # Next week opens at Monday 00:00, inside the default quiet hours: the
        # message goes when the window ends.
        when = next_allowed(end, zone, quiet)
    return when


async def _lock(session: AsyncSession, person: Person) -> None:
    """On PostgreSQL, count and write one person's messages one replica at a time."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        await session.exec(select(Person.id).where(Person.id == person.id).with_for_update())


# -- what a learner's week says ----------------------------------------------------------


@dataclass(slots=True)
class LearnerWeek:
    """The facts one weekly line is made of, all within what a family may see."""

    name: str | None
    goals_set: list[str] = field(default_factory=list)
    goals_done: list[str] = field(default_factory=list)
    checkins: int = 0
    average: float | None = None  # this week's ratings, 1-5
    before: float | None = None  # the week before's
    shared: str | None = None  # what went well, from a check-in marked shared


async def learner_week(
    session: AsyncSession, learner: Person, start: datetime, end: datetime
) -> LearnerWeek:
    """Goals set and completed, check-ins and ratings in [start, end), against the week
    before. Reflection text only from check-ins the learner marked shared."""
    week = LearnerWeek(name=learner.name)
    goals = (
        await session.exec(
            select(Goal)
            .where(Goal.person_id == learner.id)
            .where(col(Goal.status) != "dropped")
            .order_by(col(Goal.id))
        )
    ).all()
    for goal in goals:
        if start <= goal.created_at < end:
            week.goals_set.append(goal.wish)
        if goal.status == "done" and goal.completed_at and start <= goal.completed_at < end:
            week.goals_done.append(goal.wish)
    checkins = (
        await session.exec(
            select(CheckIn)
            .where(CheckIn.person_id == learner.id)
            .where(col(CheckIn.created_at) >= start - timedelta(days=7))
            .where(col(CheckIn.created_at) < end)
            .order_by(col(CheckIn.created_at), col(CheckIn.id))
        )
    ).all()
    this = [c for c in checkins if c.created_at >= start]
    last = [c for c in checkins if c.created_at < start]
    week.checkins = len(this)
    if this:
        week.average = round(sum(c.rating for c in this) / len(this), 1)
    if last:
        week.before = round(sum(c.rating for c in last) / len(last), 1)
    for checkin in reversed(this):
        if checkin.shared and checkin.went_well:
            text = checkin.went_well.strip()
            week.shared = text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"
            break
    return week


def week_lines(week: LearnerWeek, catalogs: Catalogs, locale: str) -> list[str]:
    """One line about the week (plus a shared reflection, if any) and one question."""
    name = week.name or catalogs.render("nudges.your_learner", locale)
    params: dict[str, object] = {"name": name}
    if week.goals_done:
        line, ask = "nudges.line.completed", "nudges.ask.completed"
        params["goal"] = week.goals_done[-1]
    elif week.checkins and week.average is not None and week.before is not None:
        params.update(count=week.checkins, before=week.before, after=week.average)
        if week.average - week.before >= RATING_STEP:
            line, ask = "nudges.line.ratings_up", "nudges.ask.helped"
        elif week.before - week.average >= RATING_STEP:
            line, ask = "nudges.line.ratings_down", "nudges.ask.obstacle"
        else:
            line, ask = "nudges.line.ratings_steady", "nudges.ask.next_step"
    elif week.checkins and week.average is not None:
        line, ask = "nudges.line.checked_in", "nudges.ask.helped"
        params.update(count=week.checkins, after=week.average)
    elif week.goals_set:
        line, ask = "nudges.line.goal_set", "nudges.ask.why"
        params["goal"] = week.goals_set[-1]
    else:
        line, ask = "nudges.line.quiet", "nudges.ask.quiet"
    lines = [catalogs.render(line, locale, params)]
    if week.shared:
        lines.append(catalogs.render("nudges.line.shared", locale, {**params, "text": week.shared}))
    lines.append(catalogs.render(ask, locale, params))
    return lines


def _locale(catalogs: Catalogs, person: Person) -> str:
    return person.locale if person.locale in catalogs.locales else "en"


# -- the jobs ------------------------------------------------------------------------------


async def _hearing_learners(session: AsyncSession, family: Person) -> list[Person]:
    """The learners this family member is linked to and may hear about now."""
    rows = await session.exec(
        select(Person)
        .join(FamilyLink, col(FamilyLink.learner_id) == col(Person.id))
        .where(FamilyLink.family_id == family.id)
        .order_by(col(FamilyLink.id))
    )
    assert family.id is not None
    return [learner for learner in rows.all() if await family_may_hear(session, learner, family.id)]


async def _written(session: AsyncSession, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    rows = await session.exec(
        select(OutboxMessage.dedupe_key).where(col(OutboxMessage.dedupe_key).in_(keys))
    )
    return set(rows.all())


async def weekly_nudges(ctx: JobContext) -> int:
    """The job: each family member's weekly message, once their nudge time has come."""
    default_quiet = QuietHours.parse(ctx.settings.quiet_hours)
    moment = parse_hhmm(ctx.settings.nudge_time)
    async with ctx.db.reading() as session:
        families = (
            await session.exec(
                select(Person)
                .where(
                    col(Person.id).in_(
                        select(FamilyLink.family_id).where(
                            col(FamilyLink.consented_at).is_not(None)
                        )
                    )
                )
                .where(col(Person.stopped_at).is_(None))
            )
        ).all()
        due: dict[str, tuple[Person, datetime]] = {}
        for family in families:
            if family.nudge_frequency not in HEARS_WEEKLY:
                continue
            zone = zone_of(family.timezone)
            at = weekly_occurrence(ctx.now, zone, ctx.settings.nudge_weekday, moment)
            if at > ctx.now or ctx.now - at > CATCH_UP or at < family.created_at:
                continue
            if is_paused(family, at) or is_paused(family, ctx.now):
                continue
            due[f"nudge:{family.id}:{iso_week(at, zone)}"] = (family, at)
        for key in await _written(session, list(due)):
            del due[key]
    written = 0
    for key, (family, at) in due.items():
        async with ctx.db.transaction() as session:
            await _lock(session, family)
            learners = await _hearing_learners(session, family)
            if not learners:
                continue
            locale = _locale(ctx.catalogs, family)
            parts = [ctx.catalogs.render("nudges.weekly_intro", locale)]
            for learner in learners:
                week = await learner_week(session, learner, at - timedelta(days=7), at)
                parts.append("\n".join(week_lines(week, ctx.catalogs, locale)))
            parts.append(ctx.catalogs.render("nudges.weekly_footer", locale))
            quiet = quiet_hours_of(family, default_quiet)
            when = next_allowed(ctx.now, zone_of(family.timezone), quiet)
            when = await within_cap(session, family, when, quiet)
            assert family.id is not None
            if await enqueue(
                session,
                person_id=family.id,
                kind="nudge",
                payload={"reply": Reply("\n\n".join(parts)).to_json()},
                dedupe_key=key,
                due_at=when,
                now=ctx.now,
            ):
                written += 1
    return written


async def milestone_nudges(ctx: JobContext) -> int:
    """The job: a note to each family member who hears milestones, per goal completed."""
    default_quiet = QuietHours.parse(ctx.settings.quiet_hours)
    async with ctx.db.reading() as session:
        rows = (
            await session.exec(
                select(Goal, Person, FamilyLink)
                .join(Person, col(Person.id) == col(Goal.person_id))
                .join(FamilyLink, col(FamilyLink.learner_id) == col(Goal.person_id))
                .where(Goal.status == "done")
                .where(col(Goal.completed_at) >= ctx.now - MILESTONE_WINDOW)
                .where(col(Goal.completed_at) <= ctx.now)
                .where(col(FamilyLink.consented_at).is_not(None))
                .order_by(col(Goal.id), col(FamilyLink.id))
            )
        ).all()
        candidates = {
            f"milestone:{link.family_id}:{goal.id}": (goal, learner, link)
            for goal, learner, link in rows
            # News from before the family member agreed to hear is not theirs to get.
            if link.consented_at is not None
            and goal.completed_at is not None
            and link.consented_at <= goal.completed_at
        }
        for key in await _written(session, list(candidates)):
            del candidates[key]
    written = 0
    for key, (goal, learner, link) in candidates.items():
        async with ctx.db.transaction() as session:
            family = await session.get(Person, link.family_id)
            if family is None or family.nudge_frequency not in HEARS_MILESTONES:
                continue
            if is_paused(family, ctx.now):
                continue
            await _lock(session, family)
            if not await family_may_hear(session, learner, link.family_id):
                continue
            locale = _locale(ctx.catalogs, family)
            params = {
                "name": learner.name or ctx.catalogs.render("nudges.your_learner", locale),
                "goal": goal.wish,
            }
            text = "\n".join(
                (
                    ctx.catalogs.render("nudges.milestone", locale, params),
                    ctx.catalogs.render("nudges.ask.completed", locale, params),
                )
            )
            quiet = quiet_hours_of(family, default_quiet)
            # The same day within allowed hours; a goal completed in the evening is
            # news the next morning, when the quiet hours end.
            when = next_allowed(ctx.now, zone_of(family.timezone), quiet)
            when = await within_cap(session, family, when, quiet)
            if await enqueue(
                session,
                person_id=link.family_id,
                kind="milestone",
                payload={"reply": Reply(text).to_json()},
                dedupe_key=key,
                due_at=when,
                now=ctx.now,
            ):
                written += 1
    return written


# -- what they received (the export) -----------------------------------------------------


async def export_nudges(session: AsyncSession, person: Person) -> list[dict[str, object]]:
    """Proactive messages written for `person` (reminders, nudges, milestones): what,
    when due, whether and when it was sent. Digests and alerts have their own keys."""
    rows = (
        await session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.person_id == person.id)
            .where(col(OutboxMessage.kind).in_(("reminder", "nudge", "milestone")))
            .order_by(col(OutboxMessage.created_at), col(OutboxMessage.id))
        )
    ).all()
    result: list[dict[str, object]] = []
    for row in rows:
        reply = row.payload.get("reply") if isinstance(row.payload, dict) else None
        result.append(
            {
                "kind": row.kind,
                "text": reply.get("text") if isinstance(reply, dict) else None,
                "status": row.status,
                "created_at": row.created_at.isoformat(),
                "due_at": row.next_attempt_at.isoformat() if row.status != "sent" else None,
                "sent_at": row.sent_at.isoformat() if row.sent_at else None,
            }
        )
    return result


# -- /stop and /start ----------------------------------------------------------------------

# What brings someone back after /stop (the issue: "nothing more until /start"); the
# resume commands too (dialogs/intents), since "resume" means "turn them back on".
RESTART_COMMANDS = ("/start", "/resume", "/reanudar", "/seguir")


def register(actions: ActionRegistry) -> None:
    @actions.register("stop.confirm")
    async def stop(ctx: ActionContext) -> None:
        """/stop, confirmed: nothing proactive until /start (replies still come)."""
        ctx.person.stopped_at = ctx.now
        ctx.say("stop.done")

    @actions.intercept
    async def restart(ctx: ActionContext) -> bool:
        """/start or /resume from someone who stopped: messages are back on.

        /start then carries on as usual (the welcome and the menu); /resume is
        answered here, since the engine's own resume knows only of /pause.
        """
        if ctx.person.stopped_at is None:
            return False
        command = ctx.said.strip().lower()
        if command not in RESTART_COMMANDS:
            return False
        ctx.person.stopped_at = None
        ctx.person.paused_until = None
        ctx.say("stop.restarted")
        return command != "/start"
