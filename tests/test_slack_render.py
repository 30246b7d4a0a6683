"""How a reply looks in Slack (Block Kit within Slack's limits, escaped) and how what a
person typed in Slack reads to the coach; checked against the fake's Block Kit rules."""

from __future__ import annotations

import json

import pytest

from bot.channels.slack import (
    MAX_BLOCKS,
    MAX_SECTION,
    command_text,
    escape,
    plain_text,
    render,
    split_escaped,
)
from bot.engine.messages import Attachment, Button, Reply
from tests.fakes.slack import _check_blocks


def test_a_short_reply_is_one_section_with_its_fallback() -> None:
    [message] = render(Reply("Hi <b>Bo</b> & co", (Button("Yes", "yes"), Button("No", "no"))))
    assert message.text == "Hi &lt;b&gt;Bo&lt;/b&gt; &amp; co"
    section, actions = message.blocks
    assert section["text"] == {
        "type": "mrkdwn",
        "text": "Hi &lt;b&gt;Bo&lt;/b&gt; &amp; co",
        "verbatim": True,
    }
    assert [e["value"] for e in actions["elements"]] == ["yes", "no"]
    assert [e["text"]["type"] for e in actions["elements"]] == ["plain_text"] * 2
    assert len({e["action_id"] for e in actions["elements"]}) == 2
    _check_blocks(message.blocks)


def test_long_text_splits_into_sections_within_the_limit_after_escaping() -> None:
    text = "\n\n".join(f"Step {i}: " + "a<b " * 700 for i in range(5))
    pieces = split_escaped(text)
    assert len(pieces) > 5
    assert all(len(piece) <= MAX_SECTION for piece in pieces)
    assert all("&" not in piece.replace("&lt;", "") for piece in pieces)  # no escape cut
    assert sum(piece.count("a&lt;b") for piece in pieces) == 5 * 700
    for message in render(Reply(text)):
        _check_blocks(message.blocks)
        assert len(message.text) <= 4000


def test_a_huge_reply_becomes_several_messages_with_buttons_on_the_last() -> None:
    text = "\n\n".join("word " * 590 for _ in range(120))  # ~120 sections
    messages = render(Reply(text, (Button("Done", "done"),)))
    assert len(messages) >= 3
    assert all(len(m.blocks) <= MAX_BLOCKS for m in messages)
    assert [any(b["type"] == "actions" for b in m.blocks) for m in messages][-1]
    assert not any(b["type"] == "actions" for m in messages[:-1] for b in m.blocks)


def test_many_or_long_buttons_fit_slacks_rules() -> None:
    buttons = tuple(Button(f"Choice {i} " + "x" * 100, f"v{i}") for i in range(30))
    [message] = render(Reply("Pick one", buttons))
    actions = [b for b in message.blocks if b["type"] == "actions"]
    assert [len(a["elements"]) for a in actions] == [25, 5]
    assert all(len(e["text"]["text"]) <= 75 for a in actions for e in a["elements"])
    assert len({e["action_id"] for a in actions for e in a["elements"]}) == 30
    _check_blocks(message.blocks)


def test_the_data_export_is_shown_as_code() -> None:
    export = json.dumps({"name": "Ana <3", "notes": "x" * 5000})
    messages = render(Reply("Here's everything.", attachment=Attachment("d.json", "a/j", export)))
    sections = [b["text"]["text"] for m in messages for b in m.blocks]
    assert sections[0] == "Here's everything."
    assert sections[1] == "d.json"
    assert all(s.startswith("```\n") and s.endswith("\n```") for s in sections[2:])
    assert "Ana &lt;3" in sections[2]
    assert all(len(s) <= MAX_SECTION for s in sections)


@pytest.mark.parametrize(
    ("typed", "heard"),
    [
        ("I &lt;3 maths &amp; art", "I <3 maths & art"),
        ("ask <@U0FRIEND1>", "ask @U0FRIEND1"),
        ("ask <@U0FRIEND1|zoe>", "ask @zoe"),
        ("in <#C0CLASS01|class-7b>", "in #class-7b"),
        ("<!here> look", "@here look"),
        ("see <https://example.org>", "see https://example.org"),
        ("see <https://example.org|the site>", "see the site"),
        ("literal &amp;lt;", "literal &lt;"),
    ],
)
def test_slack_encoding_is_read_back_as_typed(typed: str, heard: str) -> None:
    assert plain_text(typed) == heard


def test_escaping_leaves_no_markup_for_slack() -> None:
    for hostile in ("<!channel>", "<@U123>", "<https://evil|click>", "&amp;", "<!here>"):
        escaped = escape(hostile)
        assert "<" not in escaped
        assert ">" not in escaped
    assert escape("&amp;") == "&amp;amp;"


@pytest.mark.parametrize(
    ("said", "text"),
    [
        ("digest 6B", "/digest 6B"),
        ("Roster  7B Maths", "/roster 7B Maths"),
        ("classes", "/classes"),
        ("familycode Sam", "/familycode Sam"),
        ("ack 12", "/ack 12"),
        ("help", "/help"),
        ("", "/help"),
        ("link", "/link"),
        ("I want a goal", "I want a goal"),
    ],
)
def test_coach_subcommands_become_chat_commands(said: str, text: str) -> None:
    assert command_text(said) == text
