"""The fake Telegram and Slack servers, proved against the real client libraries:
python-telegram-bot's Bot and slack_sdk's AsyncWebClient talk to them, and
slack_bolt's AsyncApp accepts the signed requests the Slack builders make."""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeDefault,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter
from telegram.warnings import PTBDeprecationWarning

from tests.fakes.slack import FakeSlack, SlackRequests
from tests.fakes.telegram import FakeTelegram, TelegramUser, Updates

CHAT = 42


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def bot(telegram: FakeTelegram) -> AsyncIterator[Bot]:
    bot = Bot(telegram.token, base_url=telegram.base_url)
    async with bot:  # initialize() calls getMe
        yield bot


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def web_client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.base_url)


def keyboard(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


# -- Telegram ---------------------------------------------------------------------------


async def test_get_me_and_the_token_check(telegram: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456789, True, "coach_test_bot")
    assert telegram.calls_to("getMe")[0].status == 200

    wrong = Bot("123456789:AAWrongTokenWrongTokenWrongToken0000", base_url=telegram.base_url)
    with pytest.raises(InvalidToken):
        await wrong.get_me()
    malformed = Bot("not-a-token", base_url=telegram.base_url)
    with pytest.raises(InvalidToken):
        await malformed.get_me()
    assert [c.status for c in telegram.calls_to("getMe")[-2:]] == [401, 404]


async def test_send_message_as_the_library_sends_it(telegram: FakeTelegram, bot: Bot) -> None:
    message = await bot.send_message(
        CHAT,
        "<b>Hi</b> Ana &amp; Ben &lt;3",
        parse_mode="HTML",
        reply_markup=keyboard([("Yes", "yes"), ("No", "no")], [("Later", "later")]),
    )
    # The library parsed the real Message shape.
    assert message.chat.id == CHAT
    assert message.text == "Hi Ana & Ben <3"
    assert message.message_id == 1
    assert message.reply_markup is not None

    call = telegram.calls_to("sendMessage")[0]
    assert call.content_type == "application/x-www-form-urlencoded"
    assert call.params["chat_id"] == CHAT
    assert call.params["text"] == "<b>Hi</b> Ana &amp; Ben &lt;3"
    assert call.params["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Yes", "callback_data": "yes"}, {"text": "No", "callback_data": "no"}],
            [{"text": "Later", "callback_data": "later"}],
        ]
    }
    seen = telegram.sent(CHAT)[0]
    assert seen.text == "Hi Ana & Ben <3"
    assert seen.buttons == [("Yes", "yes"), ("No", "no"), ("Later", "later")]


async def test_json_bodies_and_query_strings_too(telegram: FakeTelegram) -> None:
    url = f"{telegram.base_url}{telegram.token}/sendMessage"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"chat_id": CHAT, "text": "json"}) as response:
            body = await response.json()
        async with session.get(url, params={"chat_id": str(CHAT), "text": "query"}) as response:
            assert response.status == 200
    assert body["ok"] is True
    assert body["result"]["text"] == "json"
    assert body["result"]["chat"] == {"id": CHAT, "first_name": "Learner", "type": "private"}
    assert telegram.texts(CHAT) == ["json", "query"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("I <3 maths", "parse entities: unexpected start tag"),
        ("<script>x</script>", 'unsupported start tag "script"'),
        ("<b>open", "can't find end tag"),
        ("Tom & Jerry", "character entity expected"),
        ("x" * 4097, "message is too long"),
        ("   ", "message text is empty"),
    ],
)
async def test_html_mode_refuses_what_telegram_refuses(
    telegram: FakeTelegram, bot: Bot, text: str, error: str
) -> None:
    with pytest.raises(BadRequest, match=f"(?i){error}"):
        await bot.send_message(CHAT, text, parse_mode="HTML")
    assert telegram.calls_to("sendMessage")[0].status == 400
    assert telegram.sent(CHAT) == []


