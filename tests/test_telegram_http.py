"""`AiohttpRequest`, python-telegram-bot's networking on aiohttp, against the fake Bot
API server (tests/fakes/telegram.py) and two tiny servers of its own on 127.0.0.1: one
that answers late and a port where nothing listens.

Each test uses a token of its own, which `protect_in_logs` has never been given (other
tests register the fake's default one), so the record factory cannot hide a leak."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
import traceback
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.warnings import PTBDeprecationWarning

from bot.channels import telegram as channel_module
from bot.channels.telegram_http import AiohttpRequest
from tests.fakes.telegram import FakeTelegram, TelegramUser, Updates

CHAT = 4242
# Every wait in these tests is bounded by this; the slow server's too.
BOUND = 5.0


def fresh_token() -> str:
    token = f"{secrets.randbelow(10**9) + 10**8}:AA{secrets.token_urlsafe(27)[:33]}"
    assert token not in channel_module._SECRETS
    return token


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(fresh_token()) as fake:
        yield fake


@pytest.fixture
async def request_() -> AsyncIterator[AiohttpRequest]:
    request = AiohttpRequest()
    yield request
    await request.shutdown()


def bot_for(telegram: FakeTelegram, request: AiohttpRequest) -> Bot:
    return Bot(telegram.token, base_url=telegram.base_url, request=request)


@dataclass
class SlowServer:
    """Answers getMe with a real body after `delay` seconds (at most BOUND)."""

    delay: float = BOUND
    port: int = 0
    arrived: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.arrived += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.release.wait(), self.delay)
        return web.json_response({"ok": True, "result": True})

    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"


@pytest.fixture
async def slow() -> AsyncIterator[SlowServer]:
    server = SlowServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.port = int(runner.addresses[0][1])
    yield server
    server.release.set()
    await runner.cleanup()


def closed_port() -> int:
    """A port on 127.0.0.1 that was just free: connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def unaccepting() -> Iterator[int]:
    """A port on 127.0.0.1 that listens but never accepts: its queue (listen(0)) is
    full, so the kernel leaves a further connect unanswered."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = int(server.getsockname()[1])
    fillers = []
    for _ in range(3):
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.05)  # the handshakes complete in the kernel
    yield port
    for filler in fillers:
        filler.close()
    server.close()


def all_text(exc: BaseException) -> str:
    """Everything a traceback of `exc` shows (its causes and contexts too), and each
    exception's repr."""
    parts = traceback.format_exception(exc)
    seen: BaseException | None = exc
    while seen is not None:
        parts.append(repr(seen))
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return float(value if isinstance(value, int | float) else value.total_seconds())


# -- what arrives ---------------------------------------------------------------------


async def test_send_message_with_html_and_a_keyboard(
    telegram: FakeTelegram, request_: AiohttpRequest
) -> None:
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Yes", callback_data="yes"),
                InlineKeyboardButton("No", callback_data="no"),
            ]
        ]
    )
    message = await bot_for(telegram, request_).send_message(
        CHAT, "<b>Well done</b> &amp; señal 🎉", parse_mode="HTML", reply_markup=keyboard
    )
    (call,) = telegram.calls
    assert (call.method, call.status, call.content_type) == (
        "sendMessage",
        200,
        "application/x-www-form-urlencoded",
    )
    assert call.params == {
        "chat_id": CHAT,
        "text": "<b>Well done</b> &amp; señal 🎉",
        "parse_mode": "HTML",
        "reply_markup": {
            "inline_keyboard": [
                [{"text": "Yes", "callback_data": "yes"}, {"text": "No", "callback_data": "no"}]
            ]
        },
    }
    assert telegram.sent(CHAT)[-1].text == "Well done & señal 🎉"
    # The answer is parsed into a Message, as with PTB's own backend.
    assert message.text == "Well done & señal 🎉"
    assert message.chat.id == CHAT
    assert message.reply_markup == keyboard


