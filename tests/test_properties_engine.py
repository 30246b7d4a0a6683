"""Property tests below HTTP: one learner says and presses anything, in any order, and
every turn answers in words a person can read and leaves a conversation the engine
can go on from.

A Hypothesis state machine plays the learner through the real turn service and
database (tests/conftest.py's `services`, SQLite): commands, answers the flows
know, buttons from the last reply and buttons nobody offered, numbers, dates,
emoji, any text at all, redeliveries, and days passing on the fake clock. After
every turn it checks the replies and reads the stored conversation back.

The machine's rules are plain functions, so Hypothesis runs in a worker thread and
hands each turn to the test's event loop, where the fixtures' database lives.
Examples are derandomized and no example database is kept: CI runs the same
conversations every time.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlmodel import select

from bot.channels.console import to_inbound
from bot.clock import FakeClock
from bot.coach import privacy
from bot.engine.flows import END
from bot.engine.locales import PLACEHOLDER
from bot.engine.messages import EXPECT_TYPES, Button, Expect, TurnResult
from bot.engine.runtime import DialogState
from bot.services import Services
from bot.store.models import Conversation
from bot.testing.conversation import Chat
from bot.testing.people import seed_goal, seed_learner
from tests.strategies import button_values, inputs

Run = Callable[[Coroutine[Any, Any, Any]], Any]

MACHINE = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
# A raw message key in a reply ("goals.ask_wish"): a dotted lowercase name.
_KEY_LIKE = re.compile(r"[a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)+")
# What Python leaks into text when a value is formatted raw.
_PYTHON_LEAKS = re.compile(r"\bNone\b|\{'|\['|Traceback|object at 0x|<bot\.")


def folded(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


class Learner:
    """One learner on the web channel, and the checks every turn of theirs must pass.
    `run` runs a coroutine on the test's event loop and returns its result."""

    def __init__(self, services: Services, clock: FakeClock, run: Run) -> None:
        self.services = services
        self.clock = clock
        self.run = run
        self.chat = Chat(services.turns, f"p-{uuid.uuid4().hex[:10]}")
        self.flows = services.dialog.flows
        self.keys = {
            key for entries in services.dialog.catalogs.entries.values() for key in entries
        }
        self.said: list[str] = []  # folded: what the learner typed may come back in a reply
        self.sent = 0
        self.first: dict[str, TurnResult] = {}  # message id -> its first answer
        self.last_id: str | None = None
        self.last_kind: str = "text"
        self.last_value: str = ""

    def seed(self, start: str) -> None:
        """Where the learner starts: new, or past onboarding (in Spanish, under 13, or
        with an active goal)."""
        if start == "new":
            return
        fields: dict[str, Any] = {"locale": "es"} if start == "onboarded-es" else {}
        if start == "under-13":
            fields.update(grade_band="3-5", under_13=True)
        db, user, now = self.services.db, self.chat.user, self.clock.now()
        person = self.run(seed_learner(db, self.clock, user, **fields))
        if start == "goal":
            self.run(seed_goal(db, person, "read 3 books", created_at=now))

    def redeliver(self) -> None:
        """A channel retries: the same message id gets the first answer, changes nothing."""
        assert self.last_id is not None
        before = self.stored()
        if self.last_kind == "button":
            result = self.run(self.chat.press(self.last_value, message_id=self.last_id))
        else:
            result = self.run(self.chat.send(self.last_value, message_id=self.last_id))
        assert result.duplicate, self.transcript()
        first = self.first[self.last_id]
        assert result.replies == first.replies, self.transcript()
        assert result.expect == first.expect, self.transcript()
        after = self.stored()
        assert (before and before.version) == (after and after.version), self.transcript()

    # -- one turn and what it must leave -----------------------------------------------

    def turn(self, *, text: str | None = None, button: str | None = None) -> None:
        expect_before = self.chat.last.expect
        self.sent += 1
        message_id = f"{self.chat.user}:{self.sent}"
        value = button if button is not None else (text or "")
        self.said.append(folded(value))
        if button is not None:
            result = self.run(self.chat.press(button, message_id=message_id))
            self.last_kind = "button"
        else:
            result = self.run(self.chat.send(value, message_id=message_id))
            self.last_kind = "text"
        self.last_id, self.last_value = message_id, value
        self.first[message_id] = result
        assert not result.duplicate, self.transcript()
        self.check_replies(result)
        conversation = self.stored()
        if conversation is None:
            # /forget's "yes" (dialogs/flows/data.yaml) erases the person in its turn.
            assert expect_before.slot == "forget.confirm", self.transcript("the person is gone")
            assert result.expect.type == "none", self.transcript()
            return
        self.check_conversation(conversation, result)

    def check_replies(self, result: TurnResult) -> None:
        assert result.replies, self.transcript("no reply")
        assert result.expect.type in EXPECT_TYPES, self.transcript()
        for reply in result.replies:
            assert isinstance(reply.text, str), self.transcript("not text")
            assert reply.text.strip(), self.transcript("an empty reply")
            self.check_words(reply.text)
            for button in reply.buttons:
                assert button.label.strip(), self.transcript("a button without a label")
                assert button.value, self.transcript("a button without a value")
                self.check_words(button.label)

    def check_words(self, text: str) -> None:
        echoed = "\n".join(self.said)
        for name in PLACEHOLDER.findall(text):
            if folded(f"{{{name}}}") not in echoed:
                raise AssertionError(self.transcript(f"unfilled {{{name}}} in {text!r}"))
        for key in _KEY_LIKE.findall(text):
            if key in self.keys and key not in echoed:
                raise AssertionError(self.transcript(f"raw message key {key!r} in {text!r}"))
        for leak in _PYTHON_LEAKS.findall(text):
            if folded(leak) not in echoed:
                raise AssertionError(self.transcript(f"{leak!r} in {text!r}"))

    def stored(self) -> Conversation | None:
        async def read() -> Conversation | None:
            async with self.services.db.reading() as session:
                person = await privacy.find_person(session, "web", self.chat.user)
                if person is None:
                    return None
                query = select(Conversation).where(Conversation.person_id == person.id)
                return (await session.exec(query)).first()

        found: Conversation | None = self.run(read())
        return found

    def check_conversation(self, conversation: Conversation, result: TurnResult) -> None:
        """The stored state points only at flows and steps that exist, and waits for what
        the turn's answer said it waits for."""
        where = self.transcript(
            f"stored: flow={conversation.flow} step={conversation.step} "
            f"stack={conversation.stack} meta={conversation.meta}"
        )
        flows = self.flows.flows
        flow, step, meta = conversation.flow, conversation.step, conversation.meta
        if flow is None:
            assert step is None, where
        else:
            assert flow in flows, where
            assert step is not None, where
            assert step in flows[flow].steps, where
            if meta.get("awaiting"):
                assert flows[flow].steps[step].ask, where
        for frame in conversation.stack:
            assert frame["flow"] in flows, where
            assert frame["step"] == END or frame["step"] in flows[frame["flow"]].steps, where
        suspended = meta.get("suspended")
        if suspended:
            # Resuming asks that step's question again (runtime.restore).
            assert suspended["flow"] in flows, where
            assert flows[suspended["flow"]].steps[suspended["step"]].ask, where
        if meta.get("offer"):
            assert meta["offer"] == "resume", where
            assert suspended, where
        state = DialogState(
            conversation.flow,
            conversation.step,
            dict(conversation.slots),
            list(conversation.stack),
            dict(meta),
        )
        assert self.services.dialog.expected(state) == result.expect, where

    def transcript(self, problem: str = "") -> str:
        return f"{problem}\n--- transcript ---\n" + "\n".join(self.chat.transcript[-40:])


