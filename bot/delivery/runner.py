"""Runs the scheduler and the dispatcher side by side, in `coach serve` or a worker.

`delivery(services)` is an aiohttp cleanup context: the loops start with the
application and stop with it (cancelled; the dispatcher hands its unfinished
claims back). Every replica may run it: jobs are idempotent and claims are
exclusive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

from aiohttp import web

from bot.delivery.dispatcher import Dispatcher
from bot.delivery.pull import pull_senders
from bot.delivery.scheduler import NamedJob, Scheduler, standard_jobs
from bot.delivery.senders import SENDERS, Sender
from bot.services import Services

log = logging.getLogger(__name__)

__all__ = ["SENDERS", "DeliveryRunner", "delivery"]


class DeliveryRunner:
    """The scheduler loop and the dispatcher loop as two tasks."""

    def __init__(
        self,
        services: Services,
        senders: Mapping[str, Sender] | None = None,
        jobs: Sequence[NamedJob] | None = None,
    ) -> None:
        settings = services.settings
        # The web chat and the API always work by pull; push channels (Telegram,
        # Slack) add their senders on top.
        mapping: dict[str, Sender] = dict(pull_senders(services.db, services.clock))
        mapping.update(senders or {})
        self.dispatcher = Dispatcher.from_settings(services.db, services.clock, mapping, settings)
        self.scheduler = Scheduler(
            services.db,
            services.clock,
            services.dialog.catalogs,
            settings,
            standard_jobs() if jobs is None else jobs,
            dispatcher=self.dispatcher,
        )
        self.poll_seconds = settings.dispatch_poll_seconds
        self._tasks: list[asyncio.Task[None]] = []
        # A turn's replies to push channels go out as soon as the turn commits: written
        # claimed by this dispatcher and handed to it, with no claim of their own.
        services.turns.after_commit = self.dispatcher.dispatch_now
        services.turns.reply_sender = self.dispatcher

    def start(self, *, schedule: bool = True) -> None:
        if schedule:
            self._tasks.append(asyncio.create_task(self.scheduler.run(), name="scheduler"))
        self._tasks.append(
            asyncio.create_task(self.dispatcher.run(self.poll_seconds), name="dispatcher")
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


def delivery(
    services: Services, senders: Mapping[str, Sender] | None = None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp cleanup context running the scheduler and the dispatcher."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        found = app.get(SENDERS)
        registered: dict[str, Sender] = dict(found) if found else {}
        registered.update(senders or {})
        runner = DeliveryRunner(services, registered)
        runner.start()
        log.info(
            "scheduler and dispatcher started",
            extra={
                "tick_seconds": runner.scheduler.tick_seconds,
                "channels": sorted(runner.dispatcher.senders),
            },
        )
        yield
        await runner.stop()

    return context
