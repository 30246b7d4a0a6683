"""A soak: one `coach serve` under moderate load for minutes, watched for slow leaks.

    .venv/bin/python bench/soak.py [--minutes 3] [--concurrency 20] [--backend sqlite|postgres]

Starts one real `coach serve` (as bench/http_turns.py does) on a fresh database:
a SQLite file, or a PostgreSQL database when COACH_BENCH_DATABASE_URL (or
COACH_TEST_DATABASE_URL) is set or `--backend postgres` is asked for. Then, for
the given minutes, `concurrency` simulated people at a time, each pausing a
little between messages as a person does (`--think-ms`):

- new learners join all along (so the database grows), chat through
  POST /api/v1/messages and run the warm-up (harness.WARMUP_SCRIPT);
- returning learners send a few of "menu", "/resources", "/goal", ... or press a
  button from their last reply; now and then a malformed body (an expected 422);
- web chat visitors load the page (GET /, its script and style sheet), get their
  signed cookie from GET /chat/history and chat through POST /chat/messages;
  returning ones come back with their cookie;
- a monitor reads GET /readyz and GET /metrics every couple of seconds.

Every `--interval` seconds it samples the server process from /proc/<pid>: its
resident memory (VmRSS), open file descriptors, TCP sockets (its socket fds
matched against /proc/<pid>/net/tcp and tcp6), threads, and on PostgreSQL the
server-side connections to the database (pg_stat_activity), beside the
interval's requests, errors, 5xx and latency p50/p99. Prints a row per sample,
then the verdict on the samples after the warm-up (the first 20 %): the RSS
slope (least squares) and first-half against last-half medians, and whether
fds, sockets, threads and database connections stayed within a small band.
Saves bench/results/soak_<backend>.json. A measurement, not a gate: it exits
0 whatever the verdict, non-zero only when the run itself failed.

Loopback only: every request goes to 127.0.0.1, to the one port this script's
server listens on; every loop ends by the deadline and a request cap.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as `python bench/soak.py` this folder is already first on sys.path; imported
# by tests/test_soak.py (as bench.soak) it is not, and harness is imported bare.
for _folder in (str(ROOT), str(HERE)):
    if _folder not in sys.path:
        sys.path.insert(0, _folder)

from harness import WARMUP_SCRIPT, Backend  # noqa: E402
from http_turns import Processes, start_coach, wait_ready  # noqa: E402

from bot.config import normalise_database_url  # noqa: E402

# -- the bounds of the verdict -----------------------------------------------------------------
#
# What counts as "no growth" after the warm-up: bounds on growth, never on absolute
# sizes, which a shared machine and another Python make noisy.
#
# Memory. A healthy server's RSS sits still between samples and now and then takes
# a step of a few MB (seen up to ~5 MB, at no fixed time): a burst of short-lived
# objects raises the heap's high-water mark and glibc keeps the pages. Caches
# (SQLAlchemy's compiled statements, asyncpg's prepared ones, SQLite's page cache
# per pooled connection, up to 2 MB each) fill up to their caps in the first
# minutes. A leak that matters leaks per request: at the default load (~70
# requests/s) 1 KB a request is ~4 MB/min, past RSS_SLOPE_MB_PER_MIN within a
# minute and past RSS_HALF_GROWTH_MB within a three-minute run. (On PostgreSQL
# RSS also creeps ~1-3 MB/min for minutes with no live object growing: glibc's
# heap keeps freed pages, and with MALLOC_MMAP_THRESHOLD_=131072 it is flat. The
# verdict reports that as growth: it is what an operator's graph shows.)
RSS_SLOPE_MB_PER_MIN = 2.0  # least squares over the samples after the warm-up
RSS_HALF_GROWTH_MB = 5.0  # last half's median over the first half's
# Counts (fds, TCP sockets, threads, database connections): a leak climbs and never
# comes back; honest use wobbles with the pools. The client keeps its connections
# alive (a pool of `concurrency` + 2), so the server's TCP sockets sit near that.
# What may come and go on top: the database pool's overflow, opened under a burst
# and closed after (SQLite: 5 + 10 overflow, each an aiosqlite thread and up to 3
# fds, for the file, its WAL and its shared memory; PostgreSQL: 10 + 10, a socket
# each), the default executor's threads (min(32, cores + 4); aiohttp serves files
# through it) and a few client reconnections in flight. The last sample may sit
# this far above the smallest one after the warm-up: a socket leaked every 20
# requests (3-4 a second here) is past both within 15 s; one every 5 s is past the
# TCP bound within a three-minute run.
COUNT_RISE = {"fds": 40, "tcp": 15, "threads": 16, "pg_connections": 12}


@dataclass(frozen=True)
class Bounds:
    """What the verdict allows after the warm-up; None: reported, not judged."""

    warmup: float = 0.2  # the first fifth of the run
    rss_slope_mb_per_min: float | None = RSS_SLOPE_MB_PER_MIN
    rss_half_growth_mb: float | None = RSS_HALF_GROWTH_MB
    # The median of the sample-to-sample increments, per minute: a leak raises
    # every step, a one-off step of a few MB moves it not at all.
    rss_median_step_mb_per_min: float | None = None
    count_rise: dict[str, float] = field(default_factory=lambda: dict(COUNT_RISE))


# Returning learners' messages: menu choices, commands, free text, answers.
RETURNING_TEXTS = [
    "menu",
    "/resources",
    "/goal",
    "/goals",
    "/next",
    "/checkin",
    "/interests",
    "/settings",
    "help",
    "I want to get better at fractions",
    "something about space and rockets",
    "yes",
    "no",
    "3",
    "next week",
    "blah",
]
# A session's shape: a new learner (API) or web visitor joins with this chance,
# else one who came before returns (once there is one).
NEW_SHARE = 0.3
WEB_SHARE = 0.3  # of sessions, through the web chat rather than the API
BAD_REQUEST_SHARE = 0.02  # of returning API sessions: one malformed body first
WEB_COOKIE = "coach_web"  # bot/channels/web.py's COOKIE: the signed web identity
MONITOR_EVERY = 2.0  # seconds between /readyz + /metrics reads
REQUEST_TIMEOUT = 30.0
# A cap on requests, whatever the clock does: a generous 400 a second.
MAX_REQUESTS_PER_SECOND = 400


# -- the server process, from /proc ------------------------------------------------------------

TCP_LISTEN, TCP_CLOSE_WAIT = "0A", "08"  # st column of /proc/net/tcp (include/net/tcp_states.h)


def process_sample(pid: int) -> dict[str, float]:
    """RSS (MB), open fds, TCP sockets (all, and in CLOSE_WAIT), threads of `pid`."""
    found: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key == "VmRSS":
                found["rss_mb"] = int(value.split()[0]) / 1024  # kB
            elif key == "Threads":
                found["threads"] = int(value)
    inodes: set[str] = set()
    fds = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:  # closed between the listing and the look
            continue
        fds += 1
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    tcp = close_wait = 0
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}", encoding="ascii") as sockets:
                next(sockets)  # the header
                for line in sockets:
                    fields = line.split()
                    if fields[9] in inodes:  # inode: this process holds the socket
                        tcp += 1
                        close_wait += fields[3] == TCP_CLOSE_WAIT
        except FileNotFoundError:  # no IPv6 on this machine
            continue
    found.update(fds=fds, tcp=tcp, close_wait=close_wait)
    return found


class DatabaseProbe:
    """The database's size and, on PostgreSQL, how many connections it has besides ours."""

    def __init__(self, url: str) -> None:
        self.url = normalise_database_url(url)
        self.is_postgres = make_url(self.url).get_backend_name() == "postgresql"
        self._conn: AsyncConnection | None = None

    async def sample(self) -> dict[str, float]:
        if not self.is_postgres:
            path = Path(make_url(self.url).database or "")
            size = sum(
                p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists()
            )
            return {"db_mb": size / 2**20}
        if self._conn is None:
            engine = create_async_engine(self.url, poolclass=NullPool)
            self._conn = await engine.connect()
        row = (
            await self._conn.execute(
                text(
                    "SELECT count(*) FILTER (WHERE pid <> pg_backend_pid()), "
                    "pg_database_size(current_database()) "
                    "FROM pg_stat_activity WHERE datname = current_database()"
                )
            )
        ).one()
        await self._conn.rollback()  # no snapshot held open between samples
        return {"pg_connections": int(row[0]), "db_mb": int(row[1]) / 2**20}

    async def close(self) -> None:
        if self._conn is not None:
            engine = self._conn.engine
            await self._conn.close()
            await engine.dispose()
            self._conn = None