class LearnerMachine(RuleBasedStateMachine):
    """A learner who says and presses anything, in any order."""

    def __init__(self, services: Services, clock: FakeClock, run: Run) -> None:
        super().__init__()
        self.learner = Learner(services, clock, run)

    @initialize(
        start=st.sampled_from(("new", "onboarded", "onboarded-es", "under-13", "goal")),
        first=st.sampled_from(("hi", "hi", "/warmup", "/goal", "/checkin", "/settings")),
    )
    def begin(self, start: str, first: str) -> None:
        self.learner.seed(start)
        self.learner.turn(text=first)

    @rule(text=inputs)
    def send(self, text: str) -> None:
        self.learner.turn(text=text)

    @precondition(lambda self: bool(self.learner.chat.buttons))
    @rule(data=st.data())
    def press_an_offered_button(self, data: st.DataObject) -> None:
        offered = self.learner.chat.buttons
        self.learner.turn(button=data.draw(st.sampled_from(offered), label="offered"))

    @precondition(lambda self: bool(self.learner.chat.buttons))
    @rule(data=st.data())
    def type_an_offered_label(self, data: st.DataObject) -> None:
        labels = [b.label for r in self.learner.chat.last.replies for b in r.buttons]
        self.learner.turn(text=data.draw(st.sampled_from(labels), label="typed"))

    @rule(value=button_values)
    def press_any_button(self, value: str) -> None:
        self.learner.turn(button=value)

    @precondition(lambda self: self.learner.last_id is not None)
    @rule()
    def redeliver_the_last_message(self) -> None:
        self.learner.redeliver()

    @rule(hours=st.integers(min_value=1, max_value=24 * 16))
    def time_passes(self, hours: int) -> None:
        self.learner.clock.advance(hours=hours)


