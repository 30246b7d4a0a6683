"""Telegram: the webhook route, updates into `Inbound`, replies into Bot API calls.

In: Telegram POSTs each Update to /telegram/webhook with our secret in the
X-Telegram-Bot-Api-Secret-Token header. A text message or a button press in a
private chat becomes an `Inbound` (external id: the chat id; message id:
"u<update_id>", so a redelivery finds its inbox row and runs nothing twice), and
the turn service writes the replies to the outbox before we answer 200.

Out: `TelegramSender` renders one outbox payload as Bot API calls through
python-telegram-bot's `Bot`: HTML parse mode with every piece of text escaped,
buttons as an inline keyboard, long text split at paragraph or line breaks, and
an attachment (the /mydata export) as a document.

Bot API calls go over aiohttp (`AiohttpRequest`, bot/channels/telegram_http.py),
not python-telegram-bot's default httpx stack, which cost several times more CPU per
call. The token is part of every Bot API address: the request class keeps it out of
its errors, and `protect_in_logs` keeps it (and the webhook secret) out of every log
record, whoever logs it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import html
import logging
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)
from telegram.warnings import PTBDeprecationWarning

from bot.channels.api import SERVICES, read_json
from bot.channels.errors import ApiError
from bot.channels.telegram_http import AiohttpRequest
from bot.channels.textcheck import BadText, clean_text
from bot.config import ConfigError, Settings
from bot.delivery.senders import SENDERS, SendOutcome
from bot.engine.locales import Catalogs
from bot.engine.messages import Attachment, Button, Inbound, Reply
from bot.engine.turns import TurnService
from bot.engine.yamlfile import YamlError
from bot.store.models import ChannelIdentity

log = logging.getLogger(__name__)

CHANNEL = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header's name
# What the webhook asks Telegram for: text messages and button presses. Edits,
# channel posts and membership changes carry nothing the coach answers.
ALLOWED_UPDATES = ("message", "callback_query")
OFFICIAL_API = "https://api.telegram.org"

# Bot API limits (https://core.telegram.org/bots/api): sendMessage text 1-4096
# characters after entity parsing, sendDocument caption 0-1024, callback_data
# 1-64 bytes. Telegram counts characters in UTF-16 code units (as its entity
# offsets do), so we do too: never fewer than Python's code points.
MAX_MESSAGE = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
# Callback data that names a longer value by its hash: "#" and 32 base64url
# characters of SHA-256 (192 bits, no collisions among one person's buttons).
HASH_MARK = "#"
HASH_BYTES = 24
# Hashed callback data is looked up among the buttons of the person's last
# messages; a button further back than this is stale anyway.
HASH_LOOKBACK = 50
# Short answers (yes/no, ratings 1-5) sit side by side: a row takes up to five
# buttons (a 1-5 rating is the widest set that belongs on one row) and 24
# characters of labels. Telegram sets no such limit; 24 is our estimate of what
# a narrow phone shows unclipped, not a measurement: lower it if labels get cut.
ROW_BUTTONS = 5
ROW_CHARS = 24

# -- secrets out of the logs ------------------------------------------------------------

_SECRETS: set[str] = set()
_REDACTED = "<redacted>"


def redact(text: str) -> str:
    for secret in _SECRETS:
        text = text.replace(secret, _REDACTED)
    return text


def protect_in_logs(*secrets: str) -> None:
    """Replace these strings in every log record from now on, whoever logs it.

    A record factory, not a handler filter: records are redacted where they are
    made, so every handler (ours, pytest's, an operator's) sees the clean one.
    Our Bot API calls do not go through httpx, but python-telegram-bot's default
    backend does, should anything in the process use it: its per-request INFO line
    (the address holds the token) is noise for an operator anyway, raised to WARNING.
    """
    logging.getLogger("httpx").setLevel(logging.WARNING)
    fresh = {s for s in secrets if s and s not in _SECRETS}
    if not fresh:
        return
    if not _SECRETS:
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            try:
                message = record.getMessage()
            except Exception:  # a bad format string: logging reports it later
                return record
            if any(secret in message for secret in _SECRETS):
                record.msg, record.args = redact(message), None
            return record

        logging.setLogRecordFactory(factory)
    _SECRETS.update(fresh)


# -- updates in --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TelegramUpdate:
    """What one update asks of us: a turn, and a callback query to answer."""

    inbound: Inbound
    callback_query_id: str | None = None
    # The button's callback data named a long value by its hash (see callback_data).
    hashed: bool = False


class BadUpdate(ValueError):
    """An update we cannot read: not Telegram's Update JSON."""


