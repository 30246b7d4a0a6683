"""The weekly reflection check-in: how each active goal went, and what comes next.

The `checkin` flow (dialogs/flows/checkin.yaml) asks an optional mood once, then
calls its own per-goal part once per active goal: a short Gibbs-style cycle of a
1-5 rating, what went well, what got in the way and one next step. These actions
keep the goal queue in slots, save one CheckIn row per goal, mark a goal stuck
after two low ratings in a row (and clear it on a 3 or more), complete a goal
on request, and count the streak of weeks with a check-in.

The helpers at the bottom (`plan_action`, `smaller_step`, `say_resource`)
are shared with the `next` flow (bot/coach/nextstep.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.coach.resources import feedback_buttons, recommend_for
from bot.engine.actions import ActionContext, ActionRegistry
from bot.engine.messages import Button, Reply
from bot.store.models import CheckIn, Goal, Person

# Issue 3: "two check-ins in a row rated 2 or lower mark the goal stuck"; a rating
# above this clears it again.
LOW_RATING = 2
TOP_RATING = 5

# Set by /goals just before it hands over: check in on this goal only. `start`
# consumes it at once. The loop keeps its own goal in CURRENT instead: slots outlive
# flows, and a loop variable left behind by an interrupted check-in must never look
# like a choice made by /goals the next time.
CHOSEN = "checkin.goal_id"
CURRENT = "checkin.current_id"
GOAL_WISH = "checkin.goal_wish"
# Which part of the flow a call into it runs ("goal" or "wrap_up"; unset: a fresh
# start): set just before the call, and read by `enter` in the same turn.
ROUTE = "checkin.route"
ENTRY = "checkin.entry"
QUEUE = "checkin.queue"
SAVED = "checkin.saved"
ROW_ID = "checkin.row_id"
STREAK = "checkin.streak"
# The resource a line offers (both flows), kept in slots for the message to name.
RESOURCE_TITLE = "checkin.resource_title"
RESOURCE_URL = "checkin.resource_url"
# Answers and working values that belong to one goal: cleared before the next one.
PER_GOAL_SLOTS = (
    "checkin.rating",
    "checkin.went_well",
    "checkin.obstacle",
    "checkin.next_step",
    "checkin.take_suggestion",
    "checkin.suggestion",
    "checkin.suggest_from",
    "checkin.goal_done",
    "checkin.outcome",
    "checkin.was_stuck",
    "checkin.smaller_step",
    "checkin.use_smaller",
    ROW_ID,
    RESOURCE_TITLE,
    RESOURCE_URL,
)
# Every slot this flow owns; cleared when a check-in starts and when it ends, so an
# old answer never leaks into the next check-in (slots outlive flows).
SESSION_SLOTS = (
    *PER_GOAL_SLOTS,
    CHOSEN,
    CURRENT,
    GOAL_WISH,
    ROUTE,
    ENTRY,
    QUEUE,
    SAVED,
    STREAK,
    "checkin.goal_count",
    "checkin.mood",
    "checkin.ask_share",
    "checkin.share",
    "checkin.share_teacher_only",
)

# "If I get distracted, then I will put my phone away" → "put my phone away".
_THEN = re.compile(r"\b(?:then|entonces)\b[\s,:]*", re.IGNORECASE)
_WILL = re.compile(
    r"^(?:i\s+will|i['’]ll|i\s+would|i\s+can|i\s+am\s+going\s+to|i['’]m\s+going\s+to|"
    r"voy\s+a|lo\s+que\s+har[eé]\s+es)\s+",
    re.IGNORECASE,
)
_TRAILING = re.compile(r"[\s.!…]+$")
# ActionContext.render: a catalog key and its parameters → a sentence.
Render = Callable[[str, Mapping[str, Any]], str]


def register(actions: ActionRegistry) -> None:
    @actions.register("checkin.enter", sets=(ENTRY,))
    async def enter(ctx: ActionContext) -> None:
        """Where this call into the flow goes; the route is used up so it never lingers."""
        ctx.slots[ENTRY] = ctx.slots.pop(ROUTE, None)

    @actions.register(
        "checkin.start",
        sets=(QUEUE, SAVED, "checkin.goal_count", "checkin.share_teacher_only"),
    )
    async def start(ctx: ActionContext) -> None:
        """Queue the goals to check in on: the one /goals chose, or every active goal."""
        preselected = ctx.slots.get(CHOSEN)
        _clear(ctx.slots, SESSION_SLOTS)
        goals = await active_goals(ctx.session, ctx.person)
        if preselected is not None:
            # A goal finished or dropped since it was chosen: check in on the rest.
            goals = [g for g in goals if g.id == preselected] or goals
        ctx.slots[QUEUE] = [g.id for g in goals]
        ctx.slots[SAVED] = []
        ctx.slots["checkin.goal_count"] = len(goals)
        # Under 13, sharing beyond the teacher waits for a family's consent (issue 3).
        ctx.slots["checkin.share_teacher_only"] = bool(ctx.person.under_13)
        if goals:
            ctx.say("checkin.intro", count=len(goals))

    @actions.register("checkin.offer_goal")
    async def offer_goal(ctx: ActionContext) -> None:
        """No active goal: offer to set one. The button's value is the `goal` intent,
        so pressing it (or typing "set a goal") starts whichever flow owns goals."""
        _clear(ctx.slots, SESSION_SLOTS)
        buttons = (
            Button(ctx.render("checkin.button.set_goal", {}), "goal"),
            Button(ctx.render("checkin.button.not_now", {}), "menu"),
        )
        ctx.replies.append(Reply(ctx.render("checkin.no_goals", {}), buttons))

    @actions.register(
        "checkin.next_goal", sets=(CURRENT, GOAL_WISH, QUEUE, ROUTE, "checkin.was_stuck")
    )
    async def next_goal(ctx: ActionContext) -> None:
        """Take the next goal off the queue into the slots; none left leaves it empty."""
        _clear(ctx.slots, PER_GOAL_SLOTS)
        queue: list[int] = list(ctx.slots.get(QUEUE) or [])
        goal = None
        while queue and goal is None:
            goal = await _own_goal(ctx, queue.pop(0))
            if goal is not None and goal.status != "active":
                goal = None  # finished or dropped since the check-in started
        ctx.slots[QUEUE] = queue
        ctx.slots[CURRENT] = goal.id if goal else None
        ctx.slots[GOAL_WISH] = goal.wish if goal else None
        ctx.slots[ROUTE] = "goal" if goal else "wrap_up"
        ctx.slots["checkin.was_stuck"] = goal.stuck if goal else None

    @actions.register("checkin.suggest", sets=("checkin.suggestion", "checkin.suggest_from"))
    async def suggest(ctx: ActionContext) -> None:
        """ "I don't know" for the next step: offer one built from their plan or obstacle."""
        goal = await _current_goal(ctx)
        action = plan_action(goal.plan) if goal else None
        if action:
            ctx.slots["checkin.suggestion"] = action
            ctx.slots["checkin.suggest_from"] = (
                "obstacle" if ctx.slots.get("checkin.obstacle") else "plan"
            )
        else:
            ctx.slots["checkin.suggestion"] = ctx.render("checkin.ten_minutes_on", {})
            ctx.slots["checkin.suggest_from"] = "wish"

    @actions.register("checkin.take_suggestion", sets=("checkin.next_step",))
    async def take_suggestion(ctx: ActionContext) -> None:
        """They said yes to the suggested step: it becomes their next step."""
        ctx.slots["checkin.next_step"] = ctx.slots.get("checkin.suggestion")

    @actions.register("checkin.save", sets=(ROW_ID, SAVED, STREAK, "checkin.outcome"))
    async def save(ctx: ActionContext) -> None:
        """Store this goal's check-in and decide what to say about it (`checkin.outcome`).

        Going back and answering again updates the same row rather than adding one.
        """
        goal = await _current_goal(ctx)
        rating = ctx.slots.get("checkin.rating")
        if goal is None or goal.id is None or not isinstance(rating, int):
            ctx.slots["checkin.outcome"] = "gone"
            return
        assert ctx.person.id is not None
        saved: list[int] = list(ctx.slots.get(SAVED) or [])
        row = await _own_checkin(ctx, ctx.slots.get(ROW_ID))
        first_of_session = not saved
        zone = person_zone(ctx.person)
        today = ctx.now.astimezone(zone).date()
        had_this_week = True
        if first_of_session:
            earlier = await _checkin_times(ctx.session, ctx.person.id)
            had_this_week = _week(today) in {_week(t.astimezone(zone).date()) for t in earlier}
        if row is None:
            row = CheckIn(
                goal_id=goal.id, person_id=ctx.person.id, rating=rating, created_at=ctx.now
            )
        row.rating = rating
        row.went_well = _text(ctx.slots.get("checkin.went_well"))
        row.obstacle = _text(ctx.slots.get("checkin.obstacle"))
        row.next_step = _text(ctx.slots.get("checkin.next_step"))
        row.mood = _int(ctx.slots.get("checkin.mood"))
        ctx.session.add(row)
        await ctx.session.flush()
        assert row.id is not None
        ctx.slots[ROW_ID] = row.id
        if row.id not in saved:
            saved.append(row.id)
        ctx.slots[SAVED] = saved
        if first_of_session and not had_this_week:
            # A new week joined the streak; worth a mention at the end.
            times = await _checkin_times(ctx.session, ctx.person.id)
            ctx.slots[STREAK] = weekly_streak(times, zone, today)

        previous = await _previous_rating(ctx.session, goal.id, row.id)
        was_stuck = bool(ctx.slots.get("checkin.was_stuck"))
        if rating > LOW_RATING:
            stuck = False
        elif previous is not None and previous <= LOW_RATING:
            stuck = True
        else:
            stuck = was_stuck
        goal.stuck = stuck
        goal.updated_at = ctx.now
        if rating == TOP_RATING:
            outcome = "top"
        elif stuck:
            outcome = "stuck"
        elif was_stuck:
            outcome = "unstuck"
        elif rating <= LOW_RATING:
            outcome = "low"
        else:
            outcome = "ok"
        ctx.slots["checkin.outcome"] = outcome

    # `checkin.basis` is not a slot but the placeholder of the checkin.smaller.* phrases
    # (smaller_step passes it): declared here so `dialogs check` knows the name.
    @actions.register("checkin.offer_smaller", sets=("checkin.smaller_step", "checkin.basis"))
    async def offer_smaller(ctx: ActionContext) -> None:
        """A stuck goal: shrink the step they just chose, or their plan, or the goal."""
        goal = await _current_goal(ctx)
        if goal is None:
            return
        basis = _text(ctx.slots.get("checkin.next_step"))
        ctx.slots["checkin.smaller_step"] = smaller_step(ctx.render, goal, basis)

    @actions.register("checkin.use_smaller", sets=("checkin.next_step",))
    async def use_smaller(ctx: ActionContext) -> None:
        """They took the smaller step: it replaces the next step saved a moment ago."""
        row = await _own_checkin(ctx, ctx.slots.get(ROW_ID))
        step = _text(ctx.slots.get("checkin.smaller_step"))
        if row is not None and step:
            row.next_step = step
            ctx.slots["checkin.next_step"] = step

    @actions.register("checkin.resource", sets=(RESOURCE_TITLE, RESOURCE_URL))
    async def resource(ctx: ActionContext) -> None:
        """One resource for a stuck goal, once the catalog exists; until then, say so."""
        goal = await _current_goal(ctx)
        if goal is None:
            return
        await say_resource(ctx, goal)

    @actions.register("checkin.complete")
    async def complete(ctx: ActionContext) -> None:
        """A 5 and a yes: the goal is done."""
        goal = await _current_goal(ctx)
        if goal is not None and goal.status == "active":
            goal.status = "done"
            goal.stuck = False
            goal.completed_at = ctx.now
            goal.updated_at = ctx.now

    @actions.register("checkin.wrap_up", sets=("checkin.ask_share",))
    async def wrap_up(ctx: ActionContext) -> None:
        """Ask about sharing only when they wrote something to share."""
        rows = await _saved_rows(ctx)
        ctx.slots["checkin.ask_share"] = any(r.went_well or r.obstacle or r.next_step for r in rows)

    @actions.register("checkin.share")
    async def share(ctx: ActionContext) -> None:
        """Mark today's reflections shared on a yes; anything else keeps them private."""
        shared = ctx.slots.get("checkin.share") is True
        for row in await _saved_rows(ctx):
            row.shared = shared
        if not shared:
            ctx.say("checkin.kept_private")
        elif ctx.slots.get("checkin.share_teacher_only"):
            ctx.say("checkin.shared_teacher")
        else:
            ctx.say("checkin.shared")

    @actions.register("checkin.finish")
    async def finish(ctx: ActionContext) -> None:
        """Close warmly, with the streak when it just grew; then forget the session's slots."""
        streak = _int(ctx.slots.get(STREAK)) or 0
        if not ctx.slots.get(SAVED):
            ctx.say("checkin.nothing_saved")
        elif streak >= 2:
            ctx.say("checkin.bye_streak", count=streak)
        else:
            ctx.say("checkin.bye")
        _clear(ctx.slots, SESSION_SLOTS)


