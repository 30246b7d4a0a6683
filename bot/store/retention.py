"""Retention: the message log and the inbox keep rows only as long as configured."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlmodel import col

from bot.store.db import Database
from bot.store.models import InboxMessage, MessageLog

# Rows deleted per transaction. One DELETE of everything past the cutoff (the first
# prune of a year-old database: millions of rows) would hold SQLite's one write lock,
# and the event loop that runs SQLite's calls, for seconds, so turns and health checks
# would wait; 5,000 rows take a few milliseconds, and other work runs between batches.
PRUNE_BATCH = 5000


async def prune(db: Database, now: datetime, keep_days: int) -> dict[str, int]:
    """Delete message log and inbox rows older than `keep_days`, a batch per
    transaction; return how many went."""
    cutoff = now - timedelta(days=keep_days)
    return {
        "message_log": await _prune(db, MessageLog, col(MessageLog.created_at) < cutoff),
        "inbox": await _prune(db, InboxMessage, col(InboxMessage.received_at) < cutoff),
    }


async def _prune(db: Database, model: Any, old: Any) -> int:
    batch = select(model.id).where(old).limit(PRUNE_BATCH).scalar_subquery()
    removed = 0
    while True:
        async with db.transaction() as session:
            result = await session.exec(
                delete(model)
                .where(col(model.id).in_(batch))
                .execution_options(synchronize_session=False)
            )
        removed += result.rowcount
        if result.rowcount < PRUNE_BATCH:
            return removed
        await asyncio.sleep(0)  # let turns in