def parse_update(data: Any) -> TelegramUpdate | None:
    """The turn an Update asks for, or None for one Coach does not answer.

    Only private chats: in a group the chat is shared, and a coaching
    conversation there would show one learner's goals to everyone in it.
    Messages without text (stickers, photos) and edits are not answered.
    """
    if not isinstance(data, dict) or type(data.get("update_id")) is not int:
        raise BadUpdate("not a Telegram update: no integer update_id")
    try:
        update = Update.de_json(data, None)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadUpdate(f"not a Telegram update: {type(exc).__name__}") from None
    return turn_of(update)


def turn_of(update: Update) -> TelegramUpdate | None:
    """The turn an Update object asks for (polling gets objects, the webhook JSON)."""
    chat = update.effective_chat
    user = update.effective_user
    if chat is None or chat.type != "private":
        return None
    message_id = f"u{update.update_id}"
    name = user.first_name if user is not None else None
    try:
        if update.message is not None and update.message.text is not None:
            inbound = Inbound(
                channel=CHANNEL,
                external_id=str(chat.id),
                message_id=message_id,
                text=clean_text(update.message.text),
                via=CHANNEL,
                display_name=clean_text(name) if name else None,
            )
            return TelegramUpdate(inbound)
        query = update.callback_query
        if query is not None and query.data is not None:
            inbound = Inbound(
                channel=CHANNEL,
                external_id=str(chat.id),
                message_id=message_id,
                button=clean_text(query.data),
                via=CHANNEL,
                display_name=clean_text(name) if name else None,
            )
            return TelegramUpdate(
                inbound, callback_query_id=query.id, hashed=query.data.startswith(HASH_MARK)
            )
    except BadText as exc:
        raise BadUpdate(f"the update's text {exc}") from None
    return None


def callback_data(value: str) -> str:
    """A button value as callback data: itself when it fits Telegram's 1-64 bytes,
    else "#" and a hash of it (a value that starts with "#" is hashed too, so the
    two never mix); `resolve_button` maps a hash back."""
    size = len(value.encode())
    if 1 <= size <= MAX_CALLBACK_DATA and not value.startswith(HASH_MARK):
        return value
    digest = hashlib.sha256(value.encode()).digest()[:HASH_BYTES]
    return HASH_MARK + base64.urlsafe_b64encode(digest).decode()


async def resolve_button(turns: TurnService, chat_id: str, data: str) -> str | None:
    """The button value behind hashed callback data: looked up among the buttons of
    the person's recent messages (the message log keeps them), None if not there."""
    history = await turns.history(CHANNEL, chat_id, limit=HASH_LOOKBACK)
    for message in reversed(history["messages"]):
        for button in message["buttons"]:
            if callback_data(str(button["value"])) == data:
                return str(button["value"])
    return None


# -- replies out -------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fit(text: str, limit: int) -> int:
    """The longest prefix of `text` (in code points) within `limit` UTF-16 units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def split_text(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Text in pieces of at most `limit` characters, broken at a paragraph, else a
    line, else a space, else wherever the limit falls."""
    pieces: list[str] = []
    rest = text.strip()
    while utf16_len(rest) > limit:
        end = _fit(rest, limit)
        window = rest[:end]
        cut = end
        for separator in ("\n\n", "\n", " "):
            at = window.rfind(separator)
            # A break in the first half would leave a short piece followed by a
            # long one; a finer break nearer the limit reads better.
            if at > end // 2:
                cut = at
                break
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        pieces.append(rest)
    return pieces


