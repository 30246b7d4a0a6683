"""Several real `coach serve` replicas on one PostgreSQL (issue 7).

(a) One learner's messages, sent alternately to different replicas, and all at once
across them, make one conversation: every turn commits once, none interleaves, and
the result is exactly what one process answering them in their commit order gives.
(b) Replicas started together on an empty database: one migrates, all get ready.
(c) A replica killed (SIGKILL) in the middle of a turn loses nothing: the client's
retry of the same message id on another replica commits exactly one turn.

Each test gets a database of its own; skipped without COACH_TEST_DATABASE_URL.
(Scheduled messages sent once across replicas: tests/test_delivery_workers.py.)
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col, select

from bot.config import normalise_database_url
from bot.engine.messages import Inbound
from bot.services import Services, build_services
from bot.store import migrate
from bot.store.db import Database
from bot.store.models import ChannelIdentity, Conversation, InboxMessage, MessageLog
from tests.conftest import make_settings
from tests.serve_process import Server, fresh_pg_database, start_serve, wait_for_lines

PG_URL = os.environ.get("COACH_TEST_DATABASE_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="needs COACH_TEST_DATABASE_URL (PostgreSQL)")

# The warm-up conversation and the menu, answered: every step moves the state, so a
# lost, doubled or reordered turn changes what later turns answer.
SCRIPT = [
    "hi",
    "warmup",
    "Sam",
    "4",
    "yes",
    "30",
    "menu",
    "help",
    "I want to get better at fractions",
    "blah",
    "menu",
    "warmup",
]


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database; its URL."""
    assert PG_URL
    async with fresh_pg_database(PG_URL, "replicas") as url:
        yield url


@pytest.fixture
async def one_process(tmp_path: Path) -> AsyncIterator[Services]:
    """The reference: one in-process Coach on its own SQLite file."""
    services = build_services(make_settings(tmp_path / "reference"))
    await migrate.upgrade(services.db)
    yield services
    await services.close()


async def replicas(url: str, tmp_path: Path, count: int, gate: Path | None = None) -> list[Server]:
    """`count` replicas started together; the first runs with the test gate if given."""
    started = await asyncio.gather(
        *(
            start_serve(url, tmp_path, gate=gate if n == 0 else None, name=f"replica-{n}")
            for n in range(count)
        ),
        return_exceptions=True,
    )
    servers = [s for s in started if isinstance(s, Server)]
    if len(servers) < count:
        for server in servers:
            await server.stop()
        raise next(s for s in started if isinstance(s, BaseException))
    return servers


async def stop_all(servers: list[Server]) -> None:
    codes = await asyncio.gather(*(s.stop() for s in servers if s.process.returncode is None))
    assert all(code == 0 for code in codes), codes


async def replay(services: Services, user: str, texts: list[str]) -> list[dict[str, Any]]:
    """What one process answers to `texts`, in this order."""
    answers = []
    for n, said in enumerate(texts):
        result = await services.turns.handle(Inbound("web", user, f"ref-{n}", text=said))
        answers.append(result.to_json())
    return answers


async def stored(db: Database, user: str) -> dict[str, Any]:
    """The learner's committed turns: inbox message ids in commit order, the message
    log, and the conversation's state and version."""
    async with db.reading() as session:
        identity = (
            await session.exec(
                select(ChannelIdentity).where(
                    ChannelIdentity.channel == "web", ChannelIdentity.external_id == user
                )
            )
        ).one()
        inbox = (
            await session.exec(
                select(InboxMessage.message_id)
                .where(InboxMessage.person_id == identity.person_id)
                .order_by(col(InboxMessage.id))
            )
        ).all()
        log = (
            await session.exec(
                select(MessageLog.direction, MessageLog.text)
                .where(MessageLog.person_id == identity.person_id)
                .order_by(col(MessageLog.id))
            )
        ).all()
        conversation = (
            await session.exec(
                select(Conversation).where(Conversation.person_id == identity.person_id)
            )
        ).one()
    return {
        "inbox": list(inbox),
        "log": [tuple(row) for row in log],
        "state": (conversation.flow, conversation.step, conversation.slots),
        "version": conversation.version,
    }