async def test_the_limit_counts_utf16_units_after_parsing(telegram: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(CHAT, "&amp;" * 4096, parse_mode="HTML")  # 4096 characters shown
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await bot.send_message(CHAT, "🙂" * 2049)  # 4098 UTF-16 units


async def test_callback_data_over_64_bytes_is_refused(bot: Bot) -> None:
    await bot.send_message(CHAT, "ok", reply_markup=keyboard([("A", "é" * 32)]))  # 64 bytes
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(CHAT, "no", reply_markup=keyboard([("A", "x" * 65)]))


async def test_edit_message_text(telegram: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(CHAT, "Pick one", reply_markup=keyboard([("A", "a")]))
    edited = await bot.edit_message_text("Picked A", chat_id=CHAT, message_id=sent.message_id)
    assert edited is not True
    assert edited.text == "Picked A"  # type: ignore[union-attr]
    assert telegram.sent(CHAT)[0].text == "Picked A"
    assert telegram.sent(CHAT)[0].buttons == []  # no markup given: the keyboard goes
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("Picked A", chat_id=CHAT, message_id=sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=CHAT, message_id=99)


async def test_answer_callback_query(telegram: FakeTelegram, bot: Bot) -> None:
    assert await bot.answer_callback_query("42000001") is True
    assert await bot.answer_callback_query("42000002", text="Saved") is True
    assert [c.params for c in telegram.calls_to("answerCallbackQuery")] == [
        {"callback_query_id": "42000001"},
        {"callback_query_id": "42000002", "text": "Saved"},
    ]


async def test_send_document_is_multipart(telegram: FakeTelegram, bot: Bot) -> None:
    content = json.dumps({"goals": []}).encode()
    message = await bot.send_document(
        CHAT, content, filename="coach-data.json", caption="<b>Your data</b>", parse_mode="HTML"
    )
    assert message.document is not None
    assert message.document.file_name == "coach-data.json"
    assert message.caption == "Your data"
    call = telegram.calls_to("sendDocument")[0]
    assert call.content_type == "multipart/form-data"
    assert call.files["document"].filename == "coach-data.json"
    assert call.files["document"].content == content
    assert telegram.sent(CHAT)[0].document == call.files["document"]
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await bot.send_document(CHAT, content, filename="x.json", caption="x" * 1025)


async def test_webhook_set_read_and_deleted(telegram: FakeTelegram, bot: Bot) -> None:
    assert await bot.set_webhook(
        "https://coach.example.org/telegram/webhook",
        secret_token="s3cret_-token",
        allowed_updates=["message", "callback_query"],
    )
    assert telegram.webhook == {
        "url": "https://coach.example.org/telegram/webhook",
        "secret_token": "s3cret_-token",
        "allowed_updates": ["message", "callback_query"],
    }
    info = await bot.get_webhook_info()
    assert info.url == "https://coach.example.org/telegram/webhook"
    assert info.allowed_updates == ("message", "callback_query")
    with pytest.raises(Conflict, match=r"(?i)webhook is active"):
        await bot.get_updates()
    assert await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""
    with pytest.raises(BadRequest, match=r"(?i)HTTPS URL must be provided"):
        await bot.set_webhook("http://coach.example.org/telegram/webhook")
    with pytest.raises(BadRequest, match=r"(?i)unallowed characters"):
        await bot.set_webhook("https://coach.example.org/x", secret_token="no spaces")


async def test_commands_per_language(telegram: FakeTelegram, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand("goal", "Set a goal")])
    await bot.set_my_commands([BotCommand("goal", "Fijar una meta")], language_code="es")
    spanish = await bot.get_my_commands(language_code="es")
    assert [(c.command, c.description) for c in spanish] == [("goal", "Fijar una meta")]
    default = await bot.get_my_commands(scope=BotCommandScopeDefault())
    assert [c.description for c in default] == ["Set a goal"]
    assert telegram.calls_to("setMyCommands")[0].params["commands"] == [
        {"command": "goal", "description": "Set a goal"}
    ]
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("Not Valid", "x")])


