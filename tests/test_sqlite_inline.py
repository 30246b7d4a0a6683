"""SQLite on the loop's thread: another process's write lock is waited for without
freezing the loop, up to the busy timeout, and then the error says so."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from bot.store import sqlite_inline
from bot.store.db import Database


async def _database(tmp_path: Path) -> tuple[Database, Path]:
    path = tmp_path / "coach.db"
    db = Database(f"sqlite:///{path}")
    async with db.transaction() as session:
        await session.exec(text("CREATE TABLE notes (body TEXT)"))  # type: ignore[call-overload]
    return db, path


def _hold_write_lock(
    path: Path, seconds: float, held: threading.Event, release: threading.Event | None = None
) -> None:
    """Another connection (as `coach chat` or a backup would be) holds the write lock,
    for `seconds` or until `release` is set."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO notes VALUES ('theirs')")
    held.set()
    (release or threading.Event()).wait(seconds)
    other.execute("COMMIT")
    other.close()


async def test_a_write_waits_for_another_connections_lock_while_the_loop_runs_on(
    tmp_path: Path,
) -> None:
    db, path = await _database(tmp_path)
    held = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, 0.5, held))
    holder.start()
    await asyncio.to_thread(held.wait, 5)

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    running = asyncio.create_task(ticker())
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with db.transaction() as session:
        await session.exec(text("INSERT INTO notes VALUES ('ours')"))  # type: ignore[call-overload]
    waited = loop.time() - started
    running.cancel()
    holder.join()

    # Our write went in after theirs, once their lock was gone...
    assert waited >= 0.4
    async with db.reading() as session:
        rows = (await session.exec(text("SELECT body FROM notes ORDER BY rowid"))).all()  # type: ignore[call-overload]
    assert [r[0] for r in rows] == ["theirs", "ours"]
    # ...and the loop kept running meanwhile: a frozen loop would not have ticked at all
    # (0.5 s at 10 ms a tick is ~50; a loaded machine gets fewer).
    assert ticks >= 10
    await db.dispose()


async def test_a_lock_held_past_the_busy_timeout_fails_with_database_is_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_inline, "BUSY_WAIT_SECONDS", 0.2)
    db, path = await _database(tmp_path)
    held, release = threading.Event(), threading.Event()
    # Held until the test has seen the error: however slow a busy machine runs it.
    holder = threading.Thread(target=_hold_write_lock, args=(path, 30.0, held, release))
    holder.start()
    await asyncio.to_thread(held.wait, 5)
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            async with db.transaction() as session:
                await session.exec(text("INSERT INTO notes VALUES ('ours')"))  # type: ignore[call-overload]
    finally:
        release.set()
        holder.join()
    async with db.reading() as session:
        rows = (await session.exec(text("SELECT body FROM notes"))).all()  # type: ignore[call-overload]
    assert [r[0] for r in rows] == ["theirs"]
    await db.dispose()


async def test_a_transaction_inside_another_on_sqlite_is_refused_not_left_hanging(
    tmp_path: Path,
) -> None:
    db, _ = await _database(tmp_path)
    async with db.transaction():
        with pytest.raises(RuntimeError, match="already inside a transaction"):
            async with asyncio.timeout(5), db.reading():
                pass
    await db.dispose()
