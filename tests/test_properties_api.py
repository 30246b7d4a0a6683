"""Property tests on the HTTP API and the web chat: whatever arrives, the answer is a
2xx or a JSON 4xx (README, "The HTTP API"), never a 500, and every accepted message
leaves the conversation somewhere the flows can go on from.

Each @given test runs its examples against one app (the `client` fixture, on SQLite
and, with COACH_TEST_DATABASE_URL, on PostgreSQL): pytest-asyncio runs an async
Hypothesis test's examples in the test's event loop, so the fixture is shared by
every example (hence the function_scoped_fixture health check is off) and the
learners' conversations carry on from one example to the next, as they would on a
real server. Examples are derandomized and no example database is kept: CI sees the
same inputs on every run.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from yarl import URL

from bot.app import MAX_BODY
from bot.channels.api import MAX_ID, MAX_TEXT
from bot.channels.textcheck import clean_text
from bot.engine.flows import END, FlowSet
from bot.engine.messages import EXPECT_TYPES
from bot.services import Services
from tests.strategies import (
    api_bodies,
    button_values,
    encode,
    json_values,
    short_texts,
    texts,
    texts_or_surrogates,
    users,
    web_bodies,
)

Client = TestClient[Any, Any]

PROPERTY = settings(
    max_examples=75,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON = {"Content-Type": "application/json"}
API = "/api/v1/messages"
WEB = "/chat/messages"
# README, "The HTTP API": each 4xx status and the codes it may carry.
ERROR_CODES = {
    400: {"invalid_json", "bad_request"},
    404: {"not_found"},
    405: {"method_not_allowed"},
    413: {"payload_too_large"},
    415: {"unsupported_media_type"},
    422: {"invalid_request"},
}
LIMITS = {
    "user": (1, MAX_ID),
    "text": (1, MAX_TEXT),
    "button": (1, MAX_ID),
    "message_id": (1, MAX_ID),
}
# C0 controls (but tab, newline, carriage return) and DEL: README says they are dropped.
_DROPPED = {chr(c) for c in range(0x20) if c not in (9, 10, 13)} | {"\x7f"}


def has_surrogate(value: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in value)


def acceptable(data: Any, *, with_user: bool) -> bool:
    """Whether a decoded body is a valid message (README): our own reading of the
    contract, written apart from the server's pydantic models."""
    if not isinstance(data, dict):
        return False
    allowed = set(LIMITS) if with_user else set(LIMITS) - {"user"}
    if not set(data) <= allowed or (with_user and "user" not in data):
        return False
    for key, value in data.items():
        if value is None and key != "user":
            continue
        if not isinstance(value, str) or has_surrogate(value):
            return False
        low, high = LIMITS[key]
        if not low <= len(value) <= high:
            return False
    if (data.get("text") is None) == (data.get("button") is None):
        return False
    return not with_user or bool(clean_text(data["user"]).strip())


def decoded(raw: bytes) -> tuple[bool, Any]:
    """(whether the bytes are JSON, the value): json.loads reads bytes as UTF-8 (or
    UTF-16/32 by their first bytes), as the server does."""
    try:
        return True, json.loads(raw)
    except (ValueError, RecursionError):
        return False, None


def export_url(user: str) -> URL:
    # Every character percent-encoded, dots too: a client would otherwise resolve
    # "." and ".." as path segments (RFC 3986, 5.2.4) before the request is sent.
    segment = quote(user, safe="").replace(".", "%2E")
    return URL(f"/api/v1/users/{segment}/export", encoded=True)


async def assert_json_error(response: Any, *statuses: int) -> str:
    """A 4xx among `statuses`, as {"error": {"code": ..., "message": ...}}."""
    body = await response.read()
    assert response.status in statuses, (response.status, body[:300])
    assert response.content_type == "application/json", response.content_type
    data = json.loads(body)
    assert set(data) == {"error"}, data
    assert set(data["error"]) == {"code", "message"}, data
    assert data["error"]["code"] in ERROR_CODES[response.status], data
    assert isinstance(data["error"]["message"], str), data
    assert data["error"]["message"], data
    return str(data["error"]["code"])


