"""A fake Telegram Bot API server, and builders for the Update JSON Telegram sends us.

    async with FakeTelegram() as telegram:
        bot = Bot(telegram.token, base_url=telegram.base_url)
        await bot.send_message(42, "<b>hi</b>", parse_mode="HTML")
        assert telegram.sent(42)[-1].text == "hi"        # what the person sees

It serves POST (and GET) /bot<token>/<method> on 127.0.0.1 for the methods Coach
uses: getMe, sendMessage, editMessageText, answerCallbackQuery, sendDocument,
setWebhook, deleteWebhook, getWebhookInfo, setMyCommands, getMyCommands and
getUpdates (a long poll: tests `push_update` into its queue). Parameters arrive
the ways the Bot API accepts them (https://core.telegram.org/bots/api#making-requests):
query string, form-encoded, JSON or multipart; python-telegram-bot 22 sends
form fields whose nested values (reply_markup, allowed_updates, commands) are
JSON strings, and multipart for files. Answers have the real shapes:
{"ok": true, "result": ...} or {"ok": false, "error_code": ..., "description": ...}.

Like the real server it checks what a client could get wrong: the token (401),
HTML parse mode (tags and entities; stricter than Telegram about a bare "&", so
unescaped text fails loudly), the 4096-character message limit, the 1024-character
caption limit, callback data of 1-64 bytes, an HTTPS webhook address, command
names. Every call is recorded (`calls`, `calls_to`); `rate_limit` answers 429
with retry_after for the next n sends, `block` answers 403 for one chat.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# A token in BotFather's format: the bot's numeric id, a colon, 35 characters.
DEFAULT_TOKEN = "123456789:AAFakeTokenForTestsOnly-0123456789ab"
_TOKEN_SHAPE = re.compile(r"\d+:[A-Za-z0-9_-]{30,}")

# Limits from https://core.telegram.org/bots/api (sendMessage, sendDocument,
# InlineKeyboardButton, setWebhook, BotCommand, answerCallbackQuery).
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_CALLBACK_ANSWER = 200
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
UPDATE_TYPES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "callback_query",
    "inline_query",
    "chosen_inline_result",
    "my_chat_member",
    "chat_member",
)

# The Bot API's method names are case-insensitive; these are the canonical ones.
_METHODS = (
    "getMe",
    "sendMessage",
    "editMessageText",
    "answerCallbackQuery",
    "sendDocument",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
    "setMyCommands",
    "getMyCommands",
    "getUpdates",
)
_CANONICAL = {name.lower(): name for name in _METHODS}
# Flood control and blocking apply to what is sent to a chat.
SEND_METHODS = ("sendMessage", "sendDocument", "editMessageText")

# How each parameter arrives in a form field: the rest are plain strings.
_INTS = {"message_id", "offset", "limit", "timeout", "cache_time", "max_connections"}
_BOOLS = {
    "show_alert",
    "drop_pending_updates",
    "disable_notification",
    "protect_content",
    "disable_content_type_detection",
    "allow_sending_without_reply",
    "allow_paid_broadcast",
}
_JSON = {
    "reply_markup",
    "allowed_updates",
    "commands",
    "scope",
    "link_preview_options",
    "reply_parameters",
    "entities",
    "caption_entities",
}

# Telegram's HTML parse mode: these tags, and only these named entities
# (https://core.telegram.org/bots/api#html-style).
_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "tg-emoji",
    "code",
    "pre",
    "blockquote",
}
_TAG = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*)"
    r"((?:\s+[A-Za-z-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'>]+))?)*)\s*>"
)
_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]+)|#[xX]([0-9A-Fa-f]+));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (entity offsets use them too)."""
    return len(text.encode("utf-16-le")) // 2


class BadRequest(Exception):
    """A 400 from the fake, with Telegram's description."""

    def __init__(self, description: str, code: int = 400) -> None:
        super().__init__(description)
        self.description = description
        self.code = code


