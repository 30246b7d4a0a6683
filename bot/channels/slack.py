"""Slack: events, the /coach command and button presses into `Inbound`; replies as Block Kit.

In: Slack POSTs to /slack/events (Events API, slash commands and interactivity
share the address). The signature is checked against the signing secret with
our clock (bad, missing or older than five minutes: 401), then slack_bolt's
AsyncApp routes the request to one of four listeners: a direct message
(message.im), a mention (app_mention), `/coach <subcommand>` or a Block Kit
button. Each becomes an `Inbound` (external id "<team>:<user>"; message id the
event_id, so Slack's retries, which repeat it, find the inbox row and run
nothing twice) and a turn. Replies always go to the person's direct messages
through the outbox, never into a channel: a mention in #class-7b must not show
a learner's goals to the class.

The three-second rule: Slack wants its answer within 3 s, or it retries the
event (or shows the user an error for a command). The turn, which writes the
inbox row and the replies in one transaction, gets `ACK_DEADLINE` seconds; a
turn that takes longer keeps running after the answer and its replies still go
out through the outbox (and a retry of the same event waits for it, then finds
it done).

Out: `SlackSender` opens the DM (conversations.open) and posts the reply
(chat.postMessage) as Block Kit with a plain-text fallback, every piece of text
escaped for mrkdwn (&, <, >), so a learner's words can never become @channel,
@here, a mention or a link in a teacher's Slack.

Workspaces: a bot token (COACH_SLACK_BOT_TOKEN) serves one workspace without
OAuth; with COACH_SLACK_CLIENT_ID/SECRET, /slack/install adds workspaces and
slack_sdk's SQLAlchemy stores keep their tokens in our database
(bot/store/slack_tables.py). COACH_SLACK_APP_TOKEN takes the same requests over
Socket Mode instead (`socket_mode`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.signature import Clock as SignatureClock
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.api import SERVICES
from bot.channels.errors import ApiError
from bot.channels.textcheck import BadText, clean_text
from bot.clock import Clock
from bot.config import ConfigError, Settings
from bot.delivery.senders import SENDERS, SendOutcome
from bot.engine.messages import Attachment, Button, Inbound, Reply
from bot.engine.turns import TurnService
from bot.services import Services
from bot.store.models import ChannelIdentity

log = logging.getLogger(__name__)

CHANNEL = "slack"
EVENTS_PATH = "/slack/events"
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
SLASH_COMMAND = "/coach"

# Slack's deadline for an answer is 3 s (https://api.slack.com/apis/events-api#responding,
# and the same for commands and interactivity); the turn gets 2.5 s of it, leaving half a
# second for bolt, the network and a proxy.
ACK_DEADLINE = 2.5
# An OAuth install's state is good for 10 minutes (bolt's own default), time enough to
# read Slack's consent screen.
OAUTH_STATE_SECONDS = 600
# What the app asks a workspace for; deploy/slack-app-manifest.yaml lists the same.
BOT_SCOPES = ("app_mentions:read", "chat:write", "commands", "im:history", "im:write")

# Block Kit limits (https://api.slack.com/reference/block-kit/blocks): a message holds
# 50 blocks, a section's text 3,000 characters, an actions block 25 elements; a
# button's text 75 characters, its value 2,000.
MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_ACTIONS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
# chat.postMessage's `text` is the notification and the fallback where blocks do not
# show; Slack advises keeping it within 4,000 characters (method reference).
MAX_FALLBACK = 4000
# A fenced code block costs its two fences of three backticks and two line breaks.
_FENCE = "```"
_FENCED_SECTION = MAX_SECTION - 2 * (len(_FENCE) + 1)
ACTION_PREFIX = "coach.button."

# `/coach <subcommand> ...` → the chat command the engine knows (teacher commands:
# dialogs/flows/teacher.yaml, digest.yaml, safety.yaml; /link: link.yaml).
SUBCOMMANDS = {
    "digest": "/digest",
    "classes": "/classes",
    "roster": "/roster",
    "familycode": "/familycode",
    "ack": "/ack",
    "help": "/help",
    "link": "/link",
}

# Errors after which nothing we send to this person will arrive: their account is
# gone or deactivated, or their DM cannot be opened (Web API method references for
# conversations.open and chat.postMessage).
PERMANENT_ERRORS = frozenset(
    {
        "account_inactive",
        "user_not_found",
        "user_disabled",
        "user_not_visible",
        "channel_not_found",
        "is_archived",
        "cannot_dm_bot",
    }
)


# -- text: Slack's encoding in, mrkdwn escaping out -------------------------------------

# Slack writes mentions, channel links, special mentions and links as <...>
# (https://api.slack.com/reference/surfaces/formatting#retrieving-messages).
_ANGLED = re.compile(r"<([^<>]*)>")


def _readable(match: re.Match[str]) -> str:
    inside = match.group(1)
    target, _, label = inside.partition("|")
    if target.startswith("@"):  # <@U123> or <@U123|ana>
        return f"@{label or target[1:]}"
    if target.startswith("#"):  # <#C123|class-7b>
        return f"#{label or target[1:]}"
    if target.startswith("!"):  # <!here>, <!channel>, <!subteam^S1|@team>
        return label or f"@{target[1:].split('^')[0]}"
    return label or target  # <https://example.org|example> or <https://example.org>


def plain_text(text: str) -> str:
    """What the person typed, from Slack's encoding: mentions and links as words, and
    &amp; &lt; &gt; back to & < >."""
    text = _ANGLED.sub(_readable, text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def escape(text: str) -> str:
    """Text for mrkdwn (and the fallback): only &, < and > are special, and escaping them
    is what Slack asks (formatting reference, "Escaping text"). Without a "<" nothing
    can become a mention, @channel, @here or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escaped_len(char: str) -> int:
    return {"&": 5, "<": 4, ">": 4}.get(char, 1)


