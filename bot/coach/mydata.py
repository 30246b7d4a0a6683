"""A learner's own data, in the chat: who sees what, a copy of it all, erasing it all.

Flows: dialogs/flows/data.yaml (/privacy, /mydata, /forget). The export and the
erasure themselves live in bot.coach.privacy, shared with the HTTP API.
"""

from __future__ import annotations

import json
from typing import Any

from bot.coach.privacy import export_person
from bot.engine.actions import ActionContext, ActionRegistry
from bot.engine.messages import Attachment, Reply
from bot.store.models import Conversation

EXPORT_FILENAME = "coach-data.json"
EXPORT_MEDIA_TYPE = "application/json"


def family_key(under_13: bool | None) -> str:
    """Which sentence says what a family member may see, for this learner."""
    if under_13 is None:
        return "privacy.family_unknown"
    return "privacy.family_under_13" if under_13 else "privacy.family_13"


def _nothing_expected(conversation: Conversation | None) -> dict[str, Any]:
    # The export's `conversation.expect` says what the dialog waits for; in the
    # middle of /mydata the answer is nothing (the flow ends with this turn).
    return {"type": "none", "slot": None}


def register(actions: ActionRegistry) -> None:
    @actions.register("privacy.explain")
    async def explain(ctx: ActionContext) -> None:
        """Who sees what, for this learner: teacher, family (age decides), private reflections."""
        ctx.say("privacy.teacher")
        ctx.say(family_key(ctx.person.under_13))
        ctx.say("privacy.your_data")

    @actions.register("mydata.export")
    async def export(ctx: ActionContext) -> None:
        """Send everything stored about the person as a JSON file (the API's export)."""
        data = await export_person(ctx.session, ctx.person, _nothing_expected)
        ctx.replies.append(
            Reply(
                ctx.render("mydata.sent", {}),
                attachment=Attachment(
                    filename=EXPORT_FILENAME,
                    media_type=EXPORT_MEDIA_TYPE,
                    content=json.dumps(data, ensure_ascii=False, indent=2),
                ),
            )
        )

    @actions.register("forget.erase")
    async def erase(ctx: ActionContext) -> None:
        """Erase the person: the turn deletes every row about them instead of saving."""
        ctx.erase = True
        ctx.say("forget.done")
