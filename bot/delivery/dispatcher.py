"""The outbox dispatcher: claims due rows, sends them through each channel's Sender,
and records how it went.

Claiming. A row is due when it is pending and its next_attempt_at has come, or
when another worker claimed it (status sending) and its lease ran out: that
worker died or hung mid-send, and the row must not be lost. On PostgreSQL a
claim is one UPDATE over a `FOR UPDATE SKIP LOCKED` selection, so workers on
many replicas take disjoint rows without waiting for each other; on SQLite the
claim runs in a write transaction (BEGIN IMMEDIATE plus the in-process writer
lock, bot/store/db.py), which makes it atomic. A claim sets status sending, a
lease (lease_until, which also serves as this claim's token), and counts an
attempt. No transaction is open while a sender talks to a platform.

Before sending, rules that may have changed since the row was written are
checked again: an unreachable identity fails the row ("unreachable"); a
proactive message (reminder, nudge, milestone, digest) for someone stopped or
paused is skipped (status "skipped"), and one that would land in their quiet
hours waits for the window to end. Replies and safeguarding alerts go at once,
whatever the hour.

Outcomes. sent -> status sent, sent_at. A platform's retry-after -> due again
exactly that many seconds later, and the attempt is given back (being rate
limited is not the message's fault). A transient failure -> due again after an
exponential backoff with jitter (`Backoff`), until the last attempt fails the
row with the reason. A permanent refusal (the person blocked the bot) fails
the row, marks the identity unreachable and fails its other waiting rows.
Messages to one identity go in order: when one cannot go now, the ones after
it in the same claim wait with it.

A turn's replies to a push channel skip the claim: the turn writes them already
claimed by this worker (status sending, a lease) in its own transaction, and
hands them to `send_claimed` once it commits, so they go out at once with no
claim transaction of their own, in order behind any earlier replies still going
to the same person. Their outcomes are recorded as above; sent ones are marked
together, one transaction per turn.

A worker that is stopped releases its claims at once; one that is killed leaves
them to expire, and another worker sends them after the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import metrics
from bot.clock import Clock
from bot.coach.delivery_rules import (
    QuietHours,
    is_paused,
    next_allowed,
    quiet_hours_of,
    zone_of,
)
from bot.config import Settings
from bot.delivery.senders import Sender, SendOutcome
from bot.store.db import Database
from bot.store.models import ChannelIdentity, OutboxMessage, Person

log = logging.getLogger(__name__)

# Held by /pause, /stop and quiet hours; replies and alerts never are.
PROACTIVE_KINDS = frozenset({"reminder", "nudge", "milestone", "digest"})
# A row the rules held back for good (the person paused or stopped): not a failure
# to retry, not sent. `coach jobs status` counts it on its own line.
SKIPPED = "skipped"
# last_error is a String(500) column.
MAX_ERROR_LENGTH = 500
# How many identities one worker sends to at the same time. Platforms limit per
# bot (Telegram: about 30 messages a second overall), and the channel senders pace
# themselves; eight in flight keeps a slow chat from holding up the rest.
SEND_CONCURRENCY = 8
# A send that outlives most of its lease is abandoned as transient, so the row's
# lease never runs out while this worker still believes it owns the row.
SEND_TIMEOUT_SHARE = 0.8


_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
# Rows of one claim this worker sent, marked in one statement built once: building an
# ORM update per row cost more than the send itself (bench/telegram_vs_ptb.py, py-spy).
_MARK_SENT = (
    update(_OUTBOX)
    .where(
        _OUTBOX.c.id.in_(bindparam("ids", expanding=True)),
        _OUTBOX.c.status == "sending",
        _OUTBOX.c.lease_until == bindparam("token"),
    )
    .values(status="sent", sent_at=bindparam("now"), lease_until=None, last_error=None)
)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before attempt n+1 after n failed ones: exponential, capped, with jitter.

    30 s, 1, 2, 4, 8, 16, 32 minutes (each between half and all of that, "equal
    jitter" from the AWS Architecture Blog's "Exponential Backoff And Jitter"), so
    the default eight attempts span about an hour: long enough to ride out a
    platform's bad spell or a network blip, short enough that an operator hears of
    a real problem the same day (`coach jobs status`). The jitter keeps many rows
    that failed together, in an outage, from all retrying in the same second.
    """

    base_seconds: float = 30.0
    factor: float = 2.0
    cap_seconds: float = 3600.0

    def delay(self, failures: int, rng: random.Random) -> timedelta:
        ceiling = min(self.cap_seconds, self.base_seconds * self.factor ** max(failures - 1, 0))
        return timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))