async def test_get_updates_long_polls_and_confirms(telegram: FakeTelegram, bot: Bot) -> None:
    updates = Updates()
    ana = TelegramUser(CHAT, "Ana")
    assert await bot.get_updates(timeout=0) == ()

    waiting = asyncio.create_task(bot.get_updates(timeout=30))
    await telegram.wait_for_long_poll()  # the server holds the request open...
    telegram.push_update(updates.text(ana, "hello"))  # ...until an update arrives
    got = await waiting
    assert [u.message.text for u in got if u.message] == ["hello"]

    telegram.push_update(updates.start(ana, "ABCDE-12345"))
    again = await bot.get_updates(timeout=0)
    assert len(again) == 2  # not confirmed yet: sent again
    confirmed = await bot.get_updates(offset=again[-1].update_id + 1, timeout=0)
    assert confirmed == ()
    assert telegram.pending_updates == 0


async def test_get_updates_honours_allowed_updates(telegram: FakeTelegram, bot: Bot) -> None:
    updates = Updates()
    ana = TelegramUser(CHAT)
    telegram.push_update(updates.edited(ana, "typo"))
    telegram.push_update(updates.callback(ana, "yes"))
    got = await bot.get_updates(timeout=0, allowed_updates=["message", "callback_query"])
    assert [u.callback_query.data for u in got if u.callback_query] == ["yes"]
    assert len(got) == 1


async def test_429_for_the_next_sends_then_normal(telegram: FakeTelegram, bot: Bot) -> None:
    telegram.rate_limit(calls=2, retry_after=7)
    for _ in range(2):
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(CHAT, "hi")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PTBDeprecationWarning)
            assert caught.value.retry_after in (7, timedelta(seconds=7))
    await bot.send_message(CHAT, "hi")
    assert [c.status for c in telegram.calls_to("sendMessage")] == [429, 429, 200]
    assert telegram.texts(CHAT) == ["hi"]


async def test_403_for_a_blocked_chat_only(telegram: FakeTelegram, bot: Bot) -> None:
    telegram.block(CHAT)
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(CHAT, "hi")
    with pytest.raises(Forbidden):
        await bot.send_document(CHAT, b"{}", filename="x.json")
    await bot.send_message(CHAT + 1, "hi")
    assert telegram.sent(CHAT) == []
    assert telegram.texts(CHAT + 1) == ["hi"]


def test_update_builders_make_real_updates() -> None:
    updates = Updates()
    ana = TelegramUser(CHAT, "Ana", language_code="es")
    start = Update.de_json(updates.start(ana, "ABCDE12345"), None)
    assert start.message is not None
    assert start.effective_chat is not None
    assert start.message.text == "/start ABCDE12345"
    assert start.message.entities[0].type == "bot_command"
    assert start.message.entities[0].length == len("/start")
    assert start.effective_chat.type == "private"
    assert start.message.from_user is not None
    assert start.message.from_user.language_code == "es"

    press = Update.de_json(updates.callback(ana, "goal"), None)
    assert press.callback_query is not None
    assert press.callback_query.data == "goal"
    assert press.effective_chat is not None
    assert press.effective_chat.id == CHAT
    assert press.update_id == start.update_id + 1

    sticker = Update.de_json(updates.sticker(ana), None)
    assert sticker.message is not None
    assert sticker.message.text is None


# -- Slack ------------------------------------------------------------------------------


async def test_auth_test_and_the_token_check(slack: FakeSlack, web_client: AsyncWebClient) -> None:
    me = await web_client.auth_test()
    assert (me["team_id"], me["user_id"], me["bot_id"]) == (
        "T0COACH001",
        "U0COACHBOT",
        "B0COACHBOT",
    )
    assert slack.calls_to("auth.test")[0].token == slack.bot_token
    with pytest.raises(SlackApiError) as caught:
        await AsyncWebClient(token="xoxb-wrong", base_url=slack.base_url).auth_test()
    assert caught.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as caught:
        await AsyncWebClient(base_url=slack.base_url).auth_test()
    assert caught.value.response["error"] == "not_authed"


