"""python-telegram-bot's networking on aiohttp: `AiohttpRequest`, a `BaseRequest`.

PTB's default backend, `HTTPXRequest`, goes through httpx, httpcore and anyio for
every Bot API call; under the Telegram webhook benchmark that stack was about 30%
of the server's CPU (httpcore even re-runs the import machinery on each request,
looking for sniffio). The service runs on aiohttp already, and aiohttp's client
costs much less per request. PTB documents `BaseRequest` as the extension point
for a custom backend: it does the rest (status codes to TelegramError, JSON).

This class mirrors `HTTPXRequest` (telegram/request/_httpxrequest.py, PTB 22.8):
the same defaults (timeouts 5 s read, write and connect, 1 s to wait for a pooled
connection, 20 s to write an upload; 256 connections), the same request bodies
(form fields, or multipart when there are files), the same CA bundle and proxies
from the environment, and the same errors (TimedOut, NetworkError). Where aiohttp
differs it says so below.

The bot token is part of every Bot API address, and some of aiohttp's error
messages name the address ("Connection timeout to host http://.../bot<token>/...");
errors raised here never carry the address's path, nor the aiohttp exception that
did (see `_failure`).
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from functools import cache
from typing import Final
from urllib.parse import urlencode, urlsplit

import aiohttp
import httpx

# ODVInput and DefaultValue are the types of BaseRequest.do_request's timeouts; PTB
# keeps them in a private module, and HTTPXRequest imports them from there too.
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

# `HTTPXRequest`'s defaults (PTB 22.8).
DEFAULT_READ_TIMEOUT: Final = 5.0
DEFAULT_WRITE_TIMEOUT: Final = 5.0
DEFAULT_CONNECT_TIMEOUT: Final = 5.0
DEFAULT_POOL_TIMEOUT: Final = 1.0
DEFAULT_MEDIA_WRITE_TIMEOUT: Final = 20.0
# PTB 22.4 raised HTTPXRequest's pool from 1 to 256 connections, and that suits a
# server: one Bot carries the outbox dispatcher's SEND_CONCURRENCY (8) sends, plus
# every webhook turn's own replies sent the moment the turn commits (one send in
# flight per turn in flight, not bounded by the dispatcher), plus answerCallbackQuery.
# A pool smaller than that peak makes sends queue for the pool timeout (1 s) and
# fail as TimedOut, to be retried after a backoff. Connections are opened only when
# needed, so a generous bound costs nothing while traffic is low. (Polling's
# getUpdates needs one: TelegramChannel gives it a pool of 1, as PTB's own
# ApplicationBuilder does.)
DEFAULT_POOL_SIZE: Final = 256
# httpx closes a pooled connection after 5 s idle (httpx.Limits' keepalive_expiry);
# aiohttp's default is 15 s. The shorter one is kept: a POST on a connection the
# server closed meanwhile fails (aiohttp retries only idempotent methods), and a
# failed send waits for the dispatcher's backoff.
KEEPALIVE_SECONDS: Final = 5.0

_FORM: Final = {"Content-Type": "application/x-www-form-urlencoded"}
_REDACTED: Final = "<redacted>"


@cache
def _ssl_context() -> ssl.SSLContext:
    """The CA bundle httpx uses (certifi, or SSL_CERT_FILE / SSL_CERT_DIR), so a
    deployment that trusts Telegram under HTTPXRequest trusts it here. Built once per
    process: loading the bundle takes ~30 ms."""
    return httpx.create_ssl_context()


def _without_address(text: str, url: str) -> str:
    """`text` with the request's address path (which holds the token) taken out."""
    path = urlsplit(url).path
    text = text.replace(url, _REDACTED)
    return text.replace(path, _REDACTED) if path.strip("/") else text