# -- the load ----------------------------------------------------------------------------------


@dataclass
class Tally:
    """Requests of one interval (and of the whole run): counts, errors, latencies."""

    requests: int = 0
    errors: int = 0
    server_errors: int = 0
    latencies: list[float] = field(default_factory=list)

    def add(self, latency: float, ok: bool, status: int) -> None:
        self.requests += 1
        self.latencies.append(latency)
        if not ok:
            self.errors += 1
        if status >= 500:
            self.server_errors += 1

    def summary(self, seconds: float) -> dict[str, float]:
        ordered = sorted(self.latencies)

        def pick(q: float) -> float:
            return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0

        return {
            "requests": self.requests,
            "req_per_s": self.requests / seconds if seconds > 0 else 0.0,
            "errors": self.errors,
            "server_errors": self.server_errors,
            "p50_ms": pick(0.5),
            "p99_ms": pick(0.99),
        }


@dataclass
class Learner:
    """Someone who came before: their id (API) or signed cookie (web), their last buttons."""

    user: str
    web_cookie: str | None = None
    buttons: list[str] = field(default_factory=list)


class Load:
    """`concurrency` people at a time chatting with one server until `deadline`."""

    def __init__(self, base: str, concurrency: int, think_s: float, seed: int) -> None:
        self.base = base
        self.concurrency = concurrency
        self.think_s = think_s
        self.random = random.Random(seed)
        self.run = uuid.uuid4().hex[:6]
        self.interval = Tally()
        self.total = Tally()
        self.error_examples: list[str] = []
        self.returning: list[Learner] = []  # not chatting right now
        self.joined = 0
        self.ids = itertools.count()
        self.deadline = 0.0
        self.max_requests = 0

    def take_interval(self) -> Tally:
        taken, self.interval = self.interval, Tally()
        return taken

    def _over(self) -> bool:
        loop = asyncio.get_running_loop()
        return loop.time() >= self.deadline or self.total.requests >= self.max_requests

    async def _pause(self) -> None:
        left = self.deadline - asyncio.get_running_loop().time()
        if left > 0:
            await asyncio.sleep(min(left, self.random.uniform(0, 2 * self.think_s)))

    async def call(
        self,
        http: aiohttp.ClientSession,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        cookie: str | None = None,
        expect: int = 200,
    ) -> tuple[Any, str | None]:
        """One request; (its JSON or None, a cookie it set). Counted, timed, never raises."""
        headers = {"Cookie": f"{WEB_COOKIE}={cookie}"} if cookie else None
        started = time.perf_counter()
        status, answer, set_cookie, problem = 0, None, None, ""
        try:
            async with http.request(
                method, f"{self.base}{path}", json=body, headers=headers
            ) as response:
                status = response.status
                raw = await response.read()
                if response.content_type == "application/json":
                    answer = json.loads(raw)
                if WEB_COOKIE in response.cookies:
                    set_cookie = response.cookies[WEB_COOKIE].value
                if status != expect:
                    problem = raw[:200].decode(errors="replace")
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        latency = time.perf_counter() - started
        ok = status == expect and not problem
        for tally in (self.interval, self.total):
            tally.add(latency, ok, status)
        if not ok and len(self.error_examples) < 20:
            self.error_examples.append(f"{method} {path} -> {status or 'no answer'}: {problem}")
        return (answer if ok else None), set_cookie

    def _remember(self, learner: Learner, answer: Any) -> None:
        if isinstance(answer, dict):
            replies = answer.get("replies") or []
            learner.buttons = [b["value"] for r in replies for b in r.get("buttons", [])]

    def _next_message(self, learner: Learner) -> tuple[str, str]:
        if learner.buttons and self.random.random() < 0.5:
            return "button", self.random.choice(learner.buttons)
        return "text", self.random.choice(RETURNING_TEXTS)

    async def _api_turn(
        self, http: aiohttp.ClientSession, learner: Learner, kind: str, value: str
    ) -> None:
        body = {"user": learner.user, kind: value, "message_id": f"m-{next(self.ids)}"}
        answer, _ = await self.call(http, "POST", "/api/v1/messages", body=body)
        self._remember(learner, answer)

    async def _web_turn(
        self, http: aiohttp.ClientSession, learner: Learner, kind: str, value: str
    ) -> None:
        body = {kind: value, "message_id": f"m-{next(self.ids)}"}
        answer, _ = await self.call(
            http, "POST", "/chat/messages", body=body, cookie=learner.web_cookie
        )
        self._remember(learner, answer)

    async def new_api_learner(self, http: aiohttp.ClientSession) -> Learner | None:
        learner = Learner(f"soak-{self.run}-{next(self.ids)}")
        self.joined += 1
        for kind, value in WARMUP_SCRIPT:
            if self._over():
                break
            await self._api_turn(http, learner, kind, value)
            await self._pause()
        return learner

    async def new_web_visitor(self, http: aiohttp.ClientSession) -> Learner | None:
        for path in ("/", "/static/app.js", "/static/style.css"):
            await self.call(http, "GET", path)
        _, cookie = await self.call(http, "GET", "/chat/history")
        if cookie is None:  # counted as an error already, or no cookie came back
            return None
        learner = Learner(cookie.partition(".")[0], web_cookie=cookie)
        self.joined += 1
        for kind, value in WARMUP_SCRIPT:
            if self._over():
                break
            await self._pause()
            await self._web_turn(http, learner, kind, value)
        return learner

    async def returning_learner(self, http: aiohttp.ClientSession, learner: Learner) -> Learner:
        if learner.web_cookie:
            await self.call(http, "GET", "/chat/history", cookie=learner.web_cookie)
        elif self.random.random() < BAD_REQUEST_SHARE:
            # Bad input must cost nothing that stays: a blank user is a 422.
            await self.call(
                http, "POST", "/api/v1/messages", body={"user": "", "text": "hi"}, expect=422
            )
        turn = self._web_turn if learner.web_cookie else self._api_turn
        for _ in range(self.random.randint(2, 5)):
            if self._over():
                break
            await self._pause()
            await turn(http, learner, *self._next_message(learner))
        return learner

    async def person(self, http: aiohttp.ClientSession) -> None:
        """One slot of the concurrency: session after session until the deadline."""
        while not self._over():
            if not self.returning or self.random.random() < NEW_SHARE:
                web = self.random.random() < WEB_SHARE
                came = await (self.new_web_visitor(http) if web else self.new_api_learner(http))
            else:
                learner = self.returning.pop(self.random.randrange(len(self.returning)))
                came = await self.returning_learner(http, learner)
            if came is not None:
                self.returning.append(came)
            await self._pause()

    async def monitor(self, http: aiohttp.ClientSession) -> None:
        """What an operator's probes and Prometheus do: /readyz and /metrics, now and then."""
        while not self._over():
            await self.call(http, "GET", "/readyz")
            await self.call(http, "GET", "/metrics")
            left = self.deadline - asyncio.get_running_loop().time()
            await asyncio.sleep(max(0.0, min(MONITOR_EVERY, left)))

    async def drive(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self.deadline = loop.time() + seconds
        self.max_requests = int(seconds * MAX_REQUESTS_PER_SECOND)
        # Keep-alive connections, as a browser or a proxy keeps them; no cookie jar
        # (each web visitor's cookie goes in by hand).
        connector = aiohttp.TCPConnector(limit=self.concurrency + 2)
        async with aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
        ) as http:
            await asyncio.gather(
                self.monitor(http), *(self.person(http) for _ in range(self.concurrency))
            )


