"""The web chat's HTTP side: the page, the signed cookie, and the two JSON routes.

Each test talks to the real application (SQLite, and PostgreSQL when configured)
through aiohttp's test client, whose cookie jar plays the learner's browser.
"""

from __future__ import annotations

import json
from http.cookies import SimpleCookie
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from bot.channels.web import COOKIE

Client = TestClient[Any, Any]


async def say(client: Client, **body: Any) -> dict[str, Any]:
    """Post one message as the browser would; return the JSON reply (must be 200)."""
    response = await client.post("/chat/messages", json=body)
    assert response.status == 200, await response.text()
    data: dict[str, Any] = await response.json()
    return data


def texts(data: dict[str, Any]) -> str:
    """Every reply's text, one per line: what the learner reads."""
    return "\n".join(reply["text"] for reply in data["replies"])


async def history(client: Client) -> dict[str, Any]:
    response = await client.get("/chat/history")
    assert response.status == 200
    data: dict[str, Any] = await response.json()
    return data


def cookie_of(client: Client) -> str:
    """The coach_web cookie the client's jar holds now."""
    values = [c.value for c in client.session.cookie_jar if c.key == COOKIE]
    assert len(values) == 1, values
    return values[0]


def use_cookie(client: Client, value: str | None) -> None:
    """Make the client a different browser: an empty jar, or one holding `value`."""
    jar = client.session.cookie_jar
    jar.clear()
    if value is not None:
        jar.update_cookies({COOKIE: value}, response_url=URL(str(client.make_url("/"))))


def set_cookie_header(response: Any) -> SimpleCookie:
    headers = response.headers.getall("Set-Cookie", [])
    assert len(headers) == 1, headers
    parsed = SimpleCookie()
    parsed.load(headers[0])
    assert COOKIE in parsed
    return parsed


async def test_the_page_is_served_with_its_script_and_styles(client: Client) -> None:
    page = await client.get("/")
    assert page.status == 200
    assert page.content_type == "text/html"
    html = await page.text()
    assert "<title>Coach</title>" in html
    assert 'name="viewport"' in html
    assert 'aria-live="polite"' in html
    assert 'maxlength="4096"' in html
    for asset, kind in (("/static/app.js", "javascript"), ("/static/style.css", "text/css")):
        assert asset in html
        response = await client.get(asset)
        assert response.status == 200, asset
        assert kind in response.content_type
        assert len(await response.read()) > 500


async def test_the_page_loads_nothing_from_elsewhere(client: Client) -> None:
    # No CDN, font or analytics: a school's learners' chats stay on its own server.
    for path in ("/", "/static/app.js", "/static/style.css"):
        body = await (await client.get(path)).text()
        assert "http://" not in body, path
        assert "https://" not in body, path


async def test_first_visit_sets_a_signed_httponly_strict_cookie(client: Client) -> None:
    response = await client.get("/chat/history")
    assert response.status == 200
    assert await response.json() == {"messages": [], "expect": {"type": "none", "slot": None}}
    morsel = set_cookie_header(response)[COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Strict"
    assert morsel["path"] == "/"
    assert int(morsel["max-age"]) > 300 * 24 * 3600  # kept across a school year
    assert not morsel["secure"]  # plain http in the test; https would mark it Secure
    user, _, signature = morsel.value.rpartition(".")
    assert user.startswith("w-")
    assert signature

    # The next visit presents it, so no new cookie is issued.
    again = await client.get("/chat/history")
    assert "Set-Cookie" not in again.headers


async def test_a_conversation_round_trips_and_shows_in_history(client: Client) -> None:
    await history(client)  # the page's first request, which issues the cookie

    greeting = await say(client, text="hi", message_id="m1")
    assert "I'm Coach" in texts(greeting)
    assert "What should I call you?" in texts(greeting)
    assert greeting["expect"] == {"type": "text", "slot": "onboarding.name"}

    named = await say(client, text="Maria", message_id="m3")
    assert "Nice to meet you, Maria!" in texts(named)
    assert named["expect"] == {"type": "choice", "slot": "onboarding.locale"}
    assert [b["value"] for b in named["replies"][-1]["buttons"]] == ["en", "es"]

    shown = await history(client)
    learner = [m["text"] for m in shown["messages"] if m["direction"] == "in"]
    coach = "\n".join(m["text"] for m in shown["messages"] if m["direction"] == "out")
    assert learner[0] == "hi"
    assert learner[-1] == "Maria"
    assert "I'm Coach" in coach
    assert "What should I call you?" in coach
    assert "Nice to meet you, Maria!" in coach
    # The language question still offers its buttons after a reload.
    assert shown["messages"][-1]["direction"] == "out"
    assert [b["value"] for b in shown["messages"][-1]["buttons"]] == ["en", "es"]
    assert shown["expect"] == named["expect"]


async def test_a_first_message_without_a_cookie_gets_one(client: Client) -> None:
    response = await client.post("/chat/messages", json={"text": "hi"})
    assert response.status == 200
    assert "I'm Coach" in texts(await response.json())
    set_cookie_header(response)
    assert any(m["text"] == "hi" for m in (await history(client))["messages"])


async def test_a_retried_message_is_answered_once(client: Client) -> None:
    # The page resends a message with the same id after a network failure.
    await say(client, text="hi", message_id="first")
    first = await say(client, text="Maria", message_id="retry-me")
    second = await say(client, text="Maria", message_id="retry-me")
    assert second == first
    shown = await history(client)
    greeted = [m for m in shown["messages"] if m["text"] == "Nice to meet you, Maria!"]
    assert len(greeted) == 1


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda user, sig: f"{user}x.{sig}", id="changed-user"),
        pytest.param(lambda user, sig: f"{user}.{sig[:-2]}AA", id="changed-signature"),
        pytest.param(lambda user, sig: f"{user}.", id="no-signature"),
        pytest.param(lambda user, sig: user, id="bare-user-id"),
        pytest.param(lambda user, sig: "w-0000.forged", id="made-up"),
    ],
)
async def test_a_forged_cookie_gets_a_new_identity(client: Client, tamper: Any) -> None:
    await history(client)
    await say(client, text="hi")
    await say(client, text="Maria")
    original = cookie_of(client)
    user, _, signature = original.rpartition(".")

    use_cookie(client, tamper(user, signature))
    response = await client.get("/chat/history")
    assert await response.json() == {"messages": [], "expect": {"type": "none", "slot": None}}
    fresh = set_cookie_header(response)[COOKIE].value
    assert fresh != original
    assert fresh.rpartition(".")[0] != user

    # The newcomer starts their own conversation: greeted, not addressed as Maria.
    greeting = await say(client, text="hi")
    assert "I'm Coach" in texts(greeting)
    assert "Maria" not in json.dumps(await history(client))

    # And the first learner's chat is still theirs, untouched.
    use_cookie(client, original)
    assert "Nice to meet you, Maria!" in json.dumps(await history(client))


