"""Telegram webhook end to end: `coach serve` beside a minimal python-telegram-bot bot.

    .venv/bin/python bench/telegram_vs_ptb.py [--chats 100] [--concurrency 20] [--rounds 3]

Both bots talk to the same fake Bot API (tests/fakes/telegram.py, in this process)
and are fed the same real Update JSON, POSTed to their /telegram/webhook with the
secret header. `chats` private chats each walk the same five-step goal dialog
(/goal, a wish, an outcome, an obstacle, a plan), one step after the other,
`concurrency` chats at a time. A step's latency runs from the POST until the fake
receives the last sendMessage that step answers with (how many is learned from
one chat first, per bot), so it covers the whole way to the person. Setups, each
in its own process, fresh per round:

- ours sqlite / ours postgres: `coach serve` with the Telegram channel on;
  every turn is committed (inbox, conversation, log, outbox) before the 200,
  and the outbox dispatcher sends the replies. Learners are seeded as onboarded.
  PostgreSQL when COACH_BENCH_DATABASE_URL (or COACH_TEST_DATABASE_URL) is set.
- ptb: python-telegram-bot 22, an Application with one ConversationHandler (the
  same five steps, answers in context.user_data, in memory), fed through
  application.update_queue by a bare aiohttp webhook route, as PTB's own webhook
  does. Default settings (updates one at a time), the way most people build it;
- ptb concurrent: the same with concurrent_updates=True.

Prints turns/s, p50 and p99 (medians of the rounds) and ours over the stronger
PTB row; saves bench/results/telegram_vs_ptb.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.http_turns import Databases, Processes, free_port, wait_ready  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.store.db import Database  # noqa: E402
from bot.testing.people import seed_learner  # noqa: E402
from tests.fakes.telegram import FakeTelegram, TelegramUser, Updates  # noqa: E402

SECRET = "bench-webhook-secret"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Five messages that walk dialogs/flows/goal.yaml from the start to the plan
# (the same answers as tests/test_goals.py's to_deadline).
STEPS = ["/goal", "fractions", "feel proud", "I get distracted", "put my phone away"]
# Private chat ids: Telegram user ids are positive; a high range nobody else uses.
FIRST_CHAT = 7_000_000_000
# A step whose replies have not all arrived after this is counted as an error.
STEP_DEADLINE = 30.0
# Calibration: a step's replies are all in once none came for this long (the
# dispatcher is kicked by the turn, so replies follow within milliseconds).
QUIET = 0.5
# The target (issue 7, Benchmarks 2): ours at least PTB's throughput.
TARGET_RATIO = 1.0


# -- PTB, in its own process -------------------------------------------------------------------


def ptb_server(port: int, base_url: str, token: str, concurrent: bool) -> None:
    """A minimal python-telegram-bot 22 goal dialog behind a webhook route."""
    from aiohttp import web
    from telegram import Update
    from telegram.ext import (
        Application,
        CommandHandler,
        ContextTypes,
        ConversationHandler,
        MessageHandler,
        filters,
    )

    wish, outcome, obstacle, plan = range(4)

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        assert update.message
        await update.message.reply_text("What do you want to get better at?")
        return wish

    def step(key: str, reply: str, following: int) -> Any:
        async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
            assert update.message
            assert context.user_data is not None
            context.user_data[key] = update.message.text
            await update.message.reply_text(reply)
            return following

        return handler

    text = filters.TEXT & ~filters.COMMAND
    conversation = ConversationHandler(
        entry_points=[CommandHandler("goal", start)],
        states={
            wish: [MessageHandler(text, step("wish", "What would be the best thing?", outcome))],
            outcome: [
                MessageHandler(text, step("outcome", "What might get in the way?", obstacle))
            ],
            obstacle: [MessageHandler(text, step("obstacle", "If that happens, then I…", plan))],
            plan: [MessageHandler(text, step("plan", "Saved!", ConversationHandler.END))],
        },
        fallbacks=[],
    )
    application = (
        Application.builder()
        .token(token)
        .base_url(base_url)
        .updater(None)
        .concurrent_updates(concurrent)
        .build()
    )
    application.add_handler(conversation)

    async def webhook(request: web.Request) -> web.Response:
        if request.headers.get(SECRET_HEADER) != SECRET:
            return web.Response(status=403)
        await application.update_queue.put(Update.de_json(await request.json(), application.bot))
        return web.Response(status=200)

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    async def serve() -> None:
        app = web.Application()
        app.router.add_post("/telegram/webhook", webhook)
        app.router.add_get("/readyz", ready)
        async with application:
            await application.start()
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            stop = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            await stop.wait()
            await runner.cleanup()
            await application.stop()

    asyncio.run(serve())


async def start_ptb(fake: FakeTelegram, concurrent: bool) -> Processes:
    port = free_port()
    args = [str(port), fake.base_url, fake.token] + (["--concurrent"] if concurrent else [])
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "telegram_vs_ptb.py"), "--ptb-server", *args
    )
    return Processes([process], [f"http://127.0.0.1:{port}"])


async def start_ours(fake: FakeTelegram, url: str, workdir: Path) -> Processes:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COACH_")}
    env.update(
        COACH_DATABASE_URL=url,
        COACH_PORT=str(port),
        COACH_LOG_LEVEL="WARNING",
        COACH_SECRET_KEY="bench-secret",
        COACH_TELEGRAM_TOKEN=fake.token,
        COACH_TELEGRAM_WEBHOOK_SECRET=SECRET,
        COACH_TELEGRAM_API_BASE=fake.api_base,
        PYTHONPATH=str(ROOT),
    )
    log = (workdir / f"serve-{port}.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", env=env, cwd=workdir, stdout=log, stderr=log
    )
    return Processes([process], [f"http://127.0.0.1:{port}"])


# -- the fake, with arrival times ----------------------------------------------------------


class TimedTelegram(FakeTelegram):
    """The fake Bot API, noting when each chat's sendMessage calls arrive."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: dict[int, list[float]] = {}
        self._arrived_in: dict[int, asyncio.Event] = {}

    async def _m_sendMessage(self, params: dict[str, Any], files: Any) -> dict[str, Any]:
        result = await super()._m_sendMessage(params, files)
        chat_id = int(params["chat_id"])
        self.arrivals.setdefault(chat_id, []).append(time.perf_counter())
        self._event(chat_id).set()
        return result

    def _event(self, chat_id: int) -> asyncio.Event:
        return self._arrived_in.setdefault(chat_id, asyncio.Event())

    async def wait_for(self, chat_id: int, count: int, within: float) -> float | None:
        """When the chat's `count`-th message arrived; None if not `within` seconds."""
        loop = asyncio.get_running_loop()
        until = loop.time() + within
        while len(self.arrivals.get(chat_id, [])) < count:
            event = self._event(chat_id)
            event.clear()
            try:
                await asyncio.wait_for(event.wait(), max(0.0, until - loop.time()))
            except TimeoutError:
                return None
        return self.arrivals[chat_id][count - 1]


