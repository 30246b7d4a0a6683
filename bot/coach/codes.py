"""Join codes: a class or family code typed at any point in any conversation.

A teacher hands out a code such as `KD7QM-4RX2P`; a learner may type it as the
first thing they say, in the middle of a question, after "code" or "código", or
arrive with it through a Telegram deep link (`/start KD7QM4RX2P`). Recognising
one is a pure function (`parse_join_code`); acting on it belongs to the roles
code, which a later issue builds. Until then every code gets a polite "not
recognised" that sends the learner to their teacher, never a telling-off.
"""

from __future__ import annotations

import re

from bot.engine.actions import ActionContext, ActionRegistry

# Crockford-style alphabet without the look-alikes 0/O and 1/I/L, so a code read
# off a whiteboard or a slip of paper can be typed back without guessing.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 10
# Codes are printed in two groups of five (KD7QM-4RX2P), like a licence key.
GROUP = 5

_SYMBOL = "[" + re.escape(ALPHABET) + "]"
# re.ASCII keeps case-folding to A-Z: without it IGNORECASE lets the Kelvin sign
# (U+212A) pass for K and the long s (U+017F) for S.
_CODE = re.compile(
    rf"({_SYMBOL}{{{GROUP}}})[- ]?({_SYMBOL}{{{CODE_LENGTH - GROUP}}})",
    re.IGNORECASE | re.ASCII,
)
# What may come before the code: a word saying it is one, or Telegram's deep-link
# command (with the optional @botname Telegram adds in groups).
_PREFIX = re.compile(
    r"(?:(?:code|c[oó]digo)\s*[:#]?\s*|/start(?:@\w+)?\s+)",
    re.IGNORECASE,
)


def parse_join_code(text: str) -> str | None:
    """The code a message consists of, upper-case without its dash, or None.

    The message must be only the code (surrounding spaces aside), optionally after
    "code", "código" or "/start". A code is ten symbols from `ALPHABET` in any
    case, with at most one dash or space after the fifth, and holds at least one
    digit and one letter: ordinary ten-letter words ("everything") never do.
    """
    text = text.strip()
    prefix = _PREFIX.match(text)
    if prefix is not None:
        text = text[prefix.end() :]
    found = _CODE.fullmatch(text)
    if found is None:
        return None
    code = (found.group(1) + found.group(2)).upper()
    if not any(c.isdigit() for c in code) or not any(c.isalpha() for c in code):
        return None
    return code


def display_code(code: str) -> str:
    """A code as it is printed for people: two groups of five joined by a dash."""
    return f"{code[:GROUP]}-{code[GROUP:]}"


async def handle_code(ctx: ActionContext) -> bool:
    """Answer a message that is a join code; True when it was one.

    The roles issue will look the code up here (a class to join, a learner to
    link to a family member); until then no code is known.
    """
    code = parse_join_code(ctx.said)
    if code is None:
        return False
    ctx.say("codes.not_recognised", code=display_code(code))
    return True


def register(actions: ActionRegistry) -> None:
    """Let join codes be recognised at any step (called from onboarding.register)."""
    actions.intercept(handle_code)
