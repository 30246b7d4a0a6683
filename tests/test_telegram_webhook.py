"""Telegram end to end: real Update JSON into POST /telegram/webhook, the turn's outbox
rows in the database, TelegramSender delivering them to the fake Bot API, and what the
person sees there. Also `coach telegram set-webhook`."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, func, select

from bot.app import build_app
from bot.channels.telegram import TELEGRAM, callback_data
from bot.services import Services
from bot.store.models import ChannelIdentity, InboxMessage, MessageLog, OutboxMessage
from tests.fakes.telegram import FakeTelegram, TelegramUser, Updates

ROOT = Path(__file__).resolve().parent.parent
SECRET = "webhook-Secret_123"
ANA = TelegramUser(5550001, "Ana")


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@dataclass
class Telegram:
    """Our app with the Telegram channel on, and the fake Bot API it talks to."""

    fake: FakeTelegram
    services: Services
    client: TestClient[Any, Any]
    updates: Updates

    async def post(self, update: Any, *, secret: str | None = SECRET) -> Any:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        return await self.client.post("/telegram/webhook", json=update, headers=headers)

    async def say(self, user: TelegramUser, text: str) -> dict[str, Any]:
        update = self.updates.text(user, text)
        response = await self.post(update)
        assert response.status == 200, await response.text()
        return update

    async def press(self, user: TelegramUser, data: str) -> dict[str, Any]:
        update = self.updates.callback(user, data)
        response = await self.post(update)
        assert response.status == 200, await response.text()
        return update

    async def outbox(self) -> list[OutboxMessage]:
        async with self.services.db.reading() as session:
            return list(
                (await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
            )

    async def deliver(self) -> list[str]:
        """Send the pending outbox rows through TelegramSender, as the dispatcher will;
        returns the outcomes' kinds."""
        sender = self.client.app[TELEGRAM].sender
        kinds: list[str] = []
        async with self.services.db.transaction() as session:
            rows = (
                await session.exec(
                    select(OutboxMessage, ChannelIdentity)
                    .join(
                        ChannelIdentity, col(ChannelIdentity.id) == col(OutboxMessage.identity_id)
                    )
                    .where(OutboxMessage.status == "pending")
                    .order_by(col(OutboxMessage.id))
                )
            ).all()
            for row, identity in rows:
                outcome = await sender.send(identity, row.payload)
                kinds.append(outcome.kind)
                if outcome.kind == "sent":
                    row.status = "sent"
                    session.add(row)
        return kinds


@pytest.fixture
async def tg(
    telegram: FakeTelegram, open_services: Callable[..., Any], aiohttp_client: Any
) -> Telegram:
    services: Services = await open_services(
        "sqlite",
        telegram_token=telegram.token,
        telegram_webhook_secret=SECRET,
        telegram_api_base=telegram.api_base,
    )
    app = build_app(services)
    client = await aiohttp_client(app)
    return Telegram(telegram, services, client, Updates())


async def test_a_learners_first_messages(tg: Telegram) -> None:
    await tg.say(ANA, "/start")
    rows = await tg.outbox()
    assert rows  # the replies were written before the 200...
    assert all(row.status == "pending" for row in rows)
    assert tg.fake.calls_to("sendMessage") == []  # ...and nothing was sent in the request
    assert await tg.deliver() == ["sent"] * len(rows)
    texts = tg.fake.texts(ANA.id)
    assert "I'm Coach" in texts[0]
    assert "What should I call you?" in texts[-1]
    assert tg.fake.sent(ANA.id)[-1].buttons == [("Skip", "skip")]

    # Pressing Skip: the button's value reaches the engine, and the spinner stops.
    press = await tg.press(ANA, "skip")
    assert [c.params for c in tg.fake.calls_to("answerCallbackQuery")] == [
        {"callback_query_id": press["callback_query"]["id"]}
    ]
    await tg.deliver()
    last = tg.fake.sent(ANA.id)[-1]
    assert "Which language" in last.text
    assert last.buttons == [("English", "en"), ("Español", "es")]

    await tg.press(ANA, "es")
    await tg.deliver()
    assert any("español" in text.lower() for text in tg.fake.texts(ANA.id)[-3:])


async def test_the_person_is_the_chat_and_gets_their_telegram_name(tg: Telegram) -> None:
    await tg.say(ANA, "/start")
    async with tg.services.db.reading() as session:
        identities = (await session.exec(select(ChannelIdentity))).all()
        inbox = (await session.exec(select(InboxMessage))).all()
    assert [(i.channel, i.external_id) for i in identities] == [("telegram", str(ANA.id))]
    assert len(inbox) == 1
    assert inbox[0].message_id.startswith("u")


