"""Stopping within a bound: a watchdog for `coach serve` and the delivery worker.

A clean stop awaits things outside our control: a database connection whose close
waits for a cancel the server never acknowledges (asyncpg issue 1356), a task that
swallowed its cancellation (asyncio.wait_for in Python 3.11 can return instead of
raising when its inner future finishes as the cancel arrives). Either hangs the
stop forever, and a process that ignores SIGTERM is one an operator kills by hand.
So every stop runs under a watchdog thread, which fires even when the event loop is
stuck: it writes every thread's stack and every pending task's to the log, then
exits. Nothing is lost by that: what was committed stays, and outbox claims that
were not handed back run out with their lease.
"""

from __future__ import annotations

import asyncio
import faulthandler
import io
import logging
import os
import sys
import tempfile
import threading

log = logging.getLogger(__name__)


def pending_tasks(loop: asyncio.AbstractEventLoop | None = None) -> str:
    """Where each unfinished task of `loop` (default: the running one) waits, as text:
    names and code locations only, never a local variable (no message text, no token)."""
    loop = loop or asyncio.get_running_loop()
    out = io.StringIO()
    try:
        tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    except RuntimeError:  # the set changed under us (read from another thread)
        return "(tasks changed while being listed)"
    for task in sorted(tasks, key=lambda t: t.get_name()):
        out.write(f"task {task.get_name()}:\n")
        task.print_stack(limit=12, file=out)
    return out.getvalue() or "(no tasks pending)"


def thread_stacks() -> str:
    """Every thread's Python stack, as faulthandler prints it (safe from any thread)."""
    # faulthandler writes to a real file descriptor only; a file, not a pipe, which
    # would block the writer (and so the watchdog) once the stacks filled its buffer.
    with tempfile.TemporaryFile("w+") as sink:
        faulthandler.dump_traceback(file=sink, all_threads=True)
        sink.seek(0)
        return sink.read()


class Watchdog:
    """Exit with status 1 if the process is still here `grace` seconds after `start`."""

    def __init__(self, grace: float, what: str = "shutdown") -> None:
        self.grace = grace
        self.what = what
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: threading.Timer | None = None

    def start(self) -> Watchdog:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        # A thread, not a task: it must fire even when the event loop is stuck.
        self._timer = threading.Timer(self.grace, self._overdue)
        self._timer.daemon = True
        self._timer.start()
        return self

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _overdue(self) -> None:
        tasks = pending_tasks(self._loop) if self._loop is not None else "(no event loop)"
        log.error(
            "%s overran its grace period of %g s; exiting now",
            self.what,
            self.grace,
            extra={"threads": thread_stacks(), "tasks": tasks},
        )
        logging.shutdown()
        sys.stderr.flush()
        os._exit(1)


def exit_within(grace: float, what: str = "shutdown") -> Watchdog:
    """Start a watchdog: the process is gone `grace` seconds from now at the latest."""
    return Watchdog(grace, what).start()
