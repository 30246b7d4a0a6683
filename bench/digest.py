"""The weekly digest at district scale: every class's digest built from a term of history.

    .venv/bin/python bench/digest.py [--learners 10000] [--classes 300] [--weeks 14] [--rounds 3]

Seeds a deterministic school into a fresh database (SQLite in a temporary file;
PostgreSQL too when COACH_BENCH_DATABASE_URL is set): teachers in three time
zones, their classes, learners (a tenth of them in two classes), and a term of
goals, check-ins (some shared, with text), interest profiles, recommendations
with 👍/👎 and a few safeguarding alerts. Then, per round:

- "build all": every class's digest summarised and rendered, in one batch per
  time zone (what the weekly job does before it writes anything);
- "weekly job": `send_weekly_digests` itself at Friday 15:00, end to end: build,
  one outbox row per class, the audit rows, the commit (the rows are deleted
  between rounds so each round writes them all again);
- "one class": each class alone (what /digest does for one class), per-class
  median and p95.

Prints a table of medians over the rounds and saves bench/results/digest.json.
Target (issue 7, benchmark 3): all digests for 10,000 learners in 300 classes
with a term of history in under 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import Backend  # noqa: E402

from bot.coach.digest import ClassRef, Week, render_digest, send_weekly_digests, summarise  # noqa: E402
from bot.coach.digest.facts import zone_of  # noqa: E402
from bot.coach.goals import vocabulary  # noqa: E402
from bot.coach.jobs import JobContext  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.engine.locales import Catalogs  # noqa: E402
from bot.paths import shipped  # noqa: E402
from bot.store import migrate  # noqa: E402
from bot.store.db import Database  # noqa: E402
from bot.store.models import (  # noqa: E402
    AuditEntry,
    ChannelIdentity,
    CheckIn,
    Enrollment,
    Goal,
    InterestProfile,
    OutboxMessage,
    Person,
    RecommendationShown,
    SafetyAlert,
    SchoolClass,
)

# Friday 15:00 UTC: the default digest time for the UTC teachers (the others' came
# earlier in the day, so every class is due).
NOW = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
ZONES = ("UTC", "Europe/Madrid", "America/New_York")
TARGET_BUILD_ALL_S = 5.0
# Rows per INSERT while seeding: large enough to be quick, small enough for any
# database's bound-parameter limit.
SEED_BATCH = 2000


async def bulk(db: Database, table: Any, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert rows in batches; returns their ids in order (ids are needed for links)."""
    ids: list[int] = []
    for start in range(0, len(rows), SEED_BATCH):
        chunk = rows[start : start + SEED_BATCH]
        async with db.transaction() as session:
            result = await session.exec(  # type: ignore[call-overload]
                insert(table).returning(table.c.id), params=list(chunk)
            )
            ids.extend(int(row[0]) for row in result.all())
    return ids


