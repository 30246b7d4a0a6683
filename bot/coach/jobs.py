"""The contract between the coaching domain and the scheduler (bot/delivery).

A job looks at the database as of `now` and writes what is due as outbox rows
(bot.store.outbox.enqueue), each with a deterministic dedupe key, so every
replica may run every job on every tick and each message is still written once.
A job returns how many rows it wrote. Jobs never send anything themselves: the
dispatcher does, after the job's transaction commits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from bot.config import Settings
from bot.engine.locales import Catalogs
from bot.store.db import Database


@dataclass(frozen=True, slots=True)
class JobContext:
    db: Database
    now: datetime  # UTC, from the injected clock: tests run a simulated term in seconds
    catalogs: Catalogs  # catalogs.render(key, locale, params) for every sentence sent
    settings: Settings


Job = Callable[[JobContext], Awaitable[int]]