async def test_one_learner_across_replicas_keeps_one_conversation(
    database: str, tmp_path: Path, one_process: Services
) -> None:
    servers = await replicas(database, tmp_path, 3)
    db = Database(database)
    try:
        async with aiohttp.ClientSession() as http:
            # Alternately: each turn on the next replica, one after another.
            alternate = [
                await servers[n % 3].post(http, "alternating", said, f"a-{n}")
                for n, said in enumerate(SCRIPT)
            ]
            # All at once: every message in flight together, spread over the replicas.
            ids = [f"c-{n}" for n in range(len(SCRIPT))]
            together = await asyncio.gather(
                *(
                    servers[n % 3].post(http, "concurrent", said, ids[n])
                    for n, said in enumerate(SCRIPT)
                )
            )
        alternating = await stored(db, "alternating")
        concurrent = await stored(db, "concurrent")
    finally:
        await db.dispose()
        await stop_all(servers)

    # Alternating: the same answers and the same log as one process.
    assert alternate == await replay(one_process, "reference-a", SCRIPT)
    reference = await stored(one_process.db, "reference-a")
    assert alternating["log"] == reference["log"]
    assert alternating["state"] == reference["state"]
    assert alternating["inbox"] == [f"a-{n}" for n in range(len(SCRIPT))]

    # Concurrent: each message committed once, in some order; one process answering
    # the texts in that order gives every reply each client got, and the same log.
    assert sorted(concurrent["inbox"]) == sorted(ids)
    order = [int(message_id.removeprefix("c-")) for message_id in concurrent["inbox"]]
    expected = await replay(one_process, "reference-c", [SCRIPT[n] for n in order])
    assert [together[n] for n in order] == expected
    reference = await stored(one_process.db, "reference-c")
    assert concurrent["log"] == reference["log"]  # no turn's lines inside another's
    assert concurrent["state"] == reference["state"]
    assert concurrent["version"] == reference["version"]


async def test_replicas_started_together_migrate_once(database: str, tmp_path: Path) -> None:
    servers = await replicas(database, tmp_path, 3)  # each waits for its own /readyz
    try:
        logs = [server.log_text() for server in servers]
        engine = create_async_engine(normalise_database_url(database))
        async with engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        await engine.dispose()
    finally:
        await stop_all(servers)
    assert [row[0] for row in versions] == [migrate.head_revision()]
    # The advisory lock: one replica ran the migrations, the others found them done.
    assert sum("Running upgrade  -> 0001" in log for log in logs) == 1


async def test_a_replica_killed_mid_turn_loses_nothing(
    database: str, tmp_path: Path, one_process: Services
) -> None:
    gate = tmp_path / "gate"
    doomed, survivor = await replicas(database, tmp_path, 2, gate=gate)
    db = Database(database)
    try:
        async with aiohttp.ClientSession() as http:
            first = await doomed.post(http, "learner-1", "hi", "m-1")
            # The second message stops inside its transaction, holding the learner's row.
            cut_off = asyncio.create_task(doomed.post(http, "learner-1", "hold on", "m-2"))
            await wait_for_lines(gate / "entered", 1)
            doomed.signal(signal.SIGKILL)
            assert await doomed.wait() == -signal.SIGKILL
            with pytest.raises(aiohttp.ClientError):
                await cut_off
            # The client retries the same message on the other replica; and once more.
            retried = await survivor.post(http, "learner-1", "hold on", "m-2")
            again = await survivor.post(http, "learner-1", "hold on", "m-2")
        after = await stored(db, "learner-1")
    finally:
        await db.dispose()
        await stop_all([survivor])

    assert again == retried  # the stored replies: one turn, not two
    assert after["inbox"] == ["m-1", "m-2"]
    assert [first, retried] == await replay(one_process, "reference", ["hi", "hold on"])
    assert after["log"] == (await stored(one_process.db, "reference"))["log"]
