"""The HTTP API, /api/v1: a stable contract for integrations (README, OpenAPI document)."""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.channels.errors import ApiError, Handler
from bot.channels.openapi import openapi_document
from bot.channels.textcheck import BadText, clean_text
from bot.engine.messages import Inbound
from bot.services import Services

log = logging.getLogger(__name__)

SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
# The web chat, the API and the console share one identity space: a `user` here is
# the person's external id on the web channel.
WEB_CHANNEL = "web"
# The limits: Telegram's own message limit (4096) keeps channels aligned.
MAX_TEXT = 4096
MAX_ID = 128


class MessageIn(BaseModel):
    """POST /api/v1/messages: one message from `user`, text or a button's value."""

    model_config = ConfigDict(extra="forbid", strict=True)

    user: str = Field(min_length=1, max_length=MAX_ID)
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    button: str | None = Field(default=None, min_length=1, max_length=MAX_ID)
    message_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID)

    @model_validator(mode="after")
    def _one_of_text_or_button(self) -> MessageIn:
        if (self.text is None) == (self.button is None):
            raise ValueError("send exactly one of 'text' or 'button'")
        return self


async def read_json(request: web.Request) -> Any:
    """The body as JSON, or a 4xx that says what is wrong with it."""
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        raw = await request.read()  # raises 413 past client_max_size
    except ConnectionResetError:
        # The client went away before its whole body arrived: nothing was done, and
        # nobody is left to read an answer. Worth a line (a flaky network, a proxy's
        # timeout), never the body, and no stack trace.
        log.info("client disconnected mid-body", extra={"path": request.path})
        raise ApiError(400, "bad_request", "the connection closed mid-body") from None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the body is nested too deeply") from None


def validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    elif first["type"] == "missing":
        message = "this field is required"
    return f"{where}: {message}" if where else message


def parse_message(data: Any) -> MessageIn:
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_request", "the body must be a JSON object")
    try:
        message = MessageIn.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", validation_message(exc)) from None
    except RecursionError:
        raise ApiError(422, "invalid_request", "the body is nested too deeply") from None
    try:
        for field in ("user", "text", "button", "message_id"):
            value = getattr(message, field)
            if value is not None:
                setattr(message, field, clean_text(value))
    except BadText as exc:
        raise ApiError(422, "invalid_request", f"{field}: {exc}") from None
    if not message.user.strip():
        raise ApiError(422, "invalid_request", "user: must not be blank")
    return message


async def post_message(request: web.Request) -> web.Response:
    message = parse_message(await read_json(request))
    services = request.app[SERVICES]
    result = await services.turns.handle(
        Inbound(
            channel=WEB_CHANNEL,
            external_id=message.user,
            message_id=message.message_id or f"auto:{uuid.uuid4().hex}",
            text=message.text,
            button=message.button,
            via="api",
        )
    )
    return web.json_response(result.to_json())


def _user(request: web.Request) -> str:
    user = request.match_info["user"]
    # No stored id holds NUL (messages' ids are cleaned of it), and PostgreSQL refuses
    # it in a query: a 404, not a database error.
    if not 1 <= len(user) <= MAX_ID or "\x00" in user:
        raise ApiError(404, "not_found", "no such user")
    return user


async def export_user(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    data = await services.turns.export(WEB_CHANNEL, _user(request))
    if data is None:
        raise ApiError(404, "not_found", "no such user")
    return web.json_response(data)


async def delete_user(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    if not await services.turns.erase(WEB_CHANNEL, _user(request)):
        raise ApiError(404, "not_found", "no such user")
    return web.Response(status=204)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def bearer_auth(token: str | None) -> Any:
    """Every /api route needs `Authorization: Bearer <token>` when a token is set."""
    expected = f"Bearer {token}".encode() if token else None

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if expected is not None and request.path.startswith("/api/"):
            given = request.headers.get("Authorization", "").encode()
            # Constant time: a timing side channel must not reveal the token.
            if not hmac.compare_digest(given, expected):
                raise ApiError(401, "unauthorized", "send Authorization: Bearer <token>")
        return await handler(request)

    return middleware


# Any user id the API accepts: aiohttp's default variable pattern, [^{}/]+, would leave
# a person whose id has a brace unable to export or erase their data ("/" arrives
# percent-encoded and is decoded after matching).
USER_PATH = "/api/v1/users/{user:[^/]+}"


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/messages", post_message)
    app.router.add_get(f"{USER_PATH}/export", export_user)
    app.router.add_delete(USER_PATH, delete_user)
    app.router.add_get("/api/v1/openapi.json", openapi)