def on_this_loop() -> Run:
    """Run a coroutine on the calling test's event loop from the Hypothesis thread."""
    loop = asyncio.get_running_loop()

    def run(coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    return run


async def test_any_sequence_of_messages_keeps_a_valid_conversation(
    services: Services, clock: FakeClock
) -> None:
    run = on_this_loop()

    def machine() -> LearnerMachine:
        return LearnerMachine(services, clock, run)

    # Hypothesis takes any factory of machines here (its annotation says a class).
    await asyncio.to_thread(run_state_machine_as_test, machine, settings=MACHINE)  # type: ignore[arg-type]


# Each kind of question, and how a learner gets there: who they are, what they say,
# and the slot the question fills (checked, so a changed flow fails here loudly).
QUESTIONS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "onboarding.name": ("new", ("hi",), "text"),
    "onboarding.locale": ("new", ("hi", "Ana"), "choice"),
    "profile.name": ("onboarded", ("/warmup",), "text"),
    "warmup.mood": ("onboarded", ("/warmup", "Sam"), "rating"),
    "warmup.wants_plan": ("onboarded", ("/warmup", "Sam", "3"), "yes_no"),
    "warmup.minutes": ("onboarded", ("/warmup", "Sam", "3", "yes"), "number"),
    "warmup.deadline": ("onboarded", ("/warmup", "Sam", "3", "yes", "30"), "date"),
    "checkin.mood": ("goal", ("/checkin",), "rating"),
    "checkin.rating": ("goal", ("/checkin", "skip"), "rating"),
    "checkin.went_well": ("goal", ("/checkin", "skip", "4"), "text"),
    "checkin.share": ("goal", ("/checkin", "skip", "4", "ok", "time", "read more"), "yes_no"),
    "goal.wish": ("onboarded", ("/goal",), "text"),
    "goal.deadline": ("onboarded", ("/goal", "read 3 books", "a", "b", "c", "d"), "date"),
    "interests.answer.bike": ("onboarded", ("/interests",), "choice"),
    "settings.what": ("onboarded", ("/settings",), "choice"),
    "settings.zone_said": ("onboarded", ("/settings", "1"), "text"),
    "menu.choice": ("onboarded", ("menu",), "choice"),
    "forget.confirm": ("onboarded", ("/forget",), "yes_no"),
}
# Answers that have broken parsers: digits int() refuses, numbers past float and
# past Python's 4300-digit limit for int(str), the longest texts channels let through.
EXTREMES = (
    "\u1369",  # Ethiopic digit one: isdigit() but not int()
    "\u00b2",
    "\u2460",
    "\u2473" * 2200,  # circled twenty: NFKD makes 4400 digits of it
    "9" * 400,  # float("9" * 400) is inf
    "-" + "9" * 400,
    "9" * 4096,
    "0" * 4096,
    "9" * 5000,  # Slack and the console have no 4096 limit: past int(str)'s 4300 digits
    "9" * 5000 + "/5",
    "in " + "9" * 400 + " days",
    "in " + "9" * 4000 + " weeks",
    "9" * 400 + " days ago",
    "the " + "9" * 400,
    "1e400",
    "1" + "0" * 30 + "/5",
    "5/" + "9" * 400,
    "\u2b50" * 4096,
    "\U0001f600" * 2048,
    "x" * 4096,
    "{name}" * 600,
    "",
    " ",
    "\u200b",
    "\u202e",
)
answers = st.one_of(
    st.tuples(st.just("text"), st.one_of(inputs, st.sampled_from(EXTREMES))),
    st.tuples(st.just("button"), button_values),
)


