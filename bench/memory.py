"""Resident memory of one `coach serve` replica with 100,000 learners in its database.

    .venv/bin/python bench/memory.py [--learners 100000] [--warm-learners 300]

Seeds a fresh SQLite database with bulk inserts (each learner: a person, a web
identity, a conversation, an active goal and a check-in, with a weekly check-in
time so the scheduler's reminder job has all of them to look at), starts `coach
serve` on it, warms it with turns from existing learners (the nine-turn warm-up
of bench/turns.py, 50 at a time), lets a scheduler tick pass, and reads the
process's resident size from /proc/<pid>/status: VmRSS now and VmHWM, the peak.
Target (issue 7): at most 250 MB. Prints a table; saves bench/results/memory.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import create_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import WARMUP_SCRIPT as SCRIPT  # noqa: E402
from harness import free_port  # noqa: E402

from bot.store import migrate  # noqa: E402
from bot.store.db import Database  # noqa: E402
from bot.store.models import (  # noqa: E402
    ChannelIdentity,
    CheckIn,
    Conversation,
    Goal,
    Person,
)

TARGET_MB = 250.0  # issue 7, Benchmarks 5
CHUNK = 10_000  # rows per executemany: large enough to be fast, small enough for memory
READY_DEADLINE = 120.0


def seed(path: Path, learners: int) -> dict[str, float]:
    """Create the schema, then bulk-insert every learner's rows; counts and seconds."""
    url = f"sqlite:///{path}"

    async def schema() -> None:
        db = Database(url)
        try:
            await migrate.upgrade(db)
        finally:
            await db.dispose()

    asyncio.run(schema())
    started = time.perf_counter()
    now = datetime.now(UTC)
    engine = create_engine(url)
    tables: list[tuple[Any, Any]] = [
        (
            Person.__table__,  # type: ignore[attr-defined]
            lambda n: {
                "id": n, "role": "learner", "name": f"Learner {n}",
                "locale": "es" if n % 3 == 0 else "en", "timezone": "America/New_York",
                "grade_band": ("3-5", "6-8", "9-12")[n % 3], "under_13": n % 3 == 0,
                "checkin_weekday": 1 + n % 7, "checkin_time": f"{15 + n % 5:02d}:00",
                "onboarded_at": now - timedelta(days=30), "created_at": now - timedelta(days=30),
                "updated_at": now - timedelta(days=1),
            },
        ),
        (
            ChannelIdentity.__table__,  # type: ignore[attr-defined]
            lambda n: {
                "id": n, "channel": "web", "external_id": f"learner-{n}", "person_id": n,
                "unreachable": False, "created_at": now - timedelta(days=30),
                "last_seen_at": now - timedelta(days=1 + n % 20),
            },
        ),
        (
            Conversation.__table__,  # type: ignore[attr-defined]
            lambda n: {
                "id": n, "person_id": n, "flow": None, "step": None, "slots": {},
                "stack": [], "meta": {}, "version": 1,
                "updated_at": now - timedelta(days=1 + n % 20),
            },
        ),
        (
            Goal.__table__,  # type: ignore[attr-defined]
            lambda n: {
                "id": n, "person_id": n, "status": "active", "stuck": False,
                "topic": "fractions", "wish": "get better at fractions",
                "outcome": "finish the unit test calmly", "obstacle": "I rush",
                "plan": "if I rush, then I read the question twice", "measure": "quiz score",
                "created_at": now - timedelta(days=20), "updated_at": now - timedelta(days=20),
            },
        ),
        (
            CheckIn.__table__,  # type: ignore[attr-defined]
            lambda n: {
                "id": n, "goal_id": n, "person_id": n, "rating": 1 + n % 5,
                "went_well": "practised twice", "obstacle": None, "next_step": "one more quiz",
                "mood": 3, "shared": n % 4 == 0, "created_at": now - timedelta(days=7),
            },
        ),
    ]  # fmt: skip
    with engine.begin() as conn:
        for table, row in tables:
            for first in range(1, learners + 1, CHUNK):
                last = min(first + CHUNK, learners + 1)
                conn.execute(table.insert(), [row(n) for n in range(first, last)])
    engine.dispose()
    return {"learners": learners, "rows": 5 * learners, "seed_s": time.perf_counter() - started}