async def seed(db: Database, args: argparse.Namespace, rng: random.Random) -> dict[str, int]:
    """The school and its term; returns row counts per table."""
    start = NOW - timedelta(weeks=args.weeks)
    vocab = vocabulary()
    tags = [term.id for term in vocab.interests()]
    areas = ["R", "I", "A", "S", "E", "C"]
    counts: dict[str, int] = {}

    def person(role: str, n: int, zone: str = "UTC") -> dict[str, Any]:
        return {
            "role": role,
            "name": f"{role.title()} {n}",
            "locale": rng.choice(("en", "en", "es")),
            "timezone": zone,
            "created_at": start,
            "updated_at": start,
        }

    teachers = await bulk(
        db, Person.__table__, [person("teacher", n, ZONES[n % 3]) for n in range(args.classes)]
    )
    learners = await bulk(
        db, Person.__table__, [person("learner", n) for n in range(args.learners)]
    )
    await bulk(
        db,
        ChannelIdentity.__table__,
        [
            {"channel": "telegram", "external_id": f"t{pid}", "person_id": pid,
             "unreachable": False, "created_at": start, "last_seen_at": start}
            for pid in teachers
        ],
    )  # fmt: skip
    classes = await bulk(
        db,
        SchoolClass.__table__,
        [
            {"teacher_id": t, "name": f"Class {n}", "created_at": start}
            for n, t in enumerate(teachers)
        ],
    )
    enrollments: list[dict[str, Any]] = []
    for n, pid in enumerate(learners):
        home = classes[n % len(classes)]
        enrollments.append({"class_id": home, "learner_id": pid, "created_at": start})
        if rng.random() < 0.1:  # a tenth also in a second class (an elective)
            other = rng.choice(classes)
            if other != home:
                enrollments.append({"class_id": other, "learner_id": pid, "created_at": start})
    await bulk(db, Enrollment.__table__, enrollments)
    counts.update(people=len(teachers) + len(learners), classes=len(classes))
    counts["enrollments"] = len(enrollments)

    goals: list[dict[str, Any]] = []
    owners: list[int] = []
    for pid in learners:
        for _ in range(rng.choice((1, 2, 2, 3))):
            created = start + timedelta(days=rng.randrange(args.weeks * 7))
            status = rng.choices(("active", "done", "dropped"), (6, 3, 1))[0]
            done = created + timedelta(days=rng.randrange(1, 30)) if status == "done" else None
            goals.append({
                "person_id": pid, "status": status, "stuck": rng.random() < 0.08,
                "wish": "get better at fractions", "created_at": created, "updated_at": created,
                "completed_at": min(done, NOW) if done else None,
            })  # fmt: skip
            owners.append(pid)
    goal_ids = await bulk(db, Goal.__table__, goals)
    counts["goals"] = len(goals)

    checkins: list[dict[str, Any]] = []
    for goal_id, goal in zip(goal_ids, goals, strict=True):
        rating = rng.randint(2, 5)
        moment = goal["created_at"] + timedelta(days=rng.randrange(1, 7))
        while moment < NOW:
            if rng.random() < 0.75:  # most weeks, a check-in
                rating = min(5, max(1, rating + rng.choice((-1, 0, 0, 1))))
                shared = rng.random() < 0.15
                checkins.append({
                    "goal_id": goal_id, "person_id": goal["person_id"], "rating": rating,
                    "went_well": "I practised every evening" if rng.random() < 0.5 else None,
                    "obstacle": "football practice" if rng.random() < 0.3 else None,
                    "next_step": None, "shared": shared, "created_at": moment,
                })  # fmt: skip
            moment += timedelta(days=7, hours=rng.randrange(-12, 12))
    await bulk(db, CheckIn.__table__, checkins)
    counts["checkins"] = len(checkins)

    profiles = [
        {"person_id": pid, "scores": {}, "top_areas": rng.sample(areas, rng.randint(1, 3)),
         "tags": rng.sample(tags, rng.randint(0, 3)),
         "created_at": start + timedelta(days=rng.randrange(args.weeks * 7))}
        for pid in learners
        for _ in range(rng.choice((1, 1, 2)))
    ]  # fmt: skip
    await bulk(db, InterestProfile.__table__, profiles)
    counts["profiles"] = len(profiles)

    resources = [f"r{n}" for n in range(270)]  # the shipped catalog's size
    shown: list[dict[str, Any]] = []
    for pid in learners:
        for week in range(args.weeks):
            if rng.random() < 0.6:
                at = start + timedelta(weeks=week, days=rng.randrange(7))
                rid = rng.choice(resources)
                feedback = rng.choices((1, -1, None), (3, 1, 6))[0]
                shown.append({
                    "person_id": pid, "resource_id": rid, "name": f"Resource {rid}",
                    "url": f"https://example.org/{rid}", "tags": [], "reason": "goal",
                    "feedback": feedback, "feedback_at": at if feedback else None,
                    "shown_at": at,
                })  # fmt: skip
    await bulk(db, RecommendationShown.__table__, shown)
    counts["recommendations"] = len(shown)

    alerts = [
        {"learner_id": rng.choice(learners), "category": "self_harm", "notified_count": 1,
         "opened_at": NOW - timedelta(days=rng.randrange(1, 30)),
         "acknowledged_at": None if n % 2 else NOW - timedelta(hours=1)}
        for n in range(100)
    ]  # fmt: skip
    await bulk(db, SafetyAlert.__table__, alerts)
    counts["alerts"] = len(alerts)
    return counts


async def class_refs(db: Database) -> dict[str, list[ClassRef]]:
    """Every class, grouped by its teacher's time zone."""
    from sqlmodel import col, select

    async with db.reading() as session:
        rows = await session.exec(
            select(SchoolClass.id, SchoolClass.name, SchoolClass.teacher_id, Person.timezone)
            .join(Person, col(Person.id) == col(SchoolClass.teacher_id))
            .order_by(col(SchoolClass.id))
        )
        by_zone: dict[str, list[ClassRef]] = defaultdict(list)
        for class_id, name, teacher_id, zone in rows.all():
            assert class_id is not None
            by_zone[zone].append(ClassRef(class_id, name, teacher_id))
    return by_zone