def html_to_text(html: str) -> str:
    """What a person sees for an HTML-mode message; BadRequest where Telegram refuses it."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(html):
        char = html[i]
        offset = len(html[:i].encode())
        if char == "<":
            match = _TAG.match(html, i)
            if match is None:
                raise BadRequest(
                    "Bad Request: can't parse entities: "
                    f"Unexpected start tag at byte offset {offset}"
                )
            closing, name = match.group(1) == "/", match.group(2).lower()
            if name not in _TAGS:
                raise BadRequest(
                    "Bad Request: can't parse entities: "
                    f'Unsupported start tag "{name}" at byte offset {offset}'
                )
            if closing:
                if not stack or stack[-1] != name:
                    raise BadRequest(
                        "Bad Request: can't parse entities: "
                        f"Unexpected end tag at byte offset {offset}"
                    )
                stack.pop()
            else:
                stack.append(name)
            i = match.end()
        elif char == "&":
            match = _ENTITY.match(html, i)
            if match is None:
                raise BadRequest(
                    "Bad Request: can't parse entities: "
                    f"Character entity expected at byte offset {offset}"
                )
            named, decimal, hexadecimal = match.groups()
            if named:
                out.append(_NAMED[named])
            else:
                out.append(chr(int(decimal) if decimal else int(hexadecimal, 16)))
            i = match.end()
        elif char == ">":
            raise BadRequest(
                f"Bad Request: can't parse entities: Unexpected end tag at byte offset {offset}"
            )
        else:
            out.append(char)
            i += 1
    if stack:
        raise BadRequest(
            "Bad Request: can't parse entities: "
            f'Can\'t find end tag corresponding to start tag "{stack[-1]}"'
        )
    return "".join(out)


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Call:
    """One request to the fake: the method, its parameters as the API reads them, the
    uploaded files, and the HTTP status it was answered with."""

    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    status: int
    content_type: str = ""  # how the parameters came: form, multipart or JSON


@dataclass
class SentMessage:
    """A message in a chat, as its person sees it now (edits applied)."""

    chat_id: int | str
    message_id: int
    text: str  # plain text, after HTML parsing
    html: str | None  # the raw text when parse_mode was HTML
    keyboard: list[list[dict[str, Any]]] = field(default_factory=list)
    document: UploadedFile | None = None
    raw: dict[str, Any] = field(default_factory=dict)  # the Message object answered

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of every inline button, row by row."""
        return [(b["text"], b.get("callback_data", "")) for row in self.keyboard for b in row]


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0", ""):
        return False
    raise ValueError(value)


def _coerce(name: str, value: Any) -> Any:
    """A form or query value as the Bot API reads it; JSON bodies are typed already."""
    if not isinstance(value, str):
        return value
    try:
        if name == "chat_id":
            return int(value) if re.fullmatch(r"-?\d+", value) else value
        if name in _INTS:
            return int(value)
        if name in _BOOLS:
            return _parse_bool(value)
        if name in _JSON:
            return json.loads(value)
    except ValueError:
        raise BadRequest(f"Bad Request: can't parse {name}") from None
    return value