# -- queries -----------------------------------------------------------------------------


async def active_goals(session: AsyncSession, person: Person) -> list[Goal]:
    """The person's active goals, oldest first (the order they set them)."""
    rows = await session.exec(
        select(Goal)
        .where(Goal.person_id == person.id, Goal.status == "active")
        .order_by(col(Goal.created_at), col(Goal.id))
    )
    return list(rows.all())


async def last_checkin(session: AsyncSession, goal_id: int) -> CheckIn | None:
    """The newest check-in on a goal."""
    rows = await session.exec(
        select(CheckIn)
        .where(CheckIn.goal_id == goal_id)
        .order_by(col(CheckIn.created_at).desc(), col(CheckIn.id).desc())
        .limit(1)
    )
    return rows.first()


async def _previous_rating(session: AsyncSession, goal_id: int, row_id: int) -> int | None:
    rows = await session.exec(
        select(CheckIn.rating)
        .where(CheckIn.goal_id == goal_id, col(CheckIn.id) != row_id)
        .order_by(col(CheckIn.created_at).desc(), col(CheckIn.id).desc())
        .limit(1)
    )
    return rows.first()


async def _checkin_times(session: AsyncSession, person_id: int) -> list[datetime]:
    rows = await session.exec(select(CheckIn.created_at).where(CheckIn.person_id == person_id))
    return list(rows.all())


