"""How the dispatcher talks to a platform: one `Sender` per channel.

A sender turns one outbox row's payload ({"reply": Reply.to_json(), ...}) into the
platform's call and says how it went. It never touches the database: the
dispatcher records the outcome (sent, retry later, failed, identity unreachable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from aiohttp import web

from bot.store.models import ChannelIdentity

OutcomeKind = Literal["sent", "retry_after", "transient", "permanent"]


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """sent; retry_after (the platform said when: 429 with retry_after / Retry-After);
    transient (network error, 5xx: back off and retry); permanent (the person blocked
    the bot or the chat is gone: mark the identity unreachable, stop sending)."""

    kind: OutcomeKind
    retry_after: float | None = None  # seconds, for retry_after
    reason: str | None = None  # short, no message text or tokens: it is stored and logged

    @classmethod
    def sent(cls) -> SendOutcome:
        return cls("sent")

    @classmethod
    def later(cls, seconds: float, reason: str = "rate limited") -> SendOutcome:
        return cls("retry_after", retry_after=seconds, reason=reason)

    @classmethod
    def transient(cls, reason: str) -> SendOutcome:
        return cls("transient", reason=reason)

    @classmethod
    def permanent(cls, reason: str) -> SendOutcome:
        return cls("permanent", reason=reason)


class Sender(Protocol):
    async def send(self, identity: ChannelIdentity, payload: dict[str, Any]) -> SendOutcome:
        """Deliver one message to `identity`; never raise for a platform's answer."""
        ...


# Where a push channel puts its Sender when it adds its routes, e.g. in
# bot/channels/telegram.py: `app.setdefault(SENDERS, {})["telegram"] = channel.sender`.
# The delivery context (bot/delivery/runner.py) reads it at startup.
SENDERS: web.AppKey[dict[str, Sender]] = web.AppKey("delivery_senders", dict)
