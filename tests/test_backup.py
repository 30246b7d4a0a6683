"""coach db backup / restore: a live SQLite database copied while it takes turns, restored
elsewhere with the chat intact, and every refusal as one line and a non-zero exit."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.clock import FakeClock
from bot.services import Services
from bot.store import backup, migrate
from bot.store.db import Database
from bot.store.models import Conversation, Person
from bot.testing.conversation import Chat
from bot.testing.people import seed_goal, seed_learner

ROOT = Path(__file__).resolve().parent.parent


def coach(*args: str, cwd: Path, database: Path | str) -> subprocess.CompletedProcess[str]:
    url = database if isinstance(database, str) else f"sqlite:///{database}"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COACH_")} | {
        "COACH_DATABASE_URL": url,
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def people_in(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return sorted(row[0] or "" for row in conn.execute("SELECT name FROM people"))


async def test_a_live_backup_restores_the_chat_elsewhere(
    services: Services, clock: FakeClock, tmp_path: Path, open_services: Callable[..., Any]
) -> None:
    live = tmp_path / "coach.db"
    ana = Chat(services.turns, "ana")
    await ana.send("hi")
    await ana.send("Ana")
    bo = await seed_learner(services.db, clock, "bo", name="Bo")
    await seed_goal(services.db, bo, "read two novels", created_at=clock.now())

    # Another learner keeps chatting while the backup runs in a thread.
    done = asyncio.Event()
    cy = Chat(services.turns, "cy")
    turns = 0

    async def keep_chatting() -> None:
        nonlocal turns
        for n in itertools.count():
            if done.is_set():
                return
            await cy.send("hi" if n == 0 else f"message {n}")
            turns += 1

    writer = asyncio.create_task(keep_chatting())
    await asyncio.sleep(0)  # let the writer start its first turn
    copy = tmp_path / "backups" / "coach-copy.db"
    copy.parent.mkdir()
    report = await asyncio.to_thread(backup.backup, live, copy)
    done.set()
    await writer
    assert turns >= 1
    assert report.path == copy
    assert report.size == copy.stat().st_size > 0
    assert report.revision == migrate.head_revision()
    assert {"Ana", "Bo"} <= set(people_in(copy))
    assert not copy.with_name(copy.name + "-wal").exists()  # one self-contained file
    assert oct(copy.stat().st_mode & 0o777) == "0o600"  # learners' data: owner only

    # Restore into a new place with the command, as an operator would.
    elsewhere = tmp_path / "restored" / "coach.db"
    elsewhere.parent.mkdir()
    out = ok(coach("db", "restore", str(copy), cwd=tmp_path, database=elsewhere))
    assert out.startswith(f"coach: restored {copy}")
    assert "there was no database before" in out
    assert out.endswith("migrated to the newest schema")

    restored = await open_services("sqlite", database_url=f"sqlite:///{elsewhere}")
    assert await migrate.is_current(restored.db)
    export = await restored.turns.export("web", "ana")
    assert export is not None
    assert export["person"]["name"] == "Ana"
    assert [m["text"] for m in export["messages"] if m["direction"] == "in"] == ["hi", "Ana"]
    bo_export = await restored.turns.export("web", "bo")
    assert bo_export is not None
    assert [g["wish"] for g in bo_export["goals"]] == ["read two novels"]
    # The conversation carries on where it was: Ana was being asked her language.
    assert export["conversation"]["expect"] == {"type": "choice", "slot": "onboarding.locale"}
    await Chat(restored.turns, "ana").script("""
        > [en]
        = choice onboarding.grade
    """)


async def test_an_open_write_is_not_in_the_backup_and_does_not_block_it(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    live = tmp_path / "coach.db"
    await seed_learner(services.db, clock, "ana", name="Ana")
    copy = tmp_path / "copy.db"
    async with services.db.transaction() as session:
        now = clock.now()
        session.add(Person(role="learner", name="Uncommitted", created_at=now, updated_at=now))
        await session.flush()
        # The write lock is held right now; the backup still finishes.
        await asyncio.to_thread(backup.backup, live, copy)
    assert people_in(copy) == ["Ana"]
    assert people_in(live) == ["Ana", "Uncommitted"]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated database per module; each test gets a copy (migrating takes a while)."""
    path = tmp_path_factory.mktemp("template") / "coach.db"

    async def migrated() -> None:
        db = Database(f"sqlite:///{path}")
        try:
            await migrate.upgrade(db)
        finally:
            await db.dispose()

    asyncio.run(migrated())
    return path


