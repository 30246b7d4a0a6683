"""The Telegram channel's rendering and its sender, against the fake Bot API server:
what a person sees in the chat, and what the dispatcher is told when Telegram refuses."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.channels import telegram as channel_module
from bot.channels.telegram import (
    MAX_CALLBACK_DATA,
    MAX_MESSAGE,
    TelegramChannel,
    callback_data,
    inline_keyboard,
    parse_update,
    render,
    split_text,
    utf16_len,
)
from bot.config import ConfigError
from bot.delivery.senders import SendOutcome
from bot.engine.messages import Attachment, Button, Reply
from bot.store.models import ChannelIdentity
from tests.conftest import make_settings
from tests.fakes.telegram import FakeTelegram, TelegramUser, Updates

CHAT = 4242


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def channel(telegram: FakeTelegram) -> AsyncIterator[TelegramChannel]:
    channel = TelegramChannel(telegram.token, api_base=telegram.api_base, webhook_secret="s3cret")
    yield channel
    await channel.close()


def identity(chat: int | str = CHAT) -> ChannelIdentity:
    now = datetime(2026, 1, 5, tzinfo=UTC)
    return ChannelIdentity(
        id=1,
        channel="telegram",
        external_id=str(chat),
        person_id=1,
        created_at=now,
        last_seen_at=now,
    )


def payload(
    text: str, *buttons: tuple[str, str], attachment: Attachment | None = None
) -> dict[str, Any]:
    reply = Reply(text, tuple(Button(label, value) for label, value in buttons), attachment)
    return {"reply": reply.to_json(), "expect": {"type": "none", "slot": None}}


# -- splitting, keyboards, callback data ----------------------------------------------


def test_short_text_is_one_piece() -> None:
    assert split_text("Hello there") == ["Hello there"]
    assert split_text("  \n") == []


def test_long_text_breaks_at_paragraphs_first() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 300 for i in range(6)]
    pieces = split_text("\n\n".join(p.strip() for p in paragraphs))
    assert len(pieces) > 1
    assert all(utf16_len(piece) <= MAX_MESSAGE for piece in pieces)
    # Every piece starts at the start of a paragraph: none was cut mid-way.
    assert all(piece.startswith("Paragraph") for piece in pieces)
    assert sum(piece.count("word") for piece in pieces) == 6 * 300


def test_text_without_paragraphs_breaks_at_lines_then_spaces_then_anywhere() -> None:
    lines = "\n".join(f"line {i} " + "x" * 60 for i in range(200))
    pieces = split_text(lines)
    assert all(piece.startswith("line ") for piece in pieces)
    spaces = split_text("word " * 2000)
    assert all(piece.endswith("word") for piece in spaces)
    solid = split_text("y" * 9000)
    assert [len(piece) for piece in solid] == [4096, 4096, 808]


def test_limit_counts_utf16_units() -> None:
    pieces = split_text("🙂" * 3000)  # each one is two UTF-16 units
    assert [utf16_len(piece) for piece in pieces] == [4096, 1904]


def test_callback_data_is_the_value_when_it_fits() -> None:
    assert callback_data("yes") == "yes"
    assert callback_data("like:resource-123") == "like:resource-123"
    assert callback_data("é" * 32) == "é" * 32  # 64 bytes exactly


@pytest.mark.parametrize("value", ["x" * 65, "é" * 33, "#looks-hashed", ""])
def test_callback_data_names_other_values_by_hash(value: str) -> None:
    data = callback_data(value)
    assert data.startswith("#")
    assert 1 <= len(data.encode()) <= MAX_CALLBACK_DATA
    assert data == callback_data(value)  # the same every time, on every replica
    assert data != callback_data(value + "!")


def test_short_answers_share_a_row_long_ones_do_not() -> None:
    markup = inline_keyboard([Button("Yes", "yes"), Button("No", "no")])
    assert markup is not None
    assert [[b.text for b in row] for row in markup.inline_keyboard] == [["Yes", "No"]]
    ratings = inline_keyboard([Button(str(n), str(n)) for n in range(1, 6)])
    assert ratings is not None
    assert len(ratings.inline_keyboard) == 1
    menu = inline_keyboard(
        [Button("Set a goal for this term", "goal"), Button("Find something new", "interests")]
    )
    assert menu is not None
    assert len(menu.inline_keyboard) == 2
    assert inline_keyboard([]) is None


def test_render_escapes_text_and_puts_the_keyboard_last() -> None:
    messages = render(Reply('<b>Bob</b> & "friends"\n\n' + "z " * 3000, (Button("OK", "ok"),)))
    assert messages[0].html.startswith('&lt;b&gt;Bob&lt;/b&gt; &amp; "friends"')
    assert [m.keyboard is not None for m in messages] == [False, True]


# -- the sender against the fake ------------------------------------------------------


async def test_a_reply_arrives_as_the_person_should_see_it(
    telegram: FakeTelegram, channel: TelegramChannel
) -> None:
    hostile = 'Nice to meet you, <b>Bob</b> & <a href="http://evil">friends</a>!'
    outcome = await channel.sender.send(identity(), payload(hostile, ("Yes", "yes"), ("No", "no")))
    assert outcome == SendOutcome.sent()
    seen = telegram.sent(CHAT)
    assert [m.text for m in seen] == [hostile]  # literally, no bold and no link
    assert seen[0].buttons == [("Yes", "yes"), ("No", "no")]
    assert telegram.calls_to("sendMessage")[0].params["parse_mode"] == "HTML"


async def test_a_long_reply_is_split_with_buttons_under_the_last_piece(
    telegram: FakeTelegram, channel: TelegramChannel
) -> None:
    text = "\n\n".join(f"Step {i}: " + "practise " * 200 for i in range(6))
    await channel.sender.send(identity(), payload(text, ("Done", "done")))
    seen = telegram.sent(CHAT)
    assert len(seen) >= 2
    assert [m.buttons for m in seen][-1] == [("Done", "done")]
    assert all(m.buttons == [] for m in seen[:-1])
    assert sum(m.text.count("practise") for m in seen) == 6 * 200


async def test_a_long_button_value_goes_as_a_hash(
    telegram: FakeTelegram, channel: TelegramChannel
) -> None:
    long_value = "resource:" + "a" * 80
    await channel.sender.send(identity(), payload("Pick", ("This one", long_value)))
    [(label, data)] = telegram.sent(CHAT)[0].buttons
    assert label == "This one"
    assert data == callback_data(long_value)


async def test_the_data_export_arrives_as_a_document(
    telegram: FakeTelegram, channel: TelegramChannel
) -> None:
    export = json.dumps({"person": {"name": "Ana <3"}})
    attachment = Attachment("coach-data.json", "application/json", export)
    await channel.sender.send(
        identity(), payload("Here's everything I keep.", attachment=attachment)
    )
    [message] = telegram.sent(CHAT)
    assert message.text == "Here's everything I keep."  # the caption
    assert message.document is not None
    assert message.document.filename == "coach-data.json"
    assert json.loads(message.document.content) == {"person": {"name": "Ana <3"}}


async def test_a_long_text_with_a_document_goes_before_it(
    telegram: FakeTelegram, channel: TelegramChannel
) -> None:
    attachment = Attachment("coach-data.json", "application/json", "{}")
    await channel.sender.send(
        identity(), payload("word " * 400, ("OK", "ok"), attachment=attachment)
    )
    seen = telegram.sent(CHAT)
    assert [m.document is not None for m in seen] == [False, True]
    assert seen[-1].buttons == [("OK", "ok")]


async def test_429_goes_back_with_telegrams_delay(
    telegram: FakeTelegram, channel: TelegramChannel
) -> None:
    telegram.rate_limit(calls=1, retry_after=17)
    outcome = await channel.sender.send(identity(), payload("hi"))
    assert outcome.kind == "retry_after"
    assert outcome.retry_after == 17.0
    assert telegram.sent(CHAT) == []
    assert await channel.sender.send(identity(), payload("hi")) == SendOutcome.sent()
    assert telegram.texts(CHAT) == ["hi"]


async def test_a_blocked_bot_is_a_permanent_failure(
    telegram: FakeTelegram, channel: TelegramChannel
) -> None:
    telegram.block(CHAT)
    outcome = await channel.sender.send(identity(), payload("hi"))
    assert outcome.kind == "permanent"
    assert outcome.reason is not None
    assert "blocked" in outcome.reason


async def test_other_refusals_and_outages(telegram: FakeTelegram) -> None:
    not_a_chat = TelegramChannel(telegram.token, api_base=telegram.api_base)
    assert (await not_a_chat.sender.send(identity("web-user"), payload("hi"))).kind == "permanent"
    await not_a_chat.close()

    wrong = TelegramChannel(
        "123456789:AAWrongTokenWrongTokenWrongToken0000", api_base=telegram.api_base
    )
    outcome = await wrong.sender.send(identity(), payload("hi"))
    assert outcome == SendOutcome.transient("Telegram refused the bot token")
    await wrong.close()

    down = TelegramChannel(telegram.token, api_base="http://127.0.0.1:9")  # nothing listens
    outcome = await down.sender.send(identity(), payload("hi"))
    assert outcome.kind == "transient"
    await down.close()


async def test_the_token_and_message_text_stay_out_of_the_logs(
    telegram: FakeTelegram, channel: TelegramChannel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Even with the libraries at DEBUG, where python-telegram-bot logs every parameter.
    for name in ("aiohttp", "httpx", "httpcore", "telegram"):
        caplog.set_level(logging.DEBUG, logger=name)
    secret_words = "my secret diary entry"
    await channel.sender.send(identity(), payload(secret_words, ("OK", "ok")))
    telegram.rate_limit(calls=1, retry_after=3)
    await channel.sender.send(identity(), payload(secret_words))
    await channel.answer_callback("1")
    # Whoever logs an address with the token in it (httpx does, at INFO) logs it
    # redacted: the record factory cleans every record.
    logging.getLogger("some.library").debug("POST %s", f"{telegram.base_url}{telegram.token}/x")
    assert telegram.texts(CHAT) == [secret_words]
    assert [r for r in caplog.records if r.name.startswith("telegram")]  # the library did log
    messages = [record.getMessage() for record in caplog.records]
    assert not [m for m in messages if telegram.token in m]
    assert any("POST" in m and "<redacted>" in m for m in messages)
    assert not [
        r for r in caplog.records if r.levelno >= logging.INFO and secret_words in r.getMessage()
    ]


async def test_a_new_channel_logs_no_token(caplog: pytest.LogCaptureFixture) -> None:
    # python-telegram-bot's Bot logs its address, token and all, at DEBUG when it is
    # made: the channel registers the token first. A token no other test has used.
    token = "987654321:AAChannelTokenNeverSeenBefore-abcdefgh"
    assert token not in channel_module._SECRETS
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="telegram")
    channel = TelegramChannel(token, api_base="http://127.0.0.1:9")
    await channel.close()
    assert [r for r in caplog.records if r.name.startswith("telegram")]  # it did log
    assert not [r for r in caplog.records if token in r.getMessage()]


async def test_bot_api_calls_do_not_go_through_httpx(
    telegram: FakeTelegram, channel: TelegramChannel, caplog: pytest.LogCaptureFixture
) -> None:
    # httpcore logs each connection and request at DEBUG: under PTB's default backend
    # (HTTPXRequest) a send and a getUpdates would leave records here.
    for name in ("httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    await channel.sender.send(identity(), payload("hi"))
    await channel.bot.get_updates(timeout=0)
    assert telegram.texts(CHAT) == ["hi"]
    assert [call.method for call in telegram.calls] == ["sendMessage", "getUpdates"]
    assert not [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]


async def test_at_info_a_send_logs_no_line_per_request(
    telegram: FakeTelegram, channel: TelegramChannel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await channel.sender.send(identity(), payload("hi"))
    assert telegram.texts(CHAT) == ["hi"]
    assert not caplog.records


# -- updates in -----------------------------------------------------------------------


def test_updates_become_inbound_messages() -> None:
    updates = Updates()
    ana = TelegramUser(CHAT, "Ana")
    text = parse_update(updates.text(ana, "I want to read more"))
    assert text is not None
    assert (text.inbound.channel, text.inbound.external_id) == ("telegram", str(CHAT))
    assert text.inbound.text == "I want to read more"
    assert text.inbound.display_name == "Ana"
    assert text.inbound.message_id.startswith("u")
    assert text.callback_query_id is None

    press_update = updates.callback(ana, "yes")
    press = parse_update(press_update)
    assert press is not None
    assert press.inbound.button == "yes"
    assert press.inbound.text is None
    assert press.callback_query_id == press_update["callback_query"]["id"]
    assert press.inbound.message_id == f"u{press_update['update_id']}"


def test_updates_coach_does_not_answer() -> None:
    updates = Updates()
    ana = TelegramUser(CHAT)
    group = {"id": -100123, "title": "Class 7B", "type": "supergroup"}
    assert parse_update(updates.text(ana, "hi all", chat=group)) is None
    assert parse_update(updates.sticker(ana)) is None
    assert parse_update(updates.edited(ana, "typo")) is None


def test_serving_telegram_needs_a_webhook_secret(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, telegram_token="123:abc")
    with pytest.raises(ConfigError, match="COACH_TELEGRAM_WEBHOOK_SECRET"):
        settings.check_for_serving()
    make_settings(
        tmp_path, telegram_token="123:abc", telegram_webhook_secret="ok"
    ).check_for_serving()
    assert "123:abc" not in repr(settings)  # the token is a secret value
