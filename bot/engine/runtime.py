"""The turn runtime: given where a conversation is and what the person said, move it on.

The state is plain data (`DialogState`) saved with every turn, so any replica can
take the next one. A turn:

1. engine intents first, at any step: pause, resume, cancel/restart, language;
2. flows marked `anywhere` (help, menu) by their triggers, at any step;
3. a pending offer ("carry on where we were?") takes yes or no;
4. otherwise the answer to the step that asked, validated for its expected type:
   stored in its slot and the flow moves on, or a kind re-prompt that says what
   is expected, and after three misses a way out;
5. with nothing in progress: a flow's trigger starts it, anything else gets a
   helpful fallback and the menu.

Interrupting a flow (help in the middle of a goal, or starting another flow)
suspends it; when the interruption ends the person is offered to carry on.
A conversation idle longer than the configured time resumes with a recap.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rapidfuzz import fuzz
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.engine.actions import ActionContext, ActionRegistry
from bot.engine.dates import parse_date
from bot.engine.flows import END, Flow, FlowSet, Step
from bot.engine.locales import Catalogs
from bot.engine.messages import Button, Expect, Reply
from bot.engine.topics import Vocabulary
from bot.engine.understand import (
    IntentMatcher,
    normalize,
    parse_number,
    parse_rating,
    parse_yes_no,
)
from bot.store.models import Person

log = logging.getLogger(__name__)

# Intents the engine itself handles, whatever flows exist.
ENGINE_INTENTS = ("pause", "resume", "cancel", "back", "language_en", "language_es")
# After this many answers in a row that we could not use, offer a way out (issue 2).
MISSES_BEFORE_WAY_OUT = 3
# A flow that loops back on itself without asking anything would spin forever;
# no real turn passes through this many steps.
MAX_STEPS_PER_TURN = 100
# How long /pause holds reminders (issue 3: two weeks).
PAUSE_DAYS = 14
# How many earlier questions "go back" can return to.
MAX_TRAIL = 10
# Issue 3's tone rule: at most three messages in one turn; more are joined.
MAX_REPLIES = 3
# Similarity (0-100) at which typed text counts as picking a choice by its label.
CHOICE_LABEL_SCORE = 85


class DialogFault(Exception):
    """A flow misbehaved at run time (a loop, a missing step): a bug, not bad input."""


@dataclass(slots=True)
class DialogState:
    """Where a conversation is: JSON-able, saved with every turn."""

    flow: str | None = None
    step: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    stack: list[dict[str, str]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def awaiting(self) -> bool:
        return bool(self.meta.get("awaiting")) and self.flow is not None

    @property
    def in_progress(self) -> bool:
        return self.flow is not None

    def position(self) -> dict[str, Any]:
        return {"flow": self.flow, "step": self.step, "stack": list(self.stack)}


@dataclass(slots=True)
class TurnOutput:
    replies: list[Reply]
    expect: Expect
    # What the person said, as they saw it: a pressed button's label, not its value.
    heard: str
    # An action asked to erase the person (/forget): nothing of this turn is kept.
    erase: bool = False


@dataclass(frozen=True, slots=True)
class _Option:
    value: str
    label: str  # in the person's language
    labels: tuple[str, ...]  # in every language, to recognise a typed answer


@dataclass(slots=True)
class _Answer:
    ok: bool
    value: Any = None
    problem: str | None = None  # a message key naming what was wrong
    params: dict[str, Any] = field(default_factory=dict)


class Dialog:
    """Everything a turn needs that does not change between turns: flows, words, actions."""

    def __init__(
        self,
        flows: FlowSet,
        catalogs: Catalogs,
        intents: IntentMatcher,
        actions: ActionRegistry,
        vocabulary: Vocabulary,
        *,
        entry_flow: str = "main",
        menu_flow: str = "menu",
        idle_after: timedelta = timedelta(hours=24),
        extras: Mapping[str, Any] | None = None,
    ) -> None:
        self.flows = flows
        self.catalogs = catalogs
        self.intents = intents
        self.actions = actions
        self.vocabulary = vocabulary
        self.entry_flow = entry_flow
        self.menu_flow = menu_flow
        self.idle_after = idle_after
        # Passed to every action as ActionContext.extras (see there).
        self.extras: Mapping[str, Any] = dict(extras or {})
        self._triggers = flows.trigger_map()
        # Flows a person may ask for (by a trigger, or a button naming one); the others
        # (onboarding, family_setup, teacher_home, ...) are only reached from a flow.
        self._startable = frozenset(self._triggers.values())
        self._anywhere = {t: f for t, f in self._triggers.items() if flows.flows[f].anywhere}
        known = intents.intents()
        self._engine_intents = [i for i in ENGINE_INTENTS if i in known]
        self._flow_intents = [t for t in self._triggers if t in known]
        self._anywhere_intents = [t for t in self._anywhere if t in known]

    async def turn(
        self,
        state: DialogState,
        *,
        text: str,
        button: str | None,
        person: Person,
        session: AsyncSession,
        now: datetime,
        last_active: datetime | None,
        first_contact: bool,
        channel: str = "",
    ) -> TurnOutput:
        run = _Turn(self, state, person, session, now)
        run.channel = channel
        heard = text if button is None else run.label_for(button)
        await run.handle(text, button, last_active=last_active, first_contact=first_contact)
        return TurnOutput(cap_replies(run.replies), run.expect(), heard, run.erase)

    def render(self, key: str, locale: str, params: Mapping[str, Any] | None = None) -> str:
        return self.catalogs.render(key, locale, params)

    def expected(self, state: DialogState) -> Expect:
        """What the conversation waits for now (for exports and the API)."""
        if state.meta.get("offer"):
            return Expect("yes_no", None)
        if state.awaiting and state.flow and state.step:
            step = self.flows.step(state.flow, state.step)
            return Expect(step.expect, step.slot)  # type: ignore[arg-type]
        return Expect("none", None)


class _Turn:
    """One turn's working memory; discarded after it."""

    def __init__(
        self,
        dialog: Dialog,
        state: DialogState,
        person: Person,
        session: AsyncSession,
        now: datetime,
    ) -> None:
        self.d = dialog
        self.state = state
        self.person = person
        self.session = session
        self.now = now
        self.replies: list[Reply] = []
        self.said = ""
        self.channel = ""  # where this message came from (telegram, slack, web, ...)
        self.erase = False
        self._steps_run = 0

    # -- helpers -------------------------------------------------------------------------

    @property
    def locale(self) -> str:
        return self.person.locale if self.person.locale in self.d.catalogs.locales else "en"

    @property
    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.person.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def params(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        values: dict[str, Any] = dict(self.state.slots)
        values["name"] = self.person.name or ""
        if extra:
            values.update(extra)
        return values

    def t(self, key: str, **extra: Any) -> str:
        return self.d.render(key, self.locale, self.params(extra))

    def say(self, key: str, buttons: tuple[Button, ...] = (), **extra: Any) -> None:
        self.replies.append(Reply(self.t(key, **extra), buttons))

    def expect(self) -> Expect:
        return self.d.expected(self.state)

    def flow(self, name: str | None = None) -> Flow:
        return self.d.flows.flows[name or self.state.flow or self.d.entry_flow]

    def current_step(self) -> Step | None:
        if self.state.flow is None or self.state.step is None:
            return None
        flow = self.d.flows.flows.get(self.state.flow)
        if flow is None:
            return None
        return flow.steps.get(self.state.step)

    def context(self, args: Mapping[str, Any]) -> ActionContext:
        return ActionContext(
            session=self.session,
            person=self.person,
            slots=self.state.slots,
            args=args,
            now=self.now,
            render=lambda key, params: self.t(key, **params),
            said=self.said,
            vocabulary=self.d.vocabulary,
            extras=self.d.extras,
            channel=self.channel,
        )

    def absorb(self, context: ActionContext) -> None:
        self.replies.extend(context.replies)
        self.erase = self.erase or context.erase

    def offers(self, step: Step, value: str) -> bool:
        return any(b.value == value for b in self.buttons_for(step))

    def label_for(self, value: str) -> str:
        """The label of the button with this value among those last offered."""
        offered: list[Button] = []
        if self.state.meta.get("offer"):
            offered.extend(
                self.yes_no_buttons("engine.button.carry_on", "engine.button.start_over")
            )
        step = self.current_step()
        if step is not None and self.state.awaiting:
            offered.extend(self.buttons_for(step))
        for key in ("skip", "menu", "help"):
            offered.append(Button(self.t(f"engine.button.{key}"), key))
        return next((b.label for b in offered if b.value == value), value)

    def yes_no_buttons(
        self, yes_key: str = "engine.button.yes", no_key: str = "engine.button.no"
    ) -> tuple[Button, ...]:
        return (Button(self.t(yes_key), "yes"), Button(self.t(no_key), "no"))

    # -- the turn ------------------------------------------------------------------------

    async def handle(
        self,
        text: str,
        button: str | None,
        *,
        last_active: datetime | None,
        first_contact: bool,
    ) -> None:
        said = (button if button is not None else text).strip()
        self.said = said
        intercepted = quiet = restart = pause = False
        if said:
            for interceptor in self.d.actions.interceptors:
                context = self.context({})
                intercepted = await interceptor(context)
                self.absorb(context)
                if intercepted:
                    quiet, restart = context.quiet, context.restart
                    pause = context.pause_flow
                    break
        if intercepted and pause:
            # A safety reply stands alone: no question after it. What was in progress
            # waits and is offered back next time (a first contact starts then, too).
            self.suspend()
            return
        if first_contact or not self.state.meta.get("started"):
            self.state.meta["started"] = True
            await self.start_flow(self.d.entry_flow)
            return
        if intercepted and restart:
            # A code changed the person's role: what was in progress no longer fits.
            self.state.flow = self.state.step = None
            self.state.stack = []
            for key in ("awaiting", "misses", "offer", "suspended"):
                self.state.meta.pop(key, None)
            await self.start_flow(self.d.entry_flow)
            return
        if intercepted:
            # Handled (a join code, say): put the question back so nobody is left hanging,
            # or show the menu, unless the interceptor's answer stands on its own.
            pending = self.state.awaiting or self.state.meta.get("offer") == "resume"
            if pending or not quiet:
                await self.reask_or_menu()
            return
        self._heal()

        intent = self.match(said, self.d._engine_intents)
        step = self.current_step()
        if intent and intent.startswith("language_") and self.state.awaiting and step:
            code = intent.removeprefix("language_")
            if self.offers(step, code):
                # "español" at the language question is its answer, not an interruption.
                intent = None
            elif code == self.person.locale:
                # "English" from an English speaker mid-question is an answer (a topic,
                # a language to learn), not a request to switch.
                intent = None
        if intent is not None:
            await self.engine_intent(intent)
            return

        if self.is_idle_return(last_active):
            flow_intent = self.trigger_for(said, self.d._anywhere_intents)
            if flow_intent is None:
                self.offer_resume(welcome_back=True)
                return

        target = self.trigger_for(said, self.d._anywhere_intents)
        if target is not None:
            await self.interrupt_with(target)
            return

        step = self.current_step()
        # A /command for a flow, or a button that names one ("goal", "next") and is
        # not an answer on offer, starts that flow from anywhere.
        if said.startswith("/") or (
            button is not None
            and button in self.d._startable
            and not (step and self.state.awaiting and self.offers(step, button))
        ):
            target = button if button in self.d._startable else None
            target = target or self.trigger_for(said, self.d._flow_intents)
            if target is not None:
                await self.interrupt_with(target)
                return

        if self.state.meta.get("offer") == "resume":
            await self.answer_offer(said)
            return

        if self.state.awaiting and step is not None:
            await self.answer(step, said, button)
            return

        target = self.trigger_for(said, self.d._flow_intents)
        if target is not None:
            await self.interrupt_with(target)
            return
        if self.state.meta.get("suspended"):
            self.offer_resume(welcome_back=False)
            return
        self.say("engine.fallback")
        await self.start_flow(self.d.menu_flow)

    def _heal(self) -> None:
        """A flow edited since this conversation was saved may have lost its step."""
        if self.state.flow is not None and self.current_step() is None:
            log.warning(
                "conversation pointed at a missing step; reset to the menu",
                extra={"flow": self.state.flow, "step": self.state.step},
            )
            self.state.flow = self.state.step = None
            self.state.stack = []
            self.state.meta.pop("awaiting", None)
        suspended = self.state.meta.get("suspended")
        if suspended and (
            suspended.get("flow") not in self.d.flows.flows
            or suspended.get("step") not in self.d.flows.flows[suspended["flow"]].steps
        ):
            self.state.meta.pop("suspended", None)
            self.state.meta.pop("offer", None)

    def match(self, said: str, intents: list[str]) -> str | None:
        if not said or not intents:
            return None
        # The best match over every intent decides, and only counts when it is one
        # of those wanted here: "what should I do now?" is `next`, even where only
        # help and menu are listened for.
        found = self.d.intents.match(said, self.locale)
        return found.intent if found and found.intent in intents else None

    def trigger_for(self, said: str, intents: list[str]) -> str | None:
        """The flow a /command or an intent asks for, if any."""
        command = said.split(maxsplit=1)[0].lower() if said.startswith("/") else None
        if command and command in self.d._triggers:
            flow = self.d._triggers[command]
            if intents is self.d._flow_intents or self.d.flows.flows[flow].anywhere:
                return flow
        intent = self.match(said, intents)
        return self.d._triggers.get(intent) if intent else None

    def is_idle_return(self, last_active: datetime | None) -> bool:
        if last_active is None or not self.state.awaiting:
            return False
        current = self.d.flows.flows.get(self.state.flow or "")
        if current is None or current.anywhere:
            return False  # the menu or help: nothing worth a recap, just answer it
        return self.now - last_active > self.d.idle_after

    # -- engine intents ------------------------------------------------------------------

    async def engine_intent(self, intent: str) -> None:
        if intent.startswith("language_"):
            self.person.locale = intent.removeprefix("language_")
            self.say("engine.language_switched")
            await self.reask_or_menu()
        elif intent == "pause":
            self.person.paused_until = self.now + timedelta(days=PAUSE_DAYS)
            self.suspend()
            key = "engine.paused_in_flow" if self.state.meta.get("suspended") else "engine.paused"
            self.say(key, date=(self.now + timedelta(days=PAUSE_DAYS)).astimezone(self.zone).date())
        elif intent == "resume":
            was_paused = (
                self.person.paused_until is not None and self.person.paused_until > self.now
            )
            self.person.paused_until = None
            if self.state.meta.get("suspended"):
                if was_paused:
                    self.say("engine.unpaused")
                await self.restore()
            elif self.state.awaiting:
                if was_paused:
                    self.say("engine.unpaused")
                await self.reask_or_menu()
            else:
                self.say("engine.unpaused" if was_paused else "engine.nothing_to_resume")
                await self.start_flow(self.d.menu_flow)
        elif intent == "back":
            await self.go_back()
        elif intent == "cancel":
            self.state.flow = self.state.step = None
            self.state.stack = []
            for key in ("awaiting", "misses", "offer", "suspended"):
                self.state.meta.pop(key, None)
            self.say("engine.cancelled")
            await self.start_flow(self.d.entry_flow)

    async def go_back(self) -> None:
        """Re-ask the question before this one in the same flow."""
        trail: list[str] = self.state.meta.get("trail", [])
        step = self.current_step()
        if not self.state.awaiting or step is None:
            self.say("engine.fallback")
            await self.start_flow(self.d.menu_flow)
            return
        if len(trail) < 2:
            self.say("engine.back_at_start")
            self.ask(step)
            return
        trail.pop()
        previous = self.flow().steps.get(trail[-1])
        if previous is None or not previous.ask:
            self.ask(step)
            return
        self.state.meta["misses"] = 0
        self.ask(previous)

    async def reask_or_menu(self) -> None:
        step = self.current_step()
        if self.state.meta.get("offer") == "resume":
            self.offer_resume(welcome_back=False)
        elif self.state.awaiting and step is not None:
            self.ask(step)
        else:
            await self.start_flow(self.d.menu_flow)

    # -- suspending and resuming ---------------------------------------------------------

    def suspend(self) -> None:
        """Put the flow in progress aside, to be offered back later."""
        current = self.d.flows.flows.get(self.state.flow or "")
        # The menu and help are never worth coming back to; what they interrupted is.
        if self.state.awaiting and current is not None and not current.anywhere:
            self.state.meta["suspended"] = self.state.position()
        self.state.flow = self.state.step = None
        self.state.stack = []
        self.state.meta.pop("awaiting", None)
        self.state.meta.pop("misses", None)
        self.state.meta.pop("offer", None)

    async def interrupt_with(self, flow: str) -> None:
        suspended = self.state.meta.get("suspended")
        if suspended and suspended.get("flow") == flow and not self.d.flows.flows[flow].anywhere:
            self.state.meta.pop("suspended", None)  # starting it afresh replaces the old one
        if self.state.awaiting and self.state.flow == flow:
            self.state.flow = None  # restarting the same flow: nothing to come back to
        self.suspend()
        await self.start_flow(flow)

    def offer_resume(self, *, welcome_back: bool) -> None:
        if welcome_back:
            self.suspend()
        suspended = self.state.meta.get("suspended")
        if not suspended:
            return
        flow = self.flow(suspended["flow"])
        step = flow.steps[suspended["step"]]
        title = self.t(flow.title)
        if welcome_back:
            self.say("engine.welcome_back", title=title)
            recap_key = step.recap or step.ask
            if recap_key:
                self.say("engine.recap", question=self.t(recap_key))
        self.state.meta["offer"] = "resume"
        self.say(
            "engine.resume_offer",
            self.yes_no_buttons("engine.button.carry_on", "engine.button.start_over"),
            title=title,
        )

    async def answer_offer(self, said: str) -> None:
        answer = parse_yes_no(said)
        if answer is None:
            target = self.trigger_for(said, self.d._flow_intents)
            self.state.meta.pop("offer", None)
            if target is not None:
                await self.interrupt_with(target)
                return
            self.say("engine.offer_unclear")
            self.state.meta["offer"] = "resume"
            self.say(
                "engine.resume_offer",
                self.yes_no_buttons("engine.button.carry_on", "engine.button.start_over"),
                title=self.t(self.flow(self.state.meta["suspended"]["flow"]).title),
            )
            return
        if answer:
            await self.restore()
        else:
            self.state.meta.pop("offer", None)
            self.state.meta.pop("suspended", None)
            self.say("engine.start_over")
            # The entry flow knows where a fresh start begins (onboarding if unfinished).
            await self.start_flow(self.d.entry_flow)

    async def restore(self) -> None:
        suspended = self.state.meta.pop("suspended", None)
        self.state.meta.pop("offer", None)
        if not suspended:
            await self.start_flow(self.d.menu_flow)
            return
        self.state.flow = suspended["flow"]
        self.state.step = suspended["step"]
        self.state.stack = list(suspended.get("stack", []))
        self.state.meta["awaiting"] = True
        self.state.meta["misses"] = 0
        step = self.current_step()
        assert step is not None  # _heal dropped suspensions pointing at missing steps
        self.ask(step)

    # -- answering a question ------------------------------------------------------------

    async def answer(self, step: Step, said: str, button: str | None) -> None:
        if step.optional and self.match(said, ["skip"]) is not None:
            self.state.slots[step.slot or ""] = None
            await self.after_answer(step)
            return
        if button is None and self.match(said, ["dont_know"]) is not None:
            await self.dont_know(step)
            return
        result = self.parse(step, said, button)
        if not result.ok:
            if step.expect in ("choice", "yes_no", "rating") and button is None:
                # Not an answer to a closed question: perhaps they want something else.
                target = self.trigger_for(said, self.d._flow_intents)
                if target is not None:
                    await self.interrupt_with(target)
                    return
            self.miss(step, result)
            return
        assert step.slot is not None
        self.state.slots[step.slot] = result.value
        if step.expect == "date":
            self.say("engine.date_confirm", date=result.value)
        await self.after_answer(step)

    async def dont_know(self, step: Step) -> None:
        """ "I don't know" is an honest answer: go where the flow says, skip, or encourage."""
        if step.unknown:
            self.state.slots[step.slot or ""] = None
            self.state.meta["awaiting"] = False
            self.state.meta["misses"] = 0
            await self.go(step.unknown)
        elif step.optional:
            self.state.slots[step.slot or ""] = None
            await self.after_answer(step)
        else:
            self.replies.append(
                Reply(
                    self.t("engine.dont_know", question=self.t(step.ask or "")),
                    self.buttons_for(step),
                )
            )

    async def after_answer(self, step: Step) -> None:
        self.state.meta["awaiting"] = False
        self.state.meta["misses"] = 0
        await self.go(self.next_of(step))

    def miss(self, step: Step, result: _Answer) -> None:
        misses = int(self.state.meta.get("misses", 0)) + 1
        self.state.meta["misses"] = misses
        problem = self.t(result.problem or f"engine.reprompt.{step.expect}", **result.params)
        if misses % MISSES_BEFORE_WAY_OUT == 0:
            self.replies.append(Reply(problem))
            buttons: list[Button] = []
            if step.optional:
                buttons.append(Button(self.t("engine.button.skip"), "skip"))
            buttons.append(Button(self.t("engine.button.menu"), "menu"))
            buttons.append(Button(self.t("engine.button.help"), "help"))
            key = "engine.way_out_optional" if step.optional else "engine.way_out"
            self.say(key, tuple(buttons), question=self.t(step.ask) if step.ask else "")
            return
        self.replies.append(Reply(problem, self.buttons_for(step)))

    def parse(self, step: Step, said: str, button: str | None) -> _Answer:
        if not said:
            return _Answer(False, problem=f"engine.reprompt.{step.expect}")
        match step.expect:
            case "text" | "none":
                if len(said) < step.min_length:
                    return _Answer(False, problem="engine.reprompt.text")
                if len(said) > step.max_length:
                    return _Answer(
                        False, problem="engine.reprompt.text_long", params={"max": step.max_length}
                    )
                return _Answer(True, said)
            case "choice":
                return self.parse_choice(step, said, button)
            case "yes_no":
                yn = parse_yes_no(said)
                return _Answer(yn is not None, yn)
            case "rating":
                low, high = int(step.min or 1), int(step.max or 5)
                rating = parse_rating(said, low, high)
                return _Answer(rating is not None, rating, params={"min": low, "max": high})
            case "number":
                return self.parse_number(step, said)
            case "date":
                return self.parse_date(step, said)
            case "topic":
                found = self.d.vocabulary.find(said, "topic", limit=1)
                if not found:
                    return _Answer(False)
                return _Answer(True, found[0].term.id)
        return _Answer(False)

    def parse_choice(self, step: Step, said: str, button: str | None) -> _Answer:
        choices = self.visible_choices(step)
        for choice in choices:
            if said == choice.value:
                return _Answer(True, choice.value)
        if button is None:
            values = {c.value for c in choices}
            if values & {"yes", "no"}:
                # A choice offering yes/no takes every way of saying it ("yeah", "nope").
                yes_no = parse_yes_no(said)
                if yes_no is not None and ("yes" if yes_no else "no") in values:
                    return _Answer(True, "yes" if yes_no else "no")
            # isdecimal, not isdigit: "①" and "²" are digits that int() refuses; and a
            # Slack message may hold more than the 4300 digits int() reads.
            if said.isdecimal() and len(said) <= 9 and 1 <= int(said) <= len(choices):
                return _Answer(True, choices[int(said) - 1].value)
            wanted = normalize(said)
            best, best_score = None, 0.0
            for choice in choices:
                for text in choice.labels:
                    label = normalize(text)
                    score = max(
                        fuzz.ratio(wanted, label), fuzz.ratio(wanted, normalize(choice.value))
                    )
                    if score > best_score:
                        best, best_score = choice, score
            if best is not None and best_score >= CHOICE_LABEL_SCORE:
                return _Answer(True, best.value)
            if step.read is not None:
                value = self.d.actions.readers[step.read](said)
                if value is not None and any(c.value == value for c in choices):
                    return _Answer(True, value)
        return _Answer(False)

    def parse_number(self, step: Step, said: str) -> _Answer:
        number = parse_number(said, self.locale)
        limits = {"min": step.min, "max": step.max}
        if number is None:
            return _Answer(False, problem="engine.reprompt.number", params=limits)
        if step.integer and number != int(number):
            return _Answer(False, problem="engine.reprompt.whole_number", params=limits)
        too_low = step.min is not None and number < step.min
        too_high = step.max is not None and number > step.max
        if too_low or too_high:
            return _Answer(False, problem="engine.reprompt.number_range", params=limits)
        return _Answer(True, int(number) if number == int(number) else number)

    def parse_date(self, step: Step, said: str) -> _Answer:
        found = parse_date(said, locale=self.locale, tz=self.zone, now=self.now)
        if found is None:
            return _Answer(False, problem="engine.reprompt.date")
        today = self.now.astimezone(self.zone).date()
        if step.future and found <= today:
            return _Answer(False, problem="engine.reprompt.date_past", params={"date": found})
        if step.within_days is not None and found > today + timedelta(days=step.within_days):
            return _Answer(
                False,
                problem="engine.reprompt.date_far",
                params={"date": found, "count": step.within_days},
            )
        return _Answer(True, found.isoformat())

    # -- moving through a flow -----------------------------------------------------------

    def next_of(self, step: Step) -> str:
        for branch in step.branch:
            if all(c.holds(self.state.slots) for c in branch.conditions):
                return branch.goto
        if step.switch:
            return f"flow:{step.switch}"
        return step.next or END

    async def start_flow(self, name: str) -> None:
        flow = self.flow(name)
        suspended = self.state.meta.get("suspended")
        if suspended and suspended.get("flow") == flow.name:
            # Starting it afresh replaces the half-done copy: never offer both.
            self.state.meta.pop("suspended", None)
        self.state.flow = flow.name
        self.state.step = flow.start
        self.state.meta["trail"] = []
        self.state.meta["awaiting"] = False
        self.state.meta["misses"] = 0
        await self.run(flow.start)

    async def go(self, target: str) -> None:
        if target.startswith("flow:"):
            self.state.stack = []
            await self.start_flow(target.removeprefix("flow:"))
        elif target == END:
            await self.end_flow()
        else:
            await self.run(target)

    async def end_flow(self) -> None:
        if self.state.stack:
            frame = self.state.stack.pop()
            self.state.flow = frame["flow"]
            await self.go(frame["step"])
            return
        self.state.flow = self.state.step = None
        self.state.meta["awaiting"] = False
        if self.state.meta.get("suspended"):
            self.offer_resume(welcome_back=False)

    async def run(self, name: str) -> None:
        """Run steps from `name` until one asks a question or the flow ends."""
        self._steps_run += 1
        if self._steps_run > MAX_STEPS_PER_TURN:
            raise DialogFault(f"flow {self.state.flow} loops without asking anything")
        flow = self.flow()
        step = flow.steps.get(name)
        if step is None:
            raise DialogFault(f"flow {flow.name} has no step {name}")
        self.state.step = step.name
        if step.action:
            context = self.context(step.args)
            await self.d.actions.get(step.action)(context)
            self.absorb(context)
            if self.erase:
                return
        for key in step.say:
            self.say(key)
        if step.call:
            self.state.stack.append({"flow": flow.name, "step": step.next or END})
            await self.start_flow(step.call)
            return
        if step.ask:
            self.ask(step)
            return
        await self.go(self.next_of(step))

    def ask(self, step: Step) -> None:
        assert step.ask is not None
        self.state.flow = step.flow
        self.state.step = step.name
        self.state.meta["awaiting"] = True
        trail: list[str] = self.state.meta.setdefault("trail", [])
        if not trail or trail[-1] != step.name:
            trail.append(step.name)
            # Only the recent questions matter for "go back"; keep the state small.
            del trail[:-MAX_TRAIL]
        self.replies.append(Reply(self.t(step.ask), self.buttons_for(step)))

    def visible_choices(self, step: Step) -> list[_Option]:
        """The choices on offer now, with their label in every language (for typed answers)."""
        if step.choices_from:
            raw = self.state.slots.get(step.choices_from) or []
            return [
                _Option(str(item["value"]), str(item["label"]), (str(item["label"]),))
                for item in raw
                if isinstance(item, dict) and "value" in item and "label" in item
            ]
        suspended = bool(self.state.meta.get("suspended"))
        params = self.params()
        return [
            _Option(
                c.value,
                self.t(c.label),
                tuple(self.d.render(c.label, code, params) for code in self.d.catalogs.locales),
            )
            for c in step.choices
            if c.when != "suspended" or suspended
        ]

    def buttons_for(self, step: Step) -> tuple[Button, ...]:
        match step.expect:
            case "choice":
                return tuple(Button(c.label, c.value) for c in self.visible_choices(step))
            case "yes_no":
                return self.yes_no_buttons()
            case "rating":
                low, high = int(step.min or 1), int(step.max or 5)
                return tuple(
                    Button(self.t(f"engine.rating.{n}") if high == 5 else str(n), str(n))
                    for n in range(low, high + 1)
                )
        if step.optional:
            return (Button(self.t("engine.button.skip"), "skip"),)
        return ()


def cap_replies(replies: list[Reply], most: int = MAX_REPLIES) -> list[Reply]:
    """Join the earliest messages without buttons until at most `most` remain."""
    replies = list(replies)
    while len(replies) > most:
        index = next((i for i, r in enumerate(replies[:-1]) if not r.buttons), None)
        if index is None:
            break
        first, second = replies[index], replies[index + 1]
        replies[index : index + 2] = [Reply(f"{first.text}\n\n{second.text}", second.buttons)]
    return replies
