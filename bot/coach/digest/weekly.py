"""The weekly digest job, and the digests a teacher received (for their export).

`send_weekly_digests` is a scheduler Job (bot/coach/jobs.py): on every tick it
finds the classes whose teacher's digest time has come this ISO week (default
Friday 15:00 in the teacher's time zone; Person.digest_weekday/digest_time) and
that have no digest row for the week yet, builds those digests in one batch,
and writes one outbox row per class, kind "digest", dedupe key
`digest:{class id}:{ISO week}` (so every replica may run it and each class's
digest goes out once a week). A digest missed on Friday (the service was down)
still goes out later that week; never for a week that has ended.

Skipped: archived classes, classes nobody has joined (a digest with nothing to
say every Friday would teach the teacher to ignore it), teachers who said /stop
or /pause, and teachers with no channel left to reach them.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import exists
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.coach.digest.facts import (
    ClassDigest,
    ClassRef,
    Week,
    record_reads,
    summarise,
    zone_of,
)
from bot.coach.digest.text import digest_payload, render_digest
from bot.coach.jobs import JobContext
from bot.engine.topics import Vocabulary
from bot.store.models import ChannelIdentity, Enrollment, OutboxMessage, Person, SchoolClass
from bot.store.outbox import PUSH_CHANNELS, enqueue

# Issue 5: "default Friday 15:00 in the teacher's time zone" (ISO weekday 5).
DEFAULT_WEEKDAY = 5
DEFAULT_TIME = time(15, 0)
# Classes summarised per batch: keeps each IN (...) list well inside every database's
# bound-parameter limit (SQLite's default is 32,766) however large the district.
BATCH = 500


def dedupe_key(class_id: int, week: Week) -> str:
    return f"digest:{class_id}:{week.key}"


def digest_time(teacher: Person) -> tuple[int, time]:
    """The teacher's digest weekday (ISO 1-7) and local time, or Friday 15:00."""
    weekday = teacher.digest_weekday if teacher.digest_weekday in range(1, 8) else None
    at = DEFAULT_TIME
    if teacher.digest_time:
        try:
            at = time.fromisoformat(teacher.digest_time)
        except ValueError:
            at = DEFAULT_TIME
    return weekday or DEFAULT_WEEKDAY, at


def due_at(teacher: Person, now: datetime) -> tuple[Week, datetime]:
    """The teacher's ISO week as of `now` and when this week's digest is due (UTC)."""
    week = Week.of(now, zone_of(teacher.timezone))
    weekday, at = digest_time(teacher)
    return week, week.local(week.monday + timedelta(days=weekday - 1), at)


# A class to summarise, its teacher, and where the teacher is reached.
Due = tuple[ClassRef, Person, ChannelIdentity]


@functools.cache
def _vocabulary(path: Path) -> Vocabulary:
    return Vocabulary.load(path)


async def send_weekly_digests(ctx: JobContext) -> int:
    """Write this week's digest for every class whose time has come; return how many."""
    vocabulary = _vocabulary(ctx.settings.content_dir / "vocabulary.yaml")
    written = 0
    async with ctx.db.transaction() as session:
        due = await _due_classes(session, ctx.now)
        # One batch per time zone (the week's edges are local) and per week.
        batches: dict[tuple[str, str], list[Due]] = defaultdict(list)
        weeks: dict[tuple[str, str], Week] = {}
        for ref, teacher, week, identity in due:
            group = (str(week.zone), week.key)
            batches[group].append((ref, teacher, identity))
            weeks[group] = week
        for group, members in batches.items():
            for start in range(0, len(members), BATCH):
                chunk = members[start : start + BATCH]
                written += await _write(session, ctx, weeks[group], chunk, vocabulary)
    return written


