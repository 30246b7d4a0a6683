"""A learner's own data in the chat: /privacy, /mydata and /forget, in both languages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func
from sqlmodel import SQLModel, select

from bot.app import build_app
from bot.clock import FakeClock
from bot.services import Services
from bot.store.models import (
    ChannelIdentity,
    CheckIn,
    Conversation,
    Goal,
    InboxMessage,
    InterestProfile,
    MessageLog,
    Person,
)
from bot.testing.conversation import Chat
from bot.testing.people import seed_learner
from tests.browser import find_chromium, launch_chromium

MONDAY = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
# Bounds each browser wait: a reply takes well under a second.
WAIT = 20.0


@pytest.fixture
async def sam(services: Services, clock: FakeClock) -> Chat:
    """Sam, 13 or older and onboarded, at rest: the usual learner here."""
    clock.set(MONDAY)
    await seed_learner(services.db, services.clock, "learner-1")
    return Chat(services.turns, "learner-1")


async def count(services: Services, table: type[SQLModel]) -> int:
    async with services.db.reading() as session:
        return int((await session.exec(select(func.count()).select_from(table))).one())


# -- /privacy -----------------------------------------------------------------------------


async def test_privacy_for_a_learner_of_13_or_older(sam: Chat) -> None:
    await sam.script("""
        > /privacy
        < Your teacher sees your goals and your check-in ratings
        < stays private unless you choose to share it
        < If a family member is linked to you, they get a short weekly summary
        <! under 13
        < /mydata sends you a copy
        < /forget erases it all
        = none
    """)
    assert len(sam.last.replies) <= 3


async def test_privacy_for_a_learner_under_13(services: Services) -> None:
    await seed_learner(services.db, services.clock, "kid", grade_band="3-5", under_13=True)
    await Chat(services.turns, "kid").script("""
        > who can see this
        < Your teacher sees your goals
        < As you're under 13, nothing goes beyond your teacher until a family member says
        <! If a family member is linked
    """)


async def test_privacy_when_the_age_is_not_known(services: Services) -> None:
    await seed_learner(services.db, services.clock, "someone", under_13=None)
    await Chat(services.turns, "someone").script("""
        > privacy
        < I don't know your age group yet
    """)


async def test_privacy_in_spanish(services: Services) -> None:
    await seed_learner(services.db, services.clock, "ana", locale="es", under_13=True)
    await seed_learner(services.db, services.clock, "leo", locale="es")
    await Chat(services.turns, "ana").script("""
        > /privacidad
        < Tu profe ve tus metas
        < Como tienes menos de 13 años, nada sale de tu profe
        < /misdatos
    """)
    await Chat(services.turns, "leo").script("""
        > quién ve mis respuestas
        < Si vinculas a alguien de tu familia, recibe un breve resumen semanal
    """)


async def test_privacy_mid_flow_then_carry_on(sam: Chat) -> None:
    await sam.script("""
        > /warmup
        < What should I call you?
        > /privacy
        < Your teacher sees your goals
        < Carry on with the warm-up, or start over?
        > yes
        < What should I call you?
        = text profile.name
    """)


# -- /mydata ------------------------------------------------------------------------------


async def test_mydata_sends_the_export_as_a_json_file(sam: Chat, services: Services) -> None:
    await sam.script("""
        > /help
        > /mydata
        < Here's everything I keep about you, in one file.
        = none
    """)
    [reply] = [r for r in sam.last.replies if r.attachment is not None]
    assert reply.attachment is not None
    assert reply.attachment.filename == "coach-data.json"
    assert reply.attachment.media_type == "application/json"
    data = json.loads(reply.attachment.content)
    assert data["schema"] == "coach.export/v1"
    assert data["person"]["name"] == "Sam"
    assert data["person"]["under_13"] is False
    assert data["identities"] == [
        {"channel": "web", "external_id": "learner-1", "created_at": MONDAY.isoformat()}
    ]
    assert "/help" in [m["text"] for m in data["messages"] if m["direction"] == "in"]
    # The same document the API exports, bar this very turn (logged once it commits).
    exported = await services.turns.export("web", "learner-1")
    assert exported is not None
    assert exported["person"] == data["person"]
    assert exported["messages"][: len(data["messages"])] == data["messages"]


async def test_mydata_in_spanish_keeps_accents_readable(services: Services) -> None:
    await seed_learner(services.db, services.clock, "ana", locale="es", name="Lucía")
    chat = Chat(services.turns, "ana")
    await chat.script("""
        > mis datos
        < Aquí tienes todo lo que guardo sobre ti
    """)
    attachment = chat.last.replies[0].attachment
    assert attachment is not None
    assert '"name": "Lucía"' in attachment.content  # ensure_ascii=False: not \\u00ed


async def test_mydata_mid_flow_then_carry_on(sam: Chat) -> None:
    await sam.script("""
        > /warmup
        > /mydata
        < in one file
        < Carry on with the warm-up
        > yes
        < What should I call you?
    """)


# -- /forget ------------------------------------------------------------------------------

ABOUT_A_PERSON = (Person, ChannelIdentity, Conversation, MessageLog, Goal, CheckIn, InterestProfile)


async def test_forget_yes_erases_everything(
    sam: Chat, services: Services, clock: FakeClock
) -> None:
    async with services.db.transaction() as session:
        person = (await session.exec(select(Person))).one()
        assert person.id is not None
        goal = Goal(person_id=person.id, wish="fractions", created_at=MONDAY, updated_at=MONDAY)
        session.add(goal)
        await session.flush()
        assert goal.id is not None
        session.add(CheckIn(goal_id=goal.id, person_id=person.id, rating=3, created_at=MONDAY))
        session.add(InterestProfile(person_id=person.id, scores={"R": 50}, created_at=MONDAY))
    await sam.script("""
        > /forget
        < This erases everything I know about you: your name, settings, goals, check-ins
        < It can't be undone. Erase it all?
        = yes_no forget.confirm
        > yes
        < Done: everything about you is erased
        = none
    """)
    assert await services.turns.export("web", "learner-1") is None
    for table in ABOUT_A_PERSON:
        assert await count(services, table) == 0, table.__name__
    async with services.db.reading() as session:
        inbox = (await session.exec(select(InboxMessage))).all()
    # Only the "yes" is remembered (so a redelivery is not run twice), about nobody.
    assert [(row.message_id, row.person_id) for row in inbox] == [(inbox[0].message_id, None)]

    await sam.script("""
        > hi
        < Hi, I'm Coach!
        < What should I call you?
        = text onboarding.name
    """)
    exported = await services.turns.export("web", "learner-1")
    assert exported is not None
    assert exported["person"]["name"] is None
    assert exported["person"]["grade_band"] is None


async def test_forget_no_keeps_everything(sam: Chat, services: Services) -> None:
    await sam.script("""
        > /forget
        > no
        < nothing's erased. Everything stays just as it was
        = none
    """)
    exported = await services.turns.export("web", "learner-1")
    assert exported is not None
    assert exported["person"]["name"] == "Sam"


async def test_forget_unsure_or_skipped_keeps_everything(sam: Chat, services: Services) -> None:
    await sam.script("""
        > delete my data
        < Erase it all?
        > I'm not sure
        < nothing's erased. Say /forget whenever you're sure
        > /forget
        > skip
        < nothing's erased
        > /forget
        > purple
        < A yes or a no
        = yes_no forget.confirm
    """)
    assert await count(services, Person) == 1


async def test_forget_in_spanish(services: Services) -> None:
    await seed_learner(services.db, services.clock, "ana", locale="es")
    chat = Chat(services.turns, "ana")
    await chat.script("""
        > /olvidar
        < Esto borra todo lo que sé de ti
        < ¿Lo borro todo?
        > no
        < Vale, no borro nada
        > borrar mis datos
        > sí
        < Hecho: he borrado todo lo tuyo
    """)
    assert await services.turns.export("web", "ana") is None
    assert await count(services, Person) == 0


async def test_a_stale_yes_to_forget_is_asked_again(sam: Chat, clock: FakeClock) -> None:
    await sam.script("""
        > /forget
        = yes_no forget.confirm
    """)
    clock.advance(hours=30)
    await sam.script("""
        > yes
        < Welcome back! Last time we were in the middle of erasing your data.
        < Carry on with erasing your data, or start over?
        <! erased
    """)


# -- over the API and in the web chat -----------------------------------------------------


async def test_the_api_returns_the_attachment(
    client: TestClient[Any, Any], any_services: Services
) -> None:
    await seed_learner(any_services.db, any_services.clock, "maria", name="María")
    response = await client.post("/api/v1/messages", json={"user": "maria", "text": "/mydata"})
    assert response.status == 200
    body = await response.json()
    [reply] = body["replies"]
    assert set(reply["attachment"]) == {"filename", "media_type", "content"}
    assert reply["attachment"]["filename"] == "coach-data.json"
    assert reply["attachment"]["media_type"] == "application/json"
    data = json.loads(reply["attachment"]["content"])
    assert data["schema"] == "coach.export/v1"
    assert data["person"]["name"] == "María"
    assert body["expect"] == {"type": "none", "slot": None}
    # A reply without a file has no attachment key at all.
    response = await client.post("/api/v1/messages", json={"user": "maria", "text": "/privacy"})
    assert all("attachment" not in r for r in (await response.json())["replies"])


@pytest.fixture
async def server_url(services: Services) -> AsyncIterator[str]:
    app = build_app(services)
    app.on_cleanup.clear()  # the services fixture closes the database
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


@pytest.mark.chromium
@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed")
async def test_the_web_chat_offers_the_export_as_a_download(
    server_url: str, tmp_path: Path
) -> None:
    link = json.dumps("#log .coach a.attachment")
    async with launch_chromium(360, 740, mobile=True, timeout=WAIT) as browser:
        await browser.send(
            "Browser.setDownloadBehavior",
            {"behavior": "allow", "downloadPath": str(tmp_path)},
            browser_level=True,
        )
        await browser.goto(server_url)
        # The page greets on its own first; wait for that before typing.
        await browser.wait_for_text("What should I call you?", WAIT)
        await browser.wait_for("!document.querySelector('#send').disabled", WAIT)
        await browser.type_text("#input", "/mydata")
        await browser.press_enter("#input")
        await browser.wait_for(f"document.querySelector({link}) !== null", WAIT)
        assert await browser.evaluate(
            f"(a => [a.textContent, a.download, a.href.startsWith('blob:')])"
            f"(document.querySelector({link}))"
        ) == ["coach-data.json", "coach-data.json", True]

        await browser.click("#log .coach a.attachment")
        saved = tmp_path / "coach-data.json"
        for _ in range(int(WAIT / 0.05)):
            if saved.is_file():
                break
            await asyncio.sleep(0.05)
        data = json.loads(saved.read_text(encoding="utf-8"))
        assert data["schema"] == "coach.export/v1"
        assert browser.errors == []
