"""Telegram without a public address: `coach serve --telegram-polling` fetches updates with
getUpdates (the fake's long poll) and runs them exactly as the webhook does. Here a
learner's whole first conversation (start, onboarding, a goal, a check-in, buttons)
goes through it, a family member arrives by deep link, and the command menu is set
in English and Spanish (at polling start and by `coach telegram set-webhook`)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from bot.app import build_app
from bot.channels import telegram as channel_module
from bot.channels.telegram import TELEGRAM, TelegramChannel, TelegramPolling
from bot.clock import FakeClock
from bot.engine.messages import Inbound, TurnResult
from bot.services import Services
from bot.store.models import (
    ChannelIdentity,
    CheckIn,
    FamilyLink,
    Goal,
    InboxMessage,
    OutboxMessage,
    Person,
)
from bot.testing.people import seed_learner
from bot.testing.school import seed_code
from tests.fakes.telegram import FakeTelegram, TelegramUser, Updates

ROOT = Path(__file__).resolve().parent.parent
ANA = TelegramUser(5550001, "Ana")


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as telegram:
        yield telegram


@dataclass
class Polling:
    """`coach serve --telegram-polling` as the app runs it, and the fake it polls."""

    fake: FakeTelegram
    services: Services
    client: TestClient[Any, Any]
    updates: Updates

    async def settled(self) -> None:
        """Wait until the poller confirmed every update and holds a new long poll open:
        every turn so far has committed. (A bounded wait for a state, not a timing.)"""
        for _ in range(2000):
            if self.fake.pending_updates == 0 and self.fake.long_polls > 0:
                return
            await asyncio.sleep(0.005)
        raise AssertionError("the poller did not take the updates")

    async def push(self, update: dict[str, Any]) -> None:
        self.fake.push_update(update)
        await self.settled()
        await self.deliver()

    async def say(self, user: TelegramUser, text: str) -> list[str]:
        """Send text; what the person reads in reply."""
        before = len(self.fake.sent(user.id))
        await self.push(self.updates.text(user, text))
        return self.fake.texts(user.id)[before:]

    async def press(self, user: TelegramUser, label: str) -> list[str]:
        """Press the button with this label under the last message."""
        buttons = dict(self.fake.sent(user.id)[-1].buttons)
        assert label in buttons, f"no {label!r} button in {list(buttons)}"
        before = len(self.fake.sent(user.id))
        await self.push(self.updates.callback(user, buttons[label]))
        return self.fake.texts(user.id)[before:]

    async def deliver(self) -> None:
        """The dispatcher's job: pending outbox rows through TelegramSender."""
        async with self.services.db.reading() as session:
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
        sender = self.client.app[TELEGRAM].sender
        outcomes = [await sender.send(identity, row.payload) for row, identity in rows]
        assert {o.kind for o in outcomes} <= {"sent"}
        async with self.services.db.transaction() as session:
            for row, _ in rows:
                row.status = "sent"
                session.add(row)


@pytest.fixture
async def polling(
    fake: FakeTelegram, open_services: Callable[..., Any], aiohttp_client: Any
) -> Polling:
    services: Services = await open_services(
        "sqlite", telegram_token=fake.token, telegram_api_base=fake.api_base
    )
    # A webhook someone set earlier: polling must remove it (getUpdates refuses otherwise).
    fake.webhook = {"url": "https://old.example/telegram/webhook"}
    app = build_app(services)
    # What `coach serve --telegram-polling` adds (bot/cli.py).
    app.cleanup_ctx.append(channel_module.polling(services.turns, services.dialog.catalogs))
    client = await aiohttp_client(app)
    result = Polling(fake, services, client, Updates())
    await result.settled()
    return result


async def test_polling_removes_the_webhook_and_sets_the_command_menu(polling: Polling) -> None:
    assert polling.fake.webhook == {}
    english = polling.fake.commands[("default", "")]
    spanish = polling.fake.commands[("default", "es")]
    assert [c["command"] for c in english] == [c["command"] for c in spanish]
    assert {"start", "goal", "checkin", "link", "mydata", "forget", "help"} <= {
        c["command"] for c in english
    }
    described = {c["command"]: c["description"] for c in english}
    assert described["goal"] == "Set a new goal"
    assert {c["command"]: c["description"] for c in spanish}["goal"] == "Ponerte una meta nueva"