async def test_send_document_goes_as_multipart(
    telegram: FakeTelegram, request_: AiohttpRequest
) -> None:
    content = b'{"name": "Ana", "goals": []}\n' * 200
    document = InputFile(content, filename="mis-datos-ñ.json", attach=False)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("OK", callback_data="ok")]])
    message = await bot_for(telegram, request_).send_document(
        CHAT, document, caption="<i>Your data</i>", parse_mode="HTML", reply_markup=keyboard
    )
    (call,) = telegram.calls
    assert (call.method, call.status, call.content_type) == (
        "sendDocument",
        200,
        "multipart/form-data",
    )
    # The other parameters travel as form parts beside the file.
    assert call.params == {
        "chat_id": CHAT,
        "caption": "<i>Your data</i>",
        "parse_mode": "HTML",
        "reply_markup": {"inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]},
    }
    uploaded = call.files["document"]
    # The file name as UTF-8 (as httpx sends it), not percent-encoded.
    assert (uploaded.filename, uploaded.content_type) == ("mis-datos-ñ.json", "application/json")
    assert uploaded.content == content
    assert message.document is not None
    assert message.document.file_name == "mis-datos-ñ.json"
    assert telegram.sent(CHAT)[-1].buttons == [("OK", "ok")]


async def test_a_file_given_by_attach_name_arrives_under_it(
    telegram: FakeTelegram, request_: AiohttpRequest
) -> None:
    document = InputFile(b"hello", filename="notes.txt", attach=True)
    await bot_for(telegram, request_).send_document(CHAT, document)
    (call,) = telegram.calls
    assert call.params["document"] == document.attach_uri
    assert document.attach_name is not None
    assert call.files[document.attach_name].content == b"hello"


# -- getUpdates, a long poll ----------------------------------------------------------


async def test_a_long_poll_outlasts_the_read_timeout_by_its_own_timeout(
    telegram: FakeTelegram,
) -> None:
    # PTB reads getUpdates for read_timeout + timeout: 0.3 + 1 s here, so the fake's
    # empty answer after 1 s arrives; a backend that ignored the read timeout PTB
    # passes would give up after 0.3 s.
    request = AiohttpRequest(read_timeout=0.3)
    bot = Bot(telegram.token, base_url=telegram.base_url, get_updates_request=request)
    started = time.monotonic()
    try:
        updates = await asyncio.wait_for(bot.get_updates(timeout=1), BOUND)
    finally:
        await request.shutdown()
    assert updates == ()
    assert 0.9 <= time.monotonic() - started < BOUND
    assert telegram.calls_to("getUpdates")[-1].params["timeout"] == 1


async def test_a_long_poll_returns_the_update_that_arrives_during_it(
    telegram: FakeTelegram,
) -> None:
    request = AiohttpRequest(connection_pool_size=1)
    bot = Bot(telegram.token, base_url=telegram.base_url, get_updates_request=request)
    updates = Updates()
    try:
        poll = asyncio.create_task(bot.get_updates(timeout=4, allowed_updates=["message"]))
        await asyncio.wait_for(telegram.wait_for_long_poll(), BOUND)
        sent = updates.text(TelegramUser(CHAT), "hello")
        telegram.push_update(sent)
        (update,) = await asyncio.wait_for(poll, BOUND)
    finally:
        await request.shutdown()
    assert update.update_id == sent["update_id"]
    assert update.message is not None
    assert update.message.text == "hello"
    assert telegram.calls_to("getUpdates")[-1].params["allowed_updates"] == ["message"]


async def test_the_read_timeout_is_what_it_was_given() -> None:
    assert AiohttpRequest().read_timeout == 5.0
    assert AiohttpRequest(read_timeout=None).read_timeout is None
    assert AiohttpRequest(read_timeout=12.5).read_timeout == 12.5


# -- Telegram's refusals ---------------------------------------------------------------


async def test_429_is_retry_after_with_telegrams_seconds(
    telegram: FakeTelegram, request_: AiohttpRequest
) -> None:
    telegram.rate_limit(calls=1, retry_after=17)
    bot = bot_for(telegram, request_)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(CHAT, "hi")
    assert retry_seconds(caught.value) == 17.0
    assert telegram.calls[-1].status == 429
    await bot.send_message(CHAT, "hi")  # the limit was for one call
    assert telegram.texts(CHAT) == ["hi"]


async def test_403_is_forbidden(telegram: FakeTelegram, request_: AiohttpRequest) -> None:
    telegram.block(CHAT)
    with pytest.raises(Forbidden, match="blocked by the user"):
        await bot_for(telegram, request_).send_message(CHAT, "hi")
    assert telegram.calls[-1].status == 403


# -- the network's failures ------------------------------------------------------------


async def test_a_server_that_does_not_answer_in_time_is_timed_out(slow: SlowServer) -> None:
    request = AiohttpRequest(read_timeout=0.2)
    bot = Bot(fresh_token(), base_url=slow.base_url(), request=request)
    started = time.monotonic()
    try:
        with pytest.raises(TimedOut):
            await asyncio.wait_for(bot.get_me(), BOUND)
    finally:
        await request.shutdown()
    assert slow.arrived == 1
    assert time.monotonic() - started < 2.0


async def test_a_timeout_of_none_waits_and_the_default_does_not(slow: SlowServer) -> None:
    slow.delay = 0.5
    request = AiohttpRequest(read_timeout=0.2)
    bot = Bot(fresh_token(), base_url=slow.base_url(), request=request)
    try:
        with pytest.raises(TimedOut):
            await asyncio.wait_for(bot.close(), BOUND)  # any method: the read default
        assert await asyncio.wait_for(bot.close(read_timeout=None), BOUND) is True
        assert await asyncio.wait_for(bot.close(read_timeout=2.0), BOUND) is True
    finally:
        await request.shutdown()


async def test_a_full_pool_is_timed_out_and_the_request_not_sent(slow: SlowServer) -> None:
    # The pool timeout alone bounds the wait for a connection (5 s to connect would
    # not fit in BOUND).
    request = AiohttpRequest(connection_pool_size=1, pool_timeout=0.1)
    bot = Bot(fresh_token(), base_url=slow.base_url(), request=request)
    first = asyncio.create_task(bot.close(read_timeout=BOUND))
    try:
        for _ in range(100):  # the first call holds the only connection
            if slow.arrived:
                break
            await asyncio.sleep(0.01)
        started = time.monotonic()
        with pytest.raises(TimedOut, match=r"Pool timeout.*not\* sent"):
            await asyncio.wait_for(bot.close(), BOUND)
        assert time.monotonic() - started < 1.0
        assert slow.arrived == 1
        slow.release.set()
        assert await asyncio.wait_for(first, BOUND) is True
        # The slot is free again.
        assert await asyncio.wait_for(bot.close(), BOUND) is True
    finally:
        first.cancel()
        await request.shutdown()


async def test_a_server_that_does_not_accept_is_timed_out(unaccepting: int) -> None:
    token = fresh_token()
    request = AiohttpRequest(connect_timeout=0.2)
    bot = Bot(token, base_url=f"http://127.0.0.1:{unaccepting}/bot", request=request)
    started = time.monotonic()
    try:
        with pytest.raises(TimedOut) as caught:
            await asyncio.wait_for(bot.get_me(), BOUND)
    finally:
        await request.shutdown()
    assert time.monotonic() - started < 2.0
    # aiohttp's own message ("Connection timeout to host <address>") holds the token.
    assert token not in all_text(caught.value)


async def test_a_refused_connection_is_a_network_error() -> None:
    token = fresh_token()
    request = AiohttpRequest()
    bot = Bot(token, base_url=f"http://127.0.0.1:{closed_port()}/bot", request=request)
    try:
        with pytest.raises(NetworkError) as caught:
            await asyncio.wait_for(bot.get_me(), BOUND)
    finally:
        await request.shutdown()
    assert not isinstance(caught.value, TimedOut)
    assert "aiohttp.ClientConnectorError" in caught.value.message
    assert token not in all_text(caught.value)


async def test_an_address_aiohttp_refuses_is_a_network_error_without_it() -> None:
    token = fresh_token()
    request = AiohttpRequest()
    bot = Bot(token, base_url="ftp://127.0.0.1/bot", request=request)
    try:
        with pytest.raises(NetworkError) as caught:
            await asyncio.wait_for(bot.get_me(), BOUND)
    finally:
        await request.shutdown()
    # aiohttp's text is the address itself.
    assert "aiohttp.NonHttpUrlClientError" in caught.value.message
    assert token not in all_text(caught.value)


async def test_no_error_text_or_log_record_holds_the_token(
    telegram: FakeTelegram,
    slow: SlowServer,
    unaccepting: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = telegram.token
    errors: list[TelegramError] = []
    fast = AiohttpRequest(read_timeout=0.2, connect_timeout=0.2)
    single = AiohttpRequest(connection_pool_size=1, pool_timeout=0.1)
    bot = Bot(token, base_url=telegram.base_url, request=fast)
    late = Bot(token, base_url=slow.base_url(), request=fast)
    busy = Bot(token, base_url=slow.base_url(), request=single)
    refused = Bot(token, base_url=f"http://127.0.0.1:{closed_port()}/bot", request=fast)
    unanswered = Bot(token, base_url=f"http://127.0.0.1:{unaccepting}/bot", request=fast)
    invalid = Bot(token, base_url="ftp://127.0.0.1/bot", request=fast)
    # From here on (a Bot logs its address, token and all, at DEBUG when it is made:
    # TelegramChannel registers the token with protect_in_logs before it makes one).
    caplog.set_level(logging.DEBUG)
    for name in ("aiohttp", "telegram", "asyncio"):
        caplog.set_level(logging.DEBUG, logger=name)
    telegram.rate_limit(calls=1, retry_after=3)
    telegram.block(CHAT + 1)
    held: asyncio.Task[bool] | None = None
    attempts = [
        bot.send_message(CHAT, "first"),  # 429
        bot.send_message(CHAT + 1, "blocked"),  # 403
        late.get_me(),  # read timeout
        refused.get_me(),
        unanswered.get_me(),  # connect timeout
        invalid.get_me(),
    ]
    try:
        for attempt in attempts:
            try:
                await asyncio.wait_for(attempt, BOUND)
            except TelegramError as exc:
                errors.append(exc)
        held = asyncio.create_task(busy.close(read_timeout=BOUND))
        for _ in range(100):
            if slow.arrived >= 2:
                break
            await asyncio.sleep(0.01)
        try:
            await asyncio.wait_for(busy.close(), BOUND)  # pool timeout
        except TelegramError as exc:
            errors.append(exc)
        slow.release.set()
        await asyncio.wait_for(held, BOUND)
        await bot.send_message(CHAT, "sent")  # and one that works
    finally:
        if held is not None:
            held.cancel()
        await fast.shutdown()
        await single.shutdown()
    assert [type(e).__name__ for e in errors] == [
        "RetryAfter",
        "Forbidden",
        "TimedOut",
        "NetworkError",
        "TimedOut",
        "NetworkError",
        "TimedOut",
    ]
    assert telegram.texts(CHAT) == ["sent"]
    for error in errors:
        assert token not in all_text(error)
    assert [r for r in caplog.records if r.name.startswith("telegram")]  # the library did log
    for record in caplog.records:
        assert token not in record.getMessage()
        assert token not in logging.Formatter().format(record)


# -- the session's life ----------------------------------------------------------------


async def test_the_session_opens_on_first_use_and_closes_on_shutdown(
    telegram: FakeTelegram,
) -> None:
    request = AiohttpRequest()  # made outside any request, as TelegramChannel does
    bot = bot_for(telegram, request)
    assert (await bot.get_me()).username == telegram.username
    await request.shutdown()
    await request.shutdown()  # twice is harmless
    with pytest.raises(NetworkError, match="not initialized"):
        await bot.get_me()
    await request.initialize()
    assert (await bot.get_me()).username == telegram.username
    await request.shutdown()
    async with AiohttpRequest() as again:
        assert (await bot_for(telegram, again).get_me()).is_bot


async def test_the_environments_proxy_is_used_as_httpx_would(
    telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bot is pointed at a port where nothing listens; the proxy (the fake, which
    # answers absolute-form requests like any origin server) is what answers.
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", telegram.api_base)
    base_url = f"http://127.0.0.1:{closed_port()}/bot"
    async with AiohttpRequest() as request:
        bot = Bot(telegram.token, base_url=base_url, request=request)
        assert (await asyncio.wait_for(bot.get_me(), BOUND)).username == telegram.username
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with AiohttpRequest() as request:
        bot = Bot(telegram.token, base_url=base_url, request=request)
        with pytest.raises(NetworkError):
            await asyncio.wait_for(bot.get_me(), BOUND)
