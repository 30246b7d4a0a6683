"""A fake Slack Web API server, and builders for the signed requests Slack sends us.

    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.base_url)
        await client.chat_postMessage(channel="D0LEARNER1", text="hi")
        assert slack.posted("D0LEARNER1")[-1].text == "hi"

It serves /api/<method> on 127.0.0.1 for auth.test, chat.postMessage, chat.update,
conversations.open and oauth.v2.access, reading parameters the ways slack_sdk
sends them (query string for `params=`, a form for `data=`, a JSON body for
`json=`; the token as `Authorization: Bearer`, oauth.v2.access's client
credentials as HTTP Basic). Answers have Slack's shapes: HTTP 200 with
{"ok": true, ...} or {"ok": false, "error": "..."}, and for rate limits HTTP 429
with a Retry-After header (https://api.slack.com/apis/rate-limits). Several
workspaces are several bot tokens; oauth.v2.access mints one per approved code.

`SlackRequests` builds what Slack POSTs to an app: Events API callbacks
(message.im, app_mention), slash commands and block_actions interactivity
payloads, signed with the v0 scheme (https://api.slack.com/authentication/verifying-requests-from-slack):
X-Slack-Signature = "v0=" + HMAC-SHA256(signing secret, "v0:{timestamp}:{body}").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

DEFAULT_BOT_TOKEN = "xoxb-1111111111-2222222222-FakeBotTokenForTests"
DEFAULT_SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"

# Limits from Slack's method and Block Kit references (chat.postMessage: 40,000
# characters of text, 50 blocks; section text 3,000; button text 75, value 2,000,
# action_id 255).
MAX_TEXT = 40_000
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ID = 255
_BLOCK_TYPES = {
    "section",
    "actions",
    "context",
    "divider",
    "header",
    "image",
    "input",
    "rich_text",
    "file",
    "video",
    "markdown",
}
_JSON_FIELDS = {"blocks", "attachments", "metadata"}
_BOOL_FIELDS = {"return_im", "unfurl_links", "unfurl_media", "mrkdwn", "reply_broadcast"}
RATE_LIMITED = ("chat.postMessage", "chat.update", "conversations.open")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")


class SlackError(Exception):
    """An {"ok": false, "error": ...} answer."""

    def __init__(self, error: str, messages: list[str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []


@dataclass(frozen=True)
class Call:
    """One request: the method, its parameters as Slack reads them, the HTTP status,
    how the body came (form or JSON) and the token it carried."""

    method: str
    params: dict[str, Any]
    status: int
    content_type: str
    token: str | None


@dataclass
class PostedMessage:
    """A message in a channel as people see it now (updates applied)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    team_id: str = ""

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, value) of every button in the blocks."""
        found: list[tuple[str, str]] = []
        for block in self.blocks:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element.get("type") == "button":
                    found.append((element["text"]["text"], element.get("value", "")))
        return found


@dataclass(frozen=True)
class Workspace:
    team_id: str
    team_name: str
    bot_user_id: str
    bot_id: str


def _check_blocks(blocks: Any) -> list[dict[str, Any]]:
    if blocks is None:
        return []
    if not isinstance(blocks, list):
        raise SlackError("invalid_blocks_format")
    if len(blocks) > MAX_BLOCKS:
        raise SlackError("invalid_blocks", [f"[ERROR] no more than {MAX_BLOCKS} items allowed"])
    for index, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
            raise SlackError(
                "invalid_blocks", [f"[ERROR] unsupported type [json-pointer:/{index}]"]
            )
        text = block.get("text")
        if isinstance(text, dict) and len(str(text.get("text", ""))) > MAX_SECTION_TEXT:
            raise SlackError(
                "invalid_blocks",
                [
                    f"[ERROR] must be less than {MAX_SECTION_TEXT + 1} characters "
                    f"[json-pointer:/{index}/text/text]"
                ],
            )
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("type") != "button":
                continue
            label = element.get("text", {}).get("text", "")
            if not label or len(label) > MAX_BUTTON_TEXT:
                raise SlackError("invalid_blocks", ["[ERROR] button text is invalid"])
            if len(str(element.get("value", ""))) > MAX_BUTTON_VALUE:
                raise SlackError("invalid_blocks", ["[ERROR] button value is too long"])
            if len(str(element.get("action_id", ""))) > MAX_ACTION_ID:
                raise SlackError("invalid_blocks", ["[ERROR] action_id is too long"])
    return blocks


class FakeSlack:
    """The Slack Web API on loopback. Use as an async context manager."""

    def __init__(
        self,
        *,
        bot_token: str = DEFAULT_BOT_TOKEN,
        team_id: str = "T0COACH001",
        team_name: str = "Coach School",
        client_id: str = "1111111111.2222222222",
        client_secret: str = "fake-client-secret",
        app_id: str = "A0COACHAPP",
        now: Callable[[], float] = time.time,
    ) -> None:
        self.bot_token = bot_token
        self.team_id = team_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.app_id = app_id
        self.now = now
        self.tokens: dict[str, Workspace] = {
            bot_token: Workspace(team_id, team_name, "U0COACHBOT", "B0COACHBOT")
        }
        self.calls: list[Call] = []
        self._codes: dict[str, tuple[Workspace, str, str | None]] = {}
        self._pending_tokens: dict[str, str] = {}
        self._messages: dict[str, list[PostedMessage]] = {}
        self._opened: set[str] = set()
        self._disabled_users: set[str] = set()
        self._missing_channels: set[str] = set()
        self._rate_limited = 0
        self._retry_after = 0
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """AsyncWebClient(base_url=...): slack_sdk joins method names onto it."""
        return f"http://127.0.0.1:{self.port}/api/"

    # -- what tests tell it ----------------------------------------------------------

    def rate_limit(self, calls: int, retry_after: int) -> None:
        """Answer the next `calls` posts, updates and opens with 429 and Retry-After."""
        self._rate_limited = calls
        self._retry_after = retry_after

    def disable_user(self, user_id: str) -> None:
        """The user's account was deactivated: opening a DM with them fails."""
        self._disabled_users.add(user_id)

    def remove_channel(self, channel: str) -> None:
        """The channel is gone (or the app was removed from it): posts fail."""
        self._missing_channels.add(channel)

    def approve_install(
        self,
        *,
        team_id: str,
        team_name: str,
        installer: str = "U0TEACHER1",
        redirect_uri: str | None = None,
    ) -> tuple[str, str]:
        """A workspace admin approved the app: returns (the OAuth code, the bot token
        oauth.v2.access will give for it)."""
        suffix = team_id[-4:].upper()
        workspace = Workspace(team_id, team_name, f"U0BOT{suffix}", f"B0BOT{suffix}")
        code = f"{team_id}.{uuid.uuid4().hex[:12]}"
        token = f"xoxb-{team_id}-{uuid.uuid4().hex[:10]}"
        self._codes[code] = (workspace, installer, redirect_uri)
        self._pending_tokens[code] = token
        return code, token

    # -- what tests read -------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def posted(self, channel: str) -> list[PostedMessage]:
        return list(self._messages.get(channel, []))

    def texts(self, channel: str) -> list[str]:
        return [message.text for message in self.posted(channel)]

    @staticmethod
    def dm_channel(user_id: str) -> str:
        """The DM channel id conversations.open gives for a user."""
        return "D" + user_id[1:]

    # -- the server ------------------------------------------------------------------

    async def _read(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise SlackError("invalid_json") from None
                if not isinstance(body, dict):
                    raise SlackError("invalid_json")
                params.update(body)
            else:
                params.update(
                    {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
                )
        for name in _JSON_FIELDS & params.keys():
            if isinstance(params[name], str):
                try:
                    params[name] = json.loads(params[name])
                except ValueError:
                    raise SlackError(f"invalid_{name}") from None
        for name in _BOOL_FIELDS & params.keys():
            if isinstance(params[name], str):
                params[name] = params[name].lower() in ("1", "true")
        return params

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        authorization = request.headers.get("Authorization", "")
        token: str | None = None
        if authorization.startswith("Bearer "):
            token = authorization.removeprefix("Bearer ")
        try:
            params = await self._read(request)
        except SlackError as exc:
            return self._answer(request, method, {}, token, {"ok": False, "error": exc.error})
        token = token or params.pop("token", None)
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return self._answer(
                request, method, params, token, {"ok": False, "error": "unknown_method"}
            )
        if method in RATE_LIMITED and self._rate_limited > 0:
            self._rate_limited -= 1
            return self._answer(
                request,
                method,
                params,
                token,
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(self._retry_after)},
            )
        try:
            if method == "oauth.v2.access":
                result = await handler(params, request)
            else:
                if not token:
                    raise SlackError("not_authed")
                workspace = self.tokens.get(token)
                if workspace is None:
                    raise SlackError("invalid_auth")
                result = await handler(params, workspace)
        except SlackError as exc:
            body: dict[str, Any] = {"ok": False, "error": exc.error}
            if exc.messages:
                body["response_metadata"] = {"messages": exc.messages}
            return self._answer(request, method, params, token, body)
        return self._answer(request, method, params, token, {"ok": True, **result})

    def _answer(
        self,
        request: web.Request,
        method: str,
        params: dict[str, Any],
        token: str | None,
        body: dict[str, Any],
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        self.calls.append(Call(method, params, status, request.content_type, token))
        return web.json_response(body, status=status, headers=headers)

    def _next_ts(self) -> str:
        return f"{int(self.now())}.{next(self._ts):06d}"

    def _channel(self, params: dict[str, Any]) -> str:
        channel = str(params.get("channel") or "")
        if not channel or channel in self._missing_channels:
            raise SlackError("channel_not_found")
        if _USER_ID.fullmatch(channel):
            # Posting to a user id posts in the app's DM with them.
            if channel in self._disabled_users:
                raise SlackError("user_disabled")
            return self.dm_channel(channel)
        return channel

    def _message_json(self, workspace: Workspace, message: PostedMessage) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": "message",
            "user": workspace.bot_user_id,
            "bot_id": workspace.bot_id,
            "app_id": self.app_id,
            "team": workspace.team_id,
            "text": message.text,
            "ts": message.ts,
        }
        if message.blocks:
            data["blocks"] = message.blocks
        if message.thread_ts:
            data["thread_ts"] = message.thread_ts
        return data

    @staticmethod
    def _text_and_blocks(params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        text = params.get("text")
        blocks = _check_blocks(params.get("blocks"))
        if not text and not blocks:
            raise SlackError("no_text")
        if text is not None and len(str(text)) > MAX_TEXT:
            raise SlackError("msg_too_long")
        return str(text or ""), blocks

    async def _m_auth_test(self, params: dict[str, Any], workspace: Workspace) -> dict[str, Any]:
        slug = re.sub(r"[^a-z0-9]+", "-", workspace.team_name.lower()).strip("-")
        return {
            "url": f"https://{slug}.slack.com/",
            "team": workspace.team_name,
            "user": "coach",
            "team_id": workspace.team_id,
            "user_id": workspace.bot_user_id,
            "bot_id": workspace.bot_id,
            "is_enterprise_install": False,
        }

    async def _m_chat_postMessage(
        self, params: dict[str, Any], workspace: Workspace
    ) -> dict[str, Any]:
        channel = self._channel(params)
        text, blocks = self._text_and_blocks(params)
        message = PostedMessage(
            channel,
            self._next_ts(),
            text,
            blocks,
            thread_ts=params.get("thread_ts"),
            team_id=workspace.team_id,
        )
        self._messages.setdefault(channel, []).append(message)
        return {
            "channel": channel,
            "ts": message.ts,
            "message": self._message_json(workspace, message),
        }

    async def _m_chat_update(self, params: dict[str, Any], workspace: Workspace) -> dict[str, Any]:
        channel = self._channel(params)
        ts = str(params.get("ts") or "")
        found = next((m for m in self._messages.get(channel, []) if m.ts == ts), None)
        if found is None:
            raise SlackError("message_not_found")
        if found.team_id != workspace.team_id:
            raise SlackError("cant_update_message")
        found.text, found.blocks = self._text_and_blocks(params)
        return {
            "channel": channel,
            "ts": ts,
            "text": found.text,
            "message": self._message_json(workspace, found),
        }

    async def _m_conversations_open(
        self, params: dict[str, Any], workspace: Workspace
    ) -> dict[str, Any]:
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if not users and not params.get("channel"):
            raise SlackError("users_list_not_supplied")
        if params.get("channel"):
            channel = str(params["channel"])
            if channel in self._missing_channels:
                raise SlackError("channel_not_found")
            return {"channel": {"id": channel}, "no_op": True, "already_open": True}
        for user in users:
            if not _USER_ID.fullmatch(user):
                raise SlackError("user_not_found")
            if user in self._disabled_users:
                raise SlackError("user_disabled")
        if len(users) > 1:
            channel = "G" + hashlib.sha1(",".join(sorted(users)).encode()).hexdigest()[:9].upper()
        else:
            channel = self.dm_channel(users[0])
        already = channel in self._opened
        self._opened.add(channel)
        result: dict[str, Any] = {"channel": {"id": channel}}
        if params.get("return_im"):
            result["channel"] = {
                "id": channel,
                "created": int(self.now()),
                "is_im": len(users) == 1,
                "is_org_shared": False,
                "user": users[0],
                "is_user_deleted": False,
                "priority": 0,
            }
        if already:
            result |= {"no_op": True, "already_open": True}
        return result

    async def _m_oauth_v2_access(
        self, params: dict[str, Any], request: web.Request
    ) -> dict[str, Any]:
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization.removeprefix("Basic ")).decode()
            client_id, _, client_secret = decoded.partition(":")
        if client_id != self.client_id:
            raise SlackError("invalid_client_id")
        if client_secret != self.client_secret:
            raise SlackError("bad_client_secret")
        code = str(params.get("code") or "")
        # A code works once (Slack: "invalid_code" when reused or expired).
        approved = self._codes.pop(code, None)
        if approved is None:
            raise SlackError("invalid_code")
        workspace, installer, redirect_uri = approved
        if redirect_uri is not None and params.get("redirect_uri") != redirect_uri:
            raise SlackError("bad_redirect_uri")
        token = self._pending_tokens.pop(code)
        self.tokens[token] = workspace
        return {
            "app_id": self.app_id,
            "authed_user": {"id": installer},
            "scope": "app_mentions:read,chat:write,commands,im:history,im:write",
            "token_type": "bot",
            "access_token": token,
            "bot_user_id": workspace.bot_user_id,
            "team": {"id": workspace.team_id, "name": workspace.team_name},
            "enterprise": None,
            "is_enterprise_install": False,
        }


# -- requests Slack sends to an app, signed ----------------------------------------------


@dataclass(frozen=True)
class SignedRequest:
    """A POST body and the headers Slack sends with it."""

    body: bytes
    headers: dict[str, str]
    event_id: str | None = None


def signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


class SlackRequests:
    """Builds signed requests as Slack sends them to one app in one workspace."""

    def __init__(
        self,
        signing_secret: str = DEFAULT_SIGNING_SECRET,
        *,
        team_id: str = "T0COACH001",
        team_domain: str = "coach-school",
        api_app_id: str = "A0COACHAPP",
        bot_user_id: str = "U0COACHBOT",
        now: Callable[[], float] = time.time,
    ) -> None:
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.team_domain = team_domain
        self.api_app_id = api_app_id
        self.bot_user_id = bot_user_id
        self.now = now
        self._ids = itertools.count(1)

    def sign(
        self,
        body: bytes,
        content_type: str,
        *,
        timestamp: float | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        event_id: str | None = None,
    ) -> SignedRequest:
        """Sign `body` at `timestamp` (default: now); a retry carries X-Slack-Retry-*."""
        stamp = str(int(self.now() if timestamp is None else timestamp))
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature(self.signing_secret, stamp, body),
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason
        return SignedRequest(body, headers, event_id)

    def _ts(self) -> str:
        return f"{int(self.now())}.{next(self._ids):06d}"

    def event_callback(
        self, event: dict[str, Any], *, event_id: str | None = None, **signing: Any
    ) -> SignedRequest:
        """An Events API delivery of `event` (the same event_id on every retry)."""
        event_id = event_id or f"Ev0{uuid.uuid4().hex[:9].upper()}"
        body = {
            "token": "unused-verification-token",
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(self.now()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        return self.sign(
            json.dumps(body).encode(), "application/json", event_id=event_id, **signing
        )

    @staticmethod
    def _rich_text(text: str) -> list[dict[str, Any]]:
        return [
            {
                "type": "rich_text",
                "block_id": uuid.uuid4().hex[:5],
                "elements": [
                    {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
                ],
            }
        ]

    def message_im(
        self,
        user: str,
        text: str,
        *,
        channel: str | None = None,
        event_id: str | None = None,
        **signing: Any,
    ) -> SignedRequest:
        """A direct message from `user` to the app (event type message, channel_type im)."""
        ts = self._ts()
        event = {
            "client_msg_id": str(uuid.uuid4()),
            "type": "message",
            "text": text,
            "user": user,
            "ts": ts,
            "blocks": self._rich_text(text),
            "team": self.team_id,
            "channel": channel or FakeSlack.dm_channel(user),
            "event_ts": ts,
            "channel_type": "im",
        }
        return self.event_callback(event, event_id=event_id, **signing)

    def app_mention(
        self,
        user: str,
        text: str,
        *,
        channel: str = "C0CLASS001",
        event_id: str | None = None,
        **signing: Any,
    ) -> SignedRequest:
        """A message in a channel that mentions the app; Slack writes the mention first."""
        ts = self._ts()
        said = f"<@{self.bot_user_id}> {text}"
        event = {
            "client_msg_id": str(uuid.uuid4()),
            "type": "app_mention",
            "text": said,
            "user": user,
            "ts": ts,
            "blocks": self._rich_text(said),
            "team": self.team_id,
            "channel": channel,
            "event_ts": ts,
        }
        return self.event_callback(event, event_id=event_id, **signing)

    def url_verification(
        self, challenge: str = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    ) -> SignedRequest:
        body = {
            "token": "unused-verification-token",
            "challenge": challenge,
            "type": "url_verification",
        }
        return self.sign(json.dumps(body).encode(), "application/json")

    def slash_command(
        self,
        user: str,
        text: str = "",
        *,
        command: str = "/coach",
        channel_id: str = "C0CLASS001",
        channel_name: str = "class-7b",
        user_name: str = "teacher",
        **signing: Any,
    ) -> SignedRequest:
        """A slash command, form-encoded as Slack posts it."""
        form = {
            "token": "unused-verification-token",
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": f"https://hooks.slack.com/commands/{self.team_id}/{next(self._ids)}/x",
            "trigger_id": f"{next(self._ids)}.{int(self.now())}.abcdef",
        }
        return self.sign(urlencode(form).encode(), "application/x-www-form-urlencoded", **signing)

    def block_action(
        self,
        user: str,
        action_id: str,
        value: str,
        *,
        label: str = "OK",
        channel: str | None = None,
        message_ts: str | None = None,
        block_id: str = "actions",
        user_name: str = "learner",
        **signing: Any,
    ) -> SignedRequest:
        """A press of a Block Kit button: form field `payload` holding the JSON."""
        channel = channel or FakeSlack.dm_channel(user)
        message_ts = message_ts or self._ts()
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user, "username": user_name, "name": user_name, "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "token": "unused-verification-token",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": False,
            },
            "trigger_id": f"{next(self._ids)}.{int(self.now())}.abcdef",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": "directmessage"},
            "message": {
                "type": "message",
                "user": self.bot_user_id,
                "ts": message_ts,
                "text": "…",
                "team": self.team_id,
            },
            "state": {"values": {}},
            "response_url": f"https://hooks.slack.com/actions/{self.team_id}/{next(self._ids)}/x",
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": block_id,
                    "text": {"type": "plain_text", "text": label, "emoji": True},
                    "value": value,
                    "type": "button",
                    "action_ts": self._ts(),
                }
            ],
        }
        form = urlencode({"payload": json.dumps(payload)})
        return self.sign(form.encode(), "application/x-www-form-urlencoded", **signing)