def assert_replies(data: Any) -> None:
    """A turn's answer: at least one reply, each a non-empty text with well-formed
    buttons, and an expect of a documented type."""
    assert set(data) == {"replies", "expect"}, data
    assert data["replies"], data
    for reply in data["replies"]:
        assert isinstance(reply["text"], str), reply
        assert reply["text"].strip(), reply
        for button in reply["buttons"]:
            assert isinstance(button["label"], str), reply
            assert button["label"].strip(), reply
            assert isinstance(button["value"], str), reply
            assert button["value"], reply
    assert data["expect"]["type"] in EXPECT_TYPES, data
    assert data["expect"]["slot"] is None or isinstance(data["expect"]["slot"], str), data


def assert_position(flows: FlowSet, flow: Any, step: Any) -> None:
    """A stored position the engine can go on from: no flow at all, or a step that exists."""
    if flow is None:
        assert step is None, (flow, step)
        return
    assert flow in flows.flows, f"unknown flow {flow!r}"
    assert step in flows.flows[flow].steps or step == END, f"flow {flow} has no step {step!r}"


class Learners:
    """What each test knows of the learners it talked to: the expect of each one's last
    answer, so an erasure is told apart from a lost conversation."""

    def __init__(self, client: Client, services: Services) -> None:
        self.client = client
        self.flows = services.dialog.flows
        self.expects: dict[str, dict[str, Any]] = {}

    def may_be_erased(self, user: str) -> bool:
        # /forget's confirmation (dialogs/flows/data.yaml): a yes erases the person.
        return (self.expects.get(user) or {}).get("slot") == "forget.confirm"

    async def post(self, path: str, data: bytes, **headers: str) -> Any:
        return await self.client.post(path, data=data, headers={**JSON, **headers})

    async def check(self, user: str, answer: dict[str, Any], *, fresh: bool) -> None:
        """After an accepted message from `user`: the stored conversation is valid, it
        waits for what the answer said (unless the answer was a redelivery's), and an
        ordinary message still gets replies."""
        assert_replies(answer)
        erasable = self.may_be_erased(user)
        self.expects[user] = answer["expect"]
        response = await self.client.get(export_url(user))
        if response.status == 404 and erasable:
            self.expects.pop(user, None)
            return
        assert response.status == 200, (user, await response.text())
        export = await response.json()
        conversation = export["conversation"]
        assert_position(self.flows, conversation["flow"], conversation["step"])
        assert conversation["expect"]["type"] in EXPECT_TYPES, conversation
        if fresh:
            assert conversation["expect"] == answer["expect"], (conversation, answer)
        for line in export["messages"]:
            assert isinstance(line["text"], str), line
            if line["direction"] == "in":
                assert not _DROPPED & set(line["text"]), line
                assert not has_surrogate(line["text"]), line
        menu = await self.client.post(API, json={"user": user, "text": "menu"})
        assert menu.status == 200, await menu.text()
        again = await menu.json()
        assert_replies(again)
        self.expects[user] = again["expect"]


@pytest.fixture
async def learners(client: Client, any_services: Services) -> Learners:
    return Learners(client, any_services)


async def send_api(learners: Learners, raw: bytes) -> None:
    """POST raw bytes as JSON to the API; check the answer against the contract."""
    response = await learners.post(API, raw)
    event(f"status {response.status}")
    if len(raw) > MAX_BODY:
        await assert_json_error(response, 413)
        return
    is_json, data = decoded(raw)
    if not is_json:
        assert await assert_json_error(response, 400) == "invalid_json"
        return
    if not acceptable(data, with_user=True):
        assert await assert_json_error(response, 422) == "invalid_request"
        return
    assert response.status == 200, (data, await response.text())
    fresh = clean_text(data.get("message_id") or "") == ""
    await learners.check(clean_text(data["user"]), await response.json(), fresh=fresh)


# -- POST /api/v1/messages -------------------------------------------------------------