def _fit(text: str, limit: int) -> int:
    """The longest prefix of `text` (in characters) whose escaped form is within `limit`."""
    size = 0
    for index, char in enumerate(text):
        size += _escaped_len(char)
        if size > limit:
            return index
    return len(text)


def split_escaped(text: str, limit: int = MAX_SECTION) -> list[str]:
    """`text` escaped, in pieces of at most `limit` characters, broken at a paragraph, else
    a line, else a space, else where the limit falls (never inside an escape)."""
    pieces: list[str] = []
    rest = text.strip()
    while rest:
        end = _fit(rest, limit)
        if end == len(rest):
            pieces.append(escape(rest))
            break
        cut = end
        window = rest[:end]
        for separator in ("\n\n", "\n", " "):
            at = window.rfind(separator)
            # A break in the first half would leave a short piece before a long one.
            if at > end // 2:
                cut = at
                break
        pieces.append(escape(rest[:cut].strip()))
        rest = rest[cut:].strip()
    return [piece for piece in pieces if piece]


# -- replies out: Block Kit ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """One chat.postMessage: the fallback text and the blocks."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}


def _label(text: str) -> str:
    return text if len(text) <= MAX_BUTTON_TEXT else text[: MAX_BUTTON_TEXT - 1] + "…"


def actions_blocks(buttons: tuple[Button, ...]) -> list[dict[str, Any]]:
    """Buttons as actions blocks (25 to a block); values past Slack's 2,000 characters
    cannot be a button and are left out (the person can still type the answer)."""
    elements = [
        {
            "type": "button",
            # plain_text: a label is shown as is, whatever it holds.
            "text": {"type": "plain_text", "text": _label(button.label), "emoji": True},
            "value": button.value,
            "action_id": f"{ACTION_PREFIX}{index}",
        }
        for index, button in enumerate(buttons)
        if button.label.strip() and 0 < len(button.value) <= MAX_BUTTON_VALUE
    ]
    return [
        {"type": "actions", "block_id": f"coach.actions.{start}", "elements": chunk}
        for start in range(0, len(elements), MAX_ACTIONS)
        if (chunk := elements[start : start + MAX_ACTIONS])
    ]


