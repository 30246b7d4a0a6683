"""Writing proactive messages: one outbox row per message, inserted idempotently.

Every replica's scheduler may decide the same message is due; the dedupe key
(`digest:{class}:{iso week}`, `reminder:{person}:{date}`, ...) makes the second
insert a no-op (ON CONFLICT DO NOTHING on both SQLite and PostgreSQL), so each
message is written, and therefore sent, once. The dispatcher (bot/delivery)
sends what is due.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.models import OUTBOX_KINDS, ChannelIdentity, OutboxMessage, Person

# Channels the dispatcher can push to; the web chat and the API are pull channels
# (a person there reads proactive messages when they next open the chat).
PUSH_CHANNELS = ("telegram", "slack")


async def delivery_identity(session: AsyncSession, person_id: int) -> ChannelIdentity | None:
    """Where to reach a person: the channel they chose with /here while it is reachable,
    else their most recently used reachable push identity, or else their most recent
    identity of any channel (read when they next visit)."""
    preferred = (
        await session.exec(select(Person.preferred_channel).where(Person.id == person_id))
    ).first()
    rows = (
        await session.exec(
            select(ChannelIdentity)
            .where(ChannelIdentity.person_id == person_id)
            .where(col(ChannelIdentity.unreachable).is_(False))
            .order_by(col(ChannelIdentity.last_seen_at).desc(), col(ChannelIdentity.id).desc())
        )
    ).all()
    for identity in rows:
        if preferred and identity.channel == preferred:
            return identity
    for identity in rows:
        if identity.channel in PUSH_CHANNELS:
            return identity
    return rows[0] if rows else None


async def enqueue(
    session: AsyncSession,
    *,
    person_id: int,
    kind: str,
    payload: dict[str, Any],
    dedupe_key: str,
    due_at: datetime,
    now: datetime,
    identity: ChannelIdentity | None = None,
) -> bool:
    """Write one proactive message for `person_id`, due at `due_at` (UTC).

    Returns False when the person cannot be reached at all (no identity left) or the
    dedupe key was already written (another replica or an earlier tick did it).
    """
    if kind not in OUTBOX_KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    target = identity or await delivery_identity(session, person_id)
    if target is None or target.id is None:
        return False
    values = {
        "identity_id": target.id,
        "person_id": person_id,
        "kind": kind,
        "payload": payload,
        "dedupe_key": dedupe_key,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": due_at,
        "created_at": now,
    }
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        statement: Any = (
            postgresql.insert(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
        )
    else:
        statement = (
            sqlite.insert(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
        )
    result = await session.exec(statement)
    return bool(result.rowcount)
