"""Builds the aiohttp application: routes, middlewares, health, startup and shutdown."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from sqlalchemy import text

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
    api.add_routes(app)
    webchat.add_routes(app)

    async def close(app: web.Application) -> None:
        await services.close()

    app.on_cleanup.append(close)
    return app