@PROPERTY
@given(body=st.one_of(api_bodies, api_bodies, json_values), ascii_only=st.booleans())
@example(body={"user": "ana", "text": "hi"}, ascii_only=True)
@example(body={"user": "ana", "text": "\x00"}, ascii_only=True)  # nothing left once cleaned
@example(body={"user": "ana", "text": "\ud800"}, ascii_only=True)  # "\ud800": 422
@example(body={"user": "ana", "text": "\ud800"}, ascii_only=False)  # raw bytes: 400
@example(body={"user": "ana", "text": "\ud83d\ude00"}, ascii_only=True)  # a pair: 😀
@example(body={"user": "\x00ana", "text": "hi"}, ascii_only=True)  # the same ana
@example(body={"user": "ana", "text": "hi", "message_id": "\x00"}, ascii_only=True)
@example(body={"user": "ana", "button": "x", "text": None}, ascii_only=True)
@example(body={"user": "ana", "text": "x" * MAX_TEXT}, ascii_only=True)
@example(body={"user": "ana", "text": "x" * (MAX_TEXT + 1)}, ascii_only=True)
@example(body={"user": "ana", "text": float("nan")}, ascii_only=True)
async def test_any_json_body_gets_an_answer_or_a_json_4xx(
    learners: Learners, body: Any, ascii_only: bool
) -> None:
    await send_api(learners, encode(body, ascii_only=ascii_only))


@PROPERTY
@given(
    user=users,
    text=st.one_of(short_texts(MAX_TEXT), texts, texts_or_surrogates),
    ascii_only=st.booleans(),
)
@example(user="ana", text="\u202eevil\u202c \u200f\u05e9\u05dc\u05d5\u05dd", ascii_only=False)
@example(
    user="ana",
    text="\U0001f469\u200d\U0001f469\u200d\U0001f467 \U0001f3f3\ufe0f\u200d\U0001f308",
    ascii_only=False,
)
@example(user="ana", text="e\u0301\u0302\u0303 " * 500, ascii_only=False)
@example(user="ana", text="{name} {goal} {0} %s", ascii_only=True)
@example(user="\u202e", text="hi", ascii_only=False)
@example(user=".", text="hi", ascii_only=True)
@example(user="..", text="hi", ascii_only=True)
@example(user="a/b?c#d%2F", text="hi", ascii_only=True)
async def test_any_text_from_any_user_gets_an_answer_or_a_json_4xx(
    learners: Learners, user: str, text: str, ascii_only: bool
) -> None:
    await send_api(learners, encode({"user": user, "text": text}, ascii_only=ascii_only))


@settings(PROPERTY, max_examples=40)
@given(
    path=st.lists(st.integers(min_value=0, max_value=50), max_size=6),
    value=button_values,
)
@example(path=[], value="not-offered")
@example(path=[0, 0], value="resume")
@example(path=[1], value="\x00")
@example(path=[2, 1], value="  ")
async def test_any_button_value_gets_a_reply_or_a_kind_reprompt(
    learners: Learners, path: list[int], value: str
) -> None:
    """A fresh learner presses offered buttons along `path`, then a button with any
    value (offered or not): 200 and a reply, never a 500."""
    user = f"b-{uuid.uuid4().hex[:8]}"

    async def press(body: dict[str, Any]) -> dict[str, Any]:
        response = await learners.client.post(API, json={"user": user, **body})
        assert response.status == 200, (body, await response.text())
        data: dict[str, Any] = await response.json()
        assert_replies(data)
        return data

    data = await press({"text": "hi"})
    for pick in path:
        offered = [b["value"] for r in data["replies"] for b in r["buttons"]]
        data = await press(
            {"button": offered[pick % len(offered)]} if offered else {"text": "menu"}
        )
        learners.expects[user] = data["expect"]
    await send_api(learners, encode({"user": user, "button": value}, ascii_only=True))