async def test_two_browsers_do_not_see_each_other(client: Client) -> None:
    await history(client)
    await say(client, text="hi")
    await say(client, text="Ana")
    use_cookie(client, None)
    assert (await history(client))["messages"] == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param("text=hi", "application/x-www-form-urlencoded", id="form"),
        pytest.param('{"text": "hi"}', "text/plain", id="text-plain"),
        pytest.param('{"text": "hi"}', None, id="no-content-type"),
    ],
)
async def test_only_json_is_accepted(client: Client, body: str, content_type: str | None) -> None:
    # A cross-site form can send the first two, never application/json.
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/chat/messages", data=body.encode(), headers=headers)
    assert response.status == 415
    assert (await response.json())["error"]["code"] == "unsupported_media_type"
    assert (await history(client))["messages"] == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        pytest.param({}, "exactly one of 'text' or 'button'", id="empty"),
        pytest.param({"text": "hi", "button": "en"}, "exactly one", id="both"),
        pytest.param({"text": ""}, "text", id="empty-text"),
        pytest.param({"text": 5}, "text", id="number"),
        pytest.param({"text": None}, "exactly one", id="null"),
        pytest.param({"text": "x" * 4097}, "text", id="too-long"),
        pytest.param({"button": "b" * 129}, "button", id="long-button"),
        pytest.param({"text": "hi", "message_id": "m" * 129}, "message_id", id="long-id"),
        pytest.param({"text": "hi", "user": "someone-else"}, "unknown field", id="extra"),
        pytest.param({"text": "\ud800"}, "text", id="lone-surrogate"),
        pytest.param(["hi"], "JSON object", id="array"),
        pytest.param("hi", "JSON object", id="string"),
    ],
)
async def test_bad_bodies_get_a_422_that_says_why(client: Client, body: Any, says: str) -> None:
    response = await client.post(
        "/chat/messages",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "invalid_request"
    assert says in error["message"]
    assert (await history(client))["messages"] == []


async def test_text_of_exactly_4096_characters_is_accepted(client: Client) -> None:
    await say(client, text="hi")
    response = await client.post("/chat/messages", json={"text": "a" * 4096})
    assert response.status == 200
    assert (await response.json())["replies"]


async def test_broken_json_gets_a_400_json_error(client: Client) -> None:
    response = await client.post(
        "/chat/messages", data=b'{"text": "hi"', headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_json"


async def test_wrong_methods_and_paths_answer_in_json(client: Client) -> None:
    response = await client.get("/chat/messages")
    assert response.status == 405
    assert (await response.json())["error"]["code"] == "method_not_allowed"
    missing = await client.get("/chat/nothing")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"


async def test_a_missing_static_file_answers_in_json(client: Client) -> None:
    missing = await client.get("/static/nothing-here.js")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"