def _fallback(text: str) -> str:
    text = text.strip()
    end = _fit(text, MAX_FALLBACK - 1)
    return escape(text[:end]) + ("…" if end < len(text) else "")


def _document_sections(document: Attachment) -> list[dict[str, Any]]:
    """A file's text as fenced code sections (a file upload needs files:write and an
    upload URL dance; a data export reads fine as text)."""
    pieces = split_escaped(document.content, _FENCED_SECTION)
    return [_section(f"{_FENCE}\n{piece}\n{_FENCE}") for piece in pieces]


def render(reply: Reply) -> list[SlackMessage]:
    """A reply as the messages Slack will show, in order: its text in sections, then an
    attachment's content, then the buttons under the last message."""
    sections = [_section(piece) for piece in split_escaped(reply.text)]
    if reply.attachment is not None:
        sections.append(_section(escape(reply.attachment.filename)))
        sections.extend(_document_sections(reply.attachment))
    buttons = actions_blocks(reply.buttons)
    room = MAX_BLOCKS - len(buttons)
    chunks = [sections[start : start + room] for start in range(0, len(sections), room)] or [[]]
    fallback = _fallback(reply.text) or escape(
        reply.attachment.filename if reply.attachment else ""
    )
    messages = [SlackMessage(fallback, chunk) for chunk in chunks]
    last = messages[-1]
    messages[-1] = SlackMessage(last.text, [*last.blocks, *buttons])
    return [message for message in messages if message.blocks]


# -- which token speaks for a workspace ----------------------------------------------------


class SlackTokens:
    """The bot token for a workspace: its OAuth installation's, else the single bot token
    (for its own workspace; for any request when there is no OAuth)."""

    def __init__(
        self,
        api_base: str,
        *,
        bot_token: str | None,
        store: AsyncInstallationStore | None,
        session: Callable[[], aiohttp.ClientSession],
    ) -> None:
        self.api_base = api_base
        self.bot_token = bot_token
        self.store = store
        self._session = session
        self._single: AuthorizeResult | None = None
        self._lock = asyncio.Lock()

    def client(self, token: str | None = None) -> AsyncWebClient:
        return AsyncWebClient(token=token, base_url=self.api_base, session=self._session())

    async def single(self) -> AuthorizeResult | None:
        """The single bot token's workspace and bot user (auth.test, asked once)."""
        if self.bot_token is None:
            return None
        async with self._lock:
            if self._single is None:
                try:
                    me = await self.client(self.bot_token).auth_test()
                except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
                    log.warning("slack auth.test failed", extra={"error": _error_name(exc)})
                    return None
                self._single = AuthorizeResult.from_auth_test_response(
                    auth_test_response=me, bot_token=self.bot_token, user_token=None
                )
            return self._single

    async def for_team(
        self, team_id: str | None, enterprise_id: str | None = None
    ) -> AuthorizeResult | None:
        if self.store is not None:
            bot = await self.store.async_find_bot(enterprise_id=enterprise_id, team_id=team_id)
            if bot is not None and bot.bot_token:
                return AuthorizeResult(
                    enterprise_id=bot.enterprise_id,
                    team_id=bot.team_id,
                    bot_token=bot.bot_token,
                    bot_id=bot.bot_id,
                    bot_user_id=bot.bot_user_id,
                    bot_scopes=bot.bot_scopes,
                )
        single = await self.single()
        if single is None:
            return None
        if self.store is None or single.team_id == team_id:
            return single
        return None


class _Authorize(AsyncAuthorize):
    """bolt's authorize step: the token for the workspace a request came from."""

    def __init__(self, tokens: SlackTokens) -> None:
        self.tokens = tokens

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        **actor: Any,
    ) -> AuthorizeResult | None:
        return await self.tokens.for_team(team_id, enterprise_id)


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or f"http {exc.response.status_code}")
    return type(exc).__name__