async def test_a_wrong_or_missing_secret_is_refused(tg: Telegram) -> None:
    for secret in ("wrong", "", None):
        response = await tg.post(tg.updates.text(ANA, "/start"), secret=secret)
        assert response.status == 403
        body = await response.json()
        assert body["error"]["code"] == "forbidden"
    assert await tg.outbox() == []
    async with tg.services.db.reading() as session:
        assert (await session.exec(select(func.count()).select_from(InboxMessage))).one() == 0


async def test_a_redelivered_update_runs_once(tg: Telegram) -> None:
    update = await tg.say(ANA, "/start")
    first = len(await tg.outbox())
    again = await tg.post(update)  # Telegram retries when it did not see our 200
    assert again.status == 200
    assert len(await tg.outbox()) == first
    await tg.deliver()
    assert len(tg.fake.sent(ANA.id)) == first

    press = tg.updates.callback(ANA, "skip")
    await tg.post(press)
    await tg.post(press)
    assert len(tg.fake.calls_to("answerCallbackQuery")) == 1


async def test_updates_coach_does_not_answer_get_a_plain_200(tg: Telegram) -> None:
    group = {"id": -1001234, "title": "Class 7B", "type": "supergroup"}
    for update in (
        tg.updates.text(ANA, "hello everyone", chat=group),
        tg.updates.sticker(ANA),
        tg.updates.edited(ANA, "typo"),
        {"update_id": tg.updates.next_id(), "my_chat_member": None},
    ):
        response = await tg.post(update)
        assert response.status == 200
    assert await tg.outbox() == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[1, 2]", 422),
        (b'{"update_id": "7"}', 422),
        (b'{"update_id": 7, "message": {"chat": {"id": 1}}}', 422),
    ],
)
async def test_bad_bodies_get_a_json_error(tg: Telegram, body: bytes, status: int) -> None:
    response = await tg.client.post(
        "/telegram/webhook",
        data=body,
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"},
    )
    assert response.status == status
    assert "error" in await response.json()


async def test_hostile_text_is_shown_literally(tg: Telegram) -> None:
    await tg.say(ANA, "/start")
    name = "<b>Bo</b> & <i>Al</i>"  # onboarding keeps names to 40 characters
    await tg.say(ANA, name)
    assert await tg.deliver() == ["sent"] * len(await tg.outbox())
    assert any(name in text for text in tg.fake.texts(ANA.id))
    sent = [c.params["text"] for c in tg.fake.calls_to("sendMessage")]
    assert any("&lt;b&gt;Bo&lt;/b&gt; &amp; &lt;i&gt;" in text for text in sent)
    assert not any("<b>" in text for text in sent)  # escaped on the wire


async def test_a_hashed_button_is_mapped_back_to_its_value(tg: Telegram) -> None:
    await tg.say(ANA, "/start")
    # A button value past Telegram's 64 bytes (and short enough to be a name).
    long_value = "Zoë Ñúñez-" + "ñ" * 28
    assert len(long_value.encode()) > 64
    async with tg.services.db.transaction() as session:
        identity = (await session.exec(select(ChannelIdentity))).one()
        last = (await session.exec(select(MessageLog).order_by(col(MessageLog.id).desc()))).first()
        assert last is not None
        session.add(
            MessageLog(
                person_id=identity.person_id,
                channel="telegram",
                direction="out",
                text="What should I call you?",
                buttons=[{"label": "Nadia", "value": long_value}],
                created_at=last.created_at,
            )
        )
    before = len(await tg.outbox())
    await tg.press(ANA, callback_data(long_value))
    rows = (await tg.outbox())[before:]
    assert any(long_value in row.payload["reply"]["text"] for row in rows)

    # A hash we cannot place (a button from long ago): answered, no turn.
    await tg.press(ANA, callback_data("something we never sent" * 4))
    assert len(await tg.outbox()) == len(rows) + before
    assert len(tg.fake.calls_to("answerCallbackQuery")) == 2


async def test_mydata_arrives_as_a_json_document(tg: Telegram) -> None:
    await tg.say(ANA, "/start")
    await tg.say(ANA, "/mydata")
    await tg.deliver()
    [call] = tg.fake.calls_to("sendDocument")
    document = call.files["document"]
    assert document.filename.endswith(".json")
    data = json.loads(document.content)
    assert isinstance(data, dict)
    assert data  # what is stored about Ana


