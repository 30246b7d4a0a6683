"""Slack end to end: real signed requests into POST /slack/events, the turn's outbox rows
in the database, SlackSender posting them to the fake Web API, and what the person sees
there. A learner's DM, a teacher's /coach command and buttons, signatures, retries, the
three-second acknowledgement, rate limits, a deactivated user and hostile text."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from sqlmodel import col, func, select

from bot.app import build_app
from bot.channels.slack import SLACK, SlackChannel
from bot.clock import FakeClock
from bot.engine.messages import Inbound, TurnResult
from bot.services import Services
from bot.store.models import (
    ChannelIdentity,
    InboxMessage,
    MessageLog,
    OutboxMessage,
    SafetyAlert,
)
from bot.testing.conversation import Chat
from bot.testing.people import seed_learner
from bot.testing.school import seed_class, seed_teacher
from tests.fakes.slack import DEFAULT_SIGNING_SECRET, FakeSlack, PostedMessage, SignedRequest
from tests.fakes.slack import SlackRequests as Requests

TEAM = "T0COACH001"
LEARNER = "U0LEARNER1"
TEACHER = "U0TEACHER1"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as slack:
        yield slack


@dataclass
class Slack:
    """Our app with the Slack channel on, the fake Web API, and Slack's signed requests."""

    fake: FakeSlack
    services: Services
    client: TestClient[Any, Any]
    requests: Requests
    clock: FakeClock

    @property
    def channel(self) -> SlackChannel:
        return self.client.app[SLACK]

    async def post(self, signed: SignedRequest) -> ClientResponse:
        return await self.client.post("/slack/events", data=signed.body, headers=signed.headers)

    async def ok(self, signed: SignedRequest) -> ClientResponse:
        response = await self.post(signed)
        assert response.status == 200, await response.text()
        return response

    async def dm(self, user: str, text: str) -> None:
        await self.ok(self.requests.message_im(user, text))

    async def command(self, user: str, text: str) -> None:
        await self.ok(self.requests.slash_command(user, text))

    async def press(self, user: str, button: tuple[str, str]) -> None:
        label, value = button
        await self.ok(self.requests.block_action(user, "coach.button.0", value, label=label))

    async def outbox(self) -> list[OutboxMessage]:
        async with self.services.db.reading() as session:
            return list(
                (await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
            )

    async def deliver(self) -> list[str]:
        """Send pending outbox rows through SlackSender, as the dispatcher does; the
        outcomes' kinds."""
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
        # No transaction open while Slack is called (the dispatcher's rule too).
        outcomes = [await self.channel.sender.send(identity, row.payload) for row, identity in rows]
        async with self.services.db.transaction() as session:
            for (row, _), outcome in zip(rows, outcomes, strict=True):
                if outcome.kind == "sent":
                    row.status = "sent"
                    session.add(row)
        return [outcome.kind for outcome in outcomes]

    def dm_with(self, user: str) -> list[PostedMessage]:
        return self.fake.posted(FakeSlack.dm_channel(user))

    def texts(self, user: str) -> list[str]:
        """What the person reads in their DM: every section of every message."""
        return [
            block["text"]["text"]
            for message in self.dm_with(user)
            for block in message.blocks
            if block["type"] == "section"
        ]


def signed_at(clock: FakeClock) -> Requests:
    return Requests(now=lambda: clock.now().timestamp())


@pytest.fixture
async def slack(
    fake: FakeSlack, open_services: Callable[..., Any], aiohttp_client: Any, clock: FakeClock
) -> Slack:
    services: Services = await open_services(
        "sqlite",
        slack_bot_token=fake.bot_token,
        slack_signing_secret=DEFAULT_SIGNING_SECRET,
        slack_api_base=fake.base_url,
    )
    client = await aiohttp_client(build_app(services))
    return Slack(fake, services, client, signed_at(clock), clock)


async def count(slack: Slack, model: Any) -> int:
    async with slack.services.db.reading() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


# -- a learner in their DM -----------------------------------------------------------------


async def test_a_learners_first_messages_in_block_kit(slack: Slack) -> None:
    await slack.dm(LEARNER, "hi")
    rows = await slack.outbox()
    assert rows  # written before the answer...
    assert slack.fake.calls_to("chat.postMessage") == []  # ...and sent after it
    assert await slack.deliver() == ["sent"] * len(rows)
    texts = slack.texts(LEARNER)
    assert "I'm Coach" in texts[0]
    assert "What should I call you?" in texts[-1]
    last = slack.dm_with(LEARNER)[-1]
    assert last.buttons == [("Skip", "skip")]
    assert last.text == texts[-1]  # the plain-text fallback says the same

    await slack.press(LEARNER, ("Skip", "skip"))
    await slack.deliver()
    assert "Which language" in slack.texts(LEARNER)[-1]
    assert slack.dm_with(LEARNER)[-1].buttons == [("English", "en"), ("Español", "es")]
    await slack.press(LEARNER, ("Español", "es"))
    await slack.deliver()
    assert any("español" in text.lower() for text in slack.texts(LEARNER)[-3:])


async def test_the_person_is_team_and_user_and_the_message_is_the_event(slack: Slack) -> None:
    signed = slack.requests.message_im(LEARNER, "hello")
    await slack.ok(signed)
    async with slack.services.db.reading() as session:
        identities = (await session.exec(select(ChannelIdentity))).all()
        inbox = (await session.exec(select(InboxMessage))).all()
    assert [(i.channel, i.external_id) for i in identities] == [("slack", f"{TEAM}:{LEARNER}")]
    assert [row.message_id for row in inbox] == [signed.event_id]


async def test_retries_of_an_event_run_once(slack: Slack) -> None:
    first = slack.requests.message_im(LEARNER, "hello", event_id="Ev0RETRY0001")
    await slack.ok(first)
    replies = len(await slack.outbox())
    for retry in (1, 2):
        again = slack.requests.message_im(
            LEARNER, "hello", event_id="Ev0RETRY0001", retry_num=retry
        )
        assert again.headers["X-Slack-Retry-Num"] == str(retry)
        await slack.ok(again)
    assert len(await slack.outbox()) == replies
    assert await count(slack, InboxMessage) == 1
    await slack.deliver()
    assert len(slack.dm_with(LEARNER)) == replies


async def test_edits_bot_messages_and_channel_chatter_are_not_answered(slack: Slack) -> None:
    requests = slack.requests
    edited = requests.event_callback(
        {
            "type": "message",
            "subtype": "message_changed",
            "channel": "D0LEARNER1",
            "channel_type": "im",
            "message": {"type": "message", "user": LEARNER, "text": "typo"},
        }
    )
    ours = requests.event_callback(
        {
            "type": "message",
            "user": "U0COACHBOT",
            "bot_id": "B0COACHBOT",
            "text": "Hi, I'm Coach!",
            "channel": "D0LEARNER1",
            "channel_type": "im",
        }
    )
    in_a_channel = requests.event_callback(
        {
            "type": "message",
            "user": LEARNER,
            "text": "hello everyone",
            "channel": "C0CLASS001",
            "channel_type": "channel",
        }
    )
    unknown = requests.event_callback({"type": "reaction_added", "user": LEARNER})
    for signed in (edited, ours, in_a_channel, unknown):
        await slack.ok(signed)
    assert await count(slack, InboxMessage) == 0


async def test_url_verification_echoes_the_challenge(slack: Slack) -> None:
    response = await slack.ok(slack.requests.url_verification("abc123"))
    assert (await response.json())["challenge"] == "abc123"


# -- signatures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "forge",
    [
        "wrong secret",
        "tampered body",
        "six minutes old",
        "from the future",
        "no signature",
        "timestamp not a number",
    ],
)
async def test_forged_and_stale_requests_get_401(slack: Slack, forge: str) -> None:
    now = slack.clock.now().timestamp()
    if forge == "wrong secret":
        signed = Requests("not-our-secret", now=lambda: now).message_im(LEARNER, "hi")
    elif forge == "six minutes old":
        signed = slack.requests.message_im(LEARNER, "hi", timestamp=now - 6 * 60)
    elif forge == "from the future":
        signed = slack.requests.message_im(LEARNER, "hi", timestamp=now + 6 * 60)
    else:
        signed = slack.requests.message_im(LEARNER, "hi")
    headers = dict(signed.headers)
    body = signed.body
    if forge == "tampered body":
        body = body.replace(b'"hi"', b'"/forget"')
    elif forge == "no signature":
        del headers["X-Slack-Signature"]
    elif forge == "timestamp not a number":
        headers["X-Slack-Request-Timestamp"] = "yesterday"
    response = await slack.client.post("/slack/events", data=body, headers=headers)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"
    assert await count(slack, InboxMessage) == 0
    assert await slack.outbox() == []