# -- the client ----------------------------------------------------------------------------


async def post(http: aiohttp.ClientSession, base: str, update: dict[str, Any]) -> bool:
    async with http.post(
        f"{base}/telegram/webhook", json=update, headers={SECRET_HEADER: SECRET}
    ) as response:
        await response.read()
        return response.status == 200


async def calibrate(
    fake: TimedTelegram, http: aiohttp.ClientSession, base: str, updates: Updates, chat: int
) -> list[int]:
    """Walk one chat through the steps alone; how many messages each step answers with."""
    user = TelegramUser(chat, "Sam")
    counts = []
    for text in STEPS:
        before = len(fake.arrivals.get(chat, []))
        if not await post(http, base, updates.text(user, text)):
            raise RuntimeError(f"{base} refused the update for {text!r}")
        if await fake.wait_for(chat, before + 1, STEP_DEADLINE) is None:
            raise RuntimeError(f"no reply to {text!r} from {base}")
        while True:
            seen = len(fake.arrivals[chat])
            await asyncio.sleep(QUIET)
            if len(fake.arrivals[chat]) == seen:
                break
        counts.append(len(fake.arrivals[chat]) - before)
    return counts


async def drive(
    fake: TimedTelegram,
    base: str,
    chats: list[int],
    concurrency: int,
    per_step: list[int],
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    gate = asyncio.Semaphore(concurrency)
    updates = Updates()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def walk(chat: int) -> None:
            nonlocal errors
            user = TelegramUser(chat, "Sam")
            expected = len(fake.arrivals.get(chat, []))
            async with gate:
                for text, replies in zip(STEPS, per_step, strict=True):
                    expected += replies
                    started = time.perf_counter()
                    if not await post(http, base, updates.text(user, text)):
                        errors += 1
                        return
                    arrived = await fake.wait_for(chat, expected, STEP_DEADLINE)
                    if arrived is None:
                        errors += 1
                        return
                    latencies.append(arrived - started)

        started = time.perf_counter()
        await asyncio.gather(*(walk(chat) for chat in chats))
        elapsed = time.perf_counter() - started
    latencies.sort()
    if not latencies:
        raise RuntimeError(f"{base}: no step completed")
    return {
        "turns": len(latencies),
        "errors": errors,
        "turns_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


# -- one setup -------------------------------------------------------------------------------

SETUPS = [
    # name, backend (None: PTB), PTB's concurrent_updates
    ("ours sqlite", "sqlite", False),
    ("ours postgres", "postgres", False),
    ("ptb", None, False),
    ("ptb concurrent", None, True),
]


async def seed(url: str, chats: list[int]) -> None:
    db = Database(url)
    clock = SystemClock()
    try:
        for chat in chats:
            await seed_learner(db, clock, str(chat), channel="telegram")
    finally:
        await db.dispose()


async def measure(
    setup: tuple[str, str | None, bool],
    databases: Databases,
    chats: int,
    concurrency: int,
    workdir: Path,
) -> dict[str, float]:
    _, backend, concurrent = setup
    # Calibration and warm-up chats (not counted), then the measured ones.
    warm = [FIRST_CHAT + n for n in range(concurrency + 1)]
    measured = [FIRST_CHAT + 1000 + n for n in range(chats)]
    async with TimedTelegram() as fake:
        if backend is None:
            processes = await start_ptb(fake, concurrent)
        else:
            url = await databases.fresh(backend)
            processes = await start_ours(fake, url, workdir)
        try:
            await wait_ready(processes.bases)
            if backend is not None:
                await seed(url, warm + measured)
            base = processes.bases[0]
            async with aiohttp.ClientSession() as http:
                per_step = await calibrate(fake, http, base, Updates(), warm[0])
            # Warm-up: first turns load lazily built state (dateparser, pools).
            await drive(fake, base, warm[1:], concurrency, per_step)
            before = processes.cpu_seconds()
            row = await drive(fake, base, measured, concurrency, per_step)
            row["server_cpu_ms"] = 1000 * (processes.cpu_seconds() - before) / row["turns"]
            row["replies_per_step"] = per_step  # type: ignore[assignment]
            return row
        finally:
            await processes.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    pg_url = os.environ.get("COACH_BENCH_DATABASE_URL") or os.environ.get("COACH_TEST_DATABASE_URL")
    setups = [s for s in SETUPS if s[1] != "postgres" or pg_url]
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        databases = Databases(pg_url, Path(tmp))
        try:
            for round_ in range(args.rounds):
                for setup in setups:
                    row = await measure(setup, databases, args.chats, args.concurrency, Path(tmp))
                    results.setdefault(setup[0], []).append(row)
                    print(
                        f"round {round_ + 1}: {setup[0]:<15} {row['turns_per_s']:7.1f} turns/s  "
                        f"p50 {row['p50_ms']:6.1f} ms  p99 {row['p99_ms']:6.1f} ms  "
                        f"server CPU {row['server_cpu_ms']:5.2f} ms/turn  "
                        f"errors {int(row['errors'])}  replies/step {row['replies_per_step']}",
                        flush=True,
                    )
                await databases.drop_all()
        finally:
            await databases.drop_all()

    rows: list[dict[str, Any]] = []
    for name, rounds in results.items():
        out: dict[str, Any] = {"setup": name, "turns": int(rounds[0]["turns"])}
        for key in ("turns_per_s", "p50_ms", "p99_ms", "server_cpu_ms"):
            out[key] = round(statistics.median(r[key] for r in rounds), 2)
        out["errors"] = int(sum(r["errors"] for r in rounds))
        out["replies_per_step"] = rounds[0]["replies_per_step"]
        rows.append(out)
    ptb_rows = [r for r in rows if r["setup"].startswith("ptb")]
    best_ptb = max(ptb_rows, key=lambda r: r["turns_per_s"])
    for row in rows:
        row["over_best_ptb"] = round(row["turns_per_s"] / best_ptb["turns_per_s"], 3)
    targets = {
        f"{row['setup']}_over_{best_ptb['setup']}": {
            "target": TARGET_RATIO,
            "measured": row["over_best_ptb"],
            "met": row["over_best_ptb"] >= TARGET_RATIO,
        }
        for row in rows
        if row["setup"].startswith("ours")
    }
    result = {
        "bench": "telegram_vs_ptb",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "chats": args.chats,
        "concurrency": args.concurrency,
        "steps": STEPS,
        "rounds": args.rounds,
        "rows": rows,
        "targets": targets,
    }
    print_table(result)
    path = ROOT / "bench" / "results" / "telegram_vs_ptb.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\n{result['machine']}; medians of {args.rounds} rounds; saved {path.relative_to(ROOT)}")


def print_table(result: dict[str, Any]) -> None:
    print(
        f"\n{result['chats']} chats x {len(STEPS)} steps, {result['concurrency']} at a time\n"
        f"{'setup':<16}{'turns/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/turn':>13}"
        f"{'vs best PTB':>13}{'errors':>8}"
    )
    for row in result["rows"]:
        print(
            f"{row['setup']:<16}{row['turns_per_s']:>9.1f}{row['p50_ms']:>9.1f}"
            f"{row['p99_ms']:>9.1f}{row['server_cpu_ms']:>13.2f}"
            f"{row['over_best_ptb']:>13.2f}{row['errors']:>8}"
        )
    for name, target in result["targets"].items():
        verdict = "met" if target["met"] else "NOT met"
        print(f"target {name} >= {target['target']}: {target['measured']} ({verdict})")


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "--ptb-server":
        ptb_server(int(sys.argv[2]), sys.argv[3], sys.argv[4], "--concurrent" in sys.argv)
    else:
        asyncio.run(main())