def _retry_after(exc: SlackApiError) -> float:
    headers = {str(k).lower(): v for k, v in (exc.response.headers or {}).items()}
    value = headers.get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(float(value), 0.0) if value is not None else 1.0
    except (TypeError, ValueError):
        return 1.0  # Slack always sends it; a second is its smallest answer


class SlackSender:
    """Sends outbox payloads to a person's Slack DMs (the dispatcher's `Sender`)."""

    def __init__(self, tokens: SlackTokens) -> None:
        self.tokens = tokens

    async def send(self, identity: ChannelIdentity, payload: dict[str, Any]) -> SendOutcome:
        """Deliver one reply; Slack's refusals become outcomes, never exceptions.

        A reply over several messages is posted in order; if a later one is refused,
        the retry posts the reply again from its first message.
        """
        team_id, _, user_id = identity.external_id.partition(":")
        if not team_id or not user_id:
            return SendOutcome.permanent("not a Slack team:user id")
        authorized = await self.tokens.for_team(team_id)
        if authorized is None or authorized.bot_token is None:
            # The app is not (or no longer) installed there, or auth.test failed: the
            # operator can fix that, so it is retried, not given up.
            return SendOutcome.transient("no bot token for this workspace")
        client = self.tokens.client(authorized.bot_token)
        reply = Reply.from_json(payload["reply"])
        try:
            opened = await client.conversations_open(users=user_id)
            channel = str(opened["channel"]["id"])
            for message in render(reply):
                await client.chat_postMessage(
                    channel=channel, text=message.text, blocks=message.blocks
                )
        except SlackApiError as exc:
            if exc.response.status_code == 429:
                return SendOutcome.later(_retry_after(exc))
            error = _error_name(exc)
            if error in PERMANENT_ERRORS:
                return SendOutcome.permanent(error)
            return SendOutcome.transient(f"slack: {error}"[:200])
        except (aiohttp.ClientError, TimeoutError) as exc:
            return SendOutcome.transient(type(exc).__name__)
        return SendOutcome.sent()


# -- requests in -----------------------------------------------------------------------------


