"""Periodic housekeeping inside `coach serve`: retention of the message log and inbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

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


async def _loop(services: Services, every: float) -> None:
    while True:
        try:
            await sweep(services)
        except Exception:
            log.exception("retention sweep failed; trying again next time")
        await asyncio.sleep(every)


def housekeeping(
    services: Services, every: float = SWEEP_SECONDS
) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp cleanup context that runs the sweep while the app runs."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_loop(services, every), name="housekeeping")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context
