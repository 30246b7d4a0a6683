"""/link: one person on several channels. The code from one channel, sent from another,
joins the two identities to one person: the one with data is kept, the empty one is
folded in and deleted; with data on both sides nothing is joined. Proactive messages
then go to the channel last used."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from bot.app import build_app
from bot.channels.telegram import TELEGRAM
from bot.clock import FakeClock
from bot.coach.codes import parse_join_code
from bot.services import Services
from bot.store.models import (
    AccessCode,
    ChannelIdentity,
    Conversation,
    Goal,
    InboxMessage,
    MessageLog,
    OutboxMessage,
    Person,
)
from bot.store.outbox import delivery_identity, enqueue
from bot.testing.conversation import Chat
from bot.testing.people import seed_goal, seed_learner
from bot.testing.school import seed_teacher
from tests.fakes.telegram import FakeTelegram, TelegramUser, Updates

SECRET = "link-test-secret"
ANA = TelegramUser(5550001, "Ana")


def code_in(texts: list[str]) -> str:
    """The code a reply shows, as the person would copy it."""
    for text in texts:
        for word in text.replace(".", " ").split():
            if parse_join_code(word):
                return word
    raise AssertionError(f"no code in {texts}")


async def table(services: Services, model: Any) -> list[Any]:
    async with services.db.reading() as session:
        return list((await session.exec(select(model).order_by(col(model.id)))).all())


# -- across the web chat and Telegram, through the real routes ----------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as telegram:
        yield telegram


@dataclass
class Both:
    services: Services
    client: TestClient[Any, Any]
    fake: FakeTelegram
    updates: Updates

    async def web(self, user: str, text: str) -> list[str]:
        response = await self.client.post("/api/v1/messages", json={"user": user, "text": text})
        assert response.status == 200, await response.text()
        return [reply["text"] for reply in (await response.json())["replies"]]

    async def telegram(self, user: TelegramUser, text: str) -> list[str]:
        before = len(self.fake.sent(user.id))
        response = await self.client.post(
            "/telegram/webhook",
            json=self.updates.text(user, text),
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
        assert response.status == 200, await response.text()
        sender = self.client.app[TELEGRAM].sender
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
        for row, identity in rows:
            assert (await sender.send(identity, row.payload)).kind == "sent"
        async with self.services.db.transaction() as session:
            for row, _ in rows:
                row.status = "sent"
                session.add(row)
        return self.fake.texts(user.id)[before:]


@pytest.fixture
async def both(fake: FakeTelegram, open_services: Callable[..., Any], aiohttp_client: Any) -> Both:
    services: Services = await open_services(
        "sqlite",
        telegram_token=fake.token,
        telegram_webhook_secret=SECRET,
        telegram_api_base=fake.api_base,
    )
    return Both(services, await aiohttp_client(build_app(services)), fake, Updates())


async def test_a_web_learner_links_telegram_by_deep_link(both: Both, clock: FakeClock) -> None:
    sam = await seed_learner(both.services.db, clock, "sam-web", name="Sam")
    await seed_goal(both.services.db, sam, "read more books", created_at=clock.now())
    clock.advance(minutes=5)

    shown = await both.web("sam-web", "/link")
    code = code_in(shown)
    assert any("10 minutes" in text for text in shown)

    # t.me/<bot>?start=<code> arrives as "/start <code>", the code without its dash.
    clock.advance(minutes=3)
    seen = await both.telegram(ANA, f"/start {code.replace('-', '')}")
    assert seen == [
        "Done, Sam! This chat and your web chat are now one: same goals, same "
        "conversation. Carry on wherever suits you."
    ]

    people = await table(both.services, Person)
    assert [p.id for p in people] == [sam.id]
    identities = await table(both.services, ChannelIdentity)
    assert {(i.channel, i.external_id, i.person_id) for i in identities} == {
        ("web", "sam-web", sam.id),
        ("telegram", str(ANA.id), sam.id),
    }
    assert [c.person_id for c in await table(both.services, Conversation)] == [sam.id]
    # What the Telegram chat said is Sam's now; nothing points at the folded person.
    assert {m.person_id for m in await table(both.services, MessageLog)} == {sam.id}
    assert {m.person_id for m in await table(both.services, InboxMessage)} == {sam.id}
    [code_row] = [c for c in await table(both.services, AccessCode) if c.kind == "link"]
    assert (code_row.used_at, code_row.used_by) == (clock.now(), sam.id)

    # One conversation: Sam's goal on Telegram, and the export lists both apps.
    assert any("read more books" in text for text in await both.telegram(ANA, "/goals"))
    export = await both.client.get("/api/v1/users/sam-web/export")
    channels = {i["channel"] for i in (await export.json())["identities"]}
    assert channels == {"web", "telegram"}

    # Proactive messages go where Sam talked last: Telegram.
    async with both.services.db.reading() as session:
        target = await delivery_identity(session, sam.id or 0)
    assert target is not None
    assert target.channel == "telegram"


async def test_a_telegram_learner_links_the_web_chat(both: Both, clock: FakeClock) -> None:
    await both.telegram(ANA, "/start")
    await both.telegram(ANA, "Ana")
    [ana] = await table(both.services, Person)
    await seed_goal(both.services.db, ana, "learn to draw", created_at=clock.now())
    code = code_in(await both.telegram(ANA, "/link"))

    # The web chat's first message is the code: that new, empty person folds into Ana.
    replies = await both.web("ana-laptop", code)
    assert replies == [
        "Done, Ana! This chat and your Telegram are now one: same goals, same "
        "conversation. Carry on wherever suits you."
    ]
    assert [p.id for p in await table(both.services, Person)] == [ana.id]
    assert any("learn to draw" in text for text in await both.web("ana-laptop", "/goals"))


# -- the rules, in conversation ----------------------------------------------------------------


@pytest.fixture
def services(any_services: Services) -> Services:
    """Folding one person into another is database work: every backend we test."""
    return any_services


@pytest.fixture
def web(services: Services) -> Chat:
    return Chat(services.turns, "sam-web")


@pytest.fixture
def tg(services: Services) -> Chat:
    return Chat(services.turns, "5550001", channel="telegram")


async def test_the_code_works_typed_alone_or_after_link(
    services: Services, clock: FakeClock, web: Chat, tg: Chat
) -> None:
    await seed_learner(services.db, clock, "sam-web", name="Sam")
    await web.send("/link")
    await tg.send(f"/link {code_in(web.texts)}")
    tg.expect_reply("Done, Sam!")
    assert len(await table(services, Person)) == 1


async def test_your_own_code_is_not_a_link(services: Services, clock: FakeClock, web: Chat) -> None:
    await seed_learner(services.db, clock, "sam-web", name="Sam")
    await web.send("/link")
    code = code_in(web.texts)
    await web.send(code)
    web.expect_reply("the code you just made here")
    [row] = await table(services, AccessCode)
    assert row.used_at is None  # still good for the other app


async def test_a_code_lasts_ten_minutes(
    services: Services, clock: FakeClock, web: Chat, tg: Chat
) -> None:
    await seed_learner(services.db, clock, "sam-web", name="Sam")
    await web.send("/link")
    code = code_in(web.texts)
    clock.advance(minutes=10, seconds=1)
    await tg.send(code)
    tg.expect_no_reply("Done")
    tg.expect_reply("don't recognise it")
    assert len(await table(services, Person)) == 2


async def test_a_new_code_replaces_the_old_one(
    services: Services, clock: FakeClock, web: Chat, tg: Chat
) -> None:
    await seed_learner(services.db, clock, "sam-web", name="Sam")
    await web.send("/link")
    old = code_in(web.texts)
    await web.send("/link")
    new = code_in(web.texts)
    await tg.send(f"/link {old}")
    tg.expect_reply("don't recognise it")
    await tg.send(f"/link {new}")
    tg.expect_reply("Done, Sam!")


async def test_when_both_have_data_nothing_is_joined(
    services: Services, clock: FakeClock, web: Chat, tg: Chat
) -> None:
    sam = await seed_learner(services.db, clock, "sam-web", name="Sam")
    await seed_goal(services.db, sam, "read more", created_at=clock.now())
    other = await seed_learner(services.db, clock, "5550001", channel="telegram", name="Sammy")
    await seed_goal(services.db, other, "run 5k", created_at=clock.now())
    await web.send("/link")
    code = code_in(web.texts)
    await tg.send(code)
    tg.expect_reply("saved in both places")
    tg.expect_reply("/forget")
    assert len(await table(services, Person)) == 2
    assert {g.wish for g in await table(services, Goal)} == {"read more", "run 5k"}

    # Sammy forgets the Telegram side, starts afresh, and the same code now links.
    await tg.send("/forget")
    await tg.press("yes")
    await tg.send(code)
    tg.expect_reply("Done, Sam!")
    assert [p.id for p in await table(services, Person)] == [sam.id]
    assert {g.wish for g in await table(services, Goal)} == {"read more"}


async def test_the_person_with_data_is_kept_whoever_sent_the_code(
    services: Services, clock: FakeClock, tg: Chat
) -> None:
    veteran = await seed_learner(services.db, clock, "5550001", channel="telegram", name="Vee")
    await seed_goal(services.db, veteran, "chess", created_at=clock.now())
    clock.advance(days=30)
    laptop = Chat(services.turns, "new-laptop")
    await laptop.send("hi")
    await laptop.send("/link")  # the new, empty web person makes the code...
    await tg.send(code_in(laptop.texts))  # ...and Telegram, with the data, sends it
    tg.expect_reply("Done, Vee!")
    assert [p.id for p in await table(services, Person)] == [veteran.id]
    identities = await table(services, ChannelIdentity)
    assert {i.person_id for i in identities} == {veteran.id}
    await laptop.send("/goals")
    laptop.expect_reply("chess")


async def test_a_teacher_on_slack_and_telegram_is_one_person_with_one_digest(
    services: Services, clock: FakeClock
) -> None:
    teacher = await seed_teacher(services.db, clock, "T0COACH001:U0TEACHER1", channel="slack")
    slack = Chat(services.turns, "T0COACH001:U0TEACHER1", channel="slack")
    phone = Chat(services.turns, "777", channel="telegram")
    clock.advance(minutes=5)
    await slack.send("/link")
    clock.advance(minutes=1)
    await phone.send(f"/start {code_in(slack.texts)}")
    phone.expect_reply("Done, Ms Lee!")
    async with services.db.transaction() as session:
        assert teacher.id is not None
        written = [
            await enqueue(
                session,
                person_id=teacher.id,
                kind="digest",
                payload={"reply": {"text": "digest", "buttons": []}},
                dedupe_key="digest:1:2026-W02",
                due_at=clock.now(),
                now=clock.now(),
            )
            for _ in range(2)  # two replicas' schedulers
        ]
    assert written == [True, False]
    [row] = [r for r in await table(services, OutboxMessage) if r.kind == "digest"]
    identity = next(i for i in await table(services, ChannelIdentity) if i.id == row.identity_id)
    assert identity.channel == "telegram"  # used last

    clock.advance(minutes=5)
    await slack.send("/classes")
    async with services.db.reading() as session:
        target = await delivery_identity(session, teacher.id)
    assert target is not None
    assert target.channel == "slack"


async def test_wrong_codes_after_link_count_towards_the_lock(
    services: Services, clock: FakeClock, tg: Chat
) -> None:
    await tg.send("/start")
    for _ in range(5):
        await tg.send("/link ABCDE-23456")
    tg.expect_reply("paused")
    clock.advance(minutes=1)
    await tg.send("/link ABCDE-23457")
    tg.expect_reply("try again after")


async def test_here_sends_proactive_messages_to_the_chosen_channel(
    any_services: Services, clock: FakeClock
) -> None:
    """/here on the web makes reminders go there, although Telegram was used last; once
    the chosen channel cannot be reached, the last used one takes over again."""
    from sqlmodel import select as sql_select

    from bot.store.models import ChannelIdentity as Identity
    from bot.store.models import Person as PersonRow
    from bot.store.outbox import delivery_identity

    person = await seed_learner(any_services.db, clock, "web-here", channel="web")
    assert person.id is not None
    clock.advance(minutes=1)
    async with any_services.db.transaction() as session:
        session.add(
            Identity(
                channel="telegram",
                external_id="tg-here",
                person_id=person.id,
                created_at=clock.now(),
                last_seen_at=clock.now(),
            )
        )
    async with any_services.db.reading() as session:
        chosen = await delivery_identity(session, person.id)
    assert chosen is not None
    assert chosen.channel == "telegram"

    chat = Chat(any_services.turns, "web-here")
    await chat.script("""
        > /here
        < Done: from now on reminders and updates come here, on the web chat.
    """)
    async with any_services.db.transaction() as session:
        stored = await session.get(PersonRow, person.id)
        assert stored is not None
        assert stored.preferred_channel == "web"
        chosen = await delivery_identity(session, person.id)
        assert chosen is not None
        assert chosen.channel == "web"
        web = (await session.exec(sql_select(Identity).where(Identity.channel == "web"))).one()
        web.unreachable = True
        session.add(web)
    async with any_services.db.reading() as session:
        chosen = await delivery_identity(session, person.id)
    assert chosen is not None
    assert chosen.channel == "telegram"


async def test_here_with_one_channel_says_so(services: Services, clock: FakeClock) -> None:
    await seed_learner(services.db, clock, "only-web", channel="web")
    chat = Chat(services.turns, "only-web")
    await chat.script("""
        > send my messages here
        < This is the only place I can reach you
    """)
