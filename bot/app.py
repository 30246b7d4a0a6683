"""Builds the aiohttp application: routes, middlewares, health, startup and shutdown."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from sqlalchemy import text

from bot import metrics
from bot.channels import api
from bot.channels import web as webchat
from bot.channels.errors import ApiError, json_errors
from bot.services import Services
from bot.store import migrate

# The body limit for the API: 64 KiB is far above any chat message
# (4096 characters of text) and far below what could tire the server.
MAX_BODY = 64 * 1024


async def healthz(request: web.Request) -> web.Response:
    """Alive: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready: the database answers and its schema is the newest."""
    services = request.app[api.SERVICES]
    try:
        async with services.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        current = await migrate.is_current(services.db)
    except Exception as exc:
        raise ApiError(503, "unavailable", f"database unreachable: {type(exc).__name__}") from None
    if not current:
        raise ApiError(503, "unavailable", "database migrations are not current")
    return web.json_response({"status": "ready"})


GAUGES: web.AppKey[metrics.DatabaseGauges] = web.AppKey("gauges", metrics.DatabaseGauges)


async def metrics_endpoint(request: web.Request) -> web.Response:
    """Prometheus's scrape: loopback, or the API token as a bearer token (see
    bot.metrics.scrape_allowed for why)."""
    token = request.app[api.SERVICES].settings.api_token
    if not metrics.scrape_allowed(request.remote, request.headers, token):
        if token:
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <token>")
        raise ApiError(403, "forbidden", "/metrics answers this host only; set COACH_API_TOKEN")
    body = await metrics.exposition(request.app[GAUGES])
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})


def secret_file(services: Services) -> Path:
    """Where a generated cookie key is kept: beside a SQLite database, else ./var."""
    url = services.db.engine.url
    if services.db.is_sqlite and url.database and url.database != ":memory:":
        return Path(url.database).expanduser().resolve().parent / "secret_key"
    return Path("var") / "secret_key"


def build_app(services: Services) -> web.Application:
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[json_errors, api.bearer_auth(services.settings.api_token)],
    )
    app[api.SERVICES] = services
    app[webchat.SIGNING_KEY] = webchat.signing_key(
        services.settings.secret_key, secret_file(services)
    )
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app[GAUGES] = metrics.DatabaseGauges(services.db, services.clock)
    app.router.add_get("/metrics", metrics_endpoint)
    api.add_routes(app)
    webchat.add_routes(app)
    if services.settings.telegram_token is not None:
        from bot.channels import telegram  # python-telegram-bot loads only when it is used

        telegram.add_routes(app, services.settings)
    if services.settings.slack_enabled:
        from bot.channels import slack  # slack_bolt loads only when it is used

        slack.add_routes(app)

    async def close(app: web.Application) -> None:
        await services.close()

    app.on_cleanup.append(close)
    return app
