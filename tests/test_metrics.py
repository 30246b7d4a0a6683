"""GET /metrics: what a Prometheus user sees after turns, sends, a backlog and alerts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from bot import metrics
from bot.app import GAUGES, build_app
from bot.clock import FakeClock
from bot.engine.messages import Inbound
from bot.services import Services
from bot.store.db import Database
from bot.store.models import SafetyAlert
from bot.store.outbox import enqueue
from bot.testing.conversation import Chat
from bot.testing.people import seed_learner

Client = TestClient[Any, Any]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(autouse=True)
def fresh_metrics(monkeypatch: pytest.MonkeyPatch) -> metrics.Metrics:
    """Every test counts from zero: the process's series are swapped for new ones."""
    fresh = metrics.Metrics()
    monkeypatch.setattr(metrics, "METRICS", fresh)
    return fresh


def parse(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def scrape(client: Client, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(await response.text())


async def test_turns_show_up_by_channel_with_latency(
    client: Client, any_services: Services
) -> None:
    for text in ("hi", "Ana"):
        response = await client.post("/api/v1/messages", json={"user": "ana", "text": text})
        assert response.status == 200
    await Chat(any_services.turns, "bo").send("hi")

    samples = await scrape(client)
    assert value(samples, "coach_turns_total", channel="api") == 2
    assert value(samples, "coach_turns_total", channel="web") == 1
    assert value(samples, "coach_turn_duration_seconds_count", channel="api") == 2
    assert value(samples, "coach_turn_duration_seconds_bucket", channel="api", le="+Inf") == 2
    bounds = sorted(
        float(dict(labels)["le"])
        for name, labels in samples
        if name == "coach_turn_duration_seconds_bucket" and ("channel", "api") in labels
    )
    assert bounds == [*metrics.TURN_BUCKETS, float("inf")]
    assert (value(samples, "coach_turn_duration_seconds_sum", channel="api") or 0) > 0
    # No turn failed, so no error series exists yet.
    assert value(samples, "coach_turn_errors_total", channel="api") is None
    assert value(samples, "coach_build_info", version=metrics.bot.__version__) == 1
    # The database gauges are there, at rest.
    assert value(samples, "coach_database_up") == 1
    assert value(samples, "coach_outbox_due_messages") == 0
    assert value(samples, "coach_outbox_oldest_due_age_seconds") == 0
    assert value(samples, "coach_safety_alerts_open") == 0
    # No `_created` samples: they double a scrape for nothing.
    assert not [name for name, _ in samples if name.endswith("_created")]


async def test_a_failed_turn_counts_an_error(
    client: Client, any_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(inbound: Inbound) -> Any:
        raise RuntimeError("the database fell over")

    monkeypatch.setattr(any_services.turns, "_attempt", broken)
    with pytest.raises(RuntimeError):
        await any_services.turns.handle(Inbound("telegram", "42", "m-1", text="hi"))
    response = await client.post("/api/v1/messages", json={"user": "ana", "text": "hi"})
    assert response.status == 500

    samples = await scrape(client)
    assert value(samples, "coach_turn_errors_total", channel="telegram") == 1
    assert value(samples, "coach_turns_total", channel="telegram") == 1
    assert value(samples, "coach_turn_errors_total", channel="api") == 1


async def test_backlog_age_and_open_alerts_are_read_at_scrape_time(
    client: Client, any_services: Services, clock: FakeClock
) -> None:
    db = any_services.db
    ana = await seed_learner(db, clock, "ana")
    assert ana.id is not None
    now = clock.now()
    async with db.transaction() as session:
        for key, due in (
            ("reminder:late", now - timedelta(minutes=10)),
            ("reminder:now", now),
            ("reminder:tomorrow", now + timedelta(days=1)),  # not due: not backlog
        ):
            assert await enqueue(
                session,
                person_id=ana.id,
                kind="reminder",
                payload={},
                dedupe_key=key,
                due_at=due,
                now=now - timedelta(hours=1),
            )
        session.add(SafetyAlert(learner_id=ana.id, category="self_harm", opened_at=now))
        session.add(
            SafetyAlert(learner_id=ana.id, category="bullying", opened_at=now, acknowledged_at=now)
        )

    samples = await scrape(client)
    assert value(samples, "coach_outbox_due_messages") == 2
    assert value(samples, "coach_outbox_oldest_due_age_seconds") == 600
    assert value(samples, "coach_safety_alerts_open") == 1


async def test_sends_failures_and_scheduler_lag(client: Client) -> None:
    metrics.record_send("telegram", "sent")
    metrics.record_send("telegram", "sent")
    metrics.record_send("telegram", "retry_after", "rate limited")
    metrics.record_send("slack", "permanent", "account_inactive")
    metrics.record_send("slack", "transient", None)
    metrics.set_scheduler_lag(2.5)

    samples = await scrape(client)
    assert value(samples, "coach_sends_total", channel="telegram", outcome="sent") == 2
    assert value(samples, "coach_sends_total", channel="telegram", outcome="retry_after") == 1
    failures = "coach_send_failures_total"
    assert value(samples, failures, channel="telegram", reason="rate limited") == 1
    assert value(samples, failures, channel="slack", reason="account_inactive") == 1
    assert value(samples, failures, channel="slack", reason="transient") == 1
    assert value(samples, "coach_scheduler_lag_seconds") == 2.5


def test_failure_reasons_stay_few(fresh_metrics: metrics.Metrics) -> None:
    for n in range(metrics.MAX_REASONS + 5):
        metrics.record_send("telegram", "transient", f"HTTP 5{n:02d}   from\nthe platform")
    metrics.record_send("telegram", "transient", "x" * 500)
    samples = parse(metrics.prometheus_client.generate_latest(fresh_metrics.registry).decode())
    reasons = {
        dict(labels)["reason"] for name, labels in samples if name == "coach_send_failures_total"
    }
    assert len(reasons) == metrics.MAX_REASONS + 1
    assert "other" in reasons
    assert "HTTP 500 from the platform" in reasons
    assert max(len(r) for r in reasons) <= metrics.MAX_REASON_LENGTH
    assert value(samples, "coach_send_failures_total", channel="telegram", reason="other") == 6


class Ticks:
    """A monotonic timer a test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_scrape_storm_reads_the_database_once_per_interval(
    aiohttp_client: Callable[..., Any], services: Services, clock: FakeClock
) -> None:
    ticks = Ticks()
    app = build_app(services)
    app.on_cleanup.clear()
    gauges = metrics.DatabaseGauges(services.db, services.clock, cache_seconds=2.0, timer=ticks)
    app[GAUGES] = gauges
    client = await aiohttp_client(app)

    pages = await asyncio.gather(*(scrape(client) for _ in range(20)))
    assert gauges.reads == 1
    assert all(value(page, "coach_safety_alerts_open") == 0 for page in pages)

    ana = await seed_learner(services.db, clock, "ana")
    async with services.db.transaction() as session:
        session.add(SafetyAlert(learner_id=ana.id, category="self_harm", opened_at=clock.now()))
    ticks.now += 1.9  # still within the cached read: the alert is not seen yet
    assert value(await scrape(client), "coach_safety_alerts_open") == 0
    ticks.now += 0.2
    assert value(await scrape(client), "coach_safety_alerts_open") == 1
    assert gauges.reads == 2


async def test_a_sick_database_still_answers_with_the_process_series(
    aiohttp_client: Callable[..., Any], services: Services, tmp_path: Path
) -> None:
    app = build_app(services)
    app.on_cleanup.clear()
    # A database without Coach's tables: the gauges' read fails.
    empty = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    app[GAUGES] = metrics.DatabaseGauges(empty, services.clock)
    client = await aiohttp_client(app)
    await Chat(services.turns, "ana").send("hi")

    samples = await scrape(client)
    await empty.dispose()
    assert value(samples, "coach_database_up") == 0
    assert value(samples, "coach_outbox_due_messages") is None
    assert value(samples, "coach_turns_total", channel="web") == 1


async def test_behind_a_proxy_metrics_need_the_token(
    aiohttp_client: Callable[..., Any], open_services: Callable[..., Any]
) -> None:
    services = await open_services("sqlite", api_token="s3cret")
    app = build_app(services)
    app.on_cleanup.clear()
    client = await aiohttp_client(app)

    # A scraper on this host needs nothing.
    assert value(await scrape(client), "coach_database_up") == 1
    # Relayed by a reverse proxy (which connects from loopback): the token is needed.
    relayed = {"X-Forwarded-For": "203.0.113.9"}
    response = await client.get("/metrics", headers=relayed)
    assert response.status == 401
    body = await response.json()
    assert body["error"]["code"] == "unauthorized"
    response = await client.get("/metrics", headers=relayed | {"Authorization": "Bearer nope"})
    assert response.status == 401
    samples = await scrape(client, **relayed, Authorization="Bearer s3cret")
    assert value(samples, "coach_database_up") == 1


@pytest.mark.parametrize(
    ("remote", "headers", "token", "allowed"),
    [
        ("127.0.0.1", {}, None, True),
        ("::1", {}, None, True),
        ("10.0.0.7", {}, None, False),
        ("10.0.0.7", {"Authorization": "Bearer t"}, None, False),
        ("10.0.0.7", {"Authorization": "Bearer t"}, "t", True),
        ("10.0.0.7", {"Authorization": "Bearer x"}, "t", False),
        ("127.0.0.1", {"X-Real-IP": "198.51.100.1"}, None, False),
        ("127.0.0.1", {"Forwarded": "for=198.51.100.1"}, None, False),
        (None, {}, None, False),
        ("not-an-address", {}, None, False),
    ],
)
def test_who_may_scrape(
    remote: str | None, headers: dict[str, str], token: str | None, allowed: bool
) -> None:
    assert metrics.scrape_allowed(remote, headers, token) is allowed


async def test_every_series_is_documented_in_the_readme(client: Client) -> None:
    response = await client.post("/api/v1/messages", json={"user": "ana", "text": "hi"})
    assert response.status == 200
    scraped = {
        family.name
        for family in text_string_to_metric_families(await (await client.get("/metrics")).text())
    }
    # Families with no sample yet (no send, no error) are not in a scrape, but are ours.
    families = scraped | {family.name for family in metrics.METRICS.registry.collect()}
    assert len(families) == 12
    section = README.read_text(encoding="utf-8").split("### Metrics", 1)[1]
    assert [name for name in sorted(families) if f"`{name}" not in section] == []
