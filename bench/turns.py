"""Persisted turns per second: in process through the engine, and over POST /api/v1/messages.

    .venv/bin/python bench/turns.py [--learners 100] [--concurrency 20] [--rounds 3]

Each learner runs the warm-up conversation (nine turns, every one committed to
the database with its inbox row, conversation, log lines). SQLite always;
PostgreSQL when COACH_BENCH_DATABASE_URL (or COACH_TEST_DATABASE_URL) is set,
each round in a fresh schema. The HTTP rows start `coach serve` in a separate
process on a loopback port and drive it with an aiohttp client. Prints a table
of medians over the rounds and saves it as bench/results/turns.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import WARMUP_SCRIPT as SCRIPT  # noqa: E402
from harness import Backend, free_port  # noqa: E402

from bot.config import Settings  # noqa: E402
from bot.engine.messages import Inbound  # noqa: E402
from bot.services import build_services  # noqa: E402
from bot.store import migrate  # noqa: E402
from bot.store.db import Database  # noqa: E402

Turn = Callable[[str, str, str, str], Awaitable[None]]


async def drive(learners: int, concurrency: int, turn: Turn) -> dict[str, float]:
    """Every learner runs the script in order; `concurrency` learners at a time."""
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def learner(n: int) -> None:
        async with gate:
            user = f"bench-{n}-{uuid.uuid4().hex[:6]}"
            for i, (kind, value) in enumerate(SCRIPT):
                started = time.perf_counter()
                await turn(user, kind, value, f"{user}-{i}")
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(learner(n) for n in range(learners)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "turns": len(latencies),
        "turns_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


async def in_process(backend: Backend, learners: int, concurrency: int) -> dict[str, float]:
    url = await backend.fresh()
    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    db = Database(url, pool_size=concurrency)
    services = build_services(settings, db=db)
    await migrate.upgrade(db)

    async def turn(user: str, kind: str, value: str, message_id: str) -> None:
        await services.turns.handle(
            Inbound(
                "web",
                user,
                message_id,
                text=value if kind == "text" else None,
                button=value if kind == "button" else None,
            )
        )

    try:
        return await drive(learners, concurrency, turn)
    finally:
        await services.close()
        await backend.drop()


async def over_http(backend: Backend, learners: int, concurrency: int) -> dict[str, float]:
    url = await backend.fresh()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COACH_")}
    env.update(
        COACH_DATABASE_URL=url,
        COACH_PORT=str(port),
        COACH_LOG_LEVEL="WARNING",
        COACH_SECRET_KEY="bench",
        COACH_DB_POOL_SIZE=str(concurrency),
        # Runs from the checkout even where the package is not installed.
        PYTHONPATH=str(ROOT),
    )
    server = subprocess.Popen(  # noqa: ASYNC220 - started once, waited on below
        [sys.executable, "-m", "bot", "serve"],
        env=env,
        cwd=backend.workdir,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
            for _ in range(300):  # up to 30 s for start-up and migrations
                try:
                    async with http.get(f"{base}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("coach serve did not become ready")

            async def turn(user: str, kind: str, value: str, message_id: str) -> None:
                body = {"user": user, kind: value, "message_id": message_id}
                async with http.post(f"{base}/api/v1/messages", json=body) as response:
                    if response.status != 200:
                        raise RuntimeError(f"{response.status}: {await response.text()}")
                    await response.read()

            return await drive(learners, concurrency, turn)
    finally:
        server.terminate()
        server.wait(timeout=30)
        await backend.drop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    pg_url = os.environ.get("COACH_BENCH_DATABASE_URL") or os.environ.get("COACH_TEST_DATABASE_URL")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        backends = [Backend("sqlite", None, Path(tmp))]
        if pg_url:
            backends.append(Backend("postgres", pg_url, Path(tmp)))
        for backend in backends:
            for path_name, runner in (("engine", in_process), ("http", over_http)):
                rounds = [
                    await runner(backend, args.learners, args.concurrency)
                    for _ in range(args.rounds)
                ]
                row: dict[str, Any] = {"backend": backend.name, "path": path_name}
                for key in ("turns_per_s", "p50_ms", "p99_ms"):
                    row[key] = round(statistics.median(r[key] for r in rounds), 1)
                row["turns"] = int(rounds[0]["turns"])
                rows.append(row)
                print_row(row, header=len(rows) == 1)

    result = {
        "bench": "turns",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "learners": args.learners,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "rows": rows,
    }
    out = ROOT / "bench" / "results" / "turns.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\n{result['machine']}; medians of {args.rounds} rounds; saved {out.relative_to(ROOT)}")


def print_row(row: dict[str, Any], *, header: bool) -> None:
    if header:
        print(
            f"{'backend':<10} {'path':<7} {'turns':>6} {'turns/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
        )
    print(
        f"{row['backend']:<10} {row['path']:<7} {row['turns']:>6} {row['turns_per_s']:>9.1f} "
        f"{row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
