"""Named Python actions a flow can run: what data alone cannot do.

The coaching domain registers its actions here (bot/coach); the engine only
knows their names, the slots they promise to set, and how to call them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.engine.messages import Reply
from bot.engine.topics import Vocabulary
from bot.store.models import Person


@dataclass(slots=True)
class ActionContext:
    """What an action may read and change during one turn (all in the turn's transaction)."""

    session: AsyncSession
    person: Person
    slots: dict[str, Any]
    args: Mapping[str, Any]
    now: datetime
    render: Callable[[str, Mapping[str, Any]], str]
    # What the person said this turn (text, or a button's value): a flow started by
    # "I want to get better at fractions" can use the words that started it.
    said: str = ""
    replies: list[Reply] = field(default_factory=list)
    # Set by /forget's action: the turn erases the person instead of saving the turn.
    erase: bool = False
    # The tag vocabulary from COACH_CONTENT_DIR (topics and interests in learner text).
    vocabulary: Vocabulary | None = None
    # What the coaching domain hands its actions beyond the engine's own (the resource
    # library, say), by name; the engine passes it through without looking inside.
    extras: Mapping[str, Any] = field(default_factory=dict)
    # The channel this message came from ("telegram", "slack", "web", "api", ...).
    channel: str = ""
    # Set by an interceptor whose replies stand on their own (thanks for a 👍): with
    # nothing in progress the engine adds no menu after them; a question in progress
    # is still asked again.
    quiet: bool = False
    # Set by an interceptor that changed who the person is (an access code made them a
    # teacher or a family member): the flow in progress was someone else's, so the
    # engine drops it and starts the entry flow afresh.
    restart: bool = False
    # Set by an interceptor whose replies must stand alone (the safety screen's care
    # and crisis contacts): the flow in progress is put aside without asking anything
    # more, and offered back on the person's next message.
    pause_flow: bool = False

    @property
    def locale(self) -> str:
        return self.person.locale

    def say(self, key: str, **params: Any) -> None:
        """Add a message from the catalog, in the person's language."""
        self.replies.append(Reply(self.render(key, params)))


Action = Callable[[ActionContext], Awaitable[None]]
# Runs on every message before intents and answers; returns True when it handled the
# message (a join code, for instance) and added its replies to the context.
Interceptor = Callable[[ActionContext], Awaitable[bool]]
# Reads a typed answer to a choice question that no label matched ("love it" for 👍):
# the text → one of the question's choice values, or None.
Reader = Callable[[str], str | None]


class ActionRegistry:
    """name → action, with the slots each action sets (so `dialogs check` knows them)."""

    def __init__(self) -> None:
        self._actions: dict[str, Action] = {}
        self._sets: dict[str, tuple[str, ...]] = {}
        self.interceptors: list[Interceptor] = []
        self.readers: dict[str, Reader] = {}

    def intercept(self, fn: Interceptor) -> Interceptor:
        """Register a hook that sees every message first (see `Interceptor`)."""
        self.interceptors.append(fn)
        return fn

    def reader(self, name: str) -> Callable[[Reader], Reader]:
        """Register a reader a choice step names in `read:` (see `Reader`)."""

        def decorate(fn: Reader) -> Reader:
            if name in self.readers:
                raise ValueError(f"reader {name!r} registered twice")
            self.readers[name] = fn
            return fn

        return decorate

    def register(self, name: str, sets: Collection[str] = ()) -> Callable[[Action], Action]:
        def decorate(fn: Action) -> Action:
            if name in self._actions:
                raise ValueError(f"action {name!r} registered twice")
            self._actions[name] = fn
            self._sets[name] = tuple(sets)
            return fn

        return decorate

    def get(self, name: str) -> Action:
        return self._actions[name]

    def names(self) -> set[str]:
        return set(self._actions)

    def slots(self) -> Mapping[str, tuple[str, ...]]:
        return dict(self._sets)
