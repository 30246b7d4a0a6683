"""Retention: the message log and the inbox keep rows only as long as configured."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import col

from bot.store.db import Database
from bot.store.models import InboxMessage, MessageLog


async def prune(db: Database, now: datetime, keep_days: int) -> dict[str, int]:
    """Delete message log and inbox rows older than `keep_days`; return how many went."""
    cutoff = now - timedelta(days=keep_days)
    async with db.transaction() as session:
        logs = await session.exec(delete(MessageLog).where(col(MessageLog.created_at) < cutoff))
        inbox = await session.exec(
            delete(InboxMessage).where(col(InboxMessage.received_at) < cutoff)
        )
        return {"message_log": logs.rowcount, "inbox": inbox.rowcount}