def _check_markup(markup: Any) -> list[list[dict[str, Any]]]:
    """The inline keyboard of a reply_markup (empty for other keyboards), validated."""
    if markup is None:
        return []
    if not isinstance(markup, dict):
        raise BadRequest("Bad Request: can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return []
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise BadRequest(
            'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup '
            "must be an Array of Arrays"
        )
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not str(button.get("text", "")).strip():
                raise BadRequest("Bad Request: text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if data is None and "url" not in button:
                raise BadRequest("Bad Request: text buttons are unallowed in the inline keyboard")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
                raise BadRequest("Bad Request: BUTTON_DATA_INVALID")
    return rows


class FakeTelegram:
    """The Telegram Bot API on loopback. Use as an async context manager."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        username: str = "coach_test_bot",
        now: Callable[[], float] = time.time,
    ) -> None:
        self.token = token
        self.username = username
        self.now = now
        self.calls: list[Call] = []
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.webhook: dict[str, Any] = {}
        self._chats: dict[int | str, list[SentMessage]] = {}
        self._message_ids: dict[int | str, itertools.count[int]] = {}
        self._blocked: set[int | str] = set()
        self._rate_limited = 0
        self._retry_after = 0
        self._updates: list[dict[str, Any]] = []
        self._allowed_updates: list[str] | None = None
        self._arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.port = 0
        # getUpdates calls waiting for an update right now (`wait_for_long_poll`).
        self.long_polls = 0
        self._poll_waiting = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=50 * 1024 * 1024)  # sendDocument's 50 MB
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        self._closing = True
        self._arrived.set()  # ends open long polls
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def api_base(self) -> str:
        """What COACH_TELEGRAM_API_BASE would be."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """python-telegram-bot's Bot(base_url=...): the token is appended to it."""
        return f"{self.api_base}/bot"

    # -- what tests tell it ----------------------------------------------------------

    def rate_limit(self, calls: int, retry_after: int) -> None:
        """Answer the next `calls` sends (any chat) with 429 and this retry_after."""
        self._rate_limited = calls
        self._retry_after = retry_after

    def block(self, chat_id: int | str) -> None:
        """The person behind this chat blocked the bot: sends to it answer 403."""
        self._blocked.add(chat_id)

    async def wait_for_long_poll(self) -> None:
        """Return once a getUpdates call is held open waiting for updates."""
        await self._poll_waiting.wait()

    def push_update(self, update: dict[str, Any]) -> None:
        """Queue an update for getUpdates (as if a person wrote to the bot)."""
        self._updates.append(update)
        self._arrived.set()
        self._arrived = asyncio.Event()

    # -- what tests read -------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def sent(self, chat_id: int | str) -> list[SentMessage]:
        """Messages the bot sent to a chat that went through, oldest first."""
        return list(self._chats.get(chat_id, []))

    def texts(self, chat_id: int | str) -> list[str]:
        return [message.text for message in self.sent(chat_id)]

    @property
    def pending_updates(self) -> int:
        return len(self._updates)

    # -- the server ------------------------------------------------------------------

    def bot_user(self) -> dict[str, Any]:
        return {
            "id": int(self.token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": "Coach",
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _read_params(
        self, request: web.Request
    ) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
        params: dict[str, Any] = {k: _coerce(k, v) for k, v in request.query.items()}
        files: dict[str, UploadedFile] = {}
        if request.method != "POST" or not request.can_read_body:
            return params, files
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise BadRequest("Bad Request: can't parse JSON object") from None
            if not isinstance(body, dict):
                raise BadRequest("Bad Request: can't parse JSON object")
            params.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for name, value in form.items():
                if isinstance(value, web.FileField):
                    files[name] = UploadedFile(
                        value.filename, value.content_type, value.file.read()
                    )
                else:
                    params[name] = _coerce(name, value)
        return params, files

    async def _handle(self, request: web.Request) -> web.Response:
        method = _CANONICAL.get(request.match_info["method"].lower(), request.match_info["method"])
        try:
            params, files = await self._read_params(request)
        except BadRequest as exc:
            params, files = {}, {}
            return self._answer(request, method, params, files, self._error(400, exc.description))
        token = request.match_info["token"]
        if token != self.token:
            # The real server: 404 for a malformed token, 401 for a well-formed wrong one.
            if _TOKEN_SHAPE.fullmatch(token):
                return self._answer(
                    request, method, params, files, self._error(401, "Unauthorized")
                )
            return self._answer(request, method, params, files, self._error(404, "Not Found"))
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return self._answer(request, method, params, files, self._error(404, "Not Found"))
        if method in SEND_METHODS and self._rate_limited > 0:
            self._rate_limited -= 1
            return self._answer(
                request,
                method,
                params,
                files,
                self._error(
                    429,
                    f"Too Many Requests: retry after {self._retry_after}",
                    parameters={"retry_after": self._retry_after},
                ),
            )
        if method in SEND_METHODS and params.get("chat_id") in self._blocked:
            return self._answer(
                request,
                method,
                params,
                files,
                self._error(403, "Forbidden: bot was blocked by the user"),
            )
        try:
            result = await handler(params, files)
        except BadRequest as exc:
            return self._answer(
                request, method, params, files, self._error(exc.code, exc.description)
            )
        return self._answer(request, method, params, files, result)

    def _answer(
        self,
        request: web.Request,
        method: str,
        params: dict[str, Any],
        files: dict[str, UploadedFile],
        body: tuple[int, dict[str, Any]] | dict[str, Any] | list[Any] | bool,
    ) -> web.Response:
        if isinstance(body, tuple):
            status, payload = body
        else:
            status, payload = 200, {"ok": True, "result": body}
        self.calls.append(Call(method, params, files, status, request.content_type))
        return web.json_response(payload, status=status)

    @staticmethod
    def _error(
        code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return code, body

    # -- methods ---------------------------------------------------------------------

    def _chat(self, params: dict[str, Any]) -> int | str:
        chat_id = params.get("chat_id")
        if chat_id in (None, ""):
            raise BadRequest("Bad Request: chat_id is empty")
        if isinstance(chat_id, str) and not chat_id.startswith("@"):
            raise BadRequest("Bad Request: chat not found")
        assert isinstance(chat_id, int | str)
        return chat_id

    def _chat_object(self, chat_id: int | str) -> dict[str, Any]:
        if isinstance(chat_id, int) and chat_id > 0:
            return {"id": chat_id, "first_name": "Learner", "type": "private"}
        return {"id": chat_id, "title": "Group", "type": "group"}

    def _render(self, params: dict[str, Any], key: str, limit: int) -> tuple[str, str | None]:
        raw = params.get(key)
        if raw is None or raw == "":
            if key == "caption":
                return "", None
            raise BadRequest("Bad Request: message text is empty")
        raw = str(raw)
        mode = str(params.get("parse_mode", "")).lower()
        text = html_to_text(raw) if mode == "html" else raw
        if key == "text" and not text.strip():
            raise BadRequest("Bad Request: message text is empty")
        if utf16_len(text) > limit:
            raise BadRequest(
                "Bad Request: message is too long"
                if key == "text"
                else "Bad Request: message caption is too long"
            )
        return text, raw if mode == "html" else None

    def _store(
        self,
        chat_id: int | str,
        text: str,
        html: str | None,
        keyboard: list[list[dict[str, Any]]],
        *,
        document: UploadedFile | None = None,
        markup: Any = None,
        caption: bool = False,
    ) -> dict[str, Any]:
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        message_id = next(counter)
        raw: dict[str, Any] = {
            "message_id": message_id,
            "from": self.bot_user(),
            "chat": self._chat_object(chat_id),
            "date": int(self.now()),
        }
        if caption:
            if text:
                raw["caption"] = text
        else:
            raw["text"] = text
        if document is not None:
            raw["document"] = {
                "file_name": document.filename,
                "mime_type": document.content_type,
                "file_id": f"BQACAgIAAxkBAAI{chat_id}{message_id}",
                "file_unique_id": f"AgAD{message_id}",
                "file_size": len(document.content),
            }
        if keyboard:
            raw["reply_markup"] = markup
        message = SentMessage(chat_id, message_id, text, html, keyboard, document, raw)
        self._chats.setdefault(chat_id, []).append(message)
        return raw

    async def _m_getMe(self, params: dict[str, Any], files: Any) -> dict[str, Any]:
        return self.bot_user()

    async def _m_sendMessage(self, params: dict[str, Any], files: Any) -> dict[str, Any]:
        chat_id = self._chat(params)
        text, html = self._render(params, "text", MAX_TEXT)
        markup = params.get("reply_markup")
        keyboard = _check_markup(markup)
        return self._store(chat_id, text, html, keyboard, markup=markup)

    async def _m_sendDocument(
        self, params: dict[str, Any], files: dict[str, UploadedFile]
    ) -> dict[str, Any]:
        chat_id = self._chat(params)
        document = files.get("document")
        reference = params.get("document")
        if document is None and isinstance(reference, str) and reference.startswith("attach://"):
            document = files.get(reference.removeprefix("attach://"))
        if document is None:
            raise BadRequest("Bad Request: there is no document in the request")
        caption, html = self._render(params, "caption", MAX_CAPTION)
        markup = params.get("reply_markup")
        keyboard = _check_markup(markup)
        return self._store(
            chat_id, caption, html, keyboard, document=document, markup=markup, caption=True
        )

    async def _m_editMessageText(self, params: dict[str, Any], files: Any) -> dict[str, Any]:
        chat_id = self._chat(params)
        message_id = params.get("message_id")
        found = next((m for m in self._chats.get(chat_id, []) if m.message_id == message_id), None)
        if found is None:
            raise BadRequest("Bad Request: message to edit not found")
        text, html = self._render(params, "text", MAX_TEXT)
        markup = params.get("reply_markup")
        keyboard = _check_markup(markup)
        if text == found.text and html == found.html and keyboard == found.keyboard:
            raise BadRequest(
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup "
                "of the message"
            )
        found.text, found.html, found.keyboard = text, html, keyboard
        found.raw = {**found.raw, "text": text, "edit_date": int(self.now())}
        found.raw.pop("reply_markup", None)
        if keyboard:
            found.raw["reply_markup"] = markup
        return found.raw

    async def _m_answerCallbackQuery(self, params: dict[str, Any], files: Any) -> bool:
        if not params.get("callback_query_id"):
            raise BadRequest("Bad Request: query_id is empty")
        if len(str(params.get("text", ""))) > MAX_CALLBACK_ANSWER:
            raise BadRequest("Bad Request: MESSAGE_TOO_LONG")
        return True

    async def _m_setWebhook(self, params: dict[str, Any], files: Any) -> tuple[int, Any]:
        url = str(params.get("url", ""))
        if not url:
            self.webhook = {}
            return 200, {"ok": True, "result": True, "description": "Webhook was deleted"}
        if not url.startswith("https://"):
            raise BadRequest("Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN.fullmatch(str(secret)):
            raise BadRequest("Bad Request: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if allowed is not None and (
            not isinstance(allowed, list) or any(kind not in UPDATE_TYPES for kind in allowed)
        ):
            raise BadRequest("Bad Request: can't parse allowed_updates")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = {"url": url, "secret_token": secret, "allowed_updates": allowed}
        return 200, {"ok": True, "result": True, "description": "Webhook was set"}

    async def _m_deleteWebhook(self, params: dict[str, Any], files: Any) -> tuple[int, Any]:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = {}
        return 200, {"ok": True, "result": True, "description": "Webhook was deleted"}

    async def _m_getWebhookInfo(self, params: dict[str, Any], files: Any) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook.get("allowed_updates") is not None:
            info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    @staticmethod
    def _scope_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise BadRequest("Bad Request: can't parse BotCommandScope JSON object")
        return str(scope["type"]), str(params.get("language_code") or "")

    async def _m_setMyCommands(self, params: dict[str, Any], files: Any) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise BadRequest("Bad Request: can't parse commands JSON object")
        for command in commands:
            name = str(command.get("command", "")) if isinstance(command, dict) else ""
            description = str(command.get("description", "")) if isinstance(command, dict) else ""
            if not _COMMAND.fullmatch(name):
                raise BadRequest("Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise BadRequest("Bad Request: command description is empty")
        self.commands[self._scope_key(params)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def _m_getMyCommands(self, params: dict[str, Any], files: Any) -> list[Any]:
        return self.commands.get(self._scope_key(params), [])

    def _visible(self) -> list[dict[str, Any]]:
        allowed = self._allowed_updates
        return [
            update
            for update in self._updates
            if not allowed or any(kind in update for kind in allowed)
        ]

    async def _m_getUpdates(self, params: dict[str, Any], files: Any) -> list[Any]:
        if self.webhook.get("url"):
            raise BadRequest(
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
                code=409,
            )
        offset = int(params.get("offset") or 0)
        if offset > 0:
            # An offset confirms every update before it: they are never sent again.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        if params.get("allowed_updates") is not None:
            # Telegram remembers the last list given, for later calls without one.
            self._allowed_updates = list(params["allowed_updates"]) or None
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        deadline = asyncio.get_running_loop().time() + float(params.get("timeout") or 0)
        self.long_polls += 1
        if not self._visible():
            self._poll_waiting.set()
        try:
            while not self._visible() and not self._closing:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    break
        finally:
            self.long_polls -= 1
            if self.long_polls == 0:
                self._poll_waiting.clear()
        return self._visible()[:limit]


# -- Update JSON, as Telegram posts it to a webhook or returns it from getUpdates ------


@dataclass(frozen=True)
class TelegramUser:
    """A person on Telegram; in a private chat the chat id is their user id."""

    id: int
    first_name: str = "Ana"
    language_code: str | None = "en"
    username: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data

    def private_chat(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "first_name": self.first_name, "type": "private"}
        if self.username:
            chat["username"] = self.username
        return chat


class Updates:
    """Builds real Update objects (https://core.telegram.org/bots/api#update) with
    increasing update_ids, as Telegram numbers them."""

    def __init__(self, first_update_id: int = 500_000_001, date: int = 1_767_225_600) -> None:
        self._update_ids = itertools.count(first_update_id)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._callback_ids = itertools.count(1)
        self.date = date

    def next_id(self) -> int:
        return next(self._update_ids)

    def _message(self, user: TelegramUser, chat: dict[str, Any], **content: Any) -> dict[str, Any]:
        counter = self._message_ids.setdefault(int(chat["id"]), itertools.count(1))
        return {
            "message_id": next(counter),
            "from": user.to_json(),
            "chat": chat,
            "date": self.date,
            **content,
        }

    def text(
        self, user: TelegramUser, text: str, *, chat: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A text message; a leading /command gets its bot_command entity, as Telegram adds."""
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            content["entities"] = [
                {"offset": 0, "length": utf16_len(command), "type": "bot_command"}
            ]
        return {
            "update_id": self.next_id(),
            "message": self._message(user, chat or user.private_chat(), **content),
        }

    def start(self, user: TelegramUser, payload: str | None = None) -> dict[str, Any]:
        """What a deep link t.me/<bot>?start=<payload> sends: "/start <payload>"."""
        return self.text(user, f"/start {payload}" if payload else "/start")

    def callback(
        self,
        user: TelegramUser,
        data: str,
        *,
        message: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A press of an inline button with `data` under `message` (the bot's message)."""
        if message is None:
            message = {
                "message_id": 1,
                "from": {"id": 123456789, "is_bot": True, "first_name": "Coach"},
                "chat": user.private_chat(),
                "date": self.date,
                "text": "…",
            }
        return {
            "update_id": self.next_id(),
            "callback_query": {
                "id": f"{user.id}{next(self._callback_ids):08d}",
                "from": user.to_json(),
                "message": message,
                "chat_instance": f"-{user.id}77",
                "data": data,
            },
        }

    def sticker(self, user: TelegramUser) -> dict[str, Any]:
        """A message without text (a sticker)."""
        return {
            "update_id": self.next_id(),
            "message": self._message(
                user,
                user.private_chat(),
                sticker={
                    "file_id": "CAACAgIAAxkBAAEB",
                    "file_unique_id": "AgADAQAD",
                    "type": "regular",
                    "width": 512,
                    "height": 512,
                    "is_animated": False,
                    "is_video": False,
                    "emoji": "👍",
                },
            ),
        }

    def edited(self, user: TelegramUser, text: str) -> dict[str, Any]:
        """An edit of an earlier message (Coach answers new messages only)."""
        return {
            "update_id": self.next_id(),
            "edited_message": {
                **self._message(user, user.private_chat(), text=text),
                "edit_date": self.date + 60,
            },
        }