class _ClockAdapter(SignatureClock):
    """slack_sdk's signature clock reading our injected clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def now(self) -> float:
        return self.clock.now().timestamp()


def command_text(text: str) -> str:
    """`/coach digest 6B` → "/digest 6B"; no subcommand → "/help"; anything else is
    said to the coach as it is ("/coach I want a goal" → "I want a goal")."""
    words = text.strip()
    if not words:
        return "/help"
    first, _, rest = words.partition(" ")
    command = SUBCOMMANDS.get(first.lower())
    if command is None:
        return words
    return f"{command} {rest.strip()}".strip()


def _strip_mention(text: str, bot_user_id: str | None) -> str:
    if bot_user_id:
        text = re.sub(rf"^\s*<@{re.escape(bot_user_id)}(?:\|[^>]*)?>\s*", "", text)
    return text


class SlackChannel:
    """The bolt app, its listeners, the token lookup and the sender."""

    def __init__(
        self,
        settings: Settings,
        turns: TurnService,
        clock: Clock,
        engine: AsyncEngine | None = None,
    ) -> None:
        if not settings.slack_enabled:
            raise ConfigError(
                "Slack is off: set COACH_SLACK_BOT_TOKEN, or COACH_SLACK_CLIENT_ID and "
                "COACH_SLACK_CLIENT_SECRET"
            )
        self.turns = turns
        self.ack_deadline = ACK_DEADLINE
        secret = settings.slack_signing_secret
        self.verifier = (
            SignatureVerifier(secret.get_secret_value(), clock=_ClockAdapter(clock))
            if secret is not None
            else None
        )
        self._http: aiohttp.ClientSession | None = None
        store: AsyncInstallationStore | None = None
        oauth: AsyncOAuthSettings | None = None
        if settings.slack_oauth:
            if engine is None:
                raise ConfigError("Slack OAuth keeps installations in the database: none given")
            assert settings.slack_client_id is not None
            assert settings.slack_client_secret is not None
            client_secret = settings.slack_client_secret.get_secret_value()
            store = AsyncSQLAlchemyInstallationStore(settings.slack_client_id, engine)
            oauth = AsyncOAuthSettings(
                client_id=settings.slack_client_id,
                client_secret=client_secret,
                scopes=list(BOT_SCOPES),
                installation_store=store,
                state_store=AsyncSQLAlchemyOAuthStateStore(OAUTH_STATE_SECONDS, engine),
                install_path=INSTALL_PATH,
                redirect_uri_path=REDIRECT_PATH,
            )
        token = settings.slack_bot_token
        self.tokens = SlackTokens(
            settings.slack_api_base,
            bot_token=token.get_secret_value() if token is not None else None,
            store=store,
            session=self.http,
        )
        self.sender = SlackSender(self.tokens)
        self.app = AsyncApp(
            # Our route checks signatures (with our clock, answering our JSON 401), and
            # Socket Mode has none; bolt's own check would only repeat ours.
            signing_secret=secret.get_secret_value() if secret is not None else "",
            request_verification_enabled=False,
            client=AsyncWebClient(base_url=settings.slack_api_base),
            # bolt takes an AsyncAuthorize here too (with OAuth settings beside it), though
            # its annotation names only plain functions.
            authorize=_Authorize(self.tokens),  # type: ignore[arg-type]
            oauth_settings=oauth,
            # Listeners decide when to acknowledge: after the turn, or at the deadline.
            process_before_response=True,
            logger=logging.getLogger("slack_bolt"),
        )
        self.app.event("message")(self._on_message)
        self.app.event("app_mention")(self._on_mention)
        self.app.command(SLASH_COMMAND)(self._on_command)
        self.app.action(re.compile(rf"^{re.escape(ACTION_PREFIX)}"))(self._on_button)
        self._running: set[asyncio.Task[Any]] = set()

    def http(self) -> aiohttp.ClientSession:
        """One connection pool for every call to Slack, made on first use (in the loop)."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    @classmethod
    def from_services(cls, services: Services) -> SlackChannel:
        return cls(services.settings, services.turns, services.clock, services.db.engine)

    def signature_ok(self, body: bytes, headers: Mapping[str, str]) -> bool:
        if self.verifier is None:
            return False
        try:
            return self.verifier.is_valid_request(body, dict(headers))
        except ValueError:  # a timestamp that is not a number
            return False

    # -- the listeners (bolt passes arguments by name) ---------------------------------

    async def _on_message(
        self, ack: AsyncAck, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        # Only what a person wrote in their DM with the app: not edits, deletions,
        # file shares or any bot's message (our own replies come back as events too).
        if (
            event.get("channel_type") == "im"
            and not event.get("subtype")
            and not event.get("bot_id")
            and event.get("user")
        ):
            await self._turn(
                context, str(event["user"]), str(body.get("event_id") or ""), text=event.get("text")
            )
        await ack()

    async def _on_mention(
        self, ack: AsyncAck, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        if event.get("user") and not event.get("bot_id"):
            text = _strip_mention(str(event.get("text") or ""), context.bot_user_id)
            await self._turn(
                context, str(event["user"]), str(body.get("event_id") or ""), text=text
            )
        await ack()

    async def _on_command(
        self, ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        # Slack does not retry a command; its trigger_id is unique to this invocation.
        said = command_text(plain_text(str(command.get("text") or "")))
        message_id = f"cmd:{command.get('trigger_id') or ''}"
        await self._turn(context, str(command.get("user_id") or ""), message_id, raw=said)
        await ack()

    async def _on_button(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        user = body.get("user") or {}
        stamp = body.get("trigger_id") or action.get("action_ts") or ""
        await self._turn(
            context, str(user.get("id") or ""), f"act:{stamp}", button=str(action.get("value"))
        )
        await ack()

    async def _turn(
        self,
        context: AsyncBoltContext,
        user: str,
        message_id: str,
        *,
        text: Any = None,
        raw: str | None = None,
        button: str | None = None,
    ) -> None:
        """Run the turn for one request; back to bolt (which acknowledges) once it has
        committed, or at the deadline with the turn still running."""
        team = context.team_id or ""
        if not team or not user or message_id.endswith(":") or not message_id:
            log.warning("slack request without team, user or id ignored")
            return
        try:
            said = raw if raw is not None else plain_text(str(text or ""))
            inbound = Inbound(
                channel=CHANNEL,
                external_id=f"{team}:{user}",
                message_id=message_id,
                text=clean_text(said) if button is None else None,
                button=clean_text(button) if button is not None else None,
                via=CHANNEL,
            )
        except BadText:
            log.info("slack message with invalid text ignored", extra={"id": message_id})
            return
        task = asyncio.ensure_future(self.turns.handle(inbound))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        try:
            await asyncio.wait_for(asyncio.shield(task), self.ack_deadline)
        except TimeoutError:
            # The turn goes on; its replies reach the outbox when it commits.
            log.info("slow slack turn acknowledged before it finished", extra={"id": message_id})
            task.add_done_callback(_report_late_failure)

    async def finish_turns(self) -> None:
        """Wait for turns still running past their acknowledgement (at shutdown)."""
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def close(self) -> None:
        await self.finish_turns()
        if self._http is not None:
            await self._http.close()


def _report_late_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("slack turn failed after its acknowledgement", exc_info=task.exception())


# -- the routes ---------------------------------------------------------------------------

SLACK = web.AppKey("slack", SlackChannel)


async def events(request: web.Request) -> web.Response:
    """POST /slack/events: events, commands and button presses, signature checked first."""
    channel = request.app[SLACK]
    body = await request.read()
    if not channel.signature_ok(body, request.headers):
        raise ApiError(401, "unauthorized", "bad, missing or stale Slack signature")
    try:
        bolt_request = await to_bolt_request(request)
    except UnicodeDecodeError:
        raise ApiError(400, "bad_request", "the body is not UTF-8") from None
    response = await channel.app.async_dispatch(bolt_request)
    if response.status == 404:
        # Something we did not subscribe to (bolt found no listener): taken, not retried.
        return web.Response(status=200)
    return await to_aiohttp_response(response)


async def install(request: web.Request) -> web.Response:
    """GET /slack/install: the "Add to Slack" page (OAuth only)."""
    flow = request.app[SLACK].app.oauth_flow
    if flow is None:
        raise ApiError(404, "not_found", f"no route for {request.path}")
    return await to_aiohttp_response(await flow.handle_installation(await to_bolt_request(request)))


async def oauth_redirect(request: web.Request) -> web.Response:
    """GET /slack/oauth_redirect: Slack sends the admin back here with a code to trade."""
    flow = request.app[SLACK].app.oauth_flow
    if flow is None:
        raise ApiError(404, "not_found", f"no route for {request.path}")
    return await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request)))


def add_routes(app: web.Application) -> SlackChannel:
    """Serve /slack/events (with a signing secret) and the OAuth pages (with OAuth)."""
    services = app[SERVICES]
    channel = SlackChannel.from_services(services)
    app[SLACK] = channel
    # The outbox dispatcher pushes Slack's replies and proactive messages through it.
    app.setdefault(SENDERS, {})["slack"] = channel.sender
    if channel.verifier is not None:
        app.router.add_post(EVENTS_PATH, events)
    if services.settings.slack_oauth:
        app.router.add_get(INSTALL_PATH, install)
        app.router.add_get(REDIRECT_PATH, oauth_redirect)

    async def close(app: web.Application) -> None:
        await channel.close()

    # Before the database closes: a late turn still writes its replies.
    app.on_cleanup.insert(0, close)
    return channel


def socket_mode(app_token: str) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp cleanup context that takes Slack's requests over Socket Mode (for
    development, or a school without a public address): `coach serve` adds it when
    COACH_SLACK_APP_TOKEN is set. Same app, same listeners, same acknowledgements."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

        channel = app[SLACK]
        handler = AsyncSocketModeHandler(channel.app, app_token)
        await handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("slack socket mode connected")
        yield
        await handler.close_async()  # type: ignore[no-untyped-call]

    return context