async def build(db: Database, refs: Sequence[ClassRef], zone: str, catalogs: Catalogs) -> list[str]:
    words = vocabulary()

    def render(key: str, params: Any) -> str:
        return catalogs.render(key, "en", params)

    async with db.reading() as session:
        digests = await summarise(session, refs, Week.of(NOW, zone_of(zone)), NOW)
    return [render_digest(d, render=render, locale="en", vocabulary=words) for d in digests]


async def run(backend: Backend, args: argparse.Namespace) -> dict[str, Any]:
    url = await backend.fresh()
    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    db = Database(url)
    catalogs = Catalogs.load(shipped("dialogs") / "locales")
    try:
        await migrate.upgrade(db)
        started = time.perf_counter()
        counts = await seed(db, args, random.Random(args.seed))
        seed_s = time.perf_counter() - started
        if db.is_postgres:
            # Planner statistics, as autovacuum gathers them soon after a load this size
            # on a live database; without them PostgreSQL guesses and the per-class
            # queries run ten times slower. (SQLite's planner keeps no statistics unless
            # asked, and a deployment never asks: it runs as it comes.)
            async with db.engine.connect() as conn:
                await conn.exec_driver_sql("ANALYZE")
                await conn.commit()
        by_zone = await class_refs(db)
        build_all: list[float] = []
        job: list[float] = []
        per_class: list[float] = []
        longest = 0
        for _ in range(args.rounds):
            started = time.perf_counter()
            texts = [
                t for zone, refs in by_zone.items() for t in await build(db, refs, zone, catalogs)
            ]
            build_all.append(time.perf_counter() - started)
            longest = max(len(t) for t in texts)

            context = JobContext(db=db, now=NOW, catalogs=catalogs, settings=settings)
            started = time.perf_counter()
            written = await send_weekly_digests(context)
            job.append(time.perf_counter() - started)
            assert written == args.classes, f"the job wrote {written} digests"
            async with db.transaction() as session:
                await session.exec(delete(OutboxMessage))  # type: ignore[call-overload]
                await session.exec(delete(AuditEntry))  # type: ignore[call-overload]

            for zone, refs in by_zone.items():
                for ref in refs:
                    started = time.perf_counter()
                    await build(db, [ref], zone, catalogs)
                    per_class.append((time.perf_counter() - started) * 1000)
        per_class.sort()
        return {
            "backend": backend.name,
            **counts,
            "seed_s": round(seed_s, 1),
            "build_all_s": round(statistics.median(build_all), 2),
            "job_s": round(statistics.median(job), 2),
            "class_median_ms": round(statistics.median(per_class), 1),
            "class_p95_ms": round(per_class[int(len(per_class) * 0.95)], 1),
            "longest_digest_chars": longest,
            "ok": max(statistics.median(build_all), statistics.median(job)) < TARGET_BUILD_ALL_S,
        }
    finally:
        await db.dispose()
        await backend.drop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=10_000)
    parser.add_argument("--classes", type=int, default=300)
    parser.add_argument("--weeks", type=int, default=14)  # a school term
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    pg_url = os.environ.get("COACH_BENCH_DATABASE_URL")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        backends = [Backend("sqlite", None, Path(tmp), prefix="digest")]
        if pg_url:
            backends.append(Backend("postgres", pg_url, Path(tmp)))
        for backend in backends:
            rows.append(await run(backend, args))
            print_row(rows[-1], header=len(rows) == 1)

    first = rows[0]
    result = {
        "bench": "digest",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "learners": args.learners,
        "classes": args.classes,
        "weeks": args.weeks,
        "rounds": args.rounds,
        "seed": args.seed,
        "target_build_all_s": TARGET_BUILD_ALL_S,
        "rows": rows,
    }
    out = ROOT / "bench" / "results" / "digest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"\n{result['machine']}; {first['people']} people, {first['checkins']} check-ins, "
        f"{first['recommendations']} recommendations; medians of {args.rounds} rounds; "
        f"target < {TARGET_BUILD_ALL_S:g} s; saved {out.relative_to(ROOT)}"
    )


def print_row(row: dict[str, Any], *, header: bool) -> None:
    if header:
        print(
            f"{'backend':<9} {'seed s':>7} {'build all s':>12} {'weekly job s':>13} "
            f"{'class p50 ms':>13} {'class p95 ms':>13}  ok"
        )
    print(
        f"{row['backend']:<9} {row['seed_s']:>7.1f} {row['build_all_s']:>12.2f} "
        f"{row['job_s']:>13.2f} {row['class_median_ms']:>13.1f} {row['class_p95_ms']:>13.1f}  "
        f"{'yes' if row['ok'] else 'NO'}"
    )


if __name__ == "__main__":
    asyncio.run(main())