def memory_of(pid: int) -> dict[str, float]:
    """VmRSS (resident now) and VmHWM (the peak) in MB, from /proc/<pid>/status."""
    found: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) / 1024  # kB
    return {"rss_mb": found["VmRSS"], "peak_mb": found["VmHWM"]}


async def serve_and_measure(path: Path, learners: int, warm: int) -> dict[str, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COACH_")}
    env.update(
        COACH_DATABASE_URL=f"sqlite:///{path}",
        COACH_PORT=str(port),
        COACH_LOG_LEVEL="WARNING",
        COACH_SECRET_KEY="bench-memory",
        PYTHONPATH=str(ROOT),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", env=env, cwd=path.parent
    )
    base = f"http://127.0.0.1:{port}"
    figures: dict[str, float] = {}
    try:
        started = time.perf_counter()
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.get(f"{base}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.perf_counter() - started > READY_DEADLINE:
                    raise RuntimeError("coach serve did not become ready")
                await asyncio.sleep(0.1)
            figures["ready_s"] = time.perf_counter() - started
            figures.update({f"ready_{k}": v for k, v in memory_of(process.pid).items()})

            gate = asyncio.Semaphore(50)
            run = uuid.uuid4().hex[:6]
            step = max(1, learners // warm)

            async def learner(n: int) -> None:
                async with gate:
                    for i, (kind, value) in enumerate(SCRIPT):
                        body = {"user": f"learner-{n}", kind: value, "message_id": f"{run}-{i}"}
                        async with http.post(f"{base}/api/v1/messages", json=body) as response:
                            await response.read()
                            if response.status != 200:
                                raise RuntimeError(f"turn answered {response.status}")

            began = time.perf_counter()
            await asyncio.gather(*(learner(1 + k * step) for k in range(warm)))
            figures["warm_turns"] = warm * len(SCRIPT)
            figures["warm_turns_per_s"] = warm * len(SCRIPT) / (time.perf_counter() - began)
            # The scheduler ticks at start and every 30 s; a tick over every learner's
            # check-in time is part of a warm replica's life.
            await asyncio.sleep(2)
            figures.update({f"warm_{k}": v for k, v in memory_of(process.pid).items()})
        stopping = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        figures["exit_code"] = await asyncio.wait_for(process.wait(), 60)
        figures["stop_s"] = time.perf_counter() - stopping
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=100_000)
    parser.add_argument("--warm-learners", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "coach.db"
        seeded = seed(path, args.learners)
        print(
            f"seeded {args.learners:,} learners ({seeded['rows']:,.0f} rows) in "
            f"{seeded['seed_s']:.1f} s; database {path.stat().st_size / 2**20:.0f} MB",
            flush=True,
        )
        measured = asyncio.run(serve_and_measure(path, args.learners, args.warm_learners))
        db_mb = path.stat().st_size / 2**20
    row = {
        **{k: round(v, 1) for k, v in seeded.items()},
        "database_mb": round(db_mb, 1),
        **{k: round(v, 1) for k, v in measured.items()},
    }
    row["met"] = row["warm_rss_mb"] <= TARGET_MB and row["warm_peak_mb"] <= TARGET_MB
    result = {
        "bench": "memory",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "target_mb": TARGET_MB,
        "row": row,
    }
    print(
        f"\n{'learners':>9} {'db MB':>6} {'ready s':>7} {'RSS ready':>9} {'warm turns':>10} "
        f"{'RSS warm':>8} {'peak':>6} {'stop s':>6}  target <= {TARGET_MB:.0f} MB"
    )
    print(
        f"{row['learners']:>9,.0f} {row['database_mb']:>6.0f} {row['ready_s']:>7.1f} "
        f"{row['ready_rss_mb']:>9.1f} {row['warm_turns']:>10.0f} {row['warm_rss_mb']:>8.1f} "
        f"{row['warm_peak_mb']:>6.1f} {row['stop_s']:>6.2f}  {'met' if row['met'] else 'NOT met'}"
    )
    out = ROOT / "bench" / "results" / "memory.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\n{result['machine']}; saved {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