@PROPERTY
@given(user=st.one_of(users, texts_or_surrogates))
@example(user="")
@example(user="\x00")  # PostgreSQL refuses NUL in a query: still a 404
@example(user="{brace}")  # aiohttp's default route variable refuses braces
@example(user="x" * (MAX_ID + 1))
async def test_any_export_path_is_json(learners: Learners, user: str) -> None:
    """Export for any path segment: an unknown user is a JSON 404, never a 500."""
    segment = quote(user, safe="", errors="surrogatepass").replace(".", "%2E")
    response = await learners.client.get(URL(f"/api/v1/users/{segment}/export", encoded=True))
    if response.status == 200:
        assert (await response.json())["schema"] == "coach.export/v1"
    else:
        await assert_json_error(response, 400, 404, 405)


@PROPERTY
@given(raw=st.binary(max_size=300))
@example(raw=b"")
@example(raw=b"\xff\xfe\xfd")
@example(raw=b'{"user": "ana", "text": "\xed\xa0\x80"}')  # a surrogate in CESU-8 bytes
@example(raw=b'{"user": "ana", "text": "\xc0\xaf"}')  # an overlong encoding of "/"
@example(raw=b'{"user": "ana", "text": "caf\xe9"}')  # Latin-1, not UTF-8
@example(raw=b'\xef\xbb\xbf{"user": "ana", "text": "hi"}')  # a UTF-8 byte order mark
@example(raw='{"user": "ana", "text": "hi"}'.encode("utf-16"))
@example(raw=b'{"user": "ana", "text": "hi"}\x00')
@example(raw=b'{"user": "ana", "text": "hi", "user": 5}')  # a repeated key: the last wins
@example(raw=b'{"user": "ana", "text": "\\u0000\\ud800\\udc00"}')
async def test_any_bytes_get_an_answer_or_a_json_4xx(learners: Learners, raw: bytes) -> None:
    await send_api(learners, raw)


CONTENT_TYPES = (
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "application/json;charset=latin-1",
    "application/json-patch+json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "text/plain",
    "text/json",
    "application/octet-stream",
    "application/",
    "json",
    ";;;",
    "",
)
_HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


@PROPERTY
@given(
    path=st.sampled_from((API, WEB)),
    content_type=st.one_of(st.sampled_from(CONTENT_TYPES), _HEADER_TEXT),
)
async def test_any_content_type_gets_an_answer_or_a_json_4xx(
    learners: Learners, path: str, content_type: str
) -> None:
    body = {"text": "hi"} if path == WEB else {"user": "ana", "text": "hi"}
    response = await learners.client.post(
        path, data=json.dumps(body).encode(), headers={"Content-Type": content_type}
    )
    mimetype = content_type.split(";", 1)[0].strip().lower()
    if mimetype == "application/json":
        assert response.status == 200, (content_type, await response.text())
        assert_replies(await response.json())
    else:
        assert await assert_json_error(response, 415) == "unsupported_media_type"


# -- POST /chat/messages (the web chat) ------------------------------------------------


def web_user(client: Client) -> str | None:
    """The web user in the client's signed cookie (the part before the signature)."""
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/")).get("coach_web")
    return cookie.value.rpartition(".")[0] if cookie else None


@PROPERTY
@given(body=st.one_of(web_bodies, web_bodies, json_values), ascii_only=st.booleans())
@example(body={"text": "hi"}, ascii_only=True)
@example(body={"text": "hi", "message_id": "\x00"}, ascii_only=True)
@example(body={"text": "hi", "message_id": "\ud800"}, ascii_only=True)
@example(body={"text": "\ud800"}, ascii_only=True)
@example(body={"button": "\x00"}, ascii_only=True)
@example(body={"user": "ana", "text": "hi"}, ascii_only=True)  # no user field here
async def test_the_web_chat_answers_any_body_or_gives_a_json_4xx(
    learners: Learners, body: Any, ascii_only: bool
) -> None:
    raw = encode(body, ascii_only=ascii_only)
    response = await learners.post(WEB, raw)
    event(f"status {response.status}")
    is_json, data = decoded(raw)
    if not is_json:
        assert await assert_json_error(response, 400) == "invalid_json"
        return
    if not acceptable(data, with_user=False):
        assert await assert_json_error(response, 422) == "invalid_request"
        return
    assert response.status == 200, (data, await response.text())
    user = web_user(learners.client)
    assert user is not None
    history = await learners.client.get("/chat/history")
    assert history.status == 200
    fresh = clean_text(data.get("message_id") or "") == ""
    answer = await response.json()
    if fresh:
        assert (await history.json())["expect"] == answer["expect"]
    await learners.check(user, answer, fresh=fresh)