def inline_keyboard(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    """Buttons as an inline keyboard: short labels share a row, long ones get their own."""
    rows: list[list[InlineKeyboardButton]] = []
    width = 0
    for button in buttons:
        key = InlineKeyboardButton(button.label, callback_data=callback_data(button.value))
        if rows and len(rows[-1]) < ROW_BUTTONS and width + len(button.label) <= ROW_CHARS:
            rows[-1].append(key)
            width += len(button.label)
        else:
            rows.append([key])
            width = len(button.label)
    return InlineKeyboardMarkup(rows) if rows else None


@dataclass(frozen=True, slots=True)
class TelegramMessage:
    """One Bot API call's worth of a reply: HTML text (or a document's caption)."""

    html: str
    keyboard: InlineKeyboardMarkup | None = None
    document: Attachment | None = None


def render(reply: Reply) -> list[TelegramMessage]:
    """A reply as the messages Telegram will show, in order; the keyboard goes on the
    last one, so the buttons sit under the end of what they answer."""
    pieces = split_text(reply.text)
    keyboard = inline_keyboard(reply.buttons)
    if reply.attachment is not None:
        if len(pieces) <= 1 and utf16_len(reply.text.strip()) <= MAX_CAPTION:
            caption = html.escape(pieces[0], quote=False) if pieces else ""
            return [TelegramMessage(caption, keyboard, reply.attachment)]
        messages = [TelegramMessage(html.escape(piece, quote=False)) for piece in pieces]
        return [*messages, TelegramMessage("", keyboard, reply.attachment)]
    messages = [TelegramMessage(html.escape(piece, quote=False)) for piece in pieces]
    if messages and keyboard is not None:
        messages[-1] = replace(messages[-1], keyboard=keyboard)
    return messages


def _retry_seconds(exc: RetryAfter) -> float:
    # python-telegram-bot 22.2+ warns that retry_after will become a timedelta.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramSender:
    """Sends outbox payloads to Telegram chats (the dispatcher's `Sender`)."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, identity: ChannelIdentity, payload: dict[str, Any]) -> SendOutcome:
        """Deliver one reply; a platform's refusal becomes an outcome, never an exception.

        A reply split over several messages is sent in order; if a later piece is
        refused, the retry sends the reply again from its first piece.
        """
        try:
            chat_id = int(identity.external_id)
        except ValueError:
            return SendOutcome.permanent("not a Telegram chat id")
        reply = Reply.from_json(payload["reply"])
        try:
            for message in render(reply):
                await self._send_one(chat_id, message)
        except RetryAfter as exc:
            return SendOutcome.later(_retry_seconds(exc))
        except Forbidden:
            # 403: the person blocked the bot, deleted their account, or the bot
            # was removed from the chat; nothing we send will arrive.
            return SendOutcome.permanent("forbidden: blocked by the user")
        except ChatMigrated:
            return SendOutcome.permanent("chat migrated")
        except BadRequest as exc:
            reason = redact(exc.message)[:200]
            if "chat not found" in reason.lower():
                return SendOutcome.permanent("chat not found")
            return SendOutcome.transient(f"bad request: {reason}")
        except InvalidToken:
            return SendOutcome.transient("Telegram refused the bot token")
        except TelegramError as exc:  # NetworkError, TimedOut, Conflict
            return SendOutcome.transient(type(exc).__name__)
        return SendOutcome.sent()

    async def _send_one(self, chat_id: int, message: TelegramMessage) -> None:
        if message.document is not None:
            document = InputFile(
                message.document.content.encode(),
                filename=message.document.filename,
                attach=False,
            )
            await self.bot.send_document(
                chat_id,
                document,
                caption=message.html or None,
                parse_mode=ParseMode.HTML,
                reply_markup=message.keyboard,
            )
        else:
            await self.bot.send_message(
                chat_id, message.html, parse_mode=ParseMode.HTML, reply_markup=message.keyboard
            )


# -- the channel: one bot per process ---------------------------------------------------


class TelegramChannel:
    """The bot's Bot API client, its sender and the webhook's secret."""

    def __init__(
        self, token: str, *, api_base: str = OFFICIAL_API, webhook_secret: str | None = None
    ) -> None:
        # Before the Bot: it logs its address, token and all, at DEBUG when it is made.
        protect_in_logs(token, webhook_secret or "")
        self.api_base = api_base.rstrip("/")
        self.webhook_secret = webhook_secret
        # Our own request objects, so close() releases their connections without
        # Bot.initialize() (which would call getMe at startup); each opens its aiohttp
        # session on first use. Sends share the first (a pool of 256: see
        # telegram_http.DEFAULT_POOL_SIZE); getUpdates, one long poll at a time, needs
        # one connection, as PTB's ApplicationBuilder gives it. Bot.get_updates adds
        # the poll's `timeout` to that request's read timeout.
        self._requests = (AiohttpRequest(), AiohttpRequest(connection_pool_size=1))
        self.bot = Bot(
            token,
            base_url=f"{self.api_base}/bot",
            base_file_url=f"{self.api_base}/file/bot",
            request=self._requests[0],
            get_updates_request=self._requests[1],
        )
        self.sender = TelegramSender(self.bot)

    @classmethod
    def from_settings(cls, settings: Settings) -> TelegramChannel:
        if settings.telegram_token is None:
            raise ConfigError("COACH_TELEGRAM_TOKEN is not set: get one from @BotFather")
        secret = settings.telegram_webhook_secret
        return cls(
            settings.telegram_token.get_secret_value(),
            api_base=settings.telegram_api_base,
            webhook_secret=secret.get_secret_value() if secret else None,
        )

    def secret_matches(self, given: str) -> bool:
        # Constant time: a timing side channel must not reveal the secret.
        expected = (self.webhook_secret or "").encode()
        return bool(expected) and hmac.compare_digest(given.encode(), expected)

    async def answer_callback(self, query_id: str) -> None:
        """Stop the button's spinner; Telegram shows it until the query is answered."""
        try:
            await self.bot.answer_callback_query(query_id)
        except TelegramError as exc:
            log.warning("callback query not answered", extra={"error": type(exc).__name__})

    async def close(self) -> None:
        for request in self._requests:
            await request.shutdown()


TELEGRAM = web.AppKey("telegram", TelegramChannel)


async def webhook(request: web.Request) -> web.Response:
    """POST /telegram/webhook: one update, its turn committed before the 200."""
    channel = request.app[TELEGRAM]
    if not channel.secret_matches(request.headers.get(SECRET_HEADER, "")):
        raise ApiError(403, "forbidden", f"missing or wrong {SECRET_HEADER}")
    try:
        update = parse_update(await read_json(request))
    except BadUpdate as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    if update is not None:
        await handle_update(channel, request.app[SERVICES].turns, update)
    return web.Response(status=200)


async def handle_update(
    channel: TelegramChannel, turns: TurnService, update: TelegramUpdate
) -> None:
    """One update's turn, the same for the webhook and for polling: a hashed button
    mapped back to its value, the turn committed, the button's spinner stopped."""
    inbound = update.inbound
    if update.hashed and inbound.button is not None:
        value = await resolve_button(turns, inbound.external_id, inbound.button)
        if value is None:
            # A button from long ago whose value we no longer know: stop its spinner
            # and let the person type instead.
            log.info("stale telegram button ignored", extra={"update": inbound.message_id})
            if update.callback_query_id:
                await channel.answer_callback(update.callback_query_id)
            return
        inbound = replace(inbound, button=value)
    result = await turns.handle(inbound)
    if update.callback_query_id and not result.duplicate:
        await channel.answer_callback(update.callback_query_id)


def add_routes(app: web.Application, settings: Settings) -> TelegramChannel:
    """Serve the webhook; the bot's connections close with the app."""
    channel = TelegramChannel.from_settings(settings)
    app[TELEGRAM] = channel
    # The outbox dispatcher pushes Telegram's replies and proactive messages through it.
    app.setdefault(SENDERS, {})["telegram"] = channel.sender
    app.router.add_post(WEBHOOK_PATH, webhook)

    async def close(app: web.Application) -> None:
        await channel.close()

    app.on_cleanup.append(close)
    return channel


# -- coach telegram set-webhook ---------------------------------------------------------


class TelegramSetupError(Exception):
    """Telegram refused a set-up call: the message is one line for the operator."""


def webhook_url(url: str, api_base: str = OFFICIAL_API) -> str:
    """The address to register: the given one, with /telegram/webhook when it names
    only the server. Telegram's own servers deliver to HTTPS only; a local Bot API
    server may use plain HTTP."""
    parts = urlsplit(url.strip())
    schemes: Iterable[str] = (
        ("https",) if api_base.rstrip("/") == OFFICIAL_API else ("https", "http")
    )
    if parts.scheme not in schemes or not parts.netloc:
        raise ConfigError(
            f"{url!r} is not a webhook address: use https://your.host "
            "(Telegram sends to HTTPS only)"
        )
    path = parts.path if parts.path not in ("", "/") else WEBHOOK_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


async def set_webhook(settings: Settings, url: str) -> str:
    """Register the webhook with the secret and the update types we answer, and the
    command menu in every language."""
    if settings.telegram_webhook_secret is None:
        raise ConfigError(
            "COACH_TELEGRAM_WEBHOOK_SECRET is not set: choose 1-256 letters, digits, _ or -"
        )
    target = webhook_url(url, settings.telegram_api_base)
    try:
        catalogs = Catalogs.load(settings.dialogs_dir / "locales")
    except YamlError as exc:
        raise ConfigError(str(exc)) from None
    channel = TelegramChannel.from_settings(settings)
    try:
        await channel.bot.set_webhook(
            target,
            secret_token=channel.webhook_secret,
            allowed_updates=list(ALLOWED_UPDATES),
        )
        await set_commands(channel.bot, catalogs)
    except TelegramError as exc:
        raise TelegramSetupError(f"Telegram refused the webhook: {redact(exc.message)}") from None
    finally:
        await channel.close()
    return target


# -- the command menu (setMyCommands) ---------------------------------------------------

# What Telegram's "/" menu offers a learner, in this order; each description is
# telegram.commands.<name> in dialogs/locales/*/channels.yaml. Teachers' commands
# (/digest, /roster, ...) stay out: a learner's menu would only tease them.
COMMANDS = (
    "start",
    "menu",
    "goal",
    "checkin",
    "next",
    "resources",
    "settings",
    "link",
    "mydata",
    "forget",
    "help",
)
# The menu for people whose Telegram is in a language we do not speak.
DEFAULT_MENU_LOCALE = "en"


def bot_commands(catalogs: Catalogs, locale: str) -> list[BotCommand]:
    return [
        BotCommand(name, catalogs.render(f"telegram.commands.{name}", locale)) for name in COMMANDS
    ]


async def set_commands(bot: Bot, catalogs: Catalogs) -> None:
    """The command menu: English for everyone, and each other locale for people whose
    Telegram app is set to it (setMyCommands with language_code)."""
    for locale in catalogs.locales:
        await bot.set_my_commands(
            bot_commands(catalogs, locale),
            language_code=None if locale == DEFAULT_MENU_LOCALE else locale,
        )


# -- coach serve --telegram-polling -------------------------------------------------------

# getUpdates' `timeout`: Telegram holds the request open this long waiting for an update
# (the Bot API advises long polling; 30 s stays under the 60 s idle cut-off common to
# proxies and NAT gateways). python-telegram-bot adds it to the read timeout.
LONG_POLL_SECONDS = 30
# After a failed getUpdates or a failed turn, wait this long before asking again: long
# enough not to hammer a server that is down, short enough that nobody notices.
POLL_RETRY_SECONDS = 5.0
# An update whose turn fails this many times in a row is skipped (and logged), so one
# update that cannot be handled does not hold up everyone after it. Telegram's own
# webhook gives up on an update after a few failed deliveries too.
MAX_UPDATE_FAILURES = 5


class TelegramPolling:
    """Fetches updates with getUpdates and runs each through `handle_update`, exactly
    as the webhook does; an update is confirmed (the next offset) only after its turn
    committed, so a crash redelivers it and the inbox makes that harmless."""

    def __init__(
        self,
        channel: TelegramChannel,
        turns: TurnService,
        catalogs: Catalogs,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.channel = channel
        self.turns = turns
        self.catalogs = catalogs
        self.sleep = sleep
        self.offset: int | None = None
        self._failures: dict[int, int] = {}

    async def prepare(self) -> None:
        """Telegram refuses getUpdates while a webhook is set: remove it (pending updates
        are kept), and set the command menu."""
        await self.channel.bot.delete_webhook(drop_pending_updates=False)
        await set_commands(self.channel.bot, self.catalogs)

    async def run(self) -> None:
        while True:
            try:
                await self.prepare()
                break
            except TelegramError as exc:
                log.warning("telegram polling set-up failed", extra={"error": type(exc).__name__})
                await self.sleep(POLL_RETRY_SECONDS)
        log.info("telegram polling started")
        while True:
            await self.poll_once()

    async def poll_once(self) -> None:
        """One getUpdates and the turns of what it brought."""
        try:
            updates = await self.channel.bot.get_updates(
                offset=self.offset,
                timeout=LONG_POLL_SECONDS,
                allowed_updates=list(ALLOWED_UPDATES),
            )
        except RetryAfter as exc:
            await self.sleep(_retry_seconds(exc))
            return
        except TelegramError as exc:  # network, Telegram down, a webhook set meanwhile
            log.warning("telegram getUpdates failed", extra={"error": type(exc).__name__})
            await self.sleep(POLL_RETRY_SECONDS)
            return
        for update in updates:
            if not await self._handle(update):
                await self.sleep(POLL_RETRY_SECONDS)
                return  # not confirmed: the next getUpdates brings it again
            self.offset = update.update_id + 1

    async def _handle(self, update: Update) -> bool:
        """True when the update is done with (handled, not ours, or given up on)."""
        try:
            parsed = turn_of(update)
        except BadUpdate:
            log.info("unreadable telegram update skipped", extra={"update": update.update_id})
            return True
        if parsed is None:
            return True
        try:
            await handle_update(self.channel, self.turns, parsed)
        except Exception:
            failures = self._failures.get(update.update_id, 0) + 1
            self._failures = {update.update_id: failures}
            if failures < MAX_UPDATE_FAILURES:
                log.exception("telegram update failed; will retry", extra={"failures": failures})
                return False
            log.exception("telegram update skipped after repeated failures")
        return True


def polling(
    turns: TurnService, catalogs: Catalogs
) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp cleanup context that polls while the app runs (`coach serve
    --telegram-polling`); it needs the channel that `add_routes` put on the app."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        poller = TelegramPolling(app[TELEGRAM], turns, catalogs)
        task = asyncio.create_task(poller.run(), name="telegram-polling")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context
