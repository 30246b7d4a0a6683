"""Actions about the person themself: what to call them."""

from __future__ import annotations

from bot.engine.actions import ActionContext, ActionRegistry

# Names are shown in chat and in teachers' digests; a long paste is not a name.
MAX_NAME_LENGTH = 40


def register(actions: ActionRegistry) -> None:
    @actions.register("profile.save_name", sets=("profile.name",))
    async def save_name(ctx: ActionContext) -> None:
        """Store the name the person asked to be called by, tidied."""
        raw = str(ctx.slots.get("profile.name") or "").strip()
        name = " ".join(raw.split())[:MAX_NAME_LENGTH]
        if name:
            ctx.person.name = name
            ctx.slots["profile.name"] = name