# -- one soak ----------------------------------------------------------------------------------


async def sample_every(
    interval: float,
    seconds: float,
    take: Callable[[float], Awaitable[dict[str, float]]],
    samples: list[dict[str, float]],
    report: Callable[[dict[str, float]], None],
) -> None:
    """`take(t)` at t = 0, interval, 2 x interval, ... up to `seconds` (and at the end)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for k in range(int(seconds // interval) + 1):
        await asyncio.sleep(max(0.0, start + k * interval - loop.time()))
        sample = await take(loop.time() - start)
        samples.append(sample)
        report(sample)


async def soak(
    url: str,
    workdir: Path,
    *,
    seconds: float,
    concurrency: int,
    interval: float,
    think_s: float = 0.25,
    seed: int = 1,
    bounds: Bounds | None = None,
    report: Callable[[dict[str, float]], None] = lambda sample: None,
) -> dict[str, Any]:
    """Start `coach serve` on `url`, load it for `seconds`, sample it every `interval`;
    the samples, the totals, the verdict and the server's exit code."""
    processes = await start_server(url, workdir)
    probe = DatabaseProbe(url)
    samples: list[dict[str, float]] = []
    try:
        await wait_ready(processes.bases)
        pid = processes.processes[0].pid
        load = Load(processes.bases[0], concurrency, think_s, seed)
        previous = [0.0]

        async def take(t: float) -> dict[str, float]:
            tally = load.take_interval()
            sample = {"t": t, **process_sample(pid), **await probe.sample()}
            sample.update(tally.summary(t - previous[0]), learners=load.joined)
            previous[0] = t
            return sample

        await asyncio.gather(
            load.drive(seconds), sample_every(interval, seconds, take, samples, report)
        )
    finally:
        await probe.close()
        await processes.stop()
    log_text = server_log(workdir)
    return {
        "samples": samples,
        "totals": load.total.summary(seconds),
        "joined": load.joined,
        "error_examples": load.error_examples,
        "server_exit_code": processes.processes[0].returncode,
        "server_log_tracebacks": log_text.count("Traceback"),
        "server_log_tail": log_text[-2000:],
        "verdict": analyse(samples, bounds),
    }