@pytest.fixture
def database(template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "coach.db"
    shutil.copyfile(template, path)
    return path


def coach_all(
    *commands: tuple[str, ...], cwd: Path, database: Path | str
) -> list[subprocess.CompletedProcess[str]]:
    """Several commands at once (each is a process start: seconds on a busy machine)."""
    with ThreadPoolExecutor() as pool:
        return list(pool.map(lambda args: coach(*args, cwd=cwd, database=database), commands))


def test_backup_refuses_to_overwrite_unless_forced(tmp_path: Path, database: Path) -> None:
    out = ok(coach("db", "backup", "copy.db", cwd=tmp_path, database=database))
    assert out.startswith(f"coach: backed up {database} (schema {migrate.head_revision()})")
    assert out.endswith(
        f"to {tmp_path / 'copy.db'}: {(tmp_path / 'copy.db').stat().st_size:,} bytes"
    )
    first = (tmp_path / "copy.db").read_bytes()
    _add_person(database, "Later")

    refused, forced = (
        coach("db", "backup", "copy.db", cwd=tmp_path, database=database),
        coach("db", "backup", "copy.db", "--force", cwd=tmp_path, database=database),
    )
    line = one_line_error(refused)
    assert line == f"coach: {tmp_path / 'copy.db'} already exists; pass --force to overwrite it"
    ok(forced)
    assert (tmp_path / "copy.db").read_bytes() != first
    assert people_in(tmp_path / "copy.db") == ["Later"]
    # No temporary file is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coach.db", "copy.db"]


def test_restore_moves_the_current_database_aside(tmp_path: Path, database: Path) -> None:
    _add_person(database, "In the backup")
    backup.backup(database, tmp_path / "copy.db")
    _add_person(database, "Added after the backup")

    out = ok(coach("db", "restore", "copy.db", cwd=tmp_path, database=database))
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("coach.db.bak-")]
    assert len(aside) == 1
    assert out == (
        f"coach: restored copy.db (schema {migrate.head_revision()}) into {database}; "
        f"the previous database is at {aside[0]}; migrated to the newest schema"
    )
    assert people_in(database) == ["In the backup"]
    assert people_in(aside[0]) == ["Added after the backup", "In the backup"]
    stamp = aside[0].name.removeprefix("coach.db.bak-")
    assert datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def test_restore_refuses_while_the_database_is_open(tmp_path: Path, database: Path) -> None:
    backup.backup(database, tmp_path / "copy.db")
    server = sqlite3.connect(database)  # a running `coach serve` keeps one open
    try:
        server.execute("PRAGMA journal_mode=WAL")
        server.execute("SELECT count(*) FROM people").fetchone()
        line = one_line_error(coach("db", "restore", "copy.db", cwd=tmp_path, database=database))
    finally:
        server.close()
    assert line == (
        f"coach: {database} is in use (is `coach serve` running?); stop Coach, then restore"
    )
    assert not [p for p in tmp_path.iterdir() if ".bak-" in p.name]


def _add_person(database: Path, name: str) -> None:
    now = "2026-01-05 09:00:00"
    with closing(sqlite3.connect(database)) as conn, conn:
        conn.execute(
            "INSERT INTO people (role, name, locale, timezone, created_at, updated_at) "
            "VALUES ('learner', ?, 'en', 'UTC', ?, ?)",
            (name, now, now),
        )


def _sqlite_file(path: Path, *statements: str) -> Path:
    with closing(sqlite3.connect(path)) as conn, conn:
        for statement in statements:
            conn.execute(statement)
    return path


