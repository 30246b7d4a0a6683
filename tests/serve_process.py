"""Real `coach serve` processes for end-to-end tests (shutdown, replicas).

    server = await start_serve(url, tmp_path, gate=tmp_path / "gate")
    answer = await server.post(http, "learner-1", "hi", "m-1")
    await server.stop()                   # SIGTERM, then the exit code

`start_serve` runs `coach serve` from this checkout on a free loopback port and
waits until /readyz answers 200 (migrations done). With a `gate` folder the
process runs through `gated_serve`, which adds two hooks a test needs to act
while work is in flight:

- a turn whose text starts with "hold" stops inside its transaction (after the
  person's conversation row is locked, before anything is written), appends
  "<pid> <text>" to `gate/entered`, and goes on only once `gate/go` exists;
- a turn whose text starts with "wait" does the same before its transaction, so
  several can be in flight at once even on SQLite (one writer at a time);
- a send to the "held" channel appends "<pid> <row id>" to `gate/sending` and
  never returns (until the dispatcher is cancelled), so the row stays claimed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.config import normalise_database_url

ROOT = Path(__file__).resolve().parent.parent
# Start-up imports the dialogs, the catalog and Babel's data and runs migrations:
# about 2 s alone, much longer on a busy two-core machine running other tests.
READY_DEADLINE = 60.0
# Anything a test waits for (a line in a gate file, an exit) that should take well
# under a second; a generous bound so a busy machine does not fail the test.
DEADLINE = 30.0
HOLD_PREFIX = "hold"  # stops inside the turn's transaction
WAIT_PREFIX = "wait"  # stops before it
HELD_CHANNEL = "held"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One `coach serve` process."""

    process: asyncio.subprocess.Process
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def post(
        self, http: aiohttp.ClientSession, user: str, text: str, message_id: str
    ) -> dict[str, Any]:
        """POST /api/v1/messages; the JSON answer (an AssertionError on a non-200)."""
        body = {"user": user, "text": text, "message_id": message_id}
        async with http.post(f"{self.base}/api/v1/messages", json=body) as response:
            answer: dict[str, Any] = await response.json()
            assert response.status == 200, answer
            return answer

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    async def wait(self) -> int:
        return await asyncio.wait_for(self.process.wait(), DEADLINE)

    async def stop(self) -> int:
        """SIGTERM and the exit code; SIGKILL if it is already gone or hangs."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await self.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


# Every server a test starts: tests/conftest.py kills any still running when the test
# ends, so a test that fails or times out never leaves a `coach serve` behind.
STARTED: list[Server] = []


def kill_leftovers() -> None:
    while STARTED:
        server = STARTED.pop()
        if server.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                server.process.kill()


async def start_serve(
    url: str,
    workdir: Path,
    *,
    gate: Path | None = None,
    wait_ready: bool = True,
    name: str = "serve",
    **env: str,
) -> Server:
    """Start `coach serve` on `url` (settings from `env`, e.g. COACH_SHUTDOWN_GRACE_SECONDS)."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("COACH_")}
    environ.update(
        COACH_DATABASE_URL=url,
        COACH_PORT=str(port),
        COACH_SECRET_KEY="test-secret",
        COACH_LOG_LEVEL="INFO",
        # The dispatcher's poll: a held send is claimed soon after the test adds it.
        COACH_DISPATCH_POLL_SECONDS="0.2",
        PYTHONPATH=str(ROOT),
        **env,
    )
    command = [sys.executable, "-m", "bot", "serve"]
    if gate is not None:
        environ["COACH_TEST_GATE"] = str(gate)
        command[1:] = ["-c", "from tests.serve_process import gated_serve; gated_serve()"]
    log = _make_folders(workdir, gate) / f"{name}-{port}.log"
    with log.open("wb") as out:
        # cwd: a folder of the test's own, so no .env of the checkout is read.
        process = await asyncio.create_subprocess_exec(
            *command, cwd=workdir, env=environ, stdout=out, stderr=out
        )
    server = Server(process, port, log)
    STARTED.append(server)
    if wait_ready:
        await wait_until_ready(server)
    return server


def _make_folders(workdir: Path, gate: Path | None) -> Path:
    for folder in (workdir, gate):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
    return workdir


async def wait_until_ready(server: Server) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + READY_DEADLINE
    async with aiohttp.ClientSession() as http:
        while loop.time() < until:
            if server.process.returncode is not None:
                raise AssertionError(f"coach serve exited early:\n{server.log_text()[-3000:]}")
            try:
                async with http.get(f"{server.base}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    server.process.kill()
    raise AssertionError(f"coach serve not ready in {READY_DEADLINE} s:\n{server.log_text()}")


def _let_go(gate: Path) -> bool:
    return (gate / "go").exists()


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def wait_for_lines(path: Path, count: int) -> list[str]:
    loop = asyncio.get_running_loop()
    until = loop.time() + DEADLINE
    while loop.time() < until:
        found = lines(path)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path.name}: fewer than {count} lines after {DEADLINE} s")


async def wait_for_log(server: Server, text: str) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + DEADLINE
    while loop.time() < until:
        if text in server.log_text():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{text!r} not logged after {DEADLINE} s:\n{server.log_text()}")


# -- inside the server process ------------------------------------------------------------


def gated_serve() -> None:
    """`coach serve` with the test hooks described above (run in the child process)."""
    from bot.cli import main
    from bot.delivery import runner
    from bot.delivery.senders import SendOutcome
    from bot.engine.messages import Inbound
    from bot.engine.runtime import Dialog
    from bot.engine.turns import TurnService
    from bot.store.models import ChannelIdentity

    gate = Path(os.environ["COACH_TEST_GATE"])
    turn = Dialog.turn
    handle = TurnService.handle

    async def stop_here(text: str) -> None:
        with (gate / "entered").open("a") as out:
            out.write(f"{os.getpid()} {text}\n")
        while True:
            if _let_go(gate):
                return
            await asyncio.sleep(0.01)

    async def held_turn(self: Dialog, state: Any, *, text: str, **kwargs: Any) -> Any:
        if text.startswith(HOLD_PREFIX):
            await stop_here(text)
        return await turn(self, state, text=text, **kwargs)

    async def waiting_handle(self: TurnService, inbound: Inbound) -> Any:
        if (inbound.text or "").startswith(WAIT_PREFIX):
            await stop_here(inbound.text or "")
        return await handle(self, inbound)

    class HeldSender:
        async def send(self, identity: ChannelIdentity, payload: dict[str, Any]) -> SendOutcome:
            with (gate / "sending").open("a") as out:
                out.write(f"{os.getpid()} {identity.id}\n")
            await asyncio.Event().wait()  # until the dispatcher is cancelled
            raise AssertionError("unreachable")

    pull_senders = runner.pull_senders

    def senders(*args: Any) -> dict[str, Any]:
        return {**pull_senders(*args), HELD_CHANNEL: HeldSender()}

    Dialog.turn = held_turn  # type: ignore[method-assign]
    TurnService.handle = waiting_handle  # type: ignore[method-assign]
    runner.pull_senders = senders  # type: ignore[assignment]
    sys.exit(main(["serve"]))


@asynccontextmanager
async def fresh_pg_database(server_url: str, prefix: str) -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database of the caller's own on `server_url`; its URL.
    Dropped after, connections and all. (Advisory locks are per database, so other
    tests' replicas never wait for this one's migration lock.)"""
    admin = create_async_engine(normalise_database_url(server_url), isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield (
            make_url(normalise_database_url(server_url))
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()