async def test_any_answer_to_any_kind_of_question_keeps_a_valid_conversation(
    services: Services, clock: FakeClock
) -> None:
    run = on_this_loop()

    @settings(MACHINE, max_examples=80)
    @given(question=st.sampled_from(sorted(QUESTIONS)), answer=answers)
    def answer_it(question: str, answer: tuple[str, str]) -> None:
        learner = Learner(services, clock, run)
        who, script, kind = QUESTIONS[question]
        learner.seed(who)
        for line in script:
            learner.turn(text=line)
        assert learner.chat.last.expect == Expect(kind, question), learner.transcript()  # type: ignore[arg-type]
        how, value = answer
        learner.turn(**{how: value})
        learner.turn(text="menu")

    await asyncio.to_thread(answer_it)


@pytest.mark.parametrize("question", sorted(QUESTIONS))
async def test_every_extreme_answer_to_each_kind_of_question(
    services: Services, clock: FakeClock, question: str
) -> None:
    """Every one of EXTREMES at every question: too rare for the generators to pair up."""
    run = on_this_loop()

    who, script, kind = QUESTIONS[question]

    def walk() -> Learner:
        learner = Learner(services, clock, run)
        learner.seed(who)
        for line in script:
            learner.turn(text=line)
        assert learner.chat.last.expect == Expect(kind, question), learner.transcript()  # type: ignore[arg-type]
        return learner

    def answer_all() -> None:
        learner = walk()
        for extreme in EXTREMES:
            if learner.chat.last.expect.slot != question:
                learner = walk()  # the last one was an answer: start again
            learner.turn(text=extreme)

    await asyncio.to_thread(answer_all)


@pytest.mark.parametrize("start", ["new", "onboarded", "onboarded-es", "under-13", "goal"])
async def test_every_flow_name_as_a_button_and_every_command_get_a_reply(
    services: Services, clock: FakeClock, start: str
) -> None:
    """A button may name any flow (an old keyboard, a forged request) and a /command any
    trigger: each gets a reply, whoever presses it and wherever the chat is."""
    run = on_this_loop()

    flows = services.dialog.flows
    commands = sorted(t for t in flows.trigger_map() if t.startswith("/"))

    def press_all() -> None:
        learner = Learner(services, clock, run)
        learner.seed(start)
        learner.turn(text="hi")
        for name in sorted(flows.flows):
            if learner.chat.last.expect.slot == "forget.confirm":
                learner.turn(text="no")
            learner.turn(button=name)
        for command in commands:
            if learner.chat.last.expect.slot == "forget.confirm":
                learner.turn(text="no")
            learner.turn(text=command)

    await asyncio.to_thread(press_all)


@settings(MACHINE, max_examples=200)
@given(line=st.one_of(inputs, st.sampled_from(EXTREMES)), offered=st.integers(0, 9))
def test_the_console_reads_any_line(line: str, offered: int) -> None:
    """A bare number picks that button; any other line is text; nothing raises."""
    buttons = [Button(f"b{n}", f"v{n}") for n in range(offered)]
    inbound = to_inbound("ana", line, buttons)
    if line.isascii() and line.isdigit() and len(line) == 1 and 1 <= int(line) <= offered:
        assert inbound.button == f"v{int(line) - 1}"
        assert inbound.text is None
    elif not line.isdecimal():
        assert inbound.text == line
        assert inbound.button is None
    else:  # other scripts' digits ("٣") may pick a button too
        assert (inbound.text == line) != (inbound.button is not None)