def test_restore_refuses_what_is_not_a_coach_backup(tmp_path: Path, database: Path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("not a database at all")
    other = _sqlite_file(tmp_path / "other.db", "CREATE TABLE t (x)")
    alembic_only = _sqlite_file(
        tmp_path / "alembic.db",
        "CREATE TABLE alembic_version (version_num TEXT)",
        "INSERT INTO alembic_version VALUES ('0001')",
    )
    future = tmp_path / "future.db"
    backup.backup(database, future)
    with closing(sqlite3.connect(future)) as conn, conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    missing = tmp_path / "missing.db"
    cases = {
        missing: f"there is no file at {missing}",
        notes: f"{notes} is not a SQLite database (file is not a database)",
        other: f"{other} is not a Coach database (it has no schema revision)",
        alembic_only: f"{alembic_only} is not a Coach database (no people table)",
        future: f"{future} is at schema revision '9999_from_the_future', which this Coach "
        "does not know: restore it with the Coach version that wrote it",
    }
    results = coach_all(
        *(("db", "restore", str(path)) for path in cases), cwd=tmp_path, database=database
    )
    for expected, result in zip(cases.values(), results, strict=True):
        assert one_line_error(result) == f"coach: {expected}"
    assert not [p for p in tmp_path.iterdir() if ".bak-" in p.name]
    assert not missing.exists()


def test_backup_errors_are_one_line(tmp_path: Path, database: Path) -> None:
    missing = tmp_path / "nothing-here.db"
    (no_database,) = coach_all(("db", "backup", "copy.db"), cwd=tmp_path, database=missing)
    assert one_line_error(no_database) == f"coach: there is no database at {missing} to back up"
    assert not missing.exists()  # a backup never creates an empty database

    cases = {
        "no/such/dir/x.db": f"the folder {tmp_path / 'no/such/dir'} does not exist",
        str(database): f"{database} is the database itself; choose another file",
        str(tmp_path): f"{tmp_path} is a folder; give the backup a file name",
    }
    results = coach_all(
        *(("db", "backup", path) for path in cases), cwd=tmp_path, database=database
    )
    for expected, result in zip(cases.values(), results, strict=True):
        assert one_line_error(result) == f"coach: {expected}"


def test_on_postgresql_the_commands_point_to_pg_dump(tmp_path: Path) -> None:
    url = "postgresql://coach@db.example.invalid:5432/coach"
    results = coach_all(
        ("db", "backup", "x.dump"), ("db", "restore", "x.dump"), cwd=tmp_path, database=url
    )
    for action, result in zip(("backup", "restore"), results, strict=True):
        assert one_line_error(result) == (
            f"coach: `coach db {action}` works on SQLite; on PostgreSQL, back up with "
            "`pg_dump -Fc` and restore with `pg_restore` (see README, section Backups)"
        )


def test_help_and_usage(tmp_path: Path) -> None:
    backup_help, restore_help, no_path = coach_all(
        ("db", "backup", "--help"),
        ("db", "restore", "--help"),
        ("db", "backup"),
        cwd=tmp_path,
        database=tmp_path / "coach.db",
    )
    assert "usage: coach db backup [-h] [--force] path" in ok(backup_help)
    assert "usage: coach db restore [-h] path" in ok(restore_help)
    assert "the following arguments are required: path" in one_line_error(no_path)


async def test_restored_rows_are_whole(
    services: Services, clock: FakeClock, tmp_path: Path, open_services: Callable[..., Any]
) -> None:
    """Every person in a copy taken mid-chat has their conversation: turns are atomic."""
    live = tmp_path / "coach.db"
    chats = [Chat(services.turns, f"learner-{n}") for n in range(5)]
    copy = tmp_path / "copy.db"
    sending = asyncio.gather(*(chat.send("hi") for chat in chats))
    report = await asyncio.to_thread(backup.backup, live, copy)
    await sending
    assert report.size > 0
    restored = await open_services("sqlite", database_url=f"sqlite:///{copy}")
    async with restored.db.reading() as session:
        people = (await session.exec(select(Person.id))).all()
        conversations = (await session.exec(select(Conversation.person_id))).all()
    assert sorted(people) == sorted(conversations)
