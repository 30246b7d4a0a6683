"""The outbox dispatcher: sends what is due once, backs off, honours retry-after,
stops at a permanent refusal, keeps one person's messages in order, respects
/pause, /stop and quiet hours, and takes over a dead worker's claims."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.coach.delivery_rules import QuietHours
from bot.delivery.dispatcher import Backoff, Dispatcher
from bot.delivery.pull import pull_senders
from bot.delivery.senders import SendOutcome
from bot.delivery.testing import RecordingSender
from bot.engine.messages import Button, Reply
from bot.services import Services
from bot.store.models import ChannelIdentity, OutboxMessage, Person
from bot.store.outbox import enqueue
from bot.testing.people import seed_learner

_keys = itertools.count(1)


def make_dispatcher(services: Services, clock: FakeClock, sender: Any, **kw: Any) -> Dispatcher:
    senders = {**pull_senders(services.db, clock), "telegram": sender}
    return Dispatcher(
        services.db,
        clock,
        senders,
        quiet_hours=QuietHours.parse("20:00-08:00"),
        rng=random.Random(5),
        **kw,
    )


async def telegram_learner(services: Services, clock: FakeClock, user: str, **fields: Any) -> int:
    person = await seed_learner(services.db, clock, user, channel="telegram", **fields)
    assert person.id is not None
    return person.id


async def put(
    services: Services,
    person_id: int,
    *,
    text: str = "Time to check in",
    kind: str = "reminder",
    due: datetime | None = None,
    identity: ChannelIdentity | None = None,
) -> int:
    now = services.clock.now()
    key = f"test:{next(_keys)}"
    async with services.db.transaction() as session:
        assert await enqueue(
            session,
            person_id=person_id,
            kind=kind,
            payload={"reply": Reply(text, (Button("Check in", "checkin"),)).to_json()},
            dedupe_key=key,
            due_at=due or now,
            now=now,
            identity=identity,
        )
        row = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.dedupe_key == key))
        ).one()
        assert row.id is not None
        return row.id


async def row(services: Services, row_id: int) -> OutboxMessage:
    async with services.db.reading() as session:
        found = await session.get(OutboxMessage, row_id)
        assert found is not None
        return found


async def test_due_rows_are_sent_once_and_marked(any_services: Services, clock: FakeClock) -> None:
    sender = RecordingSender(clock)
    dispatcher = make_dispatcher(any_services, clock, sender)
    maria = await telegram_learner(any_services, clock, "tg-maria")
    now_a = await put(any_services, maria, text="first")
    now_b = await put(any_services, maria, text="second")
    later = await put(any_services, maria, text="later", due=clock.now() + timedelta(hours=1))

    await dispatcher.drain()
    await dispatcher.drain()
    assert [m.text for m in sender.sent] == ["first", "second"]
    for row_id in (now_a, now_b):
        sent = await row(any_services, row_id)
        assert (sent.status, sent.sent_at, sent.attempts, sent.lease_until) == (
            "sent",
            clock.now(),
            1,
            None,
        )
    assert (await row(any_services, later)).status == "pending"

    clock.advance(hours=1)
    await dispatcher.drain()
    assert [m.text for m in sender.sent] == ["first", "second", "later"]
    assert sender.sent[-1].buttons == ("checkin",)


async def test_transient_failures_back_off_exponentially_then_fail(
    any_services: Services, clock: FakeClock
) -> None:
    sender = RecordingSender(clock)
    sender.script("tg-maria", *[SendOutcome.transient("502 from the platform")] * 8)
    dispatcher = make_dispatcher(any_services, clock, sender, max_attempts=8)
    maria = await telegram_learner(any_services, clock, "tg-maria")
    row_id = await put(any_services, maria)

    delays: list[float] = []
    for attempt in range(1, 8):
        await dispatcher.drain()
        waiting = await row(any_services, row_id)
        assert (waiting.status, waiting.attempts) == ("pending", attempt)
        assert waiting.last_error == "502 from the platform"
        delays.append((waiting.next_attempt_at - clock.now()).total_seconds())
        clock.set(waiting.next_attempt_at)
    # Equal jitter: each delay lies between half and all of 30 s x 2^(n-1).
    for attempt, delay in enumerate(delays, start=1):
        ceiling = 30 * 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling, (attempt, delay)
    assert 30 * 60 < sum(delays) < 2 * 3600  # the retries span about an hour

    await dispatcher.drain()  # the 8th attempt
    failed = await row(any_services, row_id)
    assert (failed.status, failed.attempts, failed.last_error) == (
        "failed",
        8,
        "502 from the platform",
    )
    clock.advance(days=1)
    await dispatcher.drain()
    assert len(sender.tries) == 8
    assert sender.sent == []


def test_backoff_is_capped() -> None:
    backoff = Backoff()
    rng = random.Random(1)
    assert backoff.delay(30, rng) <= timedelta(hours=1)
    assert backoff.delay(1, rng) >= timedelta(seconds=15)


async def test_retry_after_is_honoured_exactly_and_costs_no_attempt(
    any_services: Services, clock: FakeClock
) -> None:
    sender = RecordingSender(clock)
    sender.script("tg-maria", SendOutcome.later(42.5, "429 Too Many Requests"))
    dispatcher = make_dispatcher(any_services, clock, sender)
    maria = await telegram_learner(any_services, clock, "tg-maria")
    row_id = await put(any_services, maria)
    start = clock.now()

    await dispatcher.drain()
    waiting = await row(any_services, row_id)
    assert waiting.status == "pending"
    assert waiting.next_attempt_at == start + timedelta(seconds=42.5)
    assert waiting.attempts == 0

    clock.advance(seconds=42)
    await dispatcher.drain()
    assert sender.sent == []
    clock.advance(seconds=0.5)
    await dispatcher.drain()
    assert [m.at for m in sender.sent] == [start + timedelta(seconds=42.5)]


async def test_a_permanent_refusal_marks_the_identity_unreachable(
    any_services: Services, clock: FakeClock
) -> None:
    sender = RecordingSender(clock)
    sender.script("tg-maria", SendOutcome.permanent("403 bot was blocked by the user"))
    dispatcher = make_dispatcher(any_services, clock, sender)
    maria = await telegram_learner(any_services, clock, "tg-maria")
    sam = await telegram_learner(any_services, clock, "tg-sam")
    first = await put(any_services, maria, text="one")
    second = await put(any_services, maria, text="two")
    to_sam = await put(any_services, sam, text="for Sam")

    await dispatcher.drain()
    assert [m.text for m in sender.sent] == ["for Sam"]
    assert [t[0] for t in sender.tries].count("tg-maria") == 1  # "two" was never tried
    refused, skipped = await row(any_services, first), await row(any_services, second)
    assert (refused.status, refused.last_error) == ("failed", "403 bot was blocked by the user")
    assert (skipped.status, skipped.last_error) == ("failed", "unreachable")
    assert (await row(any_services, to_sam)).status == "sent"
    async with any_services.db.reading() as session:
        identity = (
            await session.exec(
                select(ChannelIdentity).where(ChannelIdentity.external_id == "tg-maria")
            )
        ).one()
    assert identity.unreachable is True

    # A row written for that identity later is failed without a try.
    later = await put(any_services, maria, text="three", identity=identity)
    await dispatcher.drain()
    assert (await row(any_services, later)).last_error == "unreachable"
    assert [t[0] for t in sender.tries].count("tg-maria") == 1
    # And the scheduler has nowhere left to write for Maria.
    async with any_services.db.transaction() as session:
        assert not await enqueue(
            session,
            person_id=maria,
            kind="nudge",
            payload={"reply": Reply("x").to_json()},
            dedupe_key="nudge:nowhere",
            due_at=clock.now(),
            now=clock.now(),
        )


async def test_one_persons_messages_keep_their_order(
    any_services: Services, clock: FakeClock
) -> None:
    sender = RecordingSender(clock)
    sender.script("tg-maria", SendOutcome.later(10))
    dispatcher = make_dispatcher(any_services, clock, sender)
    maria = await telegram_learner(any_services, clock, "tg-maria")
    await put(any_services, maria, text="one", kind="reply")
    await put(any_services, maria, text="two", kind="reply")
    await put(any_services, maria, text="three", kind="reply")

    await dispatcher.drain()
    assert sender.sent == []  # two and three waited behind one
    clock.advance(seconds=10)
    await dispatcher.drain()
    assert [m.text for m in sender.sent] == ["one", "two", "three"]


async def test_pause_stop_and_quiet_hours_hold_proactive_messages_only(
    any_services: Services, clock: FakeClock
) -> None:
    # 23:00 in New York: quiet hours.
    clock.set(datetime(2026, 1, 6, 4, 0, tzinfo=UTC))
    sender = RecordingSender(clock)
    dispatcher = make_dispatcher(any_services, clock, sender)
    zone = {"timezone": "America/New_York"}
    paused = await telegram_learner(
        any_services, clock, "tg-paused", paused_until=clock.now() + timedelta(days=14), **zone
    )
    stopped = await telegram_learner(
        any_services, clock, "tg-stopped", stopped_at=clock.now(), **zone
    )
    night = await telegram_learner(any_services, clock, "tg-night", **zone)
    skipped_pause = await put(any_services, paused, kind="reminder")
    skipped_stop = await put(any_services, stopped, kind="nudge")
    reply = await put(any_services, paused, kind="reply", text="an answer")
    alert = await put(any_services, night, kind="alert", text="safeguarding alert")
    held = await put(any_services, night, kind="nudge", text="weekly nudge")

    await dispatcher.drain()
    assert sorted(m.text for m in sender.sent) == ["an answer", "safeguarding alert"]
    assert (await row(any_services, reply)).status == "sent"
    assert (await row(any_services, alert)).status == "sent"
    for row_id, why in ((skipped_pause, "paused"), (skipped_stop, "stopped")):
        skipped = await row(any_services, row_id)
        assert (skipped.status, skipped.last_error) == ("skipped", why)
    waiting = await row(any_services, held)
    # 08:00 EST the next morning, and no attempt used.
    assert (waiting.status, waiting.next_attempt_at, waiting.attempts) == (
        "pending",
        datetime(2026, 1, 6, 13, 0, tzinfo=UTC),
        0,
    )
    clock.set(datetime(2026, 1, 6, 13, 0, tzinfo=UTC))
    await dispatcher.drain()
    assert sender.sent[-1].text == "weekly nudge"


async def test_a_dead_workers_claim_is_taken_over_after_its_lease(
    any_services: Services, clock: FakeClock
) -> None:
    sender = RecordingSender(clock)
    dispatcher = make_dispatcher(any_services, clock, sender)
    maria = await telegram_learner(any_services, clock, "tg-maria")
    orphan = await put(any_services, maria, text="orphan")
    busy = await put(any_services, maria, text="busy")
    async with any_services.db.transaction() as session:
        for row_id, lease in ((orphan, -1), (busy, 30)):
            found = await session.get(OutboxMessage, row_id)
            assert found is not None
            found.status, found.attempts = "sending", 1
            found.lease_until = clock.now() + timedelta(seconds=lease)

    await dispatcher.drain()
    assert [m.text for m in sender.sent] == ["orphan"]
    assert (await row(any_services, orphan)).attempts == 2
    assert (await row(any_services, busy)).status == "sending"
    clock.advance(seconds=31)
    await dispatcher.drain()
    assert [m.text for m in sender.sent] == ["orphan", "busy"]


class _Stuck:
    """A platform that never answers."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()

    async def send(self, identity: ChannelIdentity, payload: dict[str, Any]) -> SendOutcome:
        self.entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_stopped_dispatcher_hands_its_claims_back(
    any_services: Services, clock: FakeClock
) -> None:
    stuck = _Stuck()
    dispatcher = make_dispatcher(any_services, clock, stuck)
    maria = await telegram_learner(any_services, clock, "tg-maria")
    row_id = await put(any_services, maria)
    task = asyncio.create_task(dispatcher.run(poll_seconds=60))
    await asyncio.wait_for(stuck.entered.wait(), 5)
    assert (await row(any_services, row_id)).status == "sending"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    released = await row(any_services, row_id)
    assert (released.status, released.lease_until, released.attempts) == ("pending", None, 0)


