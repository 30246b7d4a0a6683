"""Test kit for proactive messages: a sender that records, and a simulated term.

    term = SimulatedTerm(services, clock)
    sent = await term.run_until(clock.now() + timedelta(weeks=2))
    assert [m.text for m in sent if m.external_id == "tg-maria"] == [...]

`RecordingSender` stands in for a push platform (Telegram, Slack): it keeps every
message with the simulated time it went out, and answers with scripted outcomes
(`script(external_id, SendOutcome.later(30), ...)`) before it starts saying
"sent". `SimulatedTerm` moves the FakeClock in steps; at each step the real
scheduler ticks with the real jobs and the real dispatcher drains the outbox,
so a term of reminders and nudges runs in seconds.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.clock import FakeClock
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.pull import pull_senders
from bot.delivery.scheduler import NamedJob, Scheduler, standard_jobs
from bot.delivery.senders import Sender, SendOutcome
from bot.services import Services
from bot.store.models import ChannelIdentity


@dataclass(frozen=True, slots=True)
class Sent:
    """One message a platform accepted."""

    channel: str
    external_id: str
    person_id: int
    text: str
    buttons: tuple[str, ...]  # button values
    at: datetime


class RecordingSender:
    """A push platform that records what it is given (see the module docstring)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[Sent] = []
        self.tries: list[tuple[str, datetime, str]] = []  # (external id, when, outcome kind)
        self._script: dict[str, deque[SendOutcome]] = defaultdict(deque)

    def script(self, external_id: str, *outcomes: SendOutcome) -> None:
        """The next answers for this identity, in order; then "sent"."""
        self._script[external_id].extend(outcomes)

    async def send(self, identity: ChannelIdentity, payload: dict[str, Any]) -> SendOutcome:
        queued = self._script.get(identity.external_id)
        outcome = queued.popleft() if queued else SendOutcome.sent()
        self.tries.append((identity.external_id, self.clock.now(), outcome.kind))
        if outcome.kind == "sent":
            reply = payload["reply"]
            self.sent.append(
                Sent(
                    channel=identity.channel,
                    external_id=identity.external_id,
                    person_id=identity.person_id,
                    text=str(reply["text"]),
                    buttons=tuple(str(b["value"]) for b in reply.get("buttons", [])),
                    at=self.clock.now(),
                )
            )
        return outcome

    def to(self, external_id: str) -> list[Sent]:
        return [m for m in self.sent if m.external_id == external_id]


class SimulatedTerm:
    """The scheduler and the dispatcher on a FakeClock, one step at a time."""

    PUSH = ("telegram", "slack")

    def __init__(
        self,
        services: Services,
        clock: FakeClock,
        *,
        jobs: Sequence[NamedJob] | None = None,
        step: timedelta = timedelta(minutes=15),
        senders: Mapping[str, Sender] | None = None,
    ) -> None:
        self.services = services
        self.clock = clock
        self.step = step
        self.sender = RecordingSender(clock)
        mapping: dict[str, Sender] = dict(pull_senders(services.db, clock))
        mapping.update(dict.fromkeys(self.PUSH, self.sender))
        mapping.update(senders or {})
        self.dispatcher = Dispatcher.from_settings(services.db, clock, mapping, services.settings)
        self.scheduler = Scheduler(
            services.db,
            clock,
            services.dialog.catalogs,
            services.settings,
            standard_jobs() if jobs is None else jobs,
            dispatcher=self.dispatcher,
        )

    async def step_once(self) -> None:
        await self.scheduler.tick()
        await self.dispatcher.drain()

    async def run_until(self, end: datetime) -> list[Sent]:
        """Tick and dispatch at every step from now until `end`; returns what went out."""
        before = len(self.sender.sent)
        while self.clock.now() < end:
            await self.step_once()
            self.clock.advance(seconds=self.step.total_seconds())
        await self.step_once()
        return self.sender.sent[before:]