async def _due_classes(
    session: AsyncSession, now: datetime
) -> list[tuple[ClassRef, Person, Week, ChannelIdentity]]:
    """Classes whose digest is due by `now` this week and not yet written, each with
    where to reach its teacher."""
    rows = await session.exec(
        select(SchoolClass.id, SchoolClass.name, Person)
        .join(Person, col(Person.id) == col(SchoolClass.teacher_id))
        .where(col(SchoolClass.archived_at).is_(None))
        .where(Person.role == "teacher")
        .where(col(Person.stopped_at).is_(None))
        # Nobody enrolled: nothing to send, so not due (else it would be rebuilt, and
        # skipped, on every tick until the week ends).
        .where(exists().where(col(Enrollment.class_id) == col(SchoolClass.id)))
        .order_by(col(SchoolClass.id))
    )
    candidates: list[tuple[ClassRef, Person, Week]] = []
    for class_id, name, teacher in rows.all():
        if class_id is None or teacher.id is None:
            continue
        if teacher.paused_until is not None and teacher.paused_until > now:
            continue
        week, at = due_at(teacher, now)
        if at <= now:
            candidates.append((ClassRef(class_id, name, teacher.id), teacher, week))
    if not candidates:
        return []
    keys = [dedupe_key(ref.id, week) for ref, _, week in candidates]
    written = set(
        (
            await session.exec(
                select(OutboxMessage.dedupe_key).where(col(OutboxMessage.dedupe_key).in_(keys))
            )
        ).all()
    )
    reach = await _identities(
        session, {teacher.id: teacher.preferred_channel for _, teacher, _ in candidates}
    )
    return [
        (ref, teacher, week, reach[ref.teacher_id])
        for (ref, teacher, week), key in zip(candidates, keys, strict=True)
        if key not in written and ref.teacher_id in reach
    ]


async def _identities(
    session: AsyncSession, people: Mapping[int | None, str | None]
) -> dict[int, ChannelIdentity]:
    """Where to reach each person (id -> the channel they chose with /here), by
    bot.store.outbox.delivery_identity's rule (the chosen channel while reachable,
    else their most recently used reachable push identity, else their latest
    reachable one), for all of them in one query instead of one per digest."""
    rows = await session.exec(
        select(ChannelIdentity)
        .where(col(ChannelIdentity.person_id).in_(list(people)))
        .where(col(ChannelIdentity.unreachable).is_(False))
        .order_by(col(ChannelIdentity.last_seen_at).desc(), col(ChannelIdentity.id).desc())
    )
    found: dict[int, ChannelIdentity] = {}
    for identity in rows.all():
        best = found.get(identity.person_id)
        chosen = people.get(identity.person_id)
        if best is not None and chosen and best.channel == chosen:
            continue  # the chosen channel, newest first: nothing beats it
        if (
            best is None
            or (chosen and identity.channel == chosen)
            or (best.channel not in PUSH_CHANNELS and identity.channel in PUSH_CHANNELS)
        ):
            found[identity.person_id] = identity
    return found


async def _write(
    session: AsyncSession,
    ctx: JobContext,
    week: Week,
    members: Sequence[Due],
    vocabulary: Vocabulary,
) -> int:
    teachers = {ref.id: (teacher, identity) for ref, teacher, identity in members}
    sent: list[ClassDigest] = []
    for digest in await summarise(session, [ref for ref, _, _ in members], week, ctx.now):
        if not digest.learners:
            continue
        teacher, identity = teachers[digest.ref.id]
        locale = teacher.locale if teacher.locale in ctx.catalogs.locales else "en"

        def render(key: str, params: Any, locale: str = locale) -> str:
            return ctx.catalogs.render(key, locale, params)

        text = render_digest(digest, render=render, locale=locale, vocabulary=vocabulary)
        if await enqueue(
            session,
            person_id=digest.ref.teacher_id,
            kind="digest",
            payload=digest_payload(digest, text),
            dedupe_key=dedupe_key(digest.ref.id, week),
            due_at=ctx.now,
            now=ctx.now,
            identity=identity,
        ):
            sent.append(digest)
    await record_reads(session, sent, now=ctx.now, detail="weekly")
    return len(sent)


async def export_digests(session: AsyncSession, person: Person) -> list[dict[str, Any]]:
    """The digests a teacher was sent (or is about to be): class, week, when sent.

    Read from the outbox rows of kind "digest"; nothing about the learners in them.
    """
    rows = await session.exec(
        select(OutboxMessage)
        .where(OutboxMessage.person_id == person.id)
        .where(OutboxMessage.kind == "digest")
        .order_by(col(OutboxMessage.created_at), col(OutboxMessage.id))
    )
    out: list[dict[str, Any]] = []
    for row in rows.all():
        about = row.payload.get("digest") if isinstance(row.payload, dict) else None
        about = about if isinstance(about, dict) else {}
        out.append(
            {
                "class_id": about.get("class_id"),
                "class": about.get("class"),
                "week": about.get("week"),
                "status": row.status,
                "sent_at": row.sent_at.isoformat() if row.sent_at else None,
            }
        )
    return out