async def _own_goal(ctx: ActionContext, goal_id: Any) -> Goal | None:
    """The goal with this id, if it is this person's (slots are data; trust nothing)."""
    if not isinstance(goal_id, int):
        return None
    goal = await ctx.session.get(Goal, goal_id)
    return goal if goal is not None and goal.person_id == ctx.person.id else None


async def _current_goal(ctx: ActionContext) -> Goal | None:
    return await _own_goal(ctx, ctx.slots.get(CURRENT))


async def _own_checkin(ctx: ActionContext, row_id: Any) -> CheckIn | None:
    if not isinstance(row_id, int):
        return None
    row = await ctx.session.get(CheckIn, row_id)
    return row if row is not None and row.person_id == ctx.person.id else None


async def _saved_rows(ctx: ActionContext) -> list[CheckIn]:
    rows = [await _own_checkin(ctx, i) for i in ctx.slots.get(SAVED) or []]
    return [r for r in rows if r is not None]


# -- shared with the next flow -----------------------------------------------------------


def person_zone(person: Person) -> ZoneInfo:
    """The person's time zone; an unknown name falls back to UTC rather than failing."""
    try:
        return ZoneInfo(person.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _week(day: date) -> tuple[int, int]:
    iso = day.isocalendar()
    return iso.year, iso.week


def weekly_streak(moments: Iterable[datetime], zone: ZoneInfo, today: date) -> int:
    """How many ISO weeks in a row, ending with today's, have at least one check-in.

    Weeks are the person's local weeks: a Monday-morning check-in in Auckland is
    still Sunday in UTC, and counts for the Auckland week.
    """
    weeks = {_week(m.astimezone(zone).date()) for m in moments}
    monday = today - timedelta(days=today.weekday())
    streak = 0
    while _week(monday) in weeks:
        streak += 1
        monday -= timedelta(weeks=1)
    return streak


def plan_action(plan: str | None) -> str | None:
    """The "then" part of an if-then plan, in the learner's words, or the whole plan.

    "If I get distracted, then I will put my phone away" → "put my phone away";
    "Si me distraigo, entonces voy a apagar el móvil" → "apagar el móvil".
    """
    if not plan or not plan.strip():
        return None
    parts = _THEN.split(plan)
    action = parts[-1] if len(parts) > 1 and parts[-1].strip() else plan
    action = _TRAILING.sub("", _WILL.sub("", action.strip()))
    return action or None


def smaller_step(render: Render, goal: Goal, basis: str | None) -> str:
    """A step small enough to start on a bad day: ten minutes, not a whole session.

    Ten minutes follows the "make it tiny" advice of habit research (B. J. Fogg,
    "Tiny Habits", 2019): a start that feels easy beats a plan that feels heavy.
    `basis` is the step they chose: its first ten minutes. Without one, ten
    minutes on the goal with their if-then plan ready; without a plan, just ten
    minutes on the goal. `render(key, params)` is the action context's.
    """
    params = {"checkin.goal_wish": goal.wish, "checkin.basis": basis}
    if basis:
        return render("checkin.smaller.from_step", params)
    params["checkin.basis"] = plan_action(goal.plan)
    if params["checkin.basis"]:
        return render("checkin.smaller.from_plan", params)
    return render("checkin.smaller.from_wish", params)


async def say_resource(ctx: ActionContext, goal: Goal) -> None:
    """One resource for this goal from the catalog (stored as shown, with 👍 / 👎), or,
    when nothing fits, where to look for more."""
    topic = goal.topic
    if topic is None and ctx.vocabulary is not None:
        # A goal from before topics were kept: its wish usually names one.
        found = ctx.vocabulary.find(goal.wish, kind="topic", limit=1)
        topic = found[0].term.id if found else None
    # Only a resource about the goal will do here; without a topic, point to /resources.
    picks = await recommend_for(ctx, k=1, topic=topic) if topic else None
    if picks is None or not picks.items:
        ctx.say("checkin.resource_later")
        return
    item = picks.items[0]
    ctx.slots[RESOURCE_TITLE] = item.recommendation.resource.name
    ctx.slots[RESOURCE_URL] = item.recommendation.resource.url
    ctx.replies.append(
        Reply(
            ctx.render("checkin.resource", {}),
            feedback_buttons(ctx, item.recommendation.resource.id),
        )
    )


def _clear(slots: MutableMapping[str, Any], names: Iterable[str]) -> None:
    for name in names:
        slots.pop(name, None)


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
