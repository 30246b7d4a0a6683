"""Slack in several workspaces: installing through OAuth (/slack/install, the redirect,
oauth.v2.access on the fake), the token kept in our database by slack_sdk's SQLAlchemy
store, and each workspace's people answered with their own workspace's token; the
single-workspace bot token keeps working beside it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from aiohttp.test_utils import TestClient
from sqlalchemy import select as core_select
from sqlmodel import col, select

from bot.app import build_app
from bot.channels.api import SERVICES
from bot.channels.slack import (
    BOT_SCOPES,
    EVENTS_PATH,
    REDIRECT_PATH,
    SLACK,
    SLASH_COMMAND,
    SUBCOMMANDS,
    SlackChannel,
)
from bot.clock import FakeClock
from bot.config import ConfigError
from bot.services import Services
from bot.store.models import ChannelIdentity, InboxMessage, OutboxMessage
from bot.store.slack_tables import bots
from tests.conftest import make_settings
from tests.fakes.slack import DEFAULT_SIGNING_SECRET, FakeSlack
from tests.fakes.slack import SlackRequests as Requests

ROOT = Path(__file__).resolve().parent.parent
OTHER_TEAM = "T0OTHER001"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as slack:
        yield slack


@pytest.fixture
async def oauth(
    fake: FakeSlack, open_services: Callable[..., Any], aiohttp_client: Any
) -> TestClient[Any, Any]:
    services: Services = await open_services(
        "sqlite",
        slack_bot_token=fake.bot_token,
        slack_signing_secret=DEFAULT_SIGNING_SECRET,
        slack_client_id=fake.client_id,
        slack_client_secret=fake.client_secret,
        slack_api_base=fake.base_url,
    )
    client: TestClient[Any, Any] = await aiohttp_client(build_app(services))
    return client


async def install(client: TestClient[Any, Any], fake: FakeSlack, team_id: str) -> str:
    """An admin of `team_id` installs the app; the bot token Slack gave us."""
    page = await client.get("/slack/install")
    assert page.status == 200
    html = await page.text()
    [authorize] = re.findall(r'href="(https://slack.com/oauth/v2/authorize[^"]+)"', html)
    query = parse_qs(urlsplit(authorize.replace("&amp;", "&")).query)
    assert query["client_id"] == [fake.client_id]
    assert set(query["scope"][0].split(",")) == {
        "app_mentions:read",
        "chat:write",
        "commands",
        "im:history",
        "im:write",
    }
    state = query["state"][0]
    cookie = page.headers["Set-Cookie"].split(";")[0]
    code, token = fake.approve_install(team_id=team_id, team_name="Other School")
    back = await client.get(
        "/slack/oauth_redirect", params={"code": code, "state": state}, headers={"Cookie": cookie}
    )
    assert back.status == 200, await back.text()
    return token


async def deliver(client: TestClient[Any, Any]) -> list[str]:
    services = _services(client)
    channel: SlackChannel = client.app[SLACK]
    # As the dispatcher does: no database transaction open during a call to Slack.
    async with services.db.reading() as session:
        rows = (
            await session.exec(
                select(OutboxMessage, ChannelIdentity).join(
                    ChannelIdentity, col(ChannelIdentity.id) == col(OutboxMessage.identity_id)
                )
            )
        ).all()
    return [(await channel.sender.send(identity, row.payload)).kind for row, identity in rows]


def _services(client: TestClient[Any, Any]) -> Services:
    return client.app[SERVICES]


async def test_a_second_workspace_installs_and_is_answered_with_its_own_token(
    oauth: TestClient[Any, Any], fake: FakeSlack, clock: FakeClock
) -> None:
    token = await install(oauth, fake, OTHER_TEAM)
    async with _services(oauth).db.reading() as session:
        stored = (await session.exec(core_select(bots.c.team_id, bots.c.bot_token))).all()
    assert [tuple(row) for row in stored] == [(OTHER_TEAM, token)]

    other = Requests(
        team_id=OTHER_TEAM, bot_user_id="U0BOTR001", now=lambda: clock.now().timestamp()
    )
    signed = other.message_im("U0PUPIL001", "hi")
    assert (
        await oauth.post("/slack/events", data=signed.body, headers=signed.headers)
    ).status == 200
    ours = Requests(now=lambda: clock.now().timestamp()).message_im("U0PUPIL002", "hi")
    assert (await oauth.post("/slack/events", data=ours.body, headers=ours.headers)).status == 200

    assert set(await deliver(oauth)) == {"sent"}
    posts = fake.calls_to("chat.postMessage")
    by_channel = {call.params["channel"]: call.token for call in posts}
    assert by_channel == {"D0PUPIL001": token, "D0PUPIL002": fake.bot_token}


async def test_a_workspace_that_never_installed_is_not_answered(
    oauth: TestClient[Any, Any], fake: FakeSlack, clock: FakeClock
) -> None:
    stranger = Requests(team_id="T0STRANGER", now=lambda: clock.now().timestamp())
    signed = stranger.message_im("U0WHO00001", "hi")
    response = await oauth.post("/slack/events", data=signed.body, headers=signed.headers)
    assert response.status < 500
    async with _services(oauth).db.reading() as session:
        assert (await session.exec(select(InboxMessage))).all() == []


async def test_a_reused_or_forged_state_installs_nothing(
    oauth: TestClient[Any, Any], fake: FakeSlack
) -> None:
    code, _ = fake.approve_install(team_id=OTHER_TEAM, team_name="Other School")
    back = await oauth.get("/slack/oauth_redirect", params={"code": code, "state": "forged"})
    assert back.status >= 400
    async with _services(oauth).db.reading() as session:
        assert (await session.exec(core_select(bots.c.id))).all() == []


async def test_without_oauth_there_is_no_install_page(
    fake: FakeSlack, open_services: Callable[..., Any], aiohttp_client: Any
) -> None:
    services = await open_services(
        "sqlite",
        slack_bot_token=fake.bot_token,
        slack_signing_secret=DEFAULT_SIGNING_SECRET,
        slack_api_base=fake.base_url,
    )
    client = await aiohttp_client(build_app(services))
    assert (await client.get("/slack/install")).status == 404


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"slack_bot_token": "xoxb-1"}, "COACH_SLACK_SIGNING_SECRET"),
        ({"slack_client_id": "1.2", "slack_signing_secret": "s"}, "COACH_SLACK_CLIENT_SECRET"),
        (
            {"slack_client_id": "1.2", "slack_client_secret": "x", "slack_app_token": "xapp-1"},
            "COACH_SLACK_SIGNING_SECRET",
        ),
    ],
)
def test_half_configured_slack_is_refused_at_serve(
    tmp_path: Any, settings: dict[str, str], says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        make_settings(tmp_path, **settings).check_for_serving()


def test_socket_mode_alone_needs_no_signing_secret(tmp_path: Any) -> None:
    make_settings(tmp_path, slack_bot_token="xoxb-1", slack_app_token="xapp-1").check_for_serving()
    assert "xoxb-1" not in repr(make_settings(tmp_path, slack_bot_token="xoxb-1"))


def test_the_manifest_asks_for_what_the_app_uses() -> None:
    manifest = yaml.safe_load((ROOT / "deploy" / "slack-app-manifest.yaml").read_text())
    assert manifest["oauth_config"]["scopes"]["bot"] == list(BOT_SCOPES)
    settings = manifest["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == {"app_mention", "message.im"}
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == SLASH_COMMAND
    for subcommand in SUBCOMMANDS:
        assert subcommand in command["usage_hint"]
    addresses = {
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        command["url"],
    }
    assert {urlsplit(a).path for a in addresses} == {EVENTS_PATH}
    assert urlsplit(manifest["oauth_config"]["redirect_urls"][0]).path == REDIRECT_PATH
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True
