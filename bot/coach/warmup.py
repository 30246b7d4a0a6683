"""The warm-up flow's action: turn a few answers into a small study plan."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from bot.engine.actions import ActionContext, ActionRegistry

# School weeks: five study days is what learners plan around.
STUDY_DAYS_PER_WEEK = 5


def register(actions: ActionRegistry) -> None:
    @actions.register(
        "warmup.plan", sets=("warmup.weekly_minutes", "warmup.days_left", "warmup.sessions")
    )
    async def plan(ctx: ActionContext) -> None:
        """Say how the daily minutes add up, and how many days are left to the deadline."""
        minutes = int(ctx.slots.get("warmup.minutes") or 0)
        weekly = minutes * STUDY_DAYS_PER_WEEK
        ctx.slots["warmup.weekly_minutes"] = weekly
        ctx.say("warmup.plan_week", count=weekly)
        deadline = ctx.slots.get("warmup.deadline")
        if deadline:
            today = ctx.now.astimezone(ZoneInfo(ctx.person.timezone)).date()
            days = (date.fromisoformat(deadline) - today).days
            ctx.slots["warmup.days_left"] = days
            sessions = max(1, round(days * STUDY_DAYS_PER_WEEK / 7))
            ctx.slots["warmup.sessions"] = sessions
            ctx.say("warmup.plan_deadline", count=days, date=deadline)
        else:
            ctx.slots["warmup.days_left"] = None