def server_log(workdir: Path) -> str:
    """What the server wrote (http_turns.start_coach's serve-<port>.log)."""
    logs = sorted(workdir.glob("serve-*.log"))
    return logs[-1].read_text(encoding="utf-8", errors="replace") if logs else ""


async def start_server(url: str, workdir: Path) -> Processes:
    """One replica with the default settings (a seam a leak experiment can swap)."""
    return await start_coach(url, 1, workdir)


# -- the verdict -------------------------------------------------------------------------------


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / spread if spread else 0.0


def analyse(samples: list[dict[str, float]], bounds: Bounds | None = None) -> dict[str, Any]:
    """Growth after the warm-up: RSS's slopes and half medians, each count's rise over
    its minimum, each against its bound (`bounds`, else the three-minute run's)."""
    bounds = bounds or Bounds()
    end = samples[-1]["t"]
    after = [s for s in samples if s["t"] >= bounds.warmup * end]
    if len(after) < 4:
        raise ValueError(f"{len(after)} samples after the warm-up: too few to judge")
    ts = [s["t"] for s in after]
    rss = [s["rss_mb"] for s in after]
    half = len(after) // 2
    steps = [(b - a) / (tb - ta) for a, b, ta, tb in zip(rss, rss[1:], ts, ts[1:], strict=False)]
    memory = {
        "rss_slope_mb_per_min": 60 * slope(ts, rss),
        "rss_half_growth_mb": statistics.median(rss[-half:]) - statistics.median(rss[:half]),
        "rss_median_step_mb_per_min": 60 * statistics.median(steps),
    }
    verdict: dict[str, Any] = {
        "after_s": ts[0],
        "samples_after": len(after),
        "rss_first_mb": rss[0],
        "rss_last_mb": rss[-1],
        "rss_first_half_median_mb": statistics.median(rss[:half]),
        "rss_last_half_median_mb": statistics.median(rss[-half:]),
        **memory,
        "rss_bounds": {key: getattr(bounds, key) for key in memory},
        "rss_flat": all(
            value <= bound
            for key, value in memory.items()
            if (bound := getattr(bounds, key)) is not None
        ),
        "counts": {},
    }
    for key, bound in bounds.count_rise.items():
        values = [s[key] for s in after if key in s]
        if not values:
            continue
        rise = values[-1] - min(values)
        verdict["counts"][key] = {
            "min": min(values),
            "max": max(values),
            "last": values[-1],
            "rise": rise,
            "bound": bound,
            "slope_per_min": 60 * slope(ts, values),
            "flat": rise <= bound,
        }
    verdict["flat"] = verdict["rss_flat"] and all(c["flat"] for c in verdict["counts"].values())
    return verdict