async def test_a_request_four_minutes_old_is_still_good(slack: Slack) -> None:
    now = slack.clock.now().timestamp()
    await slack.ok(slack.requests.message_im(LEARNER, "hi", timestamp=now - 4 * 60))
    assert await count(slack, InboxMessage) == 1


async def test_without_slack_settings_there_is_no_slack_route(
    client: TestClient[Any, Any],
) -> None:
    response = await client.post("/slack/events", json={"type": "url_verification"})
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


# -- the three-second rule ---------------------------------------------------------------------


class _Gate:
    """A turn service whose turns wait until the test opens the gate."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.opened = asyncio.Event()
        self.started = asyncio.Event()

    async def handle(self, inbound: Inbound) -> TurnResult:
        self.started.set()
        await self.opened.wait()
        result: TurnResult = await self.real.handle(inbound)
        return result


async def test_a_slow_turn_is_acknowledged_in_time_and_finishes_after(slack: Slack) -> None:
    gate = _Gate(slack.services.turns)
    slack.channel.turns = gate  # type: ignore[assignment]
    slack.channel.ack_deadline = 0.01  # the real deadline is 2.5 s; nothing here waits
    response = await slack.post(slack.requests.message_im(LEARNER, "hello"))
    assert response.status == 200  # answered while the turn is still waiting
    assert gate.started.is_set()
    assert await slack.outbox() == []
    gate.opened.set()
    await slack.channel.finish_turns()
    assert await slack.outbox()  # the replies are written all the same
    assert await count(slack, InboxMessage) == 1


# -- a teacher: /coach, the DM, buttons -------------------------------------------------------


async def teacher_with_a_class(slack: Slack, *learner_names: str) -> tuple[int, str]:
    db, clock = slack.services.db, slack.clock
    teacher = await seed_teacher(db, clock, f"{TEAM}:{TEACHER}", channel="slack")
    learners = [
        await seed_learner(db, clock, f"learner-{index}", name=name)
        for index, name in enumerate(learner_names)
    ]
    return await seed_class(db, clock, teacher, "7B Maths", learners=tuple(learners))


async def test_a_teacher_uses_coach_subcommands_in_their_dm(slack: Slack) -> None:
    await teacher_with_a_class(slack, "Sam", "Ana")
    await slack.command(TEACHER, "classes")
    await slack.deliver()
    assert any("7B Maths" in text for text in slack.texts(TEACHER))

    await slack.command(TEACHER, "roster 7B")
    await slack.deliver()
    roster = "\n".join(slack.texts(TEACHER)[-3:])
    assert "Sam" in roster
    assert "Ana" in roster

    await slack.command(TEACHER, "digest 7B")
    await slack.deliver()
    assert any("7B Maths" in text for text in slack.texts(TEACHER)[-3:])

    before = len(slack.dm_with(TEACHER))
    await slack.command(TEACHER, "")  # "/coach" alone: help
    await slack.deliver()
    assert len(slack.dm_with(TEACHER)) > before
    # Every reply went to the teacher's DM, none to the channel the command came from.
    assert slack.fake.posted("C0CLASS001") == []
    async with slack.services.db.reading() as session:
        heard = (
            await session.exec(
                select(MessageLog.text).where(MessageLog.direction == "in").order_by(MessageLog.id)
            )
        ).all()
    assert list(heard) == ["/classes", "/roster 7B", "/digest 7B", "/help"]


async def test_a_mention_in_a_class_channel_is_answered_in_private(slack: Slack) -> None:
    await teacher_with_a_class(slack, "Sam")
    await slack.ok(slack.requests.app_mention(TEACHER, "/classes"))
    await slack.deliver()
    assert slack.fake.posted("C0CLASS001") == []
    assert any("7B Maths" in text for text in slack.texts(TEACHER))


async def test_a_teacher_acknowledges_an_alert_with_its_button(slack: Slack) -> None:
    await teacher_with_a_class(slack, "Sam")
    await Chat(slack.services.turns, "learner-0").send("my stepdad hits me")
    await slack.deliver()
    [alert_message] = [m for m in slack.dm_with(TEACHER) if m.buttons]
    [(label, value)] = alert_message.buttons
    assert "Sam" in alert_message.blocks[0]["text"]["text"]
    assert "hits" not in alert_message.text  # never the learner's words

    await slack.press(TEACHER, (label, value))
    await slack.deliver()
    assert any("acknowledged" in text for text in slack.texts(TEACHER)[-2:])
    async with slack.services.db.reading() as session:
        [alert] = (await session.exec(select(SafetyAlert))).all()
    assert alert.acknowledged_at is not None


# -- hostile text ------------------------------------------------------------------------------

# Two learners' names (a name holds 40 characters) that Slack would read as markup.
HOSTILE = ("<!channel> <@U0TEACHER1> &amp; <!here>", "<https://evil.example|click>")


async def test_a_learners_words_never_become_mentions_or_links(slack: Slack) -> None:
    await teacher_with_a_class(slack, *HOSTILE, "Ana")
    await slack.command(TEACHER, "roster 7B")
    await slack.deliver()
    [call] = [c for c in slack.fake.calls_to("chat.postMessage") if "Ana" in str(c.params)]
    wire = str(call.params["text"]) + str(call.params["blocks"])
    assert "&lt;!channel&gt;" in wire
    assert "&lt;@U0TEACHER1&gt;" in wire
    for dangerous in ("<!channel>", "<@U0TEACHER1>", "<https://", "<!here>"):
        assert dangerous not in wire
    assert "&amp;amp;" in wire  # the learner's "&amp;" is five characters, shown as typed


async def test_what_a_learner_types_reaches_the_coach_as_they_typed_it(slack: Slack) -> None:
    await slack.dm(LEARNER, "hi")
    # Slack escapes & < > in what people type and writes mentions and links in <...>.
    await slack.dm(LEARNER, "Bo &lt;3 &amp; <@U0FRIEND1|zoe> <https://example.org|my site>")
    async with slack.services.db.reading() as session:
        heard = (
            await session.exec(
                select(MessageLog.text).where(MessageLog.direction == "in").order_by(MessageLog.id)
            )
        ).all()
    assert heard[-1] == "Bo <3 & @zoe my site"


# -- what the dispatcher is told ----------------------------------------------------------------


async def test_a_429_storm_goes_back_with_slacks_delay(slack: Slack) -> None:
    await slack.dm(LEARNER, "hi")
    rows = len(await slack.outbox())
    slack.fake.rate_limit(calls=100, retry_after=7)
    assert await slack.deliver() == ["retry_after"] * rows
    assert slack.dm_with(LEARNER) == []
    slack.fake.rate_limit(calls=0, retry_after=0)
    assert await slack.deliver() == ["sent"] * rows
    assert len(slack.dm_with(LEARNER)) == rows


async def test_the_retry_after_value_is_slacks(slack: Slack) -> None:
    await slack.dm(LEARNER, "hi")
    async with slack.services.db.reading() as session:
        row, identity = (
            await session.exec(
                select(OutboxMessage, ChannelIdentity).join(
                    ChannelIdentity, col(ChannelIdentity.id) == col(OutboxMessage.identity_id)
                )
            )
        ).first() or (None, None)
    assert row is not None
    assert identity is not None
    slack.fake.rate_limit(calls=1, retry_after=17)
    outcome = await slack.channel.sender.send(identity, row.payload)
    assert (outcome.kind, outcome.retry_after) == ("retry_after", 17.0)


async def test_a_deactivated_user_is_a_permanent_failure(slack: Slack) -> None:
    await slack.dm(LEARNER, "hi")
    slack.fake.disable_user(LEARNER)
    assert set(await slack.deliver()) == {"permanent"}
    assert slack.dm_with(LEARNER) == []


async def test_a_vanished_dm_is_a_permanent_failure(slack: Slack) -> None:
    await slack.dm(LEARNER, "hi")
    slack.fake.remove_channel(FakeSlack.dm_channel(LEARNER))
    assert set(await slack.deliver()) == {"permanent"}


async def test_message_text_and_tokens_stay_out_of_the_logs(
    slack: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    secret_words = "my secret diary entry"
    await slack.dm(LEARNER, "hi")
    await slack.dm(LEARNER, secret_words)
    await slack.deliver()
    for record in caplog.records:
        message = record.getMessage()
        assert secret_words not in message
        assert slack.fake.bot_token not in message
        assert DEFAULT_SIGNING_SECRET not in message