async def test_a_stop_that_comes_with_a_kick_still_stops_the_loop(
    any_services: Services, clock: FakeClock
) -> None:
    # A turn's kick and a shutdown's cancel in the same moment: on Python 3.11,
    # asyncio.wait_for returned the kick and dropped the cancel, and the stop waited for
    # the loop forever (seen as a delivery worker that never exited).
    dispatcher = make_dispatcher(any_services, clock, RecordingSender(clock))
    task = asyncio.create_task(dispatcher.run(poll_seconds=3600))
    await asyncio.wait_for(dispatcher.between_rounds.wait(), 5)
    dispatcher.kick()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert done == {task}
    assert task.cancelled()


async def test_a_kick_sends_at_once(any_services: Services, clock: FakeClock) -> None:
    sender = RecordingSender(clock)
    dispatcher = make_dispatcher(any_services, clock, sender)
    maria = await telegram_learner(any_services, clock, "tg-maria")
    task = asyncio.create_task(dispatcher.run(poll_seconds=3600))
    try:
        await asyncio.sleep(0.05)  # the loop's first round found nothing and waits
        await put(any_services, maria, text="after a turn")
        await dispatcher.dispatch_now([1])
        for _ in range(200):
            if sender.sent:
                break
            await asyncio.sleep(0.01)
        assert [m.text for m in sender.sent] == ["after a turn"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_web_learner_finds_the_message_in_the_chat(
    client: TestClient[Any, Any], any_services: Services, clock: FakeClock
) -> None:
    first = await client.post("/chat/messages", json={"text": "hi"})
    assert first.status == 200
    async with any_services.db.reading() as session:
        person = (
            await session.exec(
                select(Person)
                .join(ChannelIdentity, col(ChannelIdentity.person_id) == col(Person.id))
                .where(ChannelIdentity.channel == "web")
            )
        ).one()
    assert person.id is not None
    dispatcher = make_dispatcher(any_services, clock, RecordingSender(clock))
    clock.advance(minutes=5)
    row_id = await put(any_services, person.id, text="It's check-in time!")

    await dispatcher.drain()
    assert (await row(any_services, row_id)).status == "sent"
    history = await (await client.get("/chat/history")).json()
    last = history["messages"][-1]
    assert last["direction"] == "out"
    assert last["text"] == "It's check-in time!"
    assert last["buttons"] == [{"label": "Check in", "value": "checkin"}]