# -- the command -------------------------------------------------------------------------------

COLUMNS = [
    # key, heading, width, format
    ("t", "t s", 6, ".0f"),
    ("rss_mb", "RSS MB", 7, ".1f"),
    ("fds", "fds", 5, ".0f"),
    ("tcp", "tcp", 5, ".0f"),
    ("close_wait", "c-wait", 6, ".0f"),
    ("threads", "thr", 4, ".0f"),
    ("pg_connections", "pg", 4, ".0f"),
    ("learners", "joined", 7, ".0f"),
    ("db_mb", "db MB", 7, ".1f"),
    ("requests", "req", 6, ".0f"),
    ("req_per_s", "req/s", 6, ".1f"),
    ("errors", "err", 4, ".0f"),
    ("server_errors", "5xx", 4, ".0f"),
    ("p50_ms", "p50 ms", 7, ".1f"),
    ("p99_ms", "p99 ms", 7, ".1f"),
]


def table_header(postgres: bool) -> str:
    return " ".join(
        f"{heading:>{width}}"
        for key, heading, width, _ in COLUMNS
        if postgres or key != "pg_connections"
    )


def table_row(sample: dict[str, float]) -> str:
    return " ".join(
        f"{sample[key]:>{width}{fmt}}" for key, _, width, fmt in COLUMNS if key in sample
    )