async def test_a_learners_whole_first_conversation(polling: Polling) -> None:
    p = polling
    seen = await p.say(ANA, "/start")
    assert "I'm Coach" in seen[0]
    assert "What should I call you?" in seen[-1]
    assert "Nice to meet you, Ana!" in await p.say(ANA, "Ana")
    assert "Which grade" in (await p.press(ANA, "English"))[-1]
    assert "13 or older" in (await p.press(ANA, "6–8"))[-1]
    assert "Which day" in (await p.press(ANA, "Yes"))[-1]
    assert "what time" in (await p.press(ANA, "Monday"))[-1].lower()
    done = await p.say(ANA, "4pm")
    assert any("every Monday at 4:00" in text for text in done)
    assert "You're all set, Ana!" in done

    await p.say(ANA, "/goal")
    await p.say(ANA, "get better at fractions")
    await p.say(ANA, "pass my test")
    await p.say(ANA, "I get distracted")
    await p.say(ANA, "I will put my phone away")
    await p.say(ANA, "8 out of 10")
    summary = await p.say(ANA, "in 3 weeks")
    assert any("Shall I save it?" in text for text in summary)
    assert any("Saved!" in text for text in await p.press(ANA, "Yes"))

    assert any("how are you feeling" in t for t in await p.say(ANA, "/checkin"))
    assert any("Fractions" in text for text in await p.press(ANA, "4 🙂"))
    assert "What went well" in (await p.press(ANA, "4 🙂"))[-1]
    assert "got in the way" in (await p.say(ANA, "I practised every day"))[-1]
    assert "next step" in (await p.press(ANA, "Skip"))[-1]
    assert "share what you wrote" in (await p.say(ANA, "ten minutes after dinner"))[-1]
    assert "See you next week!" in (await p.press(ANA, "No"))[-1]

    async with p.services.db.reading() as session:
        [person] = (await session.exec(select(Person))).all()
        [goal] = (await session.exec(select(Goal))).all()
        checkins = (await session.exec(select(CheckIn))).all()
        inbox = (await session.exec(select(InboxMessage))).all()
    assert (person.name, person.locale, person.grade_band, person.checkin_weekday) == (
        "Ana",
        "en",
        "6-8",
        1,
    )
    assert goal.topic is not None
    assert goal.plan == "put my phone away"
    [checkin] = checkins
    assert (checkin.rating, checkin.mood, checkin.went_well, checkin.shared) == (
        4,
        4,
        "I practised every day",
        False,
    )
    assert checkin.next_step == "ten minutes after dinner"
    # Every update is one inbox row, and every button press was answered.
    presses = len(p.fake.calls_to("answerCallbackQuery"))
    assert presses == 9
    assert len(inbox) == len({row.message_id for row in inbox}) == presses + 13


async def test_a_family_member_joins_by_deep_link(polling: Polling, clock: FakeClock) -> None:
    sam = await seed_learner(polling.services.db, clock, "sam-web", name="Sam")
    code = await seed_code(polling.services.db, clock, "family", learner_id=sam.id)
    mum = TelegramUser(5550002, "Maria", language_code="es")
    seen = await polling.say(mum, f"/start {code}")
    assert any("Sam" in text for text in seen)
    async with polling.services.db.reading() as session:
        [link] = (await session.exec(select(FamilyLink))).all()
        family = await session.get(Person, link.family_id)
        identity = (
            await session.exec(
                select(ChannelIdentity).where(ChannelIdentity.person_id == link.family_id)
            )
        ).one()
    assert link.learner_id == sam.id
    assert family is not None
    assert family.role == "family"
    assert (identity.channel, identity.external_id) == ("telegram", str(mum.id))


