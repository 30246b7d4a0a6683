"""The scheduler: every tick, each job writes what is due into the outbox.

Jobs (bot/coach/jobs.py) are idempotent: every row they write has a
deterministic dedupe key, so every replica may run the scheduler on every tick
and each message is still written once. A job that raises is logged and tried
again next tick; it never stops the others or the loop. After a tick that wrote
rows the dispatcher is kicked, so a due message goes out within the tick.

Time is injected: a job sees `now` from the clock, so tests run a simulated
term by moving a FakeClock and calling `tick()`; only the pause between ticks
is real time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bot import metrics
from bot.clock import Clock
from bot.coach.jobs import Job, JobContext
from bot.config import Settings
from bot.delivery.dispatcher import Dispatcher
from bot.engine.locales import Catalogs
from bot.store.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NamedJob:
    """A job and the name it is logged (and later measured) under."""

    name: str
    run: Job


def standard_jobs() -> list[NamedJob]:
    """The jobs `coach serve` and the worker run. Each slice of the coaching domain
    that writes proactive messages adds its job here."""
    from bot.coach import digest, nudges, reminders, safety_alerts
    from bot.delivery.housekeeping import retention_job

    return [
        NamedJob("safety_alert_resends", safety_alerts.resend_unacknowledged_alerts),
        NamedJob("checkin_reminders", reminders.CheckinReminders()),
        NamedJob("family_nudges", nudges.weekly_nudges),
        NamedJob("family_milestones", nudges.milestone_nudges),
        NamedJob("teacher_digests", digest.send_weekly_digests),
        NamedJob("retention", retention_job()),
    ]


class Scheduler:
    """Runs jobs every `tick_seconds`; exposes its lag for metrics."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        catalogs: Catalogs,
        settings: Settings,
        jobs: Sequence[NamedJob],
        *,
        dispatcher: Dispatcher | None = None,
        tick_seconds: float | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.catalogs = catalogs
        self.settings = settings
        self.jobs = list(jobs)
        self.dispatcher = dispatcher
        self.tick_seconds = tick_seconds or settings.scheduler_tick_seconds
        # Seconds the last tick started after it was meant to (a busy event loop or a
        # slow previous tick); 0 when on time. Read by metrics.
        self.lag_seconds = 0.0
        # Seconds the last tick took, and rows each job wrote in it.
        self.last_duration_seconds = 0.0
        self.last_written: dict[str, int] = {}
        self.failures: dict[str, int] = {}

    async def tick(self) -> dict[str, int]:
        """Run every job once as of the clock's now; returns rows written per job."""
        context = JobContext(
            db=self.db, now=self.clock.now(), catalogs=self.catalogs, settings=self.settings
        )
        written: dict[str, int] = {}
        for job in self.jobs:
            try:
                written[job.name] = await job.run(context)
            except Exception:
                self.failures[job.name] = self.failures.get(job.name, 0) + 1
                log.exception("job failed; it runs again next tick", extra={"job": job.name})
                written[job.name] = 0
        self.last_written = written
        if self.dispatcher is not None and any(written.values()):
            self.dispatcher.kick()
        return written

    async def run(self) -> None:
        """Tick until cancelled. Ticks keep to a fixed rhythm (monotonic time), so one
        slow tick does not push every later one back."""
        due = time.monotonic()  # when the next tick should start
        while True:
            started = time.monotonic()
            self.lag_seconds = max(0.0, started - due)
            metrics.set_scheduler_lag(self.lag_seconds)
            await self.tick()
            self.last_duration_seconds = time.monotonic() - started
            due += self.tick_seconds
            # More than a whole tick behind: skip the missed ticks (each would see the
            # same database) and keep to the rhythm from here.
            if time.monotonic() - due > self.tick_seconds:
                due = time.monotonic()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
