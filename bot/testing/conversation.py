"""Conversation tests that read like the chat, one line per turn.

    chat = Chat(services.turns, "maria")
    await chat.script('''
        > hi
        < I'm Coach
        > [warmup]                  # press the button whose value is "warmup"
        < What should I call you?
        = text profile.name         # what the conversation expects next
        > Maria
        <! didn't                   # no reply contains this
    ''')

`<` checks that some reply of the last turn contains the words (case-insensitive);
`=` checks the expected input type and slot; `#` starts a comment.
"""

from __future__ import annotations

import itertools
import textwrap
from dataclasses import dataclass, field

from bot.engine.messages import Inbound, TurnResult
from bot.engine.turns import TurnService

_ids = itertools.count(1)


@dataclass
class Chat:
    """One person talking to the coach through the real turn service (and database)."""

    turns: TurnService
    user: str = "learner"
    channel: str = "web"
    transcript: list[str] = field(default_factory=list)
    last: TurnResult = field(default_factory=TurnResult)

    async def send(self, text: str, *, message_id: str | None = None) -> TurnResult:
        return await self._turn(text=text, message_id=message_id)

    async def press(self, value: str, *, message_id: str | None = None) -> TurnResult:
        return await self._turn(button=value, message_id=message_id)

    async def _turn(
        self, *, text: str | None = None, button: str | None = None, message_id: str | None
    ) -> TurnResult:
        inbound = Inbound(
            channel=self.channel,
            external_id=self.user,
            message_id=message_id or f"t{next(_ids)}",
            text=text,
            button=button,
        )
        self.transcript.append(f"> {text}" if button is None else f"> [{button}]")
        self.last = await self.turns.handle(inbound)
        for reply in self.last.replies:
            buttons = " ".join(f"[{b.value}]" for b in reply.buttons)
            self.transcript.append(f"< {reply.text}" + (f"   {buttons}" if buttons else ""))
        self.transcript.append(f"= {self.last.expect.type} {self.last.expect.slot}")
        return self.last

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.last.replies]

    @property
    def buttons(self) -> list[str]:
        return [b.value for r in self.last.replies for b in r.buttons]

    def _fail(self, message: str) -> AssertionError:
        return AssertionError(message + "\n--- transcript ---\n" + "\n".join(self.transcript))

    def expect_reply(self, words: str) -> None:
        wanted = words.lower()
        if not any(wanted in text.lower() for text in self.texts):
            raise self._fail(f"no reply contains {words!r}")

    def expect_no_reply(self, words: str) -> None:
        wanted = words.lower()
        if any(wanted in text.lower() for text in self.texts):
            raise self._fail(f"a reply contains {words!r}")

    def expect_input(self, kind: str, slot: str | None = None) -> None:
        got = self.last.expect
        if got.type != kind or (slot is not None and got.slot != slot):
            raise self._fail(f"expected input {kind} {slot}, got {got.type} {got.slot}")

    async def script(self, text: str) -> None:
        for raw in textwrap.dedent(text).splitlines():
            line = raw.split("  #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("> [") and line.endswith("]"):
                await self.press(line[3:-1])
            elif line.startswith("> "):
                await self.send(line[2:])
            elif line.startswith("<! "):
                self.expect_no_reply(line[3:])
            elif line.startswith("< "):
                self.expect_reply(line[2:])
            elif line.startswith("= "):
                parts = line[2:].split()
                self.expect_input(parts[0], parts[1] if len(parts) > 1 else None)
            else:
                raise ValueError(f"cannot read script line {raw!r}")
