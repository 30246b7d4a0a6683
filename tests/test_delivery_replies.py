"""A turn's push replies: written claimed by this process's dispatcher in the turn's
transaction, sent at once after commit with no claim of their own, in order per
person, marked sent; a crash before sending leaves them to the lease, never lost
and never sent twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlmodel import select

from bot.clock import FakeClock
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.senders import SendOutcome
from bot.delivery.testing import RecordingSender
from bot.engine.messages import Inbound
from bot.services import Services
from bot.store.models import ChannelIdentity, OutboxMessage
from tests.test_delivery_dispatcher import make_dispatcher

LEASE = timedelta(seconds=60)


def telegram(text: str, message_id: str, chat: str = "42") -> Inbound:
    return Inbound(channel="telegram", external_id=chat, message_id=message_id, text=text)


async def rows(services: Services) -> list[OutboxMessage]:
    async with services.db.reading() as session:
        return list((await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def settle(dispatcher: Dispatcher) -> None:
    """Wait for the replies handed to the dispatcher to be sent and recorded."""
    for _ in range(500):
        if not dispatcher._direct:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("replies still being sent after 5 s")


def wire(services: Services, dispatcher: Dispatcher) -> None:
    services.turns.push_channels = frozenset({"telegram"})
    services.turns.reply_sender = dispatcher


async def test_replies_go_out_at_once_without_a_dispatch_round(
    any_services: Services, clock: FakeClock
) -> None:
    sender = RecordingSender(clock)
    dispatcher = make_dispatcher(any_services, clock, sender, lease=LEASE)
    wire(any_services, dispatcher)

    result = await any_services.turns.handle(telegram("hi", "u1"))
    # Committed with the turn, already claimed by this worker: no other takes them.
    written = await rows(any_services)
    assert [r.payload["reply"]["text"] for r in written] == [r.text for r in result.replies]
    assert {(r.status, r.attempts, r.lease_until) for r in written} <= {
        ("sending", 1, clock.now() + LEASE),
        ("sent", 1, None),
    }

    await settle(dispatcher)  # no dispatch_due, no drain: nothing claimed them
    assert [m.text for m in sender.sent] == [r.text for r in result.replies]
    assert {(r.status, r.sent_at, r.lease_until) for r in await rows(any_services)} == {
        ("sent", clock.now(), None)
    }
    assert dispatcher.totals["sent"] == len(result.replies)
    # A dispatch round afterwards finds nothing to send again.
    assert (await dispatcher.drain()).claimed == 0
    assert len(sender.sent) == len(result.replies)


async def test_a_crash_before_sending_leaves_them_to_the_lease_and_another_worker(
    any_services: Services, clock: FakeClock
) -> None:
    class Dies:
        """This process dies between the commit and the send."""

        lease = LEASE

        def send_claimed(self, *args: Any) -> None:
            pass

    any_services.turns.push_channels = frozenset({"telegram"})
    any_services.turns.reply_sender = Dies()
    result = await any_services.turns.handle(telegram("hi", "u1"))
    other_sender = RecordingSender(clock)
    other = make_dispatcher(any_services, clock, other_sender, lease=LEASE)

    # Within the lease the rows are the dead worker's: nobody sends them twice.
    clock.advance(seconds=59)
    assert (await other.drain()).claimed == 0
    assert other_sender.sent == []
    # Then another worker takes them over, once.
    clock.advance(seconds=2)
    await other.drain()
    await other.drain()
    assert [m.text for m in other_sender.sent] == [r.text for r in result.replies]
    assert {r.status for r in await rows(any_services)} == {"sent"}


class SlowFirst(RecordingSender):
    """The first message takes a while to go; the rest go at once."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.calls = 0

    async def send(self, identity: ChannelIdentity, payload: dict[str, Any]) -> SendOutcome:
        self.calls += 1
        if self.calls == 1:
            await asyncio.sleep(0.2)
        return await super().send(identity, payload)


async def test_one_persons_replies_arrive_in_the_order_their_turns_committed(
    any_services: Services, clock: FakeClock
) -> None:
    sender = SlowFirst(clock)
    dispatcher = make_dispatcher(any_services, clock, sender, lease=LEASE)
    wire(any_services, dispatcher)

    first = await any_services.turns.handle(telegram("hi", "u1"))
    second = await any_services.turns.handle(telegram("Sam", "u2"))
    await asyncio.sleep(0.25)  # the first turn's send is done; the second's may be queued
    third = await any_services.turns.handle(telegram("menu", "u3"))
    await settle(dispatcher)
    assert [m.text for m in sender.sent] == [
        *(r.text for r in first.replies),
        *(r.text for r in second.replies),
        *(r.text for r in third.replies),
    ]
    # Nothing is kept per person once their replies are out.
    assert dispatcher._sending_to == {}


async def test_a_refused_send_backs_off_and_the_dispatcher_retries_it(
    any_services: Services, clock: FakeClock
) -> None:
    sender = RecordingSender(clock)
    sender.script("42", SendOutcome.transient("502 from the platform"))
    dispatcher = make_dispatcher(any_services, clock, sender, lease=LEASE)
    wire(any_services, dispatcher)

    result = await any_services.turns.handle(telegram("hi", "u1"))
    await settle(dispatcher)
    waiting = await rows(any_services)
    assert waiting[0].status == "pending"
    assert waiting[0].next_attempt_at > clock.now()
    # The later replies of that turn wait behind the first, unsent.
    assert all(r.status == "pending" for r in waiting)
    assert sender.sent == []

    clock.advance(minutes=2)  # past the first backoff (30 s at most)
    await dispatcher.drain()
    assert [m.text for m in sender.sent] == [r.text for r in result.replies]
    assert {r.status for r in await rows(any_services)} == {"sent"}


async def test_a_stopping_worker_hands_back_replies_it_had_not_sent(
    any_services: Services, clock: FakeClock
) -> None:
    class Hangs(RecordingSender):
        async def send(self, identity: ChannelIdentity, payload: dict[str, Any]) -> SendOutcome:
            await asyncio.sleep(3600)
            raise AssertionError("not reached")

    dispatcher = make_dispatcher(any_services, clock, Hangs(clock), lease=LEASE)
    wire(any_services, dispatcher)
    await any_services.turns.handle(telegram("hi", "u1"))
    await asyncio.sleep(0.05)  # the send has started and hangs

    await dispatcher.release()
    # Given back at once, attempt refunded: another worker sends them now, not after
    # the lease.
    assert {(r.status, r.lease_until, r.attempts) for r in await rows(any_services)} == {
        ("pending", None, 0)
    }
    assert not dispatcher._direct
