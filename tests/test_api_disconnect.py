"""A client that hangs up while sending its body (a flaky phone network, a proxy's
timeout) is not an error on our side: no 500, no stack trace, no body in the log, one
INFO line; nothing is run or stored."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from sqlmodel import select

from bot.app import build_app
from bot.services import Services
from bot.store.models import InboxMessage

SECRET = "my-secret-diary-entry"  # must never reach a log line


@pytest.fixture
async def port(any_services: Services) -> AsyncIterator[int]:
    """The real application served as `coach serve` serves it (aiohttp's test server
    would cancel a handler whose client hangs up; web.run_app does not)."""
    app = build_app(any_services)
    app.on_cleanup.clear()  # the services fixture closes the database
    runner = web.AppRunner(app, handler_cancellation=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert runner.addresses
    yield int(runner.addresses[0][1])
    await runner.cleanup()


async def hang_up_mid_body(port: int, path: str) -> None:
    """Send the headers and half the promised body, then close the connection."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    partial = f'{{"user": "learner-1", "text": "{SECRET}'.encode()
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: coach\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(partial) + 100}\r\n\r\n".encode()
        + partial
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def logged(caplog: pytest.LogCaptureFixture, message: str, count: int) -> None:
    """Wait (bounded) until the server side has logged `message` `count` times."""
    for _ in range(500):
        if sum(r.getMessage() == message for r in caplog.records) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{message!r} not logged {count} times: {caplog.records}")


async def test_a_client_hanging_up_mid_body_is_one_quiet_info_line(
    port: int, any_services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await hang_up_mid_body(port, "/api/v1/messages")
    await hang_up_mid_body(port, "/chat/messages")
    await logged(caplog, "client disconnected mid-body", 2)

    mine = [r for r in caplog.records if r.name.startswith("bot.")]
    assert [(r.levelname, getattr(r, "path", None)) for r in mine] == [
        ("INFO", "/api/v1/messages"),
        ("INFO", "/chat/messages"),
    ]
    assert all(r.exc_info is None for r in mine)
    assert SECRET not in caplog.text
    assert "unhandled error" not in caplog.text

    # Nothing ran; the next whole request is served as usual.
    async with any_services.db.reading() as session:
        assert (await session.exec(select(InboxMessage))).all() == []
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"http://127.0.0.1:{port}/api/v1/messages",
            json={"user": "learner-1", "text": "hi", "message_id": "m-1"},
        ) as response,
    ):
        assert response.status == 200
        assert (await response.json())["replies"]
