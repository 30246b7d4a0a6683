"""`coach chat`: the same engine in a terminal, buttons as numbered choices.

The console talks as a web-channel user, so a chat begun here shows in
GET /api/v1/users/<user>/export and continues in the API.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from bot.channels.api import WEB_CHANNEL
from bot.engine.messages import Attachment, Button, Inbound, TurnResult
from bot.engine.turns import TurnService

QUIT_WORDS = {"/quit", "/exit"}


def render(result: TurnResult, out: TextIO) -> list[Button]:
    """Print the replies; return the buttons of the last reply that had any, numbered."""
    buttons: list[Button] = []
    for reply in result.replies:
        out.write(f"coach> {reply.text}\n")
        if reply.attachment is not None:
            saved = save_attachment(reply.attachment)
            out.write(f"       (file saved: {saved})\n")
        if reply.buttons:
            buttons = list(reply.buttons)
            choices = "   ".join(f"[{n}] {b.label}" for n, b in enumerate(buttons, start=1))
            out.write(f"       {choices}\n")
    out.flush()
    return buttons


def save_attachment(attachment: Attachment, folder: Path | None = None) -> Path:
    """Write a file the coach sent into the current folder, never over an existing one."""
    folder = folder or Path.cwd()
    name = Path(attachment.filename).name or "coach-file"
    target = folder / name
    stem, suffix = target.stem, target.suffix
    n = 1
    while target.exists():
        target = folder / f"{stem}-{n}{suffix}"
        n += 1
    target.write_text(attachment.content, encoding="utf-8")
    return target


def to_inbound(user: str, line: str, buttons: list[Button]) -> Inbound:
    """A bare number picks that button; anything else is text."""
    message_id = f"console:{uuid.uuid4().hex}"
    # isdecimal, not isdigit: int() refuses "①"; and it refuses past 4300 digits.
    if line.isdecimal() and len(line) <= 9 and 1 <= int(line) <= len(buttons):
        return Inbound(
            WEB_CHANNEL, user, message_id, button=buttons[int(line) - 1].value, via="console"
        )
    return Inbound(WEB_CHANNEL, user, message_id, text=line, via="console")


async def chat(
    turns: TurnService,
    user: str,
    *,
    read_line: Callable[[], str] | None = None,
    out: TextIO = sys.stdout,
) -> None:
    """Run until end of input or /quit."""
    read = read_line or (lambda: sys.stdin.readline())
    out.write(f"Chatting as {user!r}. Type /quit to leave; a number picks a button.\n")
    history = await turns.history(WEB_CHANNEL, user, limit=6)
    buttons: list[Button] = []
    if history["messages"]:
        out.write("(the last few messages)\n")
        for message in history["messages"]:
            who = "you" if message["direction"] == "in" else "coach"
            out.write(f"{who}> {message['text']}\n")
            if message["direction"] == "out":
                buttons = [Button(b["label"], b["value"]) for b in message["buttons"]] or buttons
    else:
        buttons = render(await turns.handle(to_inbound(user, "hi", [])), out)
    while True:
        out.write("you> ")
        out.flush()
        line = await asyncio.to_thread(read)
        if not line:  # end of input
            out.write("\n")
            return
        line = line.strip()
        if not line:
            continue
        if line.lower() in QUIT_WORDS:
            return
        buttons = render(await turns.handle(to_inbound(user, line, buttons)), out) or buttons
