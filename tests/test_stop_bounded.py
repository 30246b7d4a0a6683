"""Every stop is bounded (bot/shutdown.py): a stop that hangs, even with the event loop
stuck, ends the process within the grace period and logs where it hung; the delivery
worker hears SIGTERM while the database is slow, and a one-shot worker exits by itself."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.delivery import worker
from bot.services import Services
from bot.shutdown import pending_tasks, thread_stacks

ROOT = Path(__file__).resolve().parent.parent

STUCK = """
import asyncio, time
from bot.logs import configure_logging
from bot.shutdown import exit_within

async def main():
    configure_logging("INFO")
    asyncio.create_task(asyncio.sleep(3600), name="closing-the-database")
    await asyncio.sleep(0)
    exit_within(0.5, "test stop")
    time.sleep(60)  # the event loop stuck: no task, no signal handler runs

asyncio.run(main())
"""


def test_a_stop_that_hangs_with_the_loop_stuck_exits_1_and_says_where() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", STUCK],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert time.monotonic() - started < 20  # 0.5 s grace, plus the interpreter's start
    record = json.loads(done.stderr.strip().splitlines()[-1])
    assert record["level"] == "error"
    assert record["event"] == "test stop overran its grace period of 0.5 s; exiting now"
    # Where the loop was stuck (STUCK's time.sleep), and what was waiting on it.
    assert 'File "<string>", line 11 in main' in record["threads"]
    assert "closing-the-database" in record["tasks"]


async def test_pending_tasks_name_each_task_and_where_it_waits() -> None:
    async def waiting_here() -> None:
        await asyncio.sleep(3600)

    task = asyncio.create_task(waiting_here(), name="waiting")
    await asyncio.sleep(0)
    try:
        listed = pending_tasks()
        assert "task waiting:" in listed
        assert "waiting_here" in listed
    finally:
        task.cancel()
    assert "thread_stacks" in thread_stacks()  # this very call, in the main thread


async def test_a_signal_is_heard_while_the_database_does_not_answer() -> None:
    stop = asyncio.Event()
    cancelled = asyncio.Event()

    async def never_answers() -> int:
        try:
            await asyncio.sleep(3600)
        finally:
            cancelled.set()
        return 0

    waiting = asyncio.create_task(worker._unless_stopped(never_answers(), stop))
    await asyncio.sleep(0.01)
    stop.set()
    assert await asyncio.wait_for(waiting, 5) is None
    assert cancelled.is_set()


async def test_a_one_shot_worker_with_nothing_to_send_stops_by_itself(
    any_services: Services,
) -> None:
    stops: list[str] = []
    await asyncio.wait_for(
        worker.work(
            any_services, jobs=False, until_idle=True, stopping=lambda: stops.append("stop")
        ),
        10,
    )
    assert stops == ["stop"]


def test_the_stacks_are_read_whole_however_long() -> None:
    # Far past a pipe's 64 KiB: 40 threads 60 frames deep. A pipe blocked the writer
    # there, and with it the watchdog that was to end the process.
    release = threading.Event()

    def deep(depth: int) -> None:
        if depth:
            deep(depth - 1)
        else:
            release.wait(30)

    threads = [threading.Thread(target=deep, args=(60,), daemon=True) for _ in range(40)]
    for thread in threads:
        thread.start()
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(thread_stacks()), daemon=True)
    try:
        reader.start()
        reader.join(10)
        assert result, "thread_stacks did not return"
        assert len(result[0]) > 65_536
        assert result[0].count("in deep") >= 40 * 50
    finally:
        release.set()


async def test_a_database_that_times_out_is_not_taken_for_idle(
    any_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # asyncpg's timeouts are TimeoutError too: a one-shot worker must fail with it,
    # not exit 0 as if nothing were left to send.
    async def times_out(services: Services) -> int:
        raise TimeoutError

    monkeypatch.setattr(worker, "_left", times_out)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(worker.work(any_services, jobs=False, until_idle=True), 10)
