"""The "pull" sender for the web chat and the API: nothing to push, so it posts.

A person on the web chat (or an API client) has no open connection we could
push to. Delivering a proactive message there means adding it to their message
log as an outgoing message on that identity's channel; /chat/history (and the
API's history) reads the log, so they see it the next time they open the chat.

Unlike a platform sender this one writes to the database, in its own short
transaction: the dispatcher holds no lock while it runs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert

from bot.clock import Clock
from bot.delivery.senders import SendOutcome
from bot.store.db import Database
from bot.store.models import ChannelIdentity, MessageLog

# Channels whose people read proactive messages when they next visit.
PULL_CHANNELS = ("web", "api")


class PullSender:
    """Appends the payload's reply to the person's message log (direction "out")."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def send(self, identity: ChannelIdentity, payload: dict[str, Any]) -> SendOutcome:
        reply = payload["reply"]  # the dispatcher checked the shape before calling
        buttons = [
            {"label": str(b["label"]), "value": str(b["value"])}
            for b in reply.get("buttons") or []
            if isinstance(b, dict) and "label" in b and "value" in b
        ]
        async with self.db.transaction() as session:
            await session.exec(
                insert(MessageLog).values(
                    person_id=identity.person_id,
                    direction="out",
                    channel=identity.channel,
                    text=reply["text"],
                    buttons=buttons,
                    created_at=self.clock.now(),
                )
            )
        return SendOutcome.sent()


def pull_senders(db: Database, clock: Clock) -> dict[str, PullSender]:
    """channel -> sender for every pull channel (the dispatcher's default mapping)."""
    sender = PullSender(db, clock)
    return dict.fromkeys(PULL_CHANNELS, sender)