def verdict_lines(result: dict[str, Any]) -> list[str]:
    v = result["verdict"]
    totals = result["totals"]
    flat = "flat" if v["rss_flat"] else "GROWING"

    def bound(key: str) -> str:
        given = v["rss_bounds"][key]
        return "not judged" if given is None else f"bound {given:g}"

    lines = [
        f"after the warm-up (t >= {v['after_s']:.0f} s, {v['samples_after']} samples):",
        f"  RSS {v['rss_first_mb']:.1f} -> {v['rss_last_mb']:.1f} MB: {flat}",
        f"    slope {v['rss_slope_mb_per_min']:+.2f} MB/min ({bound('rss_slope_mb_per_min')}), "
        f"half medians {v['rss_first_half_median_mb']:.1f} -> "
        f"{v['rss_last_half_median_mb']:.1f} MB ({v['rss_half_growth_mb']:+.1f} MB, "
        f"{bound('rss_half_growth_mb')}), median step "
        f"{v['rss_median_step_mb_per_min']:+.2f} MB/min ({bound('rss_median_step_mb_per_min')})",
    ]
    for key, c in v["counts"].items():
        lines.append(
            f"  {key}: {c['min']:.0f}..{c['max']:.0f}, last {c['last']:.0f} "
            f"({c['rise']:+.0f} over the minimum, bound {c['bound']}; "
            f"slope {c['slope_per_min']:+.1f}/min): {'flat' if c['flat'] else 'GROWING'}"
        )
    lines.append(
        f"  requests {totals['requests']:.0f} ({totals['req_per_s']:.1f}/s), "
        f"errors {totals['errors']:.0f}, 5xx {totals['server_errors']:.0f}, "
        f"p50 {totals['p50_ms']:.1f} ms, p99 {totals['p99_ms']:.1f} ms; "
        f"{result['joined']} people joined; server exit code {result['server_exit_code']}, "
        f"{result['server_log_tracebacks']} tracebacks in its log"
    )
    for example in result["error_examples"][:5]:
        lines.append(f"  error: {example}")
    if v["flat"] and not totals["server_errors"]:
        lines.append("verdict: no growth in memory or open connections, no 5xx")
    else:
        problems = [] if v["rss_flat"] else ["memory grows"]
        problems += [f"{k} grow" for k, c in v["counts"].items() if not c["flat"]]
        if totals["server_errors"]:
            problems.append(f"{totals['server_errors']:.0f} answers were 5xx")
        lines.append(f"verdict: LOOK INTO IT: {', '.join(problems)}")
        if not v["rss_flat"]:
            lines.append(
                "  (a leak, or glibc keeping freed heap pages? run again with "
                "MALLOC_MMAP_THRESHOLD_=131072, which the server inherits: a leak still grows)"
            )
    return lines


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument(
        "--think-ms", type=float, default=250.0, help="mean pause between a person's messages"
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres"])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    pg_url = os.environ.get("COACH_BENCH_DATABASE_URL") or os.environ.get("COACH_TEST_DATABASE_URL")
    backend = args.backend or ("postgres" if pg_url else "sqlite")
    if backend == "postgres" and not pg_url:
        parser.error("--backend postgres needs COACH_BENCH_DATABASE_URL")
    seconds = 60 * args.minutes
    if seconds < 4 * args.interval:
        parser.error("run for at least four intervals")

    print(
        f"soak: {backend}, {args.minutes:g} min, {args.concurrency} people at a time, "
        f"~{args.think_ms:.0f} ms between a person's messages, a sample every "
        f"{args.interval:g} s\n"
    )
    print(table_header(backend == "postgres"), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        databases = Backend(backend, pg_url, Path(tmp), prefix="soak")
        try:
            url = await databases.fresh()
            result = await soak(
                url,
                Path(tmp),
                seconds=seconds,
                concurrency=args.concurrency,
                interval=args.interval,
                think_s=args.think_ms / 1000,
                seed=args.seed,
                report=lambda sample: print(table_row(sample), flush=True),
            )
        finally:
            await databases.drop()
    print()
    for line in verdict_lines(result):
        print(line)
    if result["server_log_tracebacks"]:
        print(f"\nthe server's log ends:\n{result['server_log_tail']}")
    saved = {
        "bench": "soak",
        "backend": backend,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "minutes": args.minutes,
        "concurrency": args.concurrency,
        "interval_s": args.interval,
        "think_ms": args.think_ms,
        "bounds": dataclasses.asdict(Bounds()),
        **{k: v for k, v in result.items() if k != "server_log_tail"},
        "samples": [{k: round(v, 2) for k, v in s.items()} for s in result["samples"]],
    }
    out = ROOT / "bench" / "results" / f"soak_{backend}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
    print(f"\n{saved['machine']}; saved {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
