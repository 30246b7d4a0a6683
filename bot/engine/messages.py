"""Channel-neutral values that cross the engine's boundary.

Channels turn their platform's requests into an `Inbound` and render each `Reply`
of a `TurnResult`; the engine never sees Telegram, Slack or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ExpectType = Literal["text", "choice", "yes_no", "rating", "number", "date", "topic", "none"]
EXPECT_TYPES: tuple[str, ...] = (
    "text",
    "choice",
    "yes_no",
    "rating",
    "number",
    "date",
    "topic",
    "none",
)


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message from a person: free text, or the value of a button they pressed."""

    channel: str
    external_id: str
    message_id: str
    text: str | None = None
    button: str | None = None
    # Which transport carried it (web, api, console): recorded in the message log.
    via: str | None = None
    display_name: str | None = None

    @property
    def content(self) -> str:
        return self.button if self.button is not None else (self.text or "")


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    value: str

    def to_json(self) -> dict[str, str]:
        return {"label": self.label, "value": self.value}


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a message (/mydata's export): a Telegram document, a web download."""

    filename: str
    media_type: str
    content: str

    def to_json(self) -> dict[str, str]:
        return {"filename": self.filename, "media_type": self.media_type, "content": self.content}


@dataclass(frozen=True, slots=True)
class Reply:
    """One message to show; buttons are optional, free text is always accepted too."""

    text: str
    buttons: tuple[Button, ...] = ()
    attachment: Attachment | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "text": self.text,
            "buttons": [b.to_json() for b in self.buttons],
        }
        if self.attachment is not None:
            data["attachment"] = self.attachment.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        attachment = data.get("attachment")
        return cls(
            text=str(data["text"]),
            buttons=tuple(Button(str(b["label"]), str(b["value"])) for b in data["buttons"]),
            attachment=Attachment(**attachment) if attachment else None,
        )


@dataclass(frozen=True, slots=True)
class Expect:
    """What input the conversation waits for next, and the slot it will fill."""

    type: ExpectType = "none"
    slot: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "slot": self.slot}


@dataclass(slots=True)
class TurnResult:
    """What one turn produced: replies in order and what is expected next."""

    replies: list[Reply] = field(default_factory=list)
    expect: Expect = field(default_factory=Expect)
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "replies": [r.to_json() for r in self.replies],
            "expect": self.expect.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, duplicate: bool = False) -> TurnResult:
        exp = data.get("expect") or {}
        return cls(
            replies=[Reply.from_json(r) for r in data.get("replies", [])],
            expect=Expect(type=exp.get("type", "none"), slot=exp.get("slot")),
            duplicate=duplicate,
        )