async def test_429_and_blocked_outcomes_for_the_dispatcher(tg: Telegram) -> None:
    await tg.say(ANA, "/start")
    tg.fake.rate_limit(calls=100, retry_after=5)
    assert set(await tg.deliver()) == {"retry_after"}
    tg.fake.rate_limit(calls=0, retry_after=0)
    tg.fake.block(ANA.id)
    assert set(await tg.deliver()) == {"permanent"}
    assert tg.fake.sent(ANA.id) == []


async def test_without_a_token_there_is_no_telegram_route(client: TestClient[Any, Any]) -> None:
    response = await client.post("/telegram/webhook", json={"update_id": 1})
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


# -- coach telegram set-webhook ---------------------------------------------------------


async def coach(tmp_path: Path, *args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run the coach command without blocking the loop the fake server runs on."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COACH_")} | {
        "COACH_DATABASE_URL": f"sqlite:///{tmp_path / 'coach.db'}",
        "PYTHONPATH": str(ROOT),
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=environment,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_set_webhook_registers_the_secret_and_update_types(
    telegram: FakeTelegram, tmp_path: Path
) -> None:
    env = {
        "COACH_TELEGRAM_TOKEN": telegram.token,
        "COACH_TELEGRAM_WEBHOOK_SECRET": SECRET,
        "COACH_TELEGRAM_API_BASE": telegram.api_base,
    }
    code, out, err = await coach(
        tmp_path, "telegram", "set-webhook", "https://coach.example.org", env=env
    )
    assert (code, err) == (0, "")
    assert "https://coach.example.org/telegram/webhook" in out
    assert telegram.webhook == {
        "url": "https://coach.example.org/telegram/webhook",
        "secret_token": SECRET,
        "allowed_updates": ["message", "callback_query"],
    }


@pytest.mark.parametrize(
    ("args", "env", "code", "says"),
    [
        (["http://coach.example.org"], {}, 2, "not a webhook address"),
        (["https://coach.example.org"], {"COACH_TELEGRAM_WEBHOOK_SECRET": ""}, 2, "SECRET"),
        (["https://coach.example.org"], {"COACH_TELEGRAM_TOKEN": ""}, 2, "@BotFather"),
        (
            ["https://coach.example.org"],
            {"COACH_TELEGRAM_TOKEN": "123456789:AAWrongTokenWrongTokenWrongToken0000"},
            1,
            "Telegram refused the webhook",
        ),
    ],
)
async def test_set_webhook_mistakes_are_one_line(
    telegram: FakeTelegram,
    tmp_path: Path,
    args: list[str],
    env: dict[str, str],
    code: int,
    says: str,
) -> None:
    settings = {
        "COACH_TELEGRAM_TOKEN": telegram.token,
        "COACH_TELEGRAM_WEBHOOK_SECRET": SECRET,
        "COACH_TELEGRAM_API_BASE": "https://api.telegram.org"
        if args[0].startswith("http:")
        else telegram.api_base,
    } | env
    returned, _, err = await coach(tmp_path, "telegram", "set-webhook", *args, env=settings)
    assert returned == code
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert says in lines[0]
    assert settings["COACH_TELEGRAM_TOKEN"] == "" or settings["COACH_TELEGRAM_TOKEN"] not in err


async def test_serve_wiring_sends_webhook_replies_through_the_dispatcher(tg: Telegram) -> None:
    """What `coach serve` does: build_app registers the Telegram sender, the delivery
    context hands it to the dispatcher, and a webhook turn's replies reach Telegram
    with no one calling the sender by hand."""
    from bot.delivery.runner import delivery
    from bot.delivery.senders import SENDERS

    app = tg.client.app
    assert app[SENDERS]["telegram"] is app[TELEGRAM].sender
    context = delivery(tg.services)(app)
    await context.__anext__()  # startup
    try:
        await tg.say(ANA, "/start")
        for _ in range(500):
            texts = tg.fake.texts(ANA.id)
            if texts and "What should I call you?" in texts[-1]:
                break
            await asyncio.sleep(0.01)
        assert "I'm Coach" in tg.fake.texts(ANA.id)[0]
        assert "What should I call you?" in tg.fake.texts(ANA.id)[-1]
        assert {row.status for row in await tg.outbox()} == {"sent"}
    finally:
        with pytest.raises(StopAsyncIteration):
            await context.__anext__()  # shutdown
