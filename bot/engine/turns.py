"""One persisted turn: the inbox row, the person, the dialog step, the log and the outbox.

Everything a turn writes commits in one transaction, so a crash loses nothing
acknowledged. A repeated message id returns the replies stored with the first
delivery and changes nothing. Two messages from one person never interleave:
inside a process they queue on a per-identity lock; across replicas the
conversation row is locked (PostgreSQL) or the database has one writer
(SQLite), and its version is checked on write, so a loser retries its turn.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import metrics
from bot.clock import Clock
from bot.coach import privacy
from bot.engine.messages import Expect, Inbound, TurnResult
from bot.engine.runtime import Dialog, DialogState
from bot.store.db import Database
from bot.store.models import (
    ChannelIdentity,
    Conversation,
    InboxMessage,
    MessageLog,
    OutboxMessage,
    Person,
)
from bot.store.prepared import Changes, NewRows, Prepared, Rows, sqlite_driver

log = logging.getLogger(__name__)

# last_seen_at says which channel a person used last (for proactive messages);
# minute precision is plenty and spares a write on most turns.
LAST_SEEN_GRANULARITY = timedelta(minutes=1)
# A turn that lost a race (another replica wrote the conversation first, or
# created the same person) runs again; more than a handful of losses in a row
# means something else is wrong.
MAX_ATTEMPTS = 6


# A turn's statements, built once: building and hashing a statement per turn (for
# SQLAlchemy's compiled cache) cost more than running it. Measured with the nine-turn
# warm-up in process on SQLite: 3.5-3.9 ms of CPU a turn before, 2.6-2.7 ms after
# (statements built once, writes as Core statements; README, Benchmarks, has more).
_WHO = (
    select(ChannelIdentity, Person, Conversation)
    .join(Person, col(Person.id) == col(ChannelIdentity.person_id))
    # Every person gets their conversation row in the transaction that creates
    # them, so an inner join (which PostgreSQL can lock) is exact.
    .join(Conversation, col(Conversation.person_id) == col(Person.id))
    .where(
        col(ChannelIdentity.channel) == bindparam("channel"),
        col(ChannelIdentity.external_id) == bindparam("external_id"),
    )
)
# The person row is locked with the conversation: under READ COMMITTED, a turn that
# waited for the lock re-reads only the rows it locked (EvalPlanQual), so a person row
# read unlocked could predate the previous turn's change (their name, their language).
_WHO_LOCKED = _WHO.with_for_update(of=(Conversation, Person))
# SQLite: the same SELECT on sqlite3, its row made into the three ORM objects (about
# 150 us less a turn than the ORM's own execution and loading; prepared.py).
_WHO_ROW = Prepared(_WHO)
_WHO_PARTS = Rows(_WHO, (ChannelIdentity, Person, Conversation))
# A first contact's three rows, written through the driver on SQLite (a flush each cost
# ~250 us there).
_NEW_ROWS = NewRows(Person, ChannelIdentity, Conversation)
# What a turn changed on the person (a name, a language, onboarding answers) and the
# identity (last seen), written through the driver on SQLite (prepared.Changes).
_CHANGED_PEOPLE = Changes(Person)
_CHANGED_IDENTITIES = Changes(ChannelIdentity)
_INBOX = InboxMessage.__table__  # type: ignore[attr-defined]
# Only the stored replies, as a Core row: loading the whole row as an ORM object cost
# twice as much, on every turn, for the rare redelivery.
_STORED = Prepared(
    sa_select(_INBOX.c.replies).where(
        _INBOX.c.channel == bindparam("channel"),
        _INBOX.c.external_id.in_([bindparam("external_id"), bindparam("erased_id")]),
        _INBOX.c.message_id == bindparam("message_id"),
    )
)
_CONVERSATIONS = Conversation.__table__  # type: ignore[attr-defined]
# The version read must still be there: another writer in between makes it miss.
_WRITE_CONVERSATION = Prepared(
    update(_CONVERSATIONS)
    .where(
        _CONVERSATIONS.c.id == bindparam("conversation_id"),
        _CONVERSATIONS.c.version == bindparam("read_version"),
    )
    .values(
        flow=bindparam("new_flow"),
        step=bindparam("new_step"),
        slots=bindparam("new_slots"),
        stack=bindparam("new_stack"),
        meta=bindparam("new_meta"),
        version=bindparam("new_version"),
        updated_at=bindparam("now"),
    )
)
_LOG_LINES = Prepared(
    insert(MessageLog.__table__),  # type: ignore[attr-defined]
    column_keys=("person_id", "direction", "channel", "text", "buttons", "created_at"),
)
_OUTBOX_TABLE = OutboxMessage.__table__  # type: ignore[attr-defined]
_OUTBOX_ROWS = Prepared(
    insert(_OUTBOX_TABLE).returning(_OUTBOX_TABLE.c.id, sort_by_parameter_order=True),
    column_keys=[column.name for column in _OUTBOX_TABLE.c if column.name != "id"],
)


def _outbox_values(row: OutboxMessage) -> dict[str, Any]:
    return {
        column.name: getattr(row, column.name) for column in _OUTBOX_TABLE.c if column.name != "id"
    }


_INBOX_ROW = Prepared(
    insert(_INBOX),
    column_keys=("channel", "external_id", "message_id", "person_id", "replies", "received_at"),
)


class ReplySender(Protocol):
    """Sends a turn's push replies itself once the turn commits (the outbox dispatcher).

    The turn writes those rows already claimed by it, status "sending" until a lease
    of `lease` from now, so no other worker takes them while it sends; if this process
    dies first, the lease runs out and any worker sends them."""

    lease: timedelta

    def send_claimed(
        self, rows: Sequence[OutboxMessage], identity: ChannelIdentity, token: datetime
    ) -> None: ...


class ConversationConflict(Exception):
    """Another writer changed the conversation since this turn read it."""


@dataclass(frozen=True, slots=True)
class Defaults:
    """What a new person starts with."""

    locale: str = "en"
    timezone: str = "UTC"


def erased_identity(inbound: Inbound) -> str:
    """How the inbox remembers the address behind an erasing turn: a one-way hash, so
    the redelivered /forget is recognised while the chat id itself is gone."""
    digest = hashlib.sha256(f"{inbound.channel}\0{inbound.external_id}".encode()).hexdigest()
    return f"erased:{digest}"


class TurnService:
    """Runs turns for every channel; channels call `handle` and render what comes back."""

    def __init__(
        self,
        db: Database,
        dialog: Dialog,
        clock: Clock,
        *,
        defaults: Defaults | None = None,
        push_channels: Collection[str] = (),
        after_commit: Callable[[list[int]], Awaitable[None]] | None = None,
        reply_sender: ReplySender | None = None,
    ) -> None:
        self.db = db
        self.dialog = dialog
        self.clock = clock
        self.defaults = defaults or Defaults()
        # Channels whose replies are pushed by a platform call (Telegram, Slack)
        # get outbox rows; the web, the API and the console answer in the response.
        self.push_channels = frozenset(push_channels)
        self.after_commit = after_commit
        # With a sender in this process, push replies are written claimed and handed
        # to it at commit; without one (a CLI, a test) they wait, pending, for a worker.
        self.reply_sender = reply_sender
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._waiting: dict[tuple[str, str], int] = {}

    @asynccontextmanager
    async def _serialised(self, key: tuple[str, str]) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[key] -= 1
            if self._waiting[key] == 0:
                del self._waiting[key]
                del self._locks[key]

    async def handle(self, inbound: Inbound) -> TurnResult:
        """Run one turn and return its replies (or the stored ones for a redelivery)."""
        # Timed and counted by where it came from (api, webchat, telegram, ...).
        with metrics.turn(inbound.via or inbound.channel):
            return await self._handle(inbound)

    async def _handle(self, inbound: Inbound) -> TurnResult:
        async with self._serialised((inbound.channel, inbound.external_id)):
            for attempt in range(1, MAX_ATTEMPTS + 1):
                try:
                    result, outbox, claim = await self._attempt(inbound)
                except (IntegrityError, ConversationConflict) as exc:
                    retry_reason = type(exc).__name__
                except DBAPIError as exc:
                    if not _is_transient(exc):
                        raise
                    retry_reason = type(exc.orig).__name__ if exc.orig else "DBAPIError"
                else:
                    if outbox and claim is not None and self.reply_sender is not None:
                        identity, token = claim
                        self.reply_sender.send_claimed(outbox, identity, token)
                    elif outbox and self.after_commit is not None:
                        await self.after_commit([row.id for row in outbox if row.id is not None])
                    return result
                log.info("turn retried", extra={"attempt": attempt, "reason": retry_reason})
                # Jitter so two replicas that collided do not collide again in step.
                await asyncio.sleep(random.uniform(0, 0.01 * attempt))
            raise ConversationConflict(f"gave up after {MAX_ATTEMPTS} attempts")

    async def _attempt(
        self, inbound: Inbound
    ) -> tuple[TurnResult, list[OutboxMessage], tuple[ChannelIdentity, datetime] | None]:
        """One try at the turn: its result, its push replies, and, when they are written
        claimed for the reply sender, for whom and until when."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            # One query for who is talking and where their conversation is: every
            # statement is a round trip to the database (or SQLite's thread).
            # PostgreSQL: replicas queue on the row lock, one turn per person at a time.
            connection = await session.connection()
            # SQLite: this turn's fixed statements go to sqlite3 directly (prepared.py).
            driver = await sqlite_driver(connection)
            found: Sequence[Any] | None
            if driver is not None:
                who = await _WHO_ROW.first(
                    connection,
                    driver,
                    channel=inbound.channel,
                    external_id=inbound.external_id,
                )
                found = _WHO_PARTS.split(session, who) if who is not None else None
            else:
                found = (
                    await session.exec(
                        _WHO_LOCKED if self.db.is_postgres else _WHO,
                        params={"channel": inbound.channel, "external_id": inbound.external_id},
                    )
                ).first()
            identity: ChannelIdentity | None = found[0] if found else None
            person: Person | None = found[1] if found else None
            conversation: Conversation | None = found[2] if found else None

            # The inbox check comes after the row lock, so a redelivery racing
            # the first delivery sees its committed replies.
            stored = await _STORED.first(
                connection,
                driver,
                channel=inbound.channel,
                external_id=inbound.external_id,
                erased_id=erased_identity(inbound),
                message_id=inbound.message_id,
            )
            if stored is not None:
                return TurnResult.from_json(stored[0], duplicate=True), [], None

            first_contact = False
            if identity is None or person is None:
                person, identity = await self._new_person(session, connection, driver, inbound)
                first_contact = True
            if conversation is None:
                assert person.id is not None
                conversation = Conversation(person_id=person.id, updated_at=now)
                await _NEW_ROWS.add(session, connection, driver, conversation)
                first_contact = True

            state = DialogState(
                flow=conversation.flow,
                step=conversation.step,
                slots=copy.deepcopy(conversation.slots),
                stack=copy.deepcopy(conversation.stack),
                meta=copy.deepcopy(conversation.meta),
            )
            out = await self.dialog.turn(
                state,
                text=inbound.text or "",
                button=inbound.button,
                person=person,
                session=session,
                now=now,
                last_active=None if first_contact else conversation.updated_at,
                first_contact=first_contact,
                channel=inbound.channel,
            )
            result = TurnResult(replies=out.replies, expect=out.expect)
            if out.erase:
                # /forget: the person and everything about them go now; the inbox keeps
                # only the message id under a hash of the address (no person, no text,
                # not the chat id itself) so a redelivery is not rerun.
                await privacy.erase_person(session, person)
                session.expunge_all()
                result.expect = Expect("none", None)
                session.add(
                    InboxMessage(
                        channel=inbound.channel,
                        external_id=erased_identity(inbound),
                        message_id=inbound.message_id,
                        person_id=None,
                        replies=result.to_json(),
                        received_at=now,
                    )
                )
                await session.flush()
                return result, [], None

            # The writes below are plain statements on the session's connection (on
            # SQLite, on sqlite3 itself): the ORM has nothing to track in them.
            written = await _WRITE_CONVERSATION.rowcount(
                connection,
                driver,
                conversation_id=conversation.id,
                read_version=conversation.version,
                new_flow=state.flow,
                new_step=state.step,
                new_slots=state.slots,
                new_stack=state.stack,
                new_meta=state.meta,
                new_version=conversation.version + 1,
                now=now,
            )
            if written != 1:
                raise ConversationConflict(f"conversation {conversation.id}")

            if now - identity.last_seen_at > LAST_SEEN_GRANULARITY:
                identity.last_seen_at = now
            if session.is_modified(person):
                person.updated_at = now
            # SQLite: written now through the driver, not by the flush at commit.
            await _CHANGED_PEOPLE.write(connection, driver, person)
            await _CHANGED_IDENTITIES.write(connection, driver, identity)
            assert person.id is not None
            assert identity.id is not None
            via = inbound.via or inbound.channel
            logged: list[dict[str, Any]] = [
                {"direction": "in", "text": out.heard, "buttons": []},
                *(
                    {
                        "direction": "out",
                        "text": reply.text,
                        "buttons": [b.to_json() for b in reply.buttons],
                    }
                    for reply in result.replies
                ),
            ]
            # Plain INSERTs (one executemany for the log): no RETURNING, no ORM
            # bookkeeping.
            await _LOG_LINES.many(
                connection,
                driver,
                [
                    {"person_id": person.id, "channel": via, "created_at": now, **row}
                    for row in logged
                ],
            )
            await _INBOX_ROW.many(
                connection,
                driver,
                [
                    {
                        "channel": inbound.channel,
                        "external_id": inbound.external_id,
                        "message_id": inbound.message_id,
                        "person_id": person.id,
                        "replies": result.to_json(),
                        "received_at": now,
                    }
                ],
            )
            outbox: list[OutboxMessage] = []
            claim: tuple[ChannelIdentity, datetime] | None = None
            if inbound.channel in self.push_channels:
                # Claimed for this process's sender, unless the identity was refused for
                # good (the dispatcher then fails the rows, as it would any).
                if self.reply_sender is not None and not identity.unreachable:
                    claim = (identity, now + self.reply_sender.lease)
                for index, reply in enumerate(result.replies):
                    row = OutboxMessage(
                        identity_id=identity.id,
                        person_id=person.id,
                        payload={"reply": reply.to_json(), "expect": result.expect.to_json()},
                        dedupe_key=f"reply:{inbound.channel}:{inbound.external_id}:"
                        f"{inbound.message_id}:{index}",
                        next_attempt_at=now,
                        created_at=now,
                    )
                    if claim is not None:
                        row.status, row.lease_until, row.attempts = "sending", claim[1], 1
                    outbox.append(row)
                if outbox:
                    # Their ids (the sender's handle) in order, from one INSERT for them
                    # all (on SQLite, one each on the driver: sqlite3's executemany
                    # returns no rows); the rows stay out of the session, which has
                    # nothing to track in them.
                    ids = [
                        found[0]
                        for found in await _OUTBOX_ROWS.returning(
                            connection, driver, [_outbox_values(row) for row in outbox]
                        )
                    ]
                    for row, row_id in zip(outbox, ids, strict=True):
                        row.id = row_id
            return result, outbox, claim

    def _expect_of(self, conversation: Conversation | None) -> dict[str, Any]:
        if conversation is None:
            return {"type": "none", "slot": None}
        state = DialogState(
            conversation.flow,
            conversation.step,
            dict(conversation.slots),
            list(conversation.stack),
            dict(conversation.meta),
        )
        return self.dialog.expected(state).to_json()

    async def export(self, channel: str, external_id: str) -> dict[str, Any] | None:
        """Everything stored about the person behind an identity, or None if unknown."""
        async with self.db.reading() as session:
            person = await privacy.find_person(session, channel, external_id)
            if person is None:
                return None
            return await privacy.export_person(session, person, self._expect_of)

    async def erase(self, channel: str, external_id: str) -> bool:
        """Erase the person behind an identity; False if there was none."""
        async with self._serialised((channel, external_id)), self.db.transaction() as session:
            person = await privacy.find_person(session, channel, external_id)
            if person is None:
                return False
            await privacy.erase_person(session, person)
            return True

    async def history(self, channel: str, external_id: str, limit: int = 50) -> dict[str, Any]:
        """The recent chat for a chat window, and what the conversation expects now."""
        async with self.db.reading() as session:
            person = await privacy.find_person(session, channel, external_id)
            if person is None:
                return {"messages": [], "expect": {"type": "none", "slot": None}}
            rows = await privacy.recent_messages(session, person, limit)
            conversation = (
                await session.exec(select(Conversation).where(Conversation.person_id == person.id))
            ).first()
            return {
                "messages": [
                    {"direction": m.direction, "text": m.text, "buttons": m.buttons} for m in rows
                ],
                "expect": self._expect_of(conversation),
            }

    async def _new_person(
        self,
        session: AsyncSession,
        connection: AsyncConnection,
        driver: sqlite3.Connection | None,
        inbound: Inbound,
    ) -> tuple[Person, ChannelIdentity]:
        now = self.clock.now()
        person = Person(
            role="learner",
            name=(inbound.display_name or None),
            locale=self.defaults.locale,
            timezone=self.defaults.timezone,
            created_at=now,
            updated_at=now,
        )
        await _NEW_ROWS.add(session, connection, driver, person)
        assert person.id is not None
        identity = ChannelIdentity(
            channel=inbound.channel,
            external_id=inbound.external_id,
            person_id=person.id,
            created_at=now,
            last_seen_at=now,
        )
        # A concurrent first message from the same identity fails here, and retries.
        await _NEW_ROWS.add(session, connection, driver, identity)
        return person, identity


def _is_transient(exc: DBAPIError) -> bool:
    """Deadlocks, serialisation failures and SQLite's busy lock are worth a retry."""
    text = f"{type(exc.orig).__name__} {exc.orig}".lower()
    return any(
        marker in text
        for marker in ("deadlock", "serializ", "database is locked", "could not serialize")
    )
