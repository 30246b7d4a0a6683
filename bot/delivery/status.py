"""The outbox at a glance (`coach jobs status`) and a second chance for failed rows
(`coach jobs retry-failed`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, update
from sqlmodel import col, select

from bot.store.db import Database
from bot.store.models import ChannelIdentity, OutboxMessage


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    due: int  # pending and due now: the dispatcher should be on it
    later: int  # pending, due later (quiet hours, a backoff, a retry-after, next week's cap)
    sending: int
    failed: int
    sent: int
    skipped: int  # held back for good by /pause or /stop
    oldest_due: timedelta | None  # how long the longest-waiting due row has waited


async def outbox_status(db: Database, now: datetime) -> OutboxStatus:
    due_now = (col(OutboxMessage.status) == "pending") & (col(OutboxMessage.next_attempt_at) <= now)
    async with db.reading() as session:
        by_status = dict(
            (
                await session.exec(
                    select(OutboxMessage.status, func.count()).group_by(col(OutboxMessage.status))
                )
            ).all()
        )
        due, first = (
            await session.exec(
                select(func.count(), func.min(OutboxMessage.next_attempt_at)).where(due_now)
            )
        ).one()
    pending = int(by_status.get("pending", 0))
    return OutboxStatus(
        due=int(due),
        later=pending - int(due),
        sending=int(by_status.get("sending", 0)),
        failed=int(by_status.get("failed", 0)),
        sent=int(by_status.get("sent", 0)),
        skipped=int(by_status.get("skipped", 0)),
        oldest_due=(now - _aware(first)) if first is not None else None,
    )


def _aware(value: datetime) -> datetime:
    # Belt and braces: the column type makes values UTC-aware; an aggregate should keep it.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def retry_failed(db: Database, now: datetime, kind: str | None = None) -> tuple[int, int]:
    """Make failed rows due again with fresh attempts; returns (retried, left).

    Rows for an identity that refused us for good are left: they would only fail
    again (the person can be reached again once they write to us from it).
    """
    reachable = select(ChannelIdentity.id).where(col(ChannelIdentity.unreachable).is_(False))
    async with db.transaction() as session:
        query = update(OutboxMessage).where(col(OutboxMessage.status) == "failed")
        if kind is not None:
            query = query.where(col(OutboxMessage.kind) == kind)
        result = await session.exec(
            query.where(col(OutboxMessage.identity_id).in_(reachable))
            .values(
                status="pending",
                attempts=0,
                next_attempt_at=now,
                lease_until=None,
                last_error=None,
            )
            .execution_options(synchronize_session=False)
        )
        left_query = (
            select(func.count())
            .select_from(OutboxMessage)
            .where(col(OutboxMessage.status) == "failed")
        )
        if kind is not None:
            left_query = left_query.where(col(OutboxMessage.kind) == kind)
        left = (await session.exec(left_query)).one()
    return int(result.rowcount), int(left)


def describe(status: OutboxStatus) -> list[str]:
    """The lines `coach jobs status` prints."""
    lines = [
        f"due now   {status.due}",
        f"later     {status.later}",
        f"sending   {status.sending}",
        f"failed    {status.failed}",
        f"sent      {status.sent}",
        f"skipped   {status.skipped}",
    ]
    if status.oldest_due is not None:
        lines.append(f"oldest due message waiting {_age(status.oldest_due)}")
    return lines


def _age(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"
