"""Housekeeping: retention of the message log and the inbox, run as a scheduler job."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.coach.jobs import Job, JobContext
from bot.services import Services
from bot.store.retention import prune

log = logging.getLogger(__name__)

# Retention is measured in days; an hourly sweep keeps rows at most an hour past it
# without putting load on the database.
SWEEP_SECONDS = 3600.0


async def sweep(services: Services) -> dict[str, int]:
    removed = await prune(
        services.db, services.clock.now(), services.settings.message_retention_days
    )
    if any(removed.values()):
        log.info("retention sweep", extra=removed)
    return removed


def retention_job(every: float = SWEEP_SECONDS) -> Job:
    """A scheduler job that sweeps at most once per `every` seconds of the clock.

    It writes no outbox rows; it returns how many rows it removed (for the log).
    Each replica sweeps on its own: the DELETE is idempotent.
    """
    last: list[datetime] = []

    async def retention(ctx: JobContext) -> int:
        if last and ctx.now - last[0] < timedelta(seconds=every):
            return 0
        removed = await prune(ctx.db, ctx.now, ctx.settings.message_retention_days)
        last[:] = [ctx.now]
        if any(removed.values()):
            log.info("retention sweep", extra=removed)
        return sum(removed.values())

    return retention
