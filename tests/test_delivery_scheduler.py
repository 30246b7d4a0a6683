"""The scheduler never dies of a failing job, kicks the dispatcher, keeps its rhythm;
the runner wires a turn's push replies to the dispatcher; retention runs hourly."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import insert
from sqlmodel import func, select

from bot.clock import FakeClock
from bot.coach.jobs import JobContext
from bot.delivery.housekeeping import retention_job
from bot.delivery.runner import SENDERS, DeliveryRunner, delivery
from bot.delivery.scheduler import NamedJob, Scheduler, standard_jobs
from bot.delivery.senders import Sender
from bot.delivery.testing import RecordingSender
from bot.engine.messages import Reply
from bot.services import Services
from bot.store.models import MessageLog
from bot.store.outbox import enqueue
from bot.testing.conversation import Chat
from bot.testing.people import seed_learner


def scheduler(services: Services, *jobs: NamedJob, **kw: Any) -> Scheduler:
    return Scheduler(
        services.db,
        services.clock,
        services.dialog.catalogs,
        services.settings,
        jobs,
        **kw,
    )


async def test_a_failing_job_is_logged_and_the_others_still_run(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[object] = []

    async def boom(ctx: JobContext) -> int:
        raise RuntimeError("bad data")

    async def fine(ctx: JobContext) -> int:
        seen.append(ctx.now)
        return 2

    runs = scheduler(services, NamedJob("boom", boom), NamedJob("fine", fine))
    with caplog.at_level(logging.ERROR):
        assert await runs.tick() == {"boom": 0, "fine": 2}
        assert await runs.tick() == {"boom": 0, "fine": 2}
    assert seen == [services.clock.now()] * 2
    assert runs.failures == {"boom": 2}
    assert any("job failed" in r.getMessage() for r in caplog.records)


async def test_a_tick_that_wrote_rows_kicks_the_dispatcher(
    services: Services, clock: FakeClock
) -> None:
    person = await seed_learner(services.db, clock, "tg-1", channel="telegram")
    runner = DeliveryRunner(services, {"telegram": RecordingSender(clock)}, jobs=[])
    wrote = 0

    async def one_row(ctx: JobContext) -> int:
        nonlocal wrote
        assert person.id is not None
        async with ctx.db.transaction() as session:
            wrote += await enqueue(
                session,
                person_id=person.id,
                kind="reminder",
                payload={"reply": Reply("hi").to_json()},
                dedupe_key="k:1",
                due_at=ctx.now,
                now=ctx.now,
            )
        return wrote

    runs = scheduler(services, NamedJob("one", one_row), dispatcher=runner.dispatcher)
    await runs.tick()
    assert runner.dispatcher._wake.is_set()


async def test_the_loop_ticks_on_and_reports_its_lag(services: Services) -> None:
    ticks = 0

    async def count(ctx: JobContext) -> int:
        nonlocal ticks
        ticks += 1
        if ticks == 2:
            raise ValueError("one bad tick")
        return 0

    runs = scheduler(services, NamedJob("count", count), tick_seconds=0.01)
    task = asyncio.create_task(runs.run())
    for _ in range(500):
        if ticks >= 4:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert ticks >= 4
    assert runs.lag_seconds >= 0.0
    assert runs.last_duration_seconds >= 0.0


async def test_a_push_reply_is_sent_as_soon_as_its_turn_commits(
    services: Services, clock: FakeClock
) -> None:
    sender = RecordingSender(clock)
    services.turns.push_channels = frozenset({"telegram"})
    runner = DeliveryRunner(services, {"telegram": sender}, jobs=[])
    runner.start(schedule=False)
    try:
        chat = Chat(services.turns, "tg-new", channel="telegram")
        await chat.send("hi")
        for _ in range(300):
            if len(sender.sent) == len(chat.texts):
                break
            await asyncio.sleep(0.01)
        assert [m.text for m in sender.sent] == chat.texts
    finally:
        await runner.stop()


async def test_retention_runs_at_most_hourly(services: Services, clock: FakeClock) -> None:
    person = await seed_learner(services.db, clock)
    old = clock.now() - timedelta(days=services.settings.message_retention_days + 1)
    async with services.db.transaction() as session:
        await session.exec(
            insert(MessageLog).values(
                person_id=person.id,
                direction="in",
                channel="web",
                text="old",
                buttons=[],
                created_at=old,
            )
        )
    sweep = scheduler(services, NamedJob("retention", retention_job()))
    assert await sweep.tick() == {"retention": 1}

    async with services.db.transaction() as session:
        await session.exec(
            insert(MessageLog).values(
                person_id=person.id,
                direction="in",
                channel="web",
                text="old",
                buttons=[],
                created_at=old,
            )
        )
    clock.advance(minutes=30)
    assert await sweep.tick() == {"retention": 0}  # within the hour: not yet
    clock.advance(minutes=31)
    assert await sweep.tick() == {"retention": 1}
    async with services.db.reading() as session:
        left = (await session.exec(select(func.count()).select_from(MessageLog))).one()
    assert left == 0


async def test_serve_delivers_through_the_senders_channels_registered(
    services: Services, clock: FakeClock
) -> None:
    sender = RecordingSender(clock)
    services.turns.push_channels = frozenset({"telegram"})
    app = web.Application()
    registered: dict[str, Sender] = {"telegram": sender}
    app[SENDERS] = registered
    context = delivery(services)(app)
    await context.__anext__()  # what aiohttp does at startup
    try:
        chat = Chat(services.turns, "tg-new", channel="telegram")
        await chat.send("hi")
        for _ in range(300):
            if sender.sent:
                break
            await asyncio.sleep(0.01)
        assert sender.sent[0].text == chat.texts[0]
    finally:
        with pytest.raises(StopAsyncIteration):
            await context.__anext__()  # and at shutdown


def test_serve_runs_every_slices_job() -> None:
    """The jobs `coach serve` runs: dropping one from the list would silence a feature."""
    assert [job.name for job in standard_jobs()] == [
        "safety_alert_resends",
        "checkin_reminders",
        "family_nudges",
        "family_milestones",
        "teacher_digests",
        "retention",
    ]


async def test_sends_and_scheduler_lag_reach_the_metrics(
    services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot import metrics

    fresh = metrics.Metrics()
    monkeypatch.setattr(metrics, "METRICS", fresh)
    sender = RecordingSender(clock)
    services.turns.push_channels = frozenset({"telegram"})
    runner = DeliveryRunner(services, {"telegram": sender}, jobs=[])
    await Chat(services.turns, "tg-m", channel="telegram").send("hi")
    await runner.dispatcher.drain()
    runs = scheduler(services, tick_seconds=0.01)
    task = asyncio.create_task(runs.run())
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    sent = fresh.registry.get_sample_value(
        "coach_sends_total", {"channel": "telegram", "outcome": "sent"}
    )
    assert sent == len(sender.sent) > 0
    assert fresh.registry.get_sample_value("coach_scheduler_lag_seconds") is not None
