"""The web chat's cookie is Secure when the browser used HTTPS. Behind a proxy that ends
TLS, Coach sees plain HTTP; it believes the proxy's X-Forwarded-Proto only from a
peer the operator named in COACH_TRUSTED_PROXY (anyone else could send the header)."""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

import pytest

from bot.app import build_app
from bot.channels.web import COOKIE
from bot.config import ConfigError, load_settings


async def cookie_is_secure(
    open_services: Callable[..., Any],
    aiohttp_client: Any,
    trusted_proxy: str | None,
    forwarded: list[str],
) -> bool:
    """A first visit to the chat (the test client's peer is 127.0.0.1): is the cookie
    it sets marked Secure?"""
    services = await open_services("sqlite", trusted_proxy=trusted_proxy)
    app = build_app(services)
    app.on_cleanup.clear()  # the fixture closes the database
    client = await aiohttp_client(app)
    headers = [("X-Forwarded-Proto", value) for value in forwarded]
    response = await client.get("/chat/history", headers=headers)
    assert response.status == 200
    cookie = SimpleCookie()
    cookie.load(response.headers["Set-Cookie"])
    return bool(cookie[COOKIE]["secure"])


@pytest.mark.parametrize(
    ("trusted_proxy", "forwarded", "secure"),
    [
        # Off by default: the header is ignored, whoever sends it.
        (None, ["https"], False),
        ("false", ["https"], False),
        # Trusted: any peer, or this one by address or network.
        ("true", ["https"], True),
        ("127.0.0.1", ["https"], True),
        ("10.0.0.5, 127.0.0.0/8", ["https"], True),
        ("::1, 127.0.0.1", ["HTTPS"], True),
        # A trusted proxy that says plain HTTP, or says nothing.
        ("true", ["http"], False),
        ("true", [], False),
        # A proxy that appends keeps the client's claim in front: only its own counts.
        ("true", ["https, http"], False),
        ("true", ["http, https"], True),
        ("true", ["https", "http"], False),
        # Another address is not our proxy, so its word is not taken.
        ("10.0.0.5", ["https"], False),
        ("192.168.0.0/16", ["https"], False),
    ],
)
async def test_the_cookie_is_secure_only_on_a_trusted_proxys_word(
    open_services: Callable[..., Any],
    aiohttp_client: Any,
    trusted_proxy: str | None,
    forwarded: list[str],
    secure: bool,
) -> None:
    assert await cookie_is_secure(open_services, aiohttp_client, trusted_proxy, forwarded) is (
        secure
    )


def test_a_bad_proxy_address_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COACH_TRUSTED_PROXY", "10.0.0.5, the-proxy")
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert message.startswith("COACH_TRUSTED_PROXY:")
    assert "'the-proxy' is not an address or network" in message
    assert "\n" not in message
