"""A delivery worker without the web server: `python -m bot.delivery.worker`.

Runs the dispatcher (and, unless --no-jobs, the scheduler) against the database
in COACH_DATABASE_URL, until SIGTERM or SIGINT, then hands its claims back. Run
as many as you like beside `coach serve` on PostgreSQL: claims never overlap.

--senders MODULE:FUNCTION plugs in a function `(services) -> {channel: Sender}`
for channels beyond the built-in pull ones (the web chat, the API); tests use it
to record what was sent. --until-idle exits once nothing is due or being sent
(a one-shot drain, for cron or a test).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import func
from sqlmodel import col, select

from bot.config import ConfigError, load_settings
from bot.delivery.runner import DeliveryRunner
from bot.delivery.senders import Sender
from bot.engine.flows import FlowError
from bot.logs import configure_logging
from bot.services import Services, build_services
from bot.shutdown import exit_within, pending_tasks
from bot.store.models import OutboxMessage

log = logging.getLogger("bot.delivery.worker")

T = TypeVar("T")

# --until-idle looks this often whether anything is left (rows waiting for another
# worker's lease to run out become due only as time passes).
IDLE_CHECK_SECONDS = 0.5
# How long --until-idle waits for the dispatcher's round in flight to end before it
# stops it anyway: far above a round's milliseconds, well below a test's patience.
IDLE_STOP_SECONDS = 5.0


def _load_senders(spec: str | None, services: Services) -> Mapping[str, Sender]:
    if not spec:
        return {}
    module_name, sep, attr = spec.partition(":")
    if not sep:
        raise ConfigError(f"--senders {spec!r}: use MODULE:FUNCTION")
    try:
        factory: Callable[[Services], Mapping[str, Sender]] = getattr(
            importlib.import_module(module_name), attr
        )
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--senders {spec!r}: {exc}") from None
    return factory(services)


async def _left(services: Services) -> int:
    """Rows still to send now or later by someone: pending or sending."""
    async with services.db.reading() as session:
        count = (
            await session.exec(
                select(func.count())
                .select_from(OutboxMessage)
                .where(col(OutboxMessage.status).in_(("pending", "sending")))
            )
        ).one()
    return int(count)


async def _unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> T | None:
    """`work`'s result, or None (and `work` cancelled) if `stop` is set first: a signal
    is heard even while the database is slow to answer."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((task, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


async def work(
    services: Services,
    *,
    senders: Mapping[str, Sender] | None = None,
    jobs: bool = True,
    until_idle: bool = False,
    stopping: Callable[[], object] | None = None,
) -> None:
    """Run the delivery loops until a signal (or, with `until_idle`, nothing is left),
    then stop them within half the shutdown grace period. `stopping` is called as the
    stop begins (main starts its watchdog there)."""
    runner = DeliveryRunner(services, senders, None if jobs else [])
    runner.start(schedule=jobs)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            if until_idle:
                left = await _unless_stopped(_left(services), stop)
                if left == 0:
                    # Stop the dispatcher between rounds, not inside a claim's
                    # transaction (this loop kicks it twice a second); one still in a
                    # round after IDLE_STOP_SECONDS is stopped anyway.
                    with contextlib.suppress(TimeoutError):
                        await _unless_stopped(
                            asyncio.wait_for(
                                runner.dispatcher.between_rounds.wait(), IDLE_STOP_SECONDS
                            ),
                            stop,
                        )
                    break
            try:
                await asyncio.wait_for(stop.wait(), IDLE_CHECK_SECONDS)
            except TimeoutError:
                runner.dispatcher.kick()
    finally:
        if stopping is not None:
            stopping()
        grace = services.settings.shutdown_grace_seconds
        try:
            await asyncio.wait_for(runner.stop(), grace / 2)
        except TimeoutError:
            log.warning(
                "the delivery loops did not stop within %.1f s; their claims run out "
                "with the lease",
                grace / 2,
                extra={"tasks": pending_tasks()},
            )
        # Only now: a second signal during the stop is answered by the watchdog, not by
        # Python's default (a KeyboardInterrupt traceback, or death by SIGTERM).
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.delivery.worker")
    parser.add_argument("--senders", help="MODULE:FUNCTION returning {channel: Sender}")
    parser.add_argument("--no-jobs", action="store_true", help="dispatch only, no scheduler")
    parser.add_argument(
        "--until-idle", action="store_true", help="exit when nothing is due or being sent"
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_level)
        services = build_services(settings)
    except ConfigError as exc:
        print(f"coach worker: {exc}", file=sys.stderr)
        return 2
    except FlowError as exc:
        print(f"coach worker: {len(exc.problems)} problem(s) in the dialogs", file=sys.stderr)
        return 1

    grace = services.settings.shutdown_grace_seconds

    async def go() -> None:
        try:
            senders: Any = _load_senders(args.senders, services)
            await work(
                services,
                senders=senders,
                jobs=not args.no_jobs,
                until_idle=args.until_idle,
                # Gone within the grace period whatever hangs in the stop or in closing
                # the database (bot/shutdown.py says what can), every stack logged.
                stopping=lambda: exit_within(grace, "the worker's stop"),
            )
        finally:
            await services.close()

    try:
        asyncio.run(go())
    except ConfigError as exc:
        print(f"coach worker: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