class AiohttpRequest(BaseRequest):
    """A `telegram.request.BaseRequest` on one `aiohttp.ClientSession`.

    The session is made in `initialize()` or, failing that, by the first request
    (aiohttp binds it to the running loop, and a Bot is often built before there is
    one); `shutdown()` closes it, and a request after that fails until `initialize()`
    is called again, as with HTTPXRequest.

    httpx's four timeouts, here: `pool_timeout` bounds the wait for one of the
    `connection_pool_size` slots (ours: aiohttp's own pool wait shares its bound
    with connecting, httpx's does not); `connect_timeout` bounds getting a new
    connection: name, TCP connect and TLS handshake (aiohttp's connect and
    sock_connect); `read_timeout` bounds each wait for data from the server
    (sock_read, as httpx's read timeout). aiohttp has no write timeout, so the write
    bound (the media one for an upload) goes into a cap on the whole request once it
    has its slot: connect + write + read (aiohttp's `total`). For a Bot API call
    whose body fits in the socket's buffer that changes nothing; an upload must
    finish within its share. A `None` leaves its phase, and so the cap, unbounded.

    Not carried over from HTTPXRequest: HTTP/2 (aiohttp's client speaks HTTP/1.1),
    `socket_options`, `httpx_kwargs`, SOCKS proxies; cookies are not kept (the Bot
    API sets none).
    """

    __slots__ = (
        "_closed",
        "_connect_timeout",
        "_media_write_timeout",
        "_pool_size",
        "_pool_timeout",
        "_proxies",
        "_read_timeout",
        "_session",
        "_slots",
        "_write_timeout",
    )

    def __init__(
        self,
        connection_pool_size: int = DEFAULT_POOL_SIZE,
        read_timeout: float | None = DEFAULT_READ_TIMEOUT,
        write_timeout: float | None = DEFAULT_WRITE_TIMEOUT,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        pool_timeout: float | None = DEFAULT_POOL_TIMEOUT,
        media_write_timeout: float | None = DEFAULT_MEDIA_WRITE_TIMEOUT,
    ) -> None:
        if connection_pool_size < 1:
            raise ValueError("connection_pool_size must be at least 1")
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        # Requests in flight: at most one per pooled connection.
        self._slots = asyncio.Semaphore(connection_pool_size)
        self._closed = False
        # scheme://host:port -> the proxy for it from the environment, or None.
        self._proxies: dict[str, str | None] = {}

    @property
    def read_timeout(self) -> float | None:
        """See `BaseRequest.read_timeout`: Bot.get_updates adds its long-poll timeout
        to this one."""
        return self._read_timeout

    async def initialize(self) -> None:
        """See `BaseRequest.initialize`: the session, unless there is one."""
        self._closed = False
        self._open()

    async def shutdown(self) -> None:
        """See `BaseRequest.shutdown`: close the session and its connections."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                # The same bound as the slots, so aiohttp never waits for a connection
                # itself; one host (the Bot API), so no separate per-host limit.
                limit=self._pool_size,
                limit_per_host=0,
                keepalive_timeout=KEEPALIVE_SECONDS,
                ssl=_ssl_context(),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.USER_AGENT},
                # The Bot API sets no cookies; keeping none saves parsing each answer.
                cookie_jar=aiohttp.DummyCookieJar(),
                # The environment's proxies are read once per address (`_proxy`), as
                # httpx reads them once per client, not on every request.
                trust_env=False,
            )
            self._slots = asyncio.Semaphore(self._pool_size)  # bound to this loop
        return self._session

    def _proxy(self, url: str) -> str | None:
        """HTTP(S)_PROXY / ALL_PROXY unless NO_PROXY names the host: what httpx's
        trust_env=True (HTTPXRequest's default) uses."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._proxies:
            proxies = urllib.request.getproxies()
            proxy = proxies.get(parts.scheme) or proxies.get("all")
            if proxy and parts.hostname and urllib.request.proxy_bypass(parts.hostname):
                proxy = None
            self._proxies[origin] = proxy or None
        return self._proxies[origin]

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """See `BaseRequest.do_request`: (HTTP status, body). A timeout left at
        DEFAULT_NONE is this object's; an explicit None means no limit."""
        if self._closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        session = self._open()
        slots = self._slots
        files = request_data.multipart_data if request_data else None
        fields = request_data.json_parameters if request_data else None

        # As HTTPXRequest: a timeout not given (any DefaultValue) is this object's.
        if isinstance(read_timeout, DefaultValue):
            read_timeout = self._read_timeout
        if isinstance(connect_timeout, DefaultValue):
            connect_timeout = self._connect_timeout
        if isinstance(pool_timeout, DefaultValue):
            pool_timeout = self._pool_timeout
        if isinstance(write_timeout, DefaultValue):
            write_timeout = self._media_write_timeout if files else self._write_timeout

        # HTTPXRequest hands httpx `data=json_parameters, files=multipart_data`:
        # form-encoded fields, or multipart with the fields as parts when there are
        # files (each part (filename, content, mimetype), named by its attach name).
        body: bytes | aiohttp.FormData | None = None
        headers = None
        if files:
            # quote_fields=False: a file name goes as UTF-8, as httpx sends it, not
            # percent-encoded (which Telegram would show as it is).
            form = aiohttp.FormData(quote_fields=False)
            for name, value in (fields or {}).items():
                form.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():
                form.add_field(name, content, filename=filename, content_type=mimetype)
            body = form
        elif fields:
            body = urlencode(fields).encode("ascii")
            headers = _FORM

        if slots.locked():
            try:
                async with asyncio.timeout(pool_timeout):
                    await slots.acquire()
            except TimeoutError:
                raise TimedOut(POOL_TIMEOUT_MESSAGE) from None
        else:
            await slots.acquire()  # free: returns at once
        try:
            try:
                async with session.request(
                    method,
                    url,
                    data=body,
                    headers=headers,
                    timeout=_client_timeout(read_timeout, write_timeout, connect_timeout),
                    proxy=self._proxy(url),
                ) as response:
                    return response.status, await response.read()
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                failure = _failure(exc, url)
            # Raised outside the except clause, so that the aiohttp exception (whose
            # text may hold the address) is neither its cause nor its context.
            raise failure
        finally:
            slots.release()


# HTTPXRequest's words for its PoolTimeout.
POOL_TIMEOUT_MESSAGE: Final = (
    "Pool timeout: All connections in the connection pool are occupied. Request was *not* "
    "sent to Telegram. Consider adjusting the connection pool size or the pool timeout."
)


def _client_timeout(
    read: float | None, write: float | None, connect: float | None
) -> aiohttp.ClientTimeout:
    """httpx's connect, write and read timeouts as aiohttp's (see AiohttpRequest)."""
    return aiohttp.ClientTimeout(
        total=None if read is None or write is None or connect is None else read + write + connect,
        connect=connect,
        sock_connect=connect,
        sock_read=read,
    )


def _failure(exc: BaseException, url: str) -> NetworkError:
    """The TelegramError for an aiohttp failure, as HTTPXRequest maps httpx's: a
    timeout (connect, read, the cap) is TimedOut, anything else NetworkError naming
    the exception's class; the text never holds the address (the token is in it)."""
    if isinstance(exc, TimeoutError):  # aiohttp's own timeouts subclass it
        return TimedOut()
    described = _without_address(str(exc), url)
    return NetworkError(f"aiohttp.{type(exc).__name__}: {described}")