async def test_post_and_update_messages(slack: FakeSlack, web_client: AsyncWebClient) -> None:
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Pick one"}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Yes"},
                    "value": "yes",
                    "action_id": "coach:yes",
                }
            ],
        },
    ]
    posted = await web_client.chat_postMessage(channel="D0LEARNER1", text="Pick one", blocks=blocks)
    assert posted["channel"] == "D0LEARNER1"
    assert posted["message"]["bot_id"] == "B0COACHBOT"
    call = slack.calls_to("chat.postMessage")[0]
    assert call.content_type == "application/json"
    assert call.params["blocks"] == blocks
    assert slack.posted("D0LEARNER1")[0].buttons == [("Yes", "yes")]

    updated = await web_client.chat_update(channel="D0LEARNER1", ts=posted["ts"], text="Done")
    assert updated["text"] == "Done"
    assert slack.texts("D0LEARNER1") == ["Done"]
    with pytest.raises(SlackApiError) as caught:
        await web_client.chat_update(channel="D0LEARNER1", ts="1.000000", text="x")
    assert caught.value.response["error"] == "message_not_found"


async def test_form_bodies_with_json_fields(slack: FakeSlack, web_client: AsyncWebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "plain_text", "text": "hi"}}]
    await web_client.api_call(
        "chat.postMessage",
        data={"channel": "C0CLASS001", "text": "hi", "blocks": json.dumps(blocks)},
    )
    call = slack.calls_to("chat.postMessage")[0]
    assert call.content_type == "application/x-www-form-urlencoded"
    assert call.params["blocks"] == blocks


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"channel": "D0LEARNER1"}, "no_text"),
        ({"channel": "D0LEARNER1", "text": "x" * 40_001}, "msg_too_long"),
        ({"channel": "D0LEARNER1", "blocks": [{"type": "nonsense"}]}, "invalid_blocks"),
        ({"channel": "", "text": "x"}, "channel_not_found"),
    ],
)
async def test_post_refuses_what_slack_refuses(
    web_client: AsyncWebClient, kwargs: dict[str, Any], error: str
) -> None:
    with pytest.raises(SlackApiError) as caught:
        await web_client.api_call("chat.postMessage", json=kwargs)
    assert caught.value.response["error"] == error


async def test_conversations_open(slack: FakeSlack, web_client: AsyncWebClient) -> None:
    first = await web_client.conversations_open(users="U0TEACHER1")
    assert first["channel"]["id"] == "D0TEACHER1"
    assert "already_open" not in first.data
    second = await web_client.conversations_open(users=["U0TEACHER1"], return_im=True)
    assert second["already_open"] is True
    assert second["channel"]["user"] == "U0TEACHER1"
    slack.disable_user("U0GONE0001")
    with pytest.raises(SlackApiError) as caught:
        await web_client.conversations_open(users="U0GONE0001")
    assert caught.value.response["error"] == "user_disabled"
    slack.remove_channel("C0ARCHIVED")
    with pytest.raises(SlackApiError) as caught:
        await web_client.chat_postMessage(channel="C0ARCHIVED", text="hi")
    assert caught.value.response["error"] == "channel_not_found"


