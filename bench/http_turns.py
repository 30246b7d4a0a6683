"""HTTP turns against real `coach serve` processes, beside a bare aiohttp ceiling.

    .venv/bin/python bench/http_turns.py [--concurrency 50 200] [--learners-per-slot 2] [--rounds 3]

Simulated learners chat through POST /api/v1/messages, each running the nine-turn
warm-up of bench/turns.py one turn after another; `concurrency` learners at a time
(so that many requests in flight), twice as many learners in all by default. Every
turn is committed (inbox, conversation, log). Setups, in the same run, each on a
fresh database and fresh processes with the default settings:

- ceiling: a bare aiohttp handler in its own process that reads the body and
  answers a fixed JSON: what this client and aiohttp alone can do here;
- sqlite: one replica on a SQLite file;
- postgres x1, postgres x2: one and two replicas on one PostgreSQL database
  (COACH_BENCH_DATABASE_URL or COACH_TEST_DATABASE_URL; skipped without), the
  client alternating between the two replicas request by request, as a load
  balancer without stickiness would.

Prints turns/s, p50 and p99 (medians of the rounds), the servers' CPU time per
turn (steadier than turns/s on a shared machine), each setup's share of the ceiling,
two replicas over one, and the issue's targets; saves bench/results/http_turns.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from harness import WARMUP_SCRIPT as SCRIPT  # noqa: E402
from harness import free_port  # noqa: E402

from bot.config import normalise_database_url  # noqa: E402

# The targets (issue 7, Benchmarks 1).
TARGET_SHARE_OF_CEILING = 0.30  # SQLite at concurrency 50
TARGET_P99_MS = 50.0  # SQLite at concurrency 50
TARGET_SCALING = 1.5  # two PostgreSQL replicas over one
READY_DEADLINE = 60.0


# -- the ceiling: a bare aiohttp handler ---------------------------------------------------


def ceiling_server(port: int) -> None:
    """Runs in its own process: read the body, answer a fixed JSON, nothing else."""
    from aiohttp import web

    answer = {
        "replies": [{"text": "Hi! I'm Coach.", "buttons": []}],
        "expect": {"type": "text", "slot": None},
    }

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(answer)

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.router.add_post("/api/v1/messages", handle)
    app.router.add_get("/readyz", ready)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# -- processes -------------------------------------------------------------------------------


@dataclass
class Processes:
    """The server processes of one setup, and the addresses the client uses."""

    processes: list[asyncio.subprocess.Process]
    bases: list[str]

    def cpu_seconds(self) -> float:
        """User and system CPU time of the server processes so far (/proc/<pid>/stat)."""
        total = 0
        for process in self.processes:
            with open(f"/proc/{process.pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (proc(5))
        return total / os.sysconf("SC_CLK_TCK")

    async def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


async def start_ceiling() -> Processes:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "http_turns.py"), "--ceiling-server", str(port)
    )
    return Processes([process], [f"http://127.0.0.1:{port}"])


async def start_coach(url: str, replicas: int, workdir: Path) -> Processes:
    processes, bases = [], []
    for n in range(replicas):
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("COACH_")}
        env.update(
            COACH_DATABASE_URL=url,
            COACH_PORT=str(port),
            COACH_LOG_LEVEL="WARNING",
            COACH_SECRET_KEY="bench-secret-shared-by-the-replicas",
            PYTHONPATH=str(ROOT),
        )
        log = (workdir / f"serve-{port}.log").open("wb")
        processes.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "serve",
                env=env,
                cwd=workdir,
                stdout=log,
                stderr=log,
            )
        )
        bases.append(f"http://127.0.0.1:{port}")
        if n == 0 and replicas > 1:
            # The first migrates a fresh database; the others would wait on its lock.
            await wait_ready(bases[:1])
    return Processes(processes, bases)


async def wait_ready(bases: list[str]) -> None:
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        for base in bases:
            until = loop.time() + READY_DEADLINE
            while True:
                try:
                    async with http.get(f"{base}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if loop.time() > until:
                    raise RuntimeError(f"{base} not ready in {READY_DEADLINE} s")
                await asyncio.sleep(0.1)


class Databases:
    """A fresh database per setup and round: a SQLite file, or a PostgreSQL database."""

    def __init__(self, pg_url: str | None, workdir: Path) -> None:
        self.pg_url = pg_url
        self.workdir = workdir
        self.created: list[str] = []

    async def _admin(self, sql: str) -> None:
        assert self.pg_url
        engine = create_async_engine(
            normalise_database_url(self.pg_url), isolation_level="AUTOCOMMIT"
        )
        async with engine.connect() as conn:
            await conn.exec_driver_sql(sql)
        await engine.dispose()

    async def fresh(self, backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{self.workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        assert self.pg_url
        name = f"bench_{uuid.uuid4().hex[:10]}"
        await self._admin(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        url = make_url(normalise_database_url(self.pg_url)).set(database=name)
        return url.render_as_string(hide_password=False)

    async def drop_all(self) -> None:
        for name in self.created:
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


# -- the client ------------------------------------------------------------------------------


async def drive(bases: list[str], learners: int, concurrency: int) -> dict[str, float]:
    """Every learner runs the script in order; `concurrency` learners at a time; request
    after request goes to the next address in turn."""
    latencies: list[float] = []
    errors = 0
    gate = asyncio.Semaphore(concurrency)
    next_base = itertools.cycle(bases)
    run = uuid.uuid4().hex[:6]
    connector = aiohttp.TCPConnector(limit=concurrency * len(bases))
    async with aiohttp.ClientSession(connector=connector) as http:

        async def learner(n: int) -> None:
            nonlocal errors
            async with gate:
                user = f"bench-{run}-{n}"
                for i, (kind, value) in enumerate(SCRIPT):
                    body = {"user": user, kind: value, "message_id": f"{user}-{i}"}
                    started = time.perf_counter()
                    async with http.post(
                        f"{next(next_base)}/api/v1/messages", json=body
                    ) as response:
                        await response.read()
                        if response.status != 200:
                            errors += 1
                    latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(learner(n) for n in range(learners)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "turns": len(latencies),
        "errors": errors,
        "turns_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


# -- one run ---------------------------------------------------------------------------------

SETUPS = [
    # name, backend, replicas
    ("ceiling", None, 1),
    ("sqlite", "sqlite", 1),
    ("postgres x1", "postgres", 1),
    ("postgres x2", "postgres", 2),
]


async def measure(
    setup: tuple[str, str | None, int],
    databases: Databases,
    concurrencies: list[int],
    per_slot: int,
    workdir: Path,
) -> dict[int, dict[str, float]]:
    _, backend, replicas = setup
    if backend is None:
        processes = await start_ceiling()
    else:
        processes = await start_coach(await databases.fresh(backend), replicas, workdir)
    try:
        await wait_ready(processes.bases)
        # Warm-up, not counted: first requests load lazily built state (dateparser's
        # languages, connection pools).
        await drive(processes.bases, 20, 10)
        measured = {}
        for c in concurrencies:
            before = processes.cpu_seconds()
            row = await drive(processes.bases, c * per_slot, c)
            # CPU the servers spent per turn: steadier than turns/s on a shared machine.
            row["server_cpu_ms"] = 1000 * (processes.cpu_seconds() - before) / row["turns"]
            measured[c] = row
        return measured
    finally:
        await processes.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 200])
    parser.add_argument(
        "--learners-per-slot", type=int, default=2, help="learners = concurrency x this"
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    pg_url = os.environ.get("COACH_BENCH_DATABASE_URL") or os.environ.get("COACH_TEST_DATABASE_URL")
    setups = [s for s in SETUPS if s[1] != "postgres" or pg_url]
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        databases = Databases(pg_url, Path(tmp))
        try:
            for round_ in range(args.rounds):
                for setup in setups:
                    measured = await measure(
                        setup, databases, args.concurrency, args.learners_per_slot, Path(tmp)
                    )
                    for c, row in measured.items():
                        results.setdefault((setup[0], c), []).append(row)
                        print(
                            f"round {round_ + 1}: {setup[0]:<12} c={c:<4} "
                            f"{row['turns_per_s']:7.1f} turns/s  p50 {row['p50_ms']:6.1f} ms  "
                            f"p99 {row['p99_ms']:6.1f} ms  "
                            f"server CPU {row['server_cpu_ms']:5.2f} ms/turn  "
                            f"errors {int(row['errors'])}",
                            flush=True,
                        )
                await databases.drop_all()
        finally:
            await databases.drop_all()

    rows: list[dict[str, Any]] = []
    for (name, c), rounds in results.items():
        row: dict[str, Any] = {"setup": name, "concurrency": c, "turns": int(rounds[0]["turns"])}
        for key in ("turns_per_s", "p50_ms", "p99_ms", "server_cpu_ms"):
            row[key] = round(statistics.median(r[key] for r in rounds), 2)
        row["errors"] = int(sum(r["errors"] for r in rounds))
        rows.append(row)
    by = {(r["setup"], r["concurrency"]): r for r in rows}
    for row in rows:
        ceiling = by.get(("ceiling", row["concurrency"]))
        row["share_of_ceiling"] = (
            round(row["turns_per_s"] / ceiling["turns_per_s"], 3) if ceiling else None
        )
    scaling = {
        c: round(by[("postgres x2", c)]["turns_per_s"] / by[("postgres x1", c)]["turns_per_s"], 2)
        for c in args.concurrency
        if ("postgres x2", c) in by and ("postgres x1", c) in by
    }
    targets = targets_met(by, scaling)
    result = {
        "bench": "http_turns",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "concurrency": args.concurrency,
        "learners_per_slot": args.learners_per_slot,
        "rounds": args.rounds,
        "rows": rows,
        "two_replicas_over_one": scaling,
        "targets": targets,
    }
    print_table(result)
    out = ROOT / "bench" / "results" / "http_turns.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\n{result['machine']}; medians of {args.rounds} rounds; saved {out.relative_to(ROOT)}")


def targets_met(
    by: dict[tuple[str, int], dict[str, Any]], scaling: dict[int, float]
) -> dict[str, Any]:
    sqlite = by.get(("sqlite", 50))
    targets: dict[str, Any] = {}
    if sqlite:
        targets["sqlite_c50_share_of_ceiling"] = {
            "target": TARGET_SHARE_OF_CEILING,
            "measured": sqlite["share_of_ceiling"],
            "met": (sqlite["share_of_ceiling"] or 0) >= TARGET_SHARE_OF_CEILING,
        }
        targets["sqlite_c50_p99_ms"] = {
            "target": TARGET_P99_MS,
            "measured": sqlite["p99_ms"],
            "met": sqlite["p99_ms"] <= TARGET_P99_MS,
        }
    for c, ratio in scaling.items():
        targets[f"postgres_c{c}_two_over_one"] = {
            "target": TARGET_SCALING,
            "measured": ratio,
            "met": ratio >= TARGET_SCALING,
        }
    return targets


def print_table(result: dict[str, Any]) -> None:
    print(
        f"\n{'setup':<12} {'c':>4} {'turns':>6} {'turns/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'of ceiling':>10} {'CPU ms':>7} {'errors':>6}"
    )
    for row in result["rows"]:
        share = row["share_of_ceiling"]
        print(
            f"{row['setup']:<12} {row['concurrency']:>4} {row['turns']:>6} "
            f"{row['turns_per_s']:>9.1f} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} "
            f"{'' if share is None else f'{100 * share:.1f}%':>10} "
            f"{row['server_cpu_ms']:>7.2f} {row['errors']:>6}"
        )
    for c, ratio in result["two_replicas_over_one"].items():
        print(f"postgres, two replicas over one at c={c}: {ratio:.2f}x")
    for name, target in result["targets"].items():
        verdict = "met" if target["met"] else "NOT met"
        print(f"target {name}: {target['measured']} against {target['target']}: {verdict}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--ceiling-server"]:
        ceiling_server(int(sys.argv[2]))  # the child process start_ceiling runs
    else:
        asyncio.run(main())