async def test_an_update_fetched_twice_runs_once(polling: Polling) -> None:
    update = polling.updates.text(ANA, "/start")
    await polling.push(update)
    sent = len(polling.fake.sent(ANA.id))
    await polling.push(update)  # e.g. we stopped before confirming it
    assert len(polling.fake.sent(ANA.id)) == sent


async def test_hostile_text_is_shown_literally(polling: Polling) -> None:
    await polling.say(ANA, "/start")
    name = "<b>Bo</b> &amp; <a href='x'>"[:40]
    seen = await polling.say(ANA, name)
    assert any(name in text for text in seen)
    wire = [c.params["text"] for c in polling.fake.calls_to("sendMessage")]
    assert not any("<b>" in text for text in wire)
    assert any("&amp;amp;" in text for text in wire)


# -- the poller's own rules, one getUpdates at a time ----------------------------------------


class _Flaky:
    """A turn service that fails its first `failures` turns (a database that is down)."""

    def __init__(self, real: Any, failures: int) -> None:
        self.real = real
        self.failures = failures

    async def handle(self, inbound: Inbound) -> TurnResult:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database unreachable")
        result: TurnResult = await self.real.handle(inbound)
        return result

    async def history(self, *args: Any, **kwargs: Any) -> Any:
        return await self.real.history(*args, **kwargs)


async def poller_for(
    fake: FakeTelegram, services: Services, failures: int
) -> tuple[TelegramPolling, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    channel = TelegramChannel(fake.token, api_base=fake.api_base)
    turns: Any = _Flaky(services.turns, failures)
    return TelegramPolling(channel, turns, services.dialog.catalogs, sleep=sleep), slept


async def test_an_update_whose_turn_failed_is_fetched_again(
    fake: FakeTelegram, open_services: Callable[..., Any]
) -> None:
    services: Services = await open_services(
        "sqlite", telegram_token=fake.token, telegram_api_base=fake.api_base
    )
    poller, slept = await poller_for(fake, services, failures=1)
    updates = Updates()
    fake.push_update(updates.text(ANA, "/start"))
    await poller.poll_once()
    assert poller.offset is None  # not confirmed
    assert slept == [channel_module.POLL_RETRY_SECONDS]
    await poller.poll_once()
    assert poller.offset is not None
    async with services.db.reading() as session:
        assert len((await session.exec(select(InboxMessage))).all()) == 1
    await poller.channel.close()


async def test_an_update_that_always_fails_is_skipped_in_the_end(
    fake: FakeTelegram, open_services: Callable[..., Any]
) -> None:
    services: Services = await open_services(
        "sqlite", telegram_token=fake.token, telegram_api_base=fake.api_base
    )
    poller, _ = await poller_for(fake, services, failures=100)
    updates = Updates()
    stuck = updates.text(ANA, "/start")
    fake.push_update(stuck)
    for _ in range(channel_module.MAX_UPDATE_FAILURES):
        await poller.poll_once()
    assert poller.offset == stuck["update_id"] + 1
    await poller.channel.close()


# -- the command line ---------------------------------------------------------------------------


async def coach(tmp_path: Path, *args: str, env: dict[str, str]) -> tuple[int, str, str]:
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


async def test_set_webhook_sets_the_command_menu_too(fake: FakeTelegram, tmp_path: Path) -> None:
    env = {
        "COACH_TELEGRAM_TOKEN": fake.token,
        "COACH_TELEGRAM_WEBHOOK_SECRET": "s3cret",
        "COACH_TELEGRAM_API_BASE": fake.api_base,
    }
    code, _, err = await coach(
        tmp_path, "telegram", "set-webhook", "https://coach.example.org", env=env
    )
    assert (code, err) == (0, "")
    assert set(fake.commands) == {("default", ""), ("default", "es")}


async def test_polling_without_a_token_is_one_line(tmp_path: Path) -> None:
    code, _, err = await coach(tmp_path, "serve", "--telegram-polling", env={})
    assert code == 2
    assert err.strip().splitlines() == [
        "coach: --telegram-polling needs COACH_TELEGRAM_TOKEN (from @BotFather)"
    ]
