"""/next ("what should I do now?", "I'm bored"): one concrete next step and one resource.

From the active goals, their last check-ins and how close their deadlines are,
`next.pick` chooses one goal and the kind of step it needs, most pressing first:

1. `deadline`: due within three days (issue 3), a focused 25-minute step (one
   "pomodoro", F. Cirillo, "The Pomodoro Technique", 2006) on their own next
   step or plan, or on the part that matters most;
2. `overdue`: the date has passed, so a check-in to choose a new step;
3. `stuck`: two low check-ins in a row, so a smaller step (see checkins.smaller_step);
4. `stored`: the next step they chose at their last check-in;
5. `plan`: no step stored yet, so the action of their if-then plan;
6. `start`: no plan either, so ten minutes on the goal.

With no active goal the learner is offered to set one or to explore interests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bot.coach.checkins import (
    RESOURCE_TITLE,
    RESOURCE_URL,
    active_goals,
    last_checkin,
    person_zone,
    plan_action,
    say_resource,
    smaller_step,
)
from bot.engine.actions import ActionContext, ActionRegistry
from bot.engine.messages import Button, Reply
from bot.store.models import Goal

# Issue 3: "if the deadline is within 3 days, a focused step".
FOCUS_DAYS = 3
# The kinds of step, most pressing first: a goal's rank is its kind's index here.
KINDS = ("deadline", "overdue", "stuck", "stored", "plan", "start")
SLOTS = ("next.kind", "next.goal_id", "next.goal_wish", "next.step", "next.deadline")


@dataclass(frozen=True, slots=True)
class Suggestion:
    """What /next will say about one goal."""

    goal: Goal
    kind: str
    step: str | None
    days_left: int | None

    def rank(self) -> tuple[int, int, int]:
        """Most pressing kind first; then the nearest deadline (undated goals last)."""
        soonest = self.days_left if self.days_left is not None else 10**6
        return KINDS.index(self.kind), soonest, self.goal.id or 0


def register(actions: ActionRegistry) -> None:
    @actions.register("next.pick", sets=SLOTS)
    async def pick(ctx: ActionContext) -> None:
        """Choose the goal and the kind of step; `next.kind` is "none" without a goal."""
        for name in SLOTS:
            ctx.slots.pop(name, None)
        today = ctx.now.astimezone(person_zone(ctx.person)).date()
        options = [
            await _suggestion(ctx, goal, today)
            for goal in await active_goals(ctx.session, ctx.person)
        ]
        if not options:
            ctx.slots["next.kind"] = "none"
            return
        best = min(options, key=Suggestion.rank)
        ctx.slots["next.kind"] = best.kind
        ctx.slots["next.goal_id"] = best.goal.id
        ctx.slots["next.goal_wish"] = best.goal.wish
        ctx.slots["next.step"] = best.step
        ctx.slots["next.deadline"] = best.goal.deadline.isoformat() if best.goal.deadline else None

    @actions.register("next.say_deadline")
    async def say_deadline(ctx: ActionContext) -> None:
        """How many days are left (a plural, so said here), then the focused step."""
        goal = await _chosen_goal(ctx)
        if goal is None or goal.deadline is None:
            return
        today = ctx.now.astimezone(person_zone(ctx.person)).date()
        days = (goal.deadline - today).days
        if days == 0:
            ctx.say("next.due_today")
        else:
            ctx.say("next.due_in", count=days)
        ctx.say("next.focus_step" if ctx.slots.get("next.step") else "next.focus_open")

    @actions.register("next.resource", sets=(RESOURCE_TITLE, RESOURCE_URL))
    async def resource(ctx: ActionContext) -> None:
        """One resource for the chosen goal (issue 4's catalog), then tidy the slots."""
        goal = await _chosen_goal(ctx)
        if goal is not None:
            await say_resource(ctx, goal)
        for name in (*SLOTS, RESOURCE_TITLE, RESOURCE_URL):
            ctx.slots.pop(name, None)

    @actions.register("next.offer_start")
    async def offer_start(ctx: ActionContext) -> None:
        """No goal: set one, or explore interests first. The buttons' values are the
        `goal` and `interests` intents, so they start whichever flows own those."""
        for name in SLOTS:
            ctx.slots.pop(name, None)
        buttons = (
            Button(ctx.render("next.button.goal", {}), "goal"),
            Button(ctx.render("next.button.interests", {}), "interests"),
        )
        ctx.replies.append(Reply(ctx.render("next.no_goal", {}), buttons))


async def _suggestion(ctx: ActionContext, goal: Goal, today: date) -> Suggestion:
    assert goal.id is not None
    last = await last_checkin(ctx.session, goal.id)
    stored = last.next_step if last is not None else None
    planned = plan_action(goal.plan)
    days_left = (goal.deadline - today).days if goal.deadline else None
    if days_left is not None and 0 <= days_left <= FOCUS_DAYS:
        return Suggestion(goal, "deadline", stored or planned, days_left)
    if days_left is not None and days_left < 0:
        return Suggestion(goal, "overdue", None, days_left)
    if goal.stuck:
        return Suggestion(goal, "stuck", smaller_step(ctx.render, goal, stored), days_left)
    if stored:
        return Suggestion(goal, "stored", stored, days_left)
    if planned:
        return Suggestion(goal, "plan", planned, days_left)
    return Suggestion(goal, "start", None, days_left)


async def _chosen_goal(ctx: ActionContext) -> Goal | None:
    goal_id = ctx.slots.get("next.goal_id")
    if not isinstance(goal_id, int):
        return None
    goal = await ctx.session.get(Goal, goal_id)
    return goal if goal is not None and goal.person_id == ctx.person.id else None
