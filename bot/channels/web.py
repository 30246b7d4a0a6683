"""The built-in web chat: a static page at / and two JSON routes behind a signed cookie.

The page's identity is a random id in an HMAC-signed cookie (not the API token):
whoever holds the cookie is that web user, nobody can forge another's. The
cookie is HttpOnly and SameSite=Strict, and the POST route takes only
application/json, which a cross-site form cannot send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.channels.api import MAX_ID, MAX_TEXT, SERVICES, WEB_CHANNEL, read_json, validation_message
from bot.channels.errors import ApiError
from bot.channels.textcheck import BadText, clean_text
from bot.engine.messages import Inbound
from bot.paths import STATIC

COOKIE = "coach_web"
SIGNING_KEY: web.AppKey[bytes] = web.AppKey("web_signing_key", bytes)
# A school year and a bit: the learner keeps their chat across terms on one device.
COOKIE_MAX_AGE = 400 * 24 * 3600


class WebMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    button: str | None = Field(default=None, min_length=1, max_length=MAX_ID)
    message_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID)

    @model_validator(mode="after")
    def _one_of(self) -> WebMessage:
        if (self.text is None) == (self.button is None):
            raise ValueError("send exactly one of 'text' or 'button'")
        return self


def sign(key: bytes, user: str) -> str:
    mac = hmac.new(key, user.encode(), hashlib.sha256).digest()
    return f"{user}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def verify(key: bytes, cookie: str | None) -> str | None:
    """The web user id in a cookie we signed, or None for a missing or forged one."""
    if not cookie or "." not in cookie:
        return None
    user, _, _ = cookie.rpartition(".")
    if hmac.compare_digest(sign(key, user), cookie):
        return user
    return None


def _identity(request: web.Request) -> tuple[str, bool]:
    """(web user id, whether the cookie must be set on the response)."""
    user = verify(request.app[SIGNING_KEY], request.cookies.get(COOKIE))
    if user is not None:
        return user, False
    return f"w-{uuid.uuid4().hex}", True


def used_https(request: web.Request) -> bool:
    """Whether the browser reached us over HTTPS: our own TLS, or a TLS-terminating proxy
    that says so in X-Forwarded-Proto, believed only from a peer in COACH_TRUSTED_PROXY
    (anyone else could send the header)."""
    if request.secure:  # our own TLS (aiohttp reads it from the connection, not headers)
        return True
    values = request.headers.getall("X-Forwarded-Proto", [])
    if not values:
        return False
    trusted = request.app[SERVICES].settings.trusted_proxy_networks
    try:
        peer = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped  # a dual-stack socket's view of an IPv4 proxy
    if not any(peer in network for network in trusted):
        return False
    # A proxy that appends rather than replaces keeps what the client sent in front
    # ("https, http"): only the last value is the trusted proxy's own word.
    return values[-1].split(",")[-1].strip().lower() == "https"


def _with_cookie(request: web.Request, response: web.Response, user: str) -> web.Response:
    response.set_cookie(
        COOKIE,
        sign(request.app[SIGNING_KEY], user),
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="Strict",
        secure=used_https(request),
        path="/",
    )
    return response


# Only these files are served from the static folder: nothing else can be reached.
STATIC_FILES = frozenset({"app.js", "style.css"})
# Chat history is private: a shared school computer must not keep it in a cache.
PRIVATE = {"Cache-Control": "no-store"}


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def static(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        raise ApiError(404, "not_found", f"no route for {request.path}")
    return web.FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})


async def history(request: web.Request) -> web.Response:
    user, fresh = _identity(request)
    data: dict[str, Any] = {"messages": [], "expect": {"type": "none", "slot": None}}
    if not fresh:
        data = await request.app[SERVICES].turns.history(WEB_CHANNEL, user)
    response = web.json_response(data, headers=PRIVATE)
    return _with_cookie(request, response, user) if fresh else response


async def post(request: web.Request) -> web.Response:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_request", "the body must be a JSON object")
    try:
        message = WebMessage.model_validate(data)
        text = clean_text(message.text) if message.text is not None else None
        button = clean_text(message.button) if message.button is not None else None
        # Cleaned like the API's: PostgreSQL cannot store a NUL in the inbox row.
        message_id = clean_text(message.message_id) if message.message_id is not None else None
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", validation_message(exc)) from None
    except BadText as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    user, fresh = _identity(request)
    result = await request.app[SERVICES].turns.handle(
        Inbound(
            channel=WEB_CHANNEL,
            external_id=user,
            message_id=message_id or f"auto:{uuid.uuid4().hex}",
            text=text,
            button=button,
            via="webchat",
        )
    )
    response = web.json_response(result.to_json(), headers=PRIVATE)
    return _with_cookie(request, response, user) if fresh else response


def signing_key(secret: str | None, keep_in: Path) -> bytes:
    """The cookie key, from COACH_SECRET_KEY; without it, a random key kept in a file
    (mode 0600) so chats survive a restart. Several replicas must share COACH_SECRET_KEY."""
    if not secret:
        try:
            secret = keep_in.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            secret = secrets.token_urlsafe(32)
            keep_in.parent.mkdir(parents=True, exist_ok=True)
            keep_in.touch(mode=0o600)
            keep_in.write_text(secret, encoding="utf-8")
    return hashlib.sha256(b"coach-web-cookie:" + secret.encode()).digest()


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/chat/history", history)
    app.router.add_post("/chat/messages", post)
    app.router.add_get("/static/{name}", static)
