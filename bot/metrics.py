"""What Coach tells Prometheus: turns, the outbox, sends, safeguarding, the scheduler.

Two kinds of series live here:

- Counters, histograms and gauges the code updates as things happen (a turn ran, a
  send failed, the scheduler ticked late). They live on `METRICS`, one per process,
  on a registry of the project's own: never prometheus-client's global default, so
  a library's metrics do not leak into our scrape and a test can swap in a fresh
  `Metrics()` and count from zero.
- Gauges read from the database when Prometheus scrapes (outbox depth, age of the
  oldest due row, open safeguarding alerts): `DatabaseGauges`, one per running app,
  which caches one read for a couple of seconds so a storm of scrapes (several
  Prometheus servers, a dashboard refreshing) costs the database one cheap query.

Nothing here knows about HTTP: bot/app.py serves `exposition()` at GET /metrics.
The engine, the dispatcher and the scheduler call `record_turn`/`turn`,
`record_send` and `set_scheduler_lag`.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

import bot
from bot.clock import Clock
from bot.store.db import Database
from bot.store.models import OutboxMessage, SafetyAlert

log = logging.getLogger(__name__)

# The classic Prometheus text format (0.0.4), which every Prometheus and agent
# parses; newer prometheus-client versions advertise 1.0.0 for the same bytes
# when names are plain ASCII, as ours are.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Buckets for one chat turn, in seconds. The low end resolves the target
# (p99 at most 50 ms on SQLite); 0.1 s and 1 s are the usual limits of a reply that
# feels instant and of one that keeps the flow of a conversation (Nielsen, "Response
# Times: The 3 Important Limits"); 3 s is Slack's deadline to acknowledge an event;
# beyond 10 s a person has given up waiting.
TURN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)

# A send's failure reason is short free text from the sender ("HTTP 502", "blocked by
# the user"). Label values must stay few (each is a time series kept forever), so
# they are trimmed, and past this many distinct reasons the rest count as "other".
MAX_REASON_LENGTH = 60
MAX_REASONS = 30

# One scrape's database read serves the scrapes of the next two seconds: Prometheus
# scrapes every 15 s or more by default, so a fresh read is still one per scrape.
SCRAPE_CACHE_SECONDS = 2.0

# Counters expose a `_created` sample per series by default; Prometheus's classic
# text format has no use for it and it doubles the lines of every scrape.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    """The process's own series, on a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.build = Info("coach_build", "Coach's version.", registry=self.registry)
        self.build.info({"version": bot.__version__})
        self.turn_seconds = Histogram(
            "coach_turn_duration_seconds",
            "Time to run one turn, from the channel's call to its replies (queueing "
            "behind the same person's previous message included).",
            ["channel"],
            buckets=TURN_BUCKETS,
            registry=self.registry,
        )
        self.turns = Counter(
            "coach_turns", "Turns run, redeliveries included.", ["channel"], registry=self.registry
        )
        self.turn_errors = Counter(
            "coach_turn_errors",
            "Turns that ended in an error instead of replies.",
            ["channel"],
            registry=self.registry,
        )
        self.sends = Counter(
            "coach_sends",
            "Outbox send attempts by outcome: sent, retry_after, transient, permanent.",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.send_failures = Counter(
            "coach_send_failures",
            "Outbox send attempts that did not deliver, by the sender's reason.",
            ["channel", "reason"],
            registry=self.registry,
        )
        self.scheduler_lag = Gauge(
            "coach_scheduler_lag_seconds",
            "How late the scheduler's last tick ran after it was due.",
            registry=self.registry,
        )
        self._reasons: set[str] = set()

    @contextmanager
    def turn(self, channel: str) -> Iterator[None]:
        """Time and count the turn run inside the block; an exception counts an error."""
        start = time.perf_counter()
        try:
            yield
        except Exception:
            self.turn_errors.labels(channel).inc()
            raise
        finally:
            self.turns.labels(channel).inc()
            self.turn_seconds.labels(channel).observe(time.perf_counter() - start)

    def record_send(self, channel: str, outcome_kind: str, reason: str | None = None) -> None:
        """Count one send attempt; anything but "sent" also counts a failure by reason."""
        self.sends.labels(channel, outcome_kind).inc()
        if outcome_kind != "sent":
            self.send_failures.labels(channel, self._reason_label(reason or outcome_kind)).inc()

    def set_scheduler_lag(self, seconds: float) -> None:
        """The scheduler says how late its tick ran (never negative)."""
        self.scheduler_lag.set(max(0.0, seconds))

    def _reason_label(self, reason: str) -> str:
        label = re.sub(r"\s+", " ", reason).strip()[:MAX_REASON_LENGTH] or "unknown"
        if label in self._reasons:
            return label
        if len(self._reasons) >= MAX_REASONS:
            return "other"
        self._reasons.add(label)
        return label


# The process's metrics. Module functions look it up at call time, so a test can
# replace it (monkeypatch bot.metrics.METRICS) and see only its own counts.
METRICS = Metrics()


@contextmanager
def turn(channel: str) -> Iterator[None]:
    """Time and count one turn on `channel` (the engine wraps TurnService.handle)."""
    with METRICS.turn(channel):
        yield


def record_send(channel: str, outcome_kind: str, reason: str | None = None) -> None:
    """The dispatcher's call after each send: the channel, SendOutcome.kind and .reason."""
    METRICS.record_send(channel, outcome_kind, reason)


def set_scheduler_lag(seconds: float) -> None:
    """The scheduler's call after each tick: now minus when the tick was due."""
    METRICS.set_scheduler_lag(seconds)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One read of the database for a scrape."""

    outbox_due: int
    oldest_due_age: float
    alerts_open: int


async def read_snapshot(db: Database, now: datetime) -> Snapshot:
    """Two indexed aggregates (ix_outbox_due, ix_safety_alerts_open) in one session."""
    async with db.reading() as session:
        due, oldest = (
            await session.exec(
                select(func.count(), func.min(OutboxMessage.next_attempt_at)).where(
                    OutboxMessage.status == "pending", col(OutboxMessage.next_attempt_at) <= now
                )
            )
        ).one()
        alerts = (
            await session.exec(
                select(func.count()).where(col(SafetyAlert.acknowledged_at).is_(None))
            )
        ).one()
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return Snapshot(outbox_due=int(due), oldest_due_age=age, alerts_open=int(alerts))


class DatabaseGauges(Collector):
    """Gauges computed from the database at scrape time, read at most once per
    `cache_seconds` however many scrapes arrive (concurrent ones share the read)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        cache_seconds: float = SCRAPE_CACHE_SECONDS,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._timer = timer
        self._lock = asyncio.Lock()
        self._read_at: float | None = None
        self._snapshot: Snapshot | None = None
        self.reads = 0  # how many times the database was asked (tests check the cache)

    async def refresh(self) -> None:
        """Read the database unless a read younger than `cache_seconds` exists."""
        async with self._lock:
            if self._read_at is not None and self._timer() - self._read_at < self.cache_seconds:
                return
            self.reads += 1
            try:
                self._snapshot = await read_snapshot(self.db, self.clock.now())
            except (SQLAlchemyError, OSError) as exc:
                # A scrape must still answer (the process's own series are useful
                # precisely when the database is not); coach_database_up says why.
                log.warning("metrics: database read failed: %s", type(exc).__name__)
                self._snapshot = None
            # A failed read is cached too, so a scrape storm cannot hammer a sick database.
            self._read_at = self._timer()

    def collect(self) -> Iterable[Metric]:
        snapshot = self._snapshot
        yield GaugeMetricFamily(
            "coach_database_up",
            "1 if the last scrape's database read worked, else 0.",
            value=1 if snapshot is not None else 0,
        )
        if snapshot is None:
            return
        yield GaugeMetricFamily(
            "coach_outbox_due_messages",
            "Outbox rows pending and due now (the dispatcher's backlog).",
            value=snapshot.outbox_due,
        )
        yield GaugeMetricFamily(
            "coach_outbox_oldest_due_age_seconds",
            "How long the most overdue pending outbox row has been due (0 when none).",
            value=snapshot.oldest_due_age,
        )
        yield GaugeMetricFamily(
            "coach_safety_alerts_open",
            "Safeguarding alerts no teacher has acknowledged yet.",
            value=snapshot.alerts_open,
        )


class _Scrape(Collector):
    """The process's series and the database gauges, as one exposition."""

    def __init__(self, metrics: Metrics, gauges: DatabaseGauges) -> None:
        self.metrics = metrics
        self.gauges = gauges

    def collect(self) -> Iterable[Metric]:
        yield from self.metrics.registry.collect()
        yield from self.gauges.collect()


async def exposition(gauges: DatabaseGauges) -> bytes:
    """Everything, in Prometheus's text format (refreshing the database gauges if stale)."""
    await gauges.refresh()
    return prometheus_client.generate_latest(_Scrape(METRICS, gauges))


# Headers a reverse proxy adds: a request that carries one came from elsewhere,
# even though the proxy's own connection to us is from loopback.
_FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def scrape_allowed(remote: str | None, headers: Mapping[str, str], token: str | None) -> bool:
    """May this request read /metrics?

    Metrics are no learner's data, but they say how busy a school is and how many
    safeguarding alerts are open, so they are not public. Prometheus usually
    scrapes over an internal network without credentials, and a separate metrics
    port would be one more thing to configure and firewall. So /metrics stays on
    the app's port and answers (a) a scraper on this host (loopback, not relayed by
    a proxy) and (b) anyone presenting the API token as a bearer token, which
    Prometheus sends with `authorization: {credentials_file: ...}`.
    """
    if token:
        given = headers.get("Authorization", "").encode()
        # Constant time, as for the API: a timing side channel must not reveal the token.
        if hmac.compare_digest(given, f"Bearer {token}".encode()):
            return True
    if any(name in headers for name in _FORWARDING_HEADERS):
        return False
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False