async def test_oauth_install_mints_a_workspace_token(slack: FakeSlack) -> None:
    code, token = slack.approve_install(team_id="T0OTHER001", team_name="Other School")
    client = AsyncWebClient(base_url=slack.base_url)
    with pytest.raises(SlackApiError) as caught:
        await client.oauth_v2_access(client_id=slack.client_id, client_secret="wrong", code=code)
    assert caught.value.response["error"] == "bad_client_secret"
    granted = await client.oauth_v2_access(
        client_id=slack.client_id, client_secret=slack.client_secret, code=code
    )
    assert granted["access_token"] == token
    assert granted["team"] == {"id": "T0OTHER001", "name": "Other School"}
    assert granted["token_type"] == "bot"
    me = await AsyncWebClient(token=token, base_url=slack.base_url).auth_test()
    assert me["team_id"] == "T0OTHER001"
    with pytest.raises(SlackApiError) as caught:  # a code works once
        await client.oauth_v2_access(
            client_id=slack.client_id, client_secret=slack.client_secret, code=code
        )
    assert caught.value.response["error"] == "invalid_code"


async def test_slack_429_with_retry_after(slack: FakeSlack, web_client: AsyncWebClient) -> None:
    slack.rate_limit(calls=1, retry_after=30)
    with pytest.raises(SlackApiError) as caught:
        await web_client.chat_postMessage(channel="D0LEARNER1", text="hi")
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "30"
    assert caught.value.response["error"] == "ratelimited"
    await web_client.chat_postMessage(channel="D0LEARNER1", text="hi")
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]
    assert slack.texts("D0LEARNER1") == ["hi"]


def test_signatures_verify_with_slack_sdk() -> None:
    requests = SlackRequests("topsecret")
    signed = requests.message_im("U0LEARNER1", "hello")
    verifier = SignatureVerifier("topsecret")
    assert verifier.is_valid_request(signed.body, signed.headers)
    assert not SignatureVerifier("other").is_valid_request(signed.body, signed.headers)
    stale = requests.message_im("U0LEARNER1", "hello", timestamp=1_600_000_000)
    assert not verifier.is_valid_request(stale.body, stale.headers)


async def test_signed_requests_reach_a_bolt_app(slack: FakeSlack, aiohttp_client: Any) -> None:
    requests = SlackRequests("topsecret")
    seen: list[tuple[str, Any]] = []
    app = AsyncApp(
        signing_secret="topsecret",
        client=AsyncWebClient(token=slack.bot_token, base_url=slack.base_url),
    )

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        seen.append(("message", (event["channel_type"], event["user"], event["text"])))

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any]) -> None:
        seen.append(("mention", event["text"]))

    @app.command("/coach")
    async def on_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack()
        seen.append(("command", (command["user_id"], command["text"])))

    @app.action("coach:yes")
    async def on_action(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        seen.append(("action", body["actions"][0]["value"]))

    client = await aiohttp_client(app.web_app())

    async def post(signed: Any) -> int:
        response = await client.post("/slack/events", data=signed.body, headers=signed.headers)
        return int(response.status)

    assert await post(requests.message_im("U0LEARNER1", "hi coach")) == 200
    assert await post(requests.app_mention("U0TEACHER1", "digest please")) == 200
    assert await post(requests.slash_command("U0TEACHER1", "digest 7B")) == 200
    assert await post(requests.block_action("U0LEARNER1", "coach:yes", "yes")) == 200
    retried = requests.message_im("U0LEARNER1", "again", retry_num=1)
    assert await post(retried) == 200
    assert retried.headers["X-Slack-Retry-Num"] == "1"
    # Forged and stale requests never reach a listener.
    assert await post(SlackRequests("wrong").message_im("U0LEARNER1", "x")) == 401
    assert await post(requests.message_im("U0LEARNER1", "x", timestamp=1_600_000_000)) == 401
    for _ in range(50):  # bolt runs event listeners after the ack
        if len(seen) >= 5:
            break
        await asyncio.sleep(0.01)
    assert sorted(seen, key=str) == sorted(
        [
            ("message", ("im", "U0LEARNER1", "hi coach")),
            ("mention", "<@U0COACHBOT> digest please"),
            ("command", ("U0TEACHER1", "digest 7B")),
            ("action", "yes"),
            ("message", ("im", "U0LEARNER1", "again")),
        ],
        key=str,
    )
    assert slack.calls_to("auth.test")  # bolt checked its token against the fake
