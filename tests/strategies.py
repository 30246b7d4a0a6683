"""Hypothesis strategies for what the outside world may send the coach.

Shared by tests/test_properties_api.py (HTTP bodies) and
tests/test_properties_engine.py (turns below HTTP). The alphabet leans on what
breaks chat software in practice: control characters, bidirectional and other
format (Cf) characters, zero-width joiner emoji sequences, combining marks,
lone surrogates, and the template syntax of our own catalogs.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from hypothesis import strategies as st

from bot.engine.flows import FlowSet, load_flows
from bot.paths import shipped

# Characters that have broken chat services: each is here for a reason.
TRICKY = (
    "\x00",  # PostgreSQL text cannot hold NUL
    "\x07",
    "\x1b[31m",  # a terminal escape
    "\x7f",
    "\t",
    "\r\n",
    "\u0085",  # NEL: a line break to some splitters, not to others
    "\u2028",  # LINE SEPARATOR: breaks JavaScript string literals
    "\u2029",
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE (Cf)
    "\u200f",  # RIGHT-TO-LEFT MARK (Cf)
    "\u200e",
    "\u2066",  # LEFT-TO-RIGHT ISOLATE ... POP DIRECTIONAL ISOLATE
    "\u2069",
    "\u200b",  # ZERO WIDTH SPACE
    "\u200d",  # ZERO WIDTH JOINER alone
    "\ufeff",  # a byte order mark mid-text
    "\u00ad",  # SOFT HYPHEN
    "\u0301",  # a combining acute accent with nothing to combine with
    "e\u0301\u0302\u0303\u0304\u0305",  # a stack of combining marks
    "\ufe0f",  # VARIATION SELECTOR-16 alone
    "\ufffd",
    "\uffff",  # a noncharacter
    "\U0010ffff",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",  # family: ZWJ sequence
    "\U0001f3f3\ufe0f\u200d\U0001f308",  # rainbow flag
    "\U0001f44d\U0001f3fd",  # thumbs up, skin tone
    "\U0001f1ea\U0001f1f8",  # a regional-indicator flag
    "4\ufe0f\u20e3",  # keycap 4
    "\u0645\u0631\u062d\u0628\u0627",  # Arabic (RTL)
    "\u05e9\u05dc\u05d5\u05dd",  # Hebrew (RTL)
    "\u202eevil\u202c",
    "{name}",  # our own template syntax, typed by a person
    "{",
    "}",
    "{0}",
    "%s",
    "\\",
    '"',
    "<script>alert(1)</script>",
    "&amp;",
    "*bold* _it_ `code`",
    "\u0130",  # İ: lowercases to two code points
    "\u00df",  # ß: uppercases to two
    "\ufb03",  # the ffi ligature: NFKD turns one character into three
    "\u2460",  # circled digit one: a digit to NFKD, not to int()
    "\u0663",  # Arabic-Indic digit three: int() reads it
    "\u1369",  # Ethiopic digit one: isdigit() says yes, int() and NFKD say no
    "\u00b2",  # superscript two: the same
    "\uff11\uff12",  # fullwidth digits
)

# Lone surrogates: not Unicode at all; JSON can still spell them (\ud800).
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)

# Any Unicode scalar value (st.characters() leaves out surrogates), controls included.
_CHARS = st.characters(codec=None, exclude_categories=["Cs"])


_PIECES = st.one_of(st.text(_CHARS, min_size=1, max_size=12), st.sampled_from(TRICKY))

# Valid Unicode text of any kind: plain st.text(), interleaved with the tricky pieces.
texts = st.lists(_PIECES, max_size=8).map("".join)
# The same, sometimes with lone surrogates in it.
texts_or_surrogates = st.lists(st.one_of(_PIECES, _PIECES, SURROGATES), max_size=8).map("".join)


def short_texts(most: int) -> st.SearchStrategy[str]:
    """Non-empty text of at most `most` characters (cut anywhere: mid-emoji too)."""
    return st.lists(_PIECES, min_size=1, max_size=8).map(lambda pieces: "".join(pieces)[:most])


COMMANDS = (
    "/start",
    "/goal",
    "/goals",
    "/checkin",
    "/interests",
    "/resources",
    "/settings",
    "/forget",
    "/mydata",
    "/privacy",
    "/next",
    "/menu",
    "/help",
    "/warmup",
    "/stop",
    "/link",
    "/here",
    "/links",
    "/digest",
    "/roster",
    "/newclass",
    "/ack",
    "/alerts",
    "/familycode",
    "/nonsense",
    "/",
    "/goal extra words",
    "/GOAL",
    "menu",
    "help",
    "start over",
    "go back",
    "back",
    "cancel",
    "pause",
    "resume",
    "skip",
    "I don't know",
    "no sé",
    "español",
    "english",
    "yes",
    "no",
    "maybe",
    "hi",
    "hola",
    "stop",
    "next friday",
    "tomorrow",
    "in 3 weeks",
    "yesterday",
    "31/12/2026",
    "2026-02-30",
    "el viernes",
    "mañana",
    "3",
    "0",
    "-1",
    "1e308",
    "3,5",
    "٣",
    "💯",
    "👍",
    "😡",
    "⭐⭐⭐",
    "Math",
    "learn to code",
    "I feel sad",
)


@cache
def shipped_flows() -> FlowSet:
    """The shipped flows (the API tests' server loads the same folder)."""
    return load_flows(shipped("dialogs") / "flows")


def known_button_values() -> tuple[str, ...]:
    """Every button value the shipped flows may offer, and the engine's own."""
    flows = shipped_flows()
    values = {"yes", "no", "skip", "menu", "help", "resume", "1", "2", "3", "4", "5"}
    values.update(flows.flows)
    for flow in flows.flows.values():
        for step in flow.steps.values():
            values.update(choice.value for choice in step.choices)
    return tuple(sorted(values))


# What a button press may carry: a real value (offered or not), or anything at all.
button_values = st.one_of(
    st.sampled_from(known_button_values()),
    short_texts(128),
    st.sampled_from(("\x00", "\x00yes", "yes\x07", "  ", "\u202eyes", "YES", "Yes", "x" * 128)),
)

# What a learner may type: commands and answers the flows know, numbers, dates, anything.
inputs = st.one_of(
    st.sampled_from(COMMANDS),
    texts,
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)

# Any JSON value: what json.loads can return (NaN and Infinity included, which
# Python's json reads and writes).
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(_CHARS, max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(_CHARS, max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _field(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's value: mostly right, sometimes any JSON value at all."""
    return st.one_of(good, good, good, json_values)


users = st.one_of(
    st.sampled_from(("ana", "ben", "  carla", "\u202edave", "e\u0301va", "x" * 128)),
    short_texts(128),
)
message_ids = st.one_of(
    st.sampled_from(("m-1", "m-2", "1")),
    st.text(_CHARS, min_size=1, max_size=8),
    st.just("m" * 129),
)


def message_fields(*, with_user: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts that mix the real fields (right and wrong types) with extra keys."""
    optional: dict[str, st.SearchStrategy[Any]] = {
        "text": _field(st.one_of(st.sampled_from(COMMANDS), texts_or_surrogates)),
        "button": _field(button_values),
        "message_id": _field(message_ids),
    }
    if with_user:
        optional["user"] = _field(users)
    real = st.fixed_dictionaries({}, optional=optional)
    extra = st.dictionaries(st.text(_CHARS, max_size=8), json_values, max_size=2)
    return st.one_of(real, st.builds(lambda fields, more: {**more, **fields}, real, extra))


def valid_messages(*, with_user: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies the README says are fine: text or a button, perhaps a message id."""
    content = st.one_of(
        st.fixed_dictionaries({"text": st.one_of(st.sampled_from(COMMANDS), short_texts(4096))}),
        st.fixed_dictionaries({"button": button_values}),
    )
    fields = {"user": users} if with_user else {}
    return st.builds(
        lambda base, more: {**base, **more},
        st.fixed_dictionaries(fields, optional={"message_id": message_ids}),
        content,
    )


api_bodies = st.one_of(valid_messages(with_user=True), message_fields(with_user=True))
web_bodies = st.one_of(valid_messages(with_user=False), message_fields(with_user=False))


def encode(value: Any, *, ascii_only: bool) -> bytes:
    """JSON bytes for a value. ascii_only escapes every non-ASCII character (\\ud800 for
    a lone surrogate); otherwise the text goes raw, and a lone surrogate becomes bytes
    that are not UTF-8 at all."""
    if ascii_only:
        return json.dumps(value, ensure_ascii=True).encode("ascii")
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