# -- what no generator should have to find ----------------------------------------------


def _nested(depth: int, shape: str) -> bytes:
    match shape:
        case "list":
            return b"[" * depth + b"]" * depth
        case "open":  # never closed
            return b"[" * depth
        case "dict":
            return b'{"a":' * depth + b"1" + b"}" * depth
        case "in-text":
            return b'{"user": "ana", "text": ' + b"[" * depth + b"]" * depth + b"}"
        case _:  # in an extra key beside a valid message
            return b'{"user": "ana", "text": "hi", "x": ' + b"[" * depth + b"]" * depth + b"}"


@settings(PROPERTY, max_examples=25)
@given(
    depth=st.integers(min_value=1, max_value=40_000),
    shape=st.sampled_from(("list", "open", "dict", "in-text", "extra")),
    path=st.sampled_from((API, WEB)),
)
@example(depth=10_000, shape="list", path=API)
@example(depth=10_000, shape="open", path=API)
@example(depth=10_000, shape="dict", path=WEB)
@example(depth=990, shape="in-text", path=API)  # just under Python's recursion limit
@example(depth=990, shape="extra", path=WEB)
@example(depth=10_000, shape="extra", path=API)
async def test_deep_nesting_is_a_json_4xx(
    learners: Learners, depth: int, shape: str, path: str
) -> None:
    raw = _nested(depth, shape)
    if path == WEB and shape in ("in-text", "extra"):
        raw = raw.replace(b'"user": "ana", ', b"")
    response = await learners.post(path, raw)
    await assert_json_error(response, 400, 413, 422)


async def test_a_one_megabyte_body_is_413_and_the_server_keeps_serving(
    learners: Learners,
) -> None:
    megabyte = json.dumps({"user": "ana", "text": "x" * (1 << 20)}).encode()

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(megabyte), 1 << 16):
            yield megabyte[start : start + (1 << 16)]

    for path in (API, WEB):
        # With a Content-Length, and chunked without one: the limit holds while reading.
        for data in (megabyte, pieces()):
            response = await learners.client.post(path, data=data, headers=JSON)
            assert await assert_json_error(response, 413) == "payload_too_large"
            body = {"text": "hi"} if path == WEB else {"user": "ana", "text": "hi"}
            ok = await learners.client.post(path, json=body)
            assert ok.status == 200
            assert_replies(await ok.json())


async def test_empty_bodies_are_json_4xx(learners: Learners) -> None:
    for path in (API, WEB):
        response = await learners.post(path, b"")
        assert await assert_json_error(response, 400) == "invalid_json"
        response = await learners.client.post(path, data=b"", skip_auto_headers=["Content-Type"])
        assert await assert_json_error(response, 415) == "unsupported_media_type"
        response = await learners.client.post(path, skip_auto_headers=["Content-Type"])
        assert await assert_json_error(response, 415) == "unsupported_media_type"


def test_the_oracle_agrees_with_the_readme() -> None:
    """The contract the properties check against, on the README's own examples."""

    def ok(data: Any) -> bool:
        return acceptable(data, with_user=True)

    assert ok({"user": "maria", "text": "hi", "message_id": "m-1"})
    assert ok({"user": "maria", "button": "goal"})
    assert not ok({"user": "maria", "text": "hi", "button": "goal"})
    assert not ok({"user": "maria"})
    assert not ok({"user": "maria", "text": "hi", "colour": "red"})
    assert not ok({"user": "   ", "text": "hi"})
    assert not ok({"user": "maria", "text": "\ud800"})
    assert not ok({"user": 5, "text": "hi"})
    assert not ok([{"user": "maria", "text": "hi"}])
    assert has_surrogate("a\udfffb")
    assert not has_surrogate("😀")