@dataclass(slots=True)
class _Claimed:
    row: OutboxMessage
    identity: ChannelIdentity
    token: datetime  # the lease_until this claim set


@dataclass(slots=True)
class DispatchReport:
    """What one round did, by outcome (sent, retry, failed, skipped, held...)."""

    claimed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


class Dispatcher:
    """Sends what is due in the outbox through a channel -> Sender mapping."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        senders: Mapping[str, Sender],
        *,
        quiet_hours: QuietHours,
        lease: timedelta = timedelta(seconds=60),
        max_attempts: int = 8,
        batch_size: int = 20,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.senders = dict(senders)
        self.quiet_hours = quiet_hours
        self.lease = lease
        self.max_attempts = max_attempts
        self.batch_size = batch_size
        self.backoff = backoff or Backoff()
        self.rng = rng or random.Random()
        self.totals: Counter[str] = Counter()  # for metrics: outcomes since start
        self._inflight: dict[int, datetime] = {}  # row id -> claim token
        self._wake = asyncio.Event()
        # Turns' replies being sent (send_claimed), and who is being sent to, so that
        # one person's replies go in the order their turns committed.
        self._direct: set[asyncio.Task[None]] = set()
        self._sending_to: dict[int, asyncio.Lock] = {}
        self._queued_for: Counter[int] = Counter()  # sends holding or awaiting that lock
        # Set while the loop waits between rounds: a one-shot worker stops it then,
        # rather than cancel it in the middle of a claim's transaction.
        self.between_rounds = asyncio.Event()

    @classmethod
    def from_settings(
        cls, db: Database, clock: Clock, senders: Mapping[str, Sender], settings: Settings
    ) -> Dispatcher:
        return cls(
            db,
            clock,
            senders,
            quiet_hours=QuietHours.parse(settings.quiet_hours),
            lease=timedelta(seconds=settings.dispatch_lease_seconds),
            max_attempts=settings.dispatch_max_attempts,
            batch_size=settings.dispatch_batch_size,
        )

    # -- kicking and the loop -------------------------------------------------------------

    def kick(self) -> None:
        """Look at the outbox now rather than at the next poll."""
        self._wake.set()

    async def dispatch_now(self, outbox_ids: Sequence[int] = ()) -> None:
        """The turn service's after_commit hook: its replies are committed, send them."""
        self.kick()

    def send_claimed(
        self, rows: Sequence[OutboxMessage], identity: ChannelIdentity, token: datetime
    ) -> None:
        """A turn's replies, committed as claimed by this worker until `token` (their
        lease_until): send them now, in the background, after any earlier replies still
        going to the same identity. A crash before they are marked leaves them to the
        lease, like any claim."""
        items = [_Claimed(row, identity, token) for row in rows if row.id is not None]
        if not items:
            return
        for item in items:
            assert item.row.id is not None
            self._inflight[item.row.id] = token
        task = asyncio.create_task(self._send_direct(items), name="send-replies")
        self._direct.add(task)
        task.add_done_callback(self._direct.discard)

    async def _send_direct(self, items: list[_Claimed]) -> None:
        key = items[0].identity.id or 0
        lock = self._sending_to.setdefault(key, asyncio.Lock())
        self._queued_for[key] += 1
        report = DispatchReport(claimed=len(items))
        try:
            async with lock:
                await self._send_in_order(items, report)
        except Exception:
            # The rows keep their claim and go again after the lease.
            log.exception("sending a turn's replies failed; they go again after the lease")
        finally:
            # Dropped only when nobody else holds or awaits it: a released lock whose
            # next waiter has not run yet reads as unlocked, and a fresh lock then
            # would let a later turn's replies overtake that waiter's.
            self._queued_for[key] -= 1
            if self._queued_for[key] == 0:
                del self._queued_for[key]
                del self._sending_to[key]
            self.totals.update(report.outcomes)

    async def run(self, poll_seconds: float) -> None:
        """Dispatch until cancelled; a failing round is logged and tried again next time."""
        try:
            while True:
                report = DispatchReport()
                try:
                    report = await self.dispatch_due()
                except Exception:
                    log.exception("dispatch round failed; trying again at the next poll")
                if report.claimed >= self.batch_size:
                    continue  # a full claim: more may be waiting
                self.between_rounds.set()
                try:
                    # asyncio.timeout, not wait_for: Python 3.11's wait_for returns
                    # instead of raising when a kick and a cancel come together, and a
                    # stop that loses its cancel waits for this loop forever.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(poll_seconds):
                            await self._wake.wait()
                finally:
                    self.between_rounds.clear()
                self._wake.clear()
        finally:
            await self.release()

    async def drain(self, max_rounds: int = 1000) -> DispatchReport:
        """Dispatch until a round claims nothing (tests, `coach jobs`, a one-shot worker)."""
        total = DispatchReport()
        for _ in range(max_rounds):
            report = await self.dispatch_due()
            total.claimed += report.claimed
            total.outcomes.update(report.outcomes)
            if report.claimed == 0:
                break
        return total

    async def release(self) -> None:
        """Hand back this worker's unfinished claims (a graceful stop), attempt refunded."""
        direct = list(self._direct)
        for task in direct:
            task.cancel()
        await asyncio.gather(*direct, return_exceptions=True)
        if not self._inflight:
            return
        claims = dict(self._inflight)
        self._inflight.clear()
        try:
            async with self.db.transaction() as session:
                for row_id, token in claims.items():
                    await session.exec(
                        update(OutboxMessage)
                        .where(col(OutboxMessage.id) == row_id)
                        .where(col(OutboxMessage.status) == "sending")
                        .where(col(OutboxMessage.lease_until) == token)
                        .values(
                            status="pending",
                            lease_until=None,
                            attempts=col(OutboxMessage.attempts) - 1,
                        )
                        .execution_options(synchronize_session=False)
                    )
        except Exception:
            # The leases run out on their own; another worker sends the rows then.
            log.exception("could not release claims; they expire with their lease")
        else:
            log.info("released unfinished claims", extra={"rows": len(claims)})

    # -- one round ------------------------------------------------------------------------

    async def dispatch_due(self) -> DispatchReport:
        """Claim one batch of due rows, send them, record each outcome."""
        report = DispatchReport()
        claimed = await self._claim(report)
        report.claimed = len(claimed) + sum(report.outcomes.values())
        by_identity: dict[int, list[_Claimed]] = defaultdict(list)
        for item in claimed:
            by_identity[item.identity.id or 0].append(item)
        gate = asyncio.Semaphore(SEND_CONCURRENCY)

        async def one_identity(items: list[_Claimed]) -> None:
            async with gate:
                await self._send_in_order(items, report, mark_together=False)

        await asyncio.gather(*(one_identity(items) for items in by_identity.values()))
        self.totals.update(report.outcomes)
        return report

    async def _send_in_order(
        self, items: list[_Claimed], report: DispatchReport, *, mark_together: bool = True
    ) -> None:
        """Send claimed rows to one identity, in order. With `mark_together` (a turn's
        replies) sent rows are marked in one statement once the run ends, another
        outcome comes, or half the lease has gone, so a mark never arrives after the
        lease ran out; a dispatch round records each row as it goes."""
        sent: list[_Claimed] = []
        for index, item in enumerate(items):
            if sent and self.clock.now() >= item.token - self.lease / 2:
                await self._mark_sent(sent, report)
                sent = []
            outcome = await self._send(item)
            if outcome.kind == "sent" and mark_together:
                sent.append(item)
                continue
            if sent:
                await self._mark_sent(sent, report)
                sent = []
            verdict, again = await self._record(item, outcome, report)
            rest = items[index + 1 :]
            if verdict == "wait" and again is not None:
                # Later messages to this person wait with the one that could not go.
                await self._hold(rest, again, report)
                return
            if verdict == "stop":
                # _unreachable failed them with the identity; nothing left to send.
                for later in rest:
                    if later.row.id is not None:
                        self._inflight.pop(later.row.id, None)
                report.outcomes["failed"] += len(rest)
                return
        if sent:
            await self._mark_sent(sent, report)

    async def _claim(self, report: DispatchReport) -> list[_Claimed]:
        now = self.clock.now()
        token = now + self.lease
        table = OutboxMessage
        due = or_(
            and_(col(table.status) == "pending", col(table.next_attempt_at) <= now),
            and_(col(table.status) == "sending", col(table.lease_until) < now),
        )
        pick = (
            select(table.id)
            .where(due)
            .order_by(col(table.next_attempt_at), col(table.id))
            .limit(self.batch_size)
        )
        claim: Any = update(table).values(
            status="sending", lease_until=token, attempts=col(table.attempts) + 1
        )
        async with self.db.transaction() as session:
            if self.db.is_postgres:
                # A CTE holding the row locks is evaluated once; SKIP LOCKED passes over
                # rows another worker is claiming at this very moment.
                chosen = pick.with_for_update(skip_locked=True).cte("chosen")
                claim = claim.where(col(table.id) == chosen.c.id)
            else:
                claim = claim.where(col(table.id).in_(pick.scalar_subquery()))
            result = await session.exec(
                claim.returning(col(table.id)).execution_options(synchronize_session=False)
            )
            ids = [row[0] for row in result.all()]
            if not ids:
                return []
            rows = (
                await session.exec(
                    select(OutboxMessage, ChannelIdentity, Person)
                    .join(
                        ChannelIdentity,
                        col(ChannelIdentity.id) == col(OutboxMessage.identity_id),
                    )
                    .join(Person, col(Person.id) == col(ChannelIdentity.person_id))
                    .where(col(OutboxMessage.id).in_(ids))
                    .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
                )
            ).all()
            ready: list[_Claimed] = []
            for row, identity, person in rows:
                verdict = self._recheck(row, identity, person, now)
                if verdict is None:
                    ready.append(_Claimed(row, identity, token))
                    continue
                outcome, values = verdict
                report.outcomes[outcome] += 1
                await session.exec(
                    update(OutboxMessage)
                    .where(col(OutboxMessage.id) == row.id)
                    .values(lease_until=None, **values)
                    .execution_options(synchronize_session=False)
                )
        for item in ready:
            assert item.row.id is not None
            self._inflight[item.row.id] = token
        return ready

    def _recheck(
        self, row: OutboxMessage, identity: ChannelIdentity, person: Person, now: datetime
    ) -> tuple[str, dict[str, Any]] | None:
        """None to send now; else the outcome name and the row's new values."""
        if identity.unreachable:
            return "failed", {"status": "failed", "last_error": "unreachable"}
        reply = row.payload.get("reply") if isinstance(row.payload, dict) else None
        if not isinstance(reply, dict) or not isinstance(reply.get("text"), str):
            return "failed", {"status": "failed", "last_error": "payload has no reply text"}
        if row.kind in PROACTIVE_KINDS:
            if person.stopped_at is not None:
                return "skipped", {"status": SKIPPED, "last_error": "stopped"}
            if is_paused(person, now):
                return "skipped", {"status": SKIPPED, "last_error": "paused"}
            opens = next_allowed(
                now, zone_of(person.timezone), quiet_hours_of(person, self.quiet_hours)
            )
            if opens > now:
                # A retry or a late claim that fell into the night: wait for the morning,
                # without counting this as an attempt.
                return "held", {
                    "status": "pending",
                    "next_attempt_at": opens,
                    "attempts": row.attempts - 1,
                }
        return None

    async def _send(self, item: _Claimed) -> SendOutcome:
        """Send one claimed row through its channel's sender; never raises but for
        cancellation."""
        row, identity = item.row, item.identity
        sender = self.senders.get(identity.channel)
        if sender is None:
            outcome = SendOutcome.transient(f"no sender for channel {identity.channel}")
        else:
            timeout = self.lease.total_seconds() * SEND_TIMEOUT_SHARE
            try:
                outcome = await asyncio.wait_for(sender.send(identity, row.payload), timeout)
            except TimeoutError:
                outcome = SendOutcome.transient(f"no answer within {timeout:.0f} s")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A sender should not raise, but a bug in one must not stop the others.
                log.exception("sender raised", extra={"outbox_id": row.id})
                outcome = SendOutcome.transient(f"sender error: {type(exc).__name__}")
        metrics.record_send(identity.channel, outcome.kind, outcome.reason)
        return outcome

    async def _mark_sent(self, items: list[_Claimed], report: DispatchReport) -> None:
        """Rows this worker sent, marked sent in one transaction."""
        now = self.clock.now()
        by_claim: dict[datetime, list[int]] = defaultdict(list)
        for item in items:
            if item.row.id is not None:
                by_claim[item.token].append(item.row.id)
        async with self.db.transaction() as session:
            connection = await session.connection()
            for token, ids in by_claim.items():
                written = await connection.execute(
                    _MARK_SENT, {"ids": ids, "token": token, "now": now}
                )
                if written.rowcount != len(ids):
                    # Our lease ran out and another worker took some: it decides for those.
                    log.warning(
                        "claim lost before its outcome was recorded",
                        extra={"outbox_ids": ids, "marked": written.rowcount},
                    )
        for item in items:
            if item.row.id is not None:
                self._inflight.pop(item.row.id, None)
            report.outcomes["sent"] += 1
            log.info(
                "outbox row %s",
                "sent",
                extra={
                    "outbox_id": item.row.id,
                    "kind": item.row.kind,
                    "channel": item.identity.channel,
                    "attempt": item.row.attempts,
                    "reason": None,
                },
            )

    async def _record(
        self, item: _Claimed, outcome: SendOutcome, report: DispatchReport
    ) -> tuple[str, datetime | None]:
        """Record one outcome other than sent. Returns ("go", None) when the next row to
        this identity may follow, ("wait", when) when this one is due again later (the
        next ones wait with it), ("stop", None) when the identity is unreachable."""
        row, identity = item.row, item.identity
        now = self.clock.now()
        reason = (outcome.reason or "")[:MAX_ERROR_LENGTH] or None
        again: datetime | None = None
        values: dict[str, Any]
        if outcome.kind == "sent":
            name = "sent"
            values = {"status": "sent", "sent_at": now, "last_error": None}
        elif outcome.kind == "retry_after":
            name = "retry_after"
            again = now + timedelta(seconds=max(outcome.retry_after or 0.0, 0.0))
            values = {
                "status": "pending",
                "next_attempt_at": again,
                "attempts": row.attempts - 1,
                "last_error": reason,
            }
        elif outcome.kind == "transient" and row.attempts < self.max_attempts:
            name = "retry"
            again = now + self.backoff.delay(row.attempts, self.rng)
            values = {"status": "pending", "next_attempt_at": again, "last_error": reason}
        else:
            name = "unreachable" if outcome.kind == "permanent" else "failed"
            values = {"status": "failed", "last_error": reason or outcome.kind}
        async with self.db.transaction() as session:
            written = await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id)
                .where(col(OutboxMessage.status) == "sending")
                .where(col(OutboxMessage.lease_until) == item.token)
                .values(lease_until=None, **values)
                .execution_options(synchronize_session=False)
            )
            if written.rowcount != 1:
                # Our lease ran out and another worker took the row: it decides.
                log.warning(
                    "claim lost before its outcome was recorded", extra={"outbox_id": row.id}
                )
            if outcome.kind == "permanent":
                await self._unreachable(session, identity, item.token)
        if row.id is not None:
            self._inflight.pop(row.id, None)
        report.outcomes[name] += 1
        log.info(
            "outbox row %s",
            name,
            extra={
                "outbox_id": row.id,
                "kind": row.kind,
                "channel": identity.channel,
                "attempt": row.attempts,
                "reason": reason,
            },
        )
        if outcome.kind == "permanent":
            return "stop", None
        return ("wait", again) if again is not None else ("go", None)

    async def _unreachable(
        self, session: AsyncSession, identity: ChannelIdentity, token: datetime
    ) -> None:
        """The person refused us for good on this identity: stop, and fail what waits."""
        await session.exec(
            update(ChannelIdentity)
            .where(col(ChannelIdentity.id) == identity.id)
            .values(unreachable=True)
            .execution_options(synchronize_session=False)
        )
        await session.exec(
            update(OutboxMessage)
            .where(col(OutboxMessage.identity_id) == identity.id)
            .where(
                or_(
                    col(OutboxMessage.status) == "pending",
                    # This claim's later rows to the same identity.
                    and_(
                        col(OutboxMessage.status) == "sending",
                        col(OutboxMessage.lease_until) == token,
                    ),
                )
            )
            .values(status="failed", last_error="unreachable", lease_until=None)
            .execution_options(synchronize_session=False)
        )

    async def _hold(self, items: list[_Claimed], until: datetime, report: DispatchReport) -> None:
        """Put back claimed rows that must wait behind an earlier one (attempt refunded)."""
        if not items:
            return
        async with self.db.transaction() as session:
            for item in items:
                await session.exec(
                    update(OutboxMessage)
                    .where(col(OutboxMessage.id) == item.row.id)
                    .where(col(OutboxMessage.status) == "sending")
                    .where(col(OutboxMessage.lease_until) == item.token)
                    .values(
                        status="pending",
                        lease_until=None,
                        next_attempt_at=max(until, item.row.next_attempt_at),
                        attempts=col(OutboxMessage.attempts) - 1,
                    )
                    .execution_options(synchronize_session=False)
                )
        for item in items:
            if item.row.id is not None:
                self._inflight.pop(item.row.id, None)
        report.outcomes["waiting"] += len(items)
