"""`coach jobs status` and `coach jobs retry-failed`: what an operator sees and what
the outbox holds afterwards."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.cli import main
from bot.clock import FakeClock
from bot.delivery.status import outbox_status, retry_failed
from bot.engine.messages import Reply
from bot.services import Services
from bot.store import migrate
from bot.store.db import Database
from bot.store.models import ChannelIdentity, OutboxMessage, Person
from bot.store.outbox import enqueue
from bot.testing.people import seed_learner


def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'coach.db'}"


async def seed(tmp_path: Path) -> None:
    db = Database(url(tmp_path))
    await migrate.upgrade(db)
    now = datetime.now(UTC)
    rows = [
        # (kind, status, due, identity reachable)
        ("reminder", "pending", now - timedelta(minutes=10), True),
        ("nudge", "pending", now + timedelta(hours=9), True),
        ("nudge", "failed", now - timedelta(hours=2), True),
        ("reminder", "failed", now - timedelta(hours=2), True),
        ("nudge", "failed", now - timedelta(hours=2), False),
        ("reply", "sent", now - timedelta(hours=3), True),
        ("nudge", "skipped", now - timedelta(hours=3), True),
    ]
    try:
        async with db.transaction() as session:
            person = Person(created_at=now, updated_at=now)
            session.add(person)
            await session.flush()
            assert person.id is not None
            identities: dict[bool, int] = {}
            for reachable in (True, False):
                identity = ChannelIdentity(
                    channel="telegram",
                    external_id=f"tg-{reachable}",
                    person_id=person.id,
                    unreachable=not reachable,
                    created_at=now,
                    last_seen_at=now,
                )
                session.add(identity)
                await session.flush()
                assert identity.id is not None
                identities[reachable] = identity.id
            for n, (kind, status, due, reachable) in enumerate(rows):
                session.add(
                    OutboxMessage(
                        identity_id=identities[reachable],
                        person_id=person.id,
                        kind=kind,
                        payload={"reply": Reply("x").to_json()},
                        dedupe_key=f"cli:{n}",
                        status=status,
                        attempts=8 if status == "failed" else 0,
                        last_error="502" if status == "failed" else None,
                        next_attempt_at=due,
                        created_at=now,
                    )
                )
    finally:
        await db.dispose()


async def statuses(tmp_path: Path) -> list[tuple[str, str, int]]:
    db = Database(url(tmp_path))
    try:
        async with db.reading() as session:
            rows = (await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
            return [(row.kind, row.status, row.attempts) for row in rows]
    finally:
        await db.dispose()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COACH_DATABASE_URL", url(tmp_path))
    monkeypatch.setenv("COACH_LOG_LEVEL", "WARNING")
    return tmp_path


def test_status_then_retry_failed_by_kind(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(seed(env))

    assert main(["jobs", "status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:6] == [
        "due now   1",
        "later     1",
        "sending   0",
        "failed    3",
        "sent      1",
        "skipped   1",
    ]
    assert out[6] in ("oldest due message waiting 10 min", "oldest due message waiting 11 min")

    assert main(["jobs", "retry-failed", "--kind", "nudge"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "coach: 1 failed nudge message(s) will be sent again",
        "coach: 1 left failed: the person blocked us on that channel",
    ]
    assert [s for s in asyncio.run(statuses(env)) if s[0] == "nudge"] == [
        ("nudge", "pending", 0),
        ("nudge", "pending", 0),  # the retried one, with fresh attempts
        ("nudge", "failed", 8),  # its identity is unreachable
        ("nudge", "skipped", 0),
    ]

    assert main(["jobs", "retry-failed"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "coach: 1 failed message(s) will be sent again"
    )
    assert ("reminder", "failed", 8) not in asyncio.run(statuses(env))


def test_a_bad_kind_and_a_missing_database_are_one_line(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["jobs", "retry-failed", "--kind", "postcard"])
    assert exited.value.code == 2
    assert "invalid choice: 'postcard'" in capsys.readouterr().err

    assert main(["jobs", "status"]) == 1  # never migrated: no outbox table
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("coach: cannot use the database")


async def test_the_counts_on_every_backend(any_services: Services, clock: FakeClock) -> None:
    person = await seed_learner(any_services.db, clock, "tg-1", channel="telegram")
    assert person.id is not None
    now = clock.now()
    async with any_services.db.transaction() as session:
        for n, due in enumerate((now - timedelta(minutes=3), now, now + timedelta(hours=1))):
            await enqueue(
                session,
                person_id=person.id,
                kind="nudge",
                payload={"reply": Reply("x").to_json()},
                dedupe_key=f"count:{n}",
                due_at=due,
                now=now,
            )
    status = await outbox_status(any_services.db, now)
    assert (status.due, status.later, status.failed, status.oldest_due) == (
        2,
        1,
        0,
        timedelta(minutes=3),
    )
    async with any_services.db.transaction() as session:
        row = (await session.exec(select(OutboxMessage).limit(1))).one()
        row.status = "failed"
    assert await retry_failed(any_services.db, now, "nudge") == (1, 0)
    assert (await outbox_status(any_services.db, now)).failed == 0
