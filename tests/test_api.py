"""The HTTP API contract, on every backend: answers, exports, erasure and every error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app import build_app
from bot.services import Services

Client = TestClient[Any, Any]


async def send(client: Client, **body: Any) -> Any:
    response = await client.post("/api/v1/messages", json=body)
    assert response.status == 200, await response.text()
    return await response.json()


async def error_of(response: Any, status: int) -> str:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    return str(body["error"]["code"])


async def test_a_message_gets_replies_and_what_comes_next(client: Client) -> None:
    data = await send(client, user="ana", text="hi")
    assert "I'm Coach" in data["replies"][0]["text"]
    assert "What should I call you?" in data["replies"][-1]["text"]
    assert data["expect"] == {"type": "text", "slot": "onboarding.name"}
    data = await send(client, user="ana", text="Ana")
    assert data["replies"][0]["text"] == "Nice to meet you, Ana!"
    language = data["replies"][-1]
    assert {"label": "Español", "value": "es"} in language["buttons"]
    assert data["expect"] == {"type": "choice", "slot": "onboarding.locale"}


async def test_a_repeated_message_id_answers_the_same_and_changes_nothing(client: Client) -> None:
    first = await send(client, user="ana", text="hi", message_id="m-1")
    again = await send(client, user="ana", text="hi", message_id="m-1")
    assert again == first
    export = await (await client.get("/api/v1/users/ana/export")).json()
    assert [m["direction"] for m in export["messages"]].count("in") == 1


async def test_export_has_everything_about_the_person(client: Client) -> None:
    await send(client, user="ana", text="hi")
    await send(client, user="ana", text="Ana")
    await send(client, user="ana", button="en")
    response = await client.get("/api/v1/users/ana/export")
    assert response.status == 200
    data = await response.json()
    assert data["schema"] == "coach.export/v1"
    assert data["person"]["name"] == "Ana"
    assert {"id", "role", "name", "locale", "timezone"} <= set(data["person"])
    assert data["person"]["role"] == "learner"
    assert data["person"]["locale"] == "en"
    assert data["conversation"]["flow"] == "onboarding"
    assert data["conversation"]["expect"] == {"type": "choice", "slot": "onboarding.grade"}
    for key in (
        "goals",
        "checkins",
        "interests",
        "recommendations",
        "classes",
        "links",
        "alerts",
        "nudges",
        "digests",
    ):
        assert data[key] == []
    assert [m["text"] for m in data["messages"] if m["direction"] == "in"] == [
        "hi",
        "Ana",
        "English",
    ]


async def test_unknown_users_are_404(client: Client) -> None:
    assert await error_of(await client.get("/api/v1/users/nobody/export"), 404) == "not_found"
    assert await error_of(await client.delete("/api/v1/users/nobody"), 404) == "not_found"
    long_id = "x" * 129
    assert await error_of(await client.get(f"/api/v1/users/{long_id}/export"), 404) == "not_found"


async def test_delete_erases_the_person(client: Client) -> None:
    await send(client, user="ana", text="hi")
    response = await client.delete("/api/v1/users/ana")
    assert response.status == 204
    assert await error_of(await client.get("/api/v1/users/ana/export"), 404) == "not_found"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "user"),
        ({"text": "hi"}, "user"),
        ({"user": "ana"}, "exactly one"),
        ({"user": "ana", "text": "hi", "button": "yes"}, "exactly one"),
        ({"user": "", "text": "hi"}, "user"),
        ({"user": "x" * 129, "text": "hi"}, "user"),
        ({"user": "ana", "text": "x" * 4097}, "text"),
        ({"user": "ana", "text": ""}, "text"),
        ({"user": 5, "text": "hi"}, "user"),
        ({"user": "ana", "text": ["hi"]}, "text"),
        ({"user": "ana", "text": "hi", "colour": "red"}, "unknown field"),
        ({"user": "ana", "text": "hi", "message_id": 7}, "message_id"),
        ({"user": "ana", "text": "hi", "message_id": "m" * 129}, "message_id"),
        ({"user": "ana", "text": "bad \ud800 surrogate"}, "unicode"),
        ({"user": "   ", "text": "hi"}, "blank"),
    ],
)
async def test_bad_bodies_are_422_with_a_reason(
    client: Client, body: dict[str, Any], fragment: str
) -> None:
    raw = json.dumps(body)  # json.dumps escapes the lone surrogate as \ud800
    response = await client.post(
        "/api/v1/messages", data=raw, headers={"Content-Type": "application/json"}
    )
    assert await error_of(response, 422) == "invalid_request"
    assert fragment in (await response.json())["error"]["message"].lower()


@pytest.mark.parametrize("raw", ["{", "not json", '{"user": "ana",}', "\xff"])
async def test_malformed_json_is_400(client: Client, raw: str) -> None:
    response = await client.post(
        "/api/v1/messages", data=raw.encode("latin-1"), headers={"Content-Type": "application/json"}
    )
    assert await error_of(response, 400) == "invalid_json"


async def test_non_objects_and_deep_nesting_are_refused(client: Client) -> None:
    for raw in ["[]", '"hi"', "null", "[" * 5000 + "]" * 5000]:
        response = await client.post(
            "/api/v1/messages", data=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status in (400, 422)
        assert "error" in await response.json()


async def test_other_content_types_are_415(client: Client) -> None:
    response = await client.post("/api/v1/messages", data="user=ana&text=hi")
    assert await error_of(response, 415) == "unsupported_media_type"


async def test_oversize_bodies_are_413_and_the_server_keeps_serving(client: Client) -> None:
    huge = json.dumps({"user": "ana", "text": "x" * (70 * 1024)})
    response = await client.post(
        "/api/v1/messages", data=huge, headers={"Content-Type": "application/json"}
    )
    assert await error_of(response, 413) == "payload_too_large"
    assert (await send(client, user="ana", text="hi"))["replies"]


async def test_unknown_routes_and_methods_are_json(client: Client) -> None:
    assert await error_of(await client.get("/api/v1/nothing"), 404) == "not_found"
    response = await client.get("/api/v1/messages")
    assert await error_of(response, 405) == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


async def test_control_characters_are_dropped_not_stored(client: Client) -> None:
    await send(client, user="ana", text="hi\x00 there\x07")
    export = await (await client.get("/api/v1/users/ana/export")).json()
    assert export["messages"][0]["text"] == "hi there"


async def test_the_openapi_document_describes_the_routes(client: Client) -> None:
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    doc = await response.json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        "/api/v1/messages",
        "/api/v1/users/{user}/export",
        "/api/v1/users/{user}",
    }
    schema = doc["paths"]["/api/v1/messages"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert schema["properties"]["text"]["anyOf"][0]["maxLength"] == 4096
    assert schema["additionalProperties"] is False


async def test_health_and_readiness(client: Client) -> None:
    assert (await (await client.get("/healthz")).json()) == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json()) == {"status": "ready"}


async def test_readiness_fails_before_migrations(aiohttp_client: Any, open_services: Any) -> None:
    services: Services = await open_services("sqlite")
    from sqlalchemy import text

    async with services.db.engine.begin() as conn:
        await conn.execute(text("DELETE FROM alembic_version"))
    app = build_app(services)
    app.on_cleanup.clear()
    client = await aiohttp_client(app)
    assert await error_of(await client.get("/readyz"), 503) == "unavailable"


async def test_a_token_guards_every_api_route(aiohttp_client: Any, open_services: Any) -> None:
    services: Services = await open_services("sqlite", api_token="s3cret-token")
    app = build_app(services)
    app.on_cleanup.clear()
    client = await aiohttp_client(app)
    for method, path in [
        ("POST", "/api/v1/messages"),
        ("GET", "/api/v1/users/ana/export"),
        ("DELETE", "/api/v1/users/ana"),
        ("GET", "/api/v1/openapi.json"),
    ]:
        for header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
            response = await client.request(method, path, headers=header, json={})
            assert await error_of(response, 401) == "unauthorized"
    ok = await client.post(
        "/api/v1/messages",
        json={"user": "ana", "text": "hi"},
        headers={"Authorization": "Bearer s3cret-token"},
    )
    assert ok.status == 200
    # Health checks and the web chat are not behind the API token.
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/")).status == 200
