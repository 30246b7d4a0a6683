"""The `coach` command: serve, chat, db upgrade, dialogs check, catalog check."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from sqlalchemy.exc import DBAPIError, OperationalError

import bot
from bot.config import ConfigError, Settings, load_settings
from bot.engine.flows import FlowError
from bot.logs import configure_logging

log = logging.getLogger("bot.cli")


class _Parser(argparse.ArgumentParser):
    """argparse, but a user's mistake is one line, not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="coach", description="Coach: a learning-coach chat service.")
    parser.add_argument("--version", action="version", version=f"coach {bot.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    serve = sub.add_parser("serve", help="run the web chat, the API and the channels")
    serve.add_argument("--host", help="address to listen on (default: COACH_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: COACH_PORT, 8080)")

    chat = sub.add_parser("chat", help="chat with the coach in this terminal")
    chat.add_argument("--user", help="your web user id (default: console-<login name>)")

    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", parser_class=_Parser)
    db_sub.required = True
    db_sub.add_parser("upgrade", help="apply database migrations")

    dialogs = sub.add_parser("dialogs", help="flow commands")
    d_sub = dialogs.add_subparsers(dest="dialogs_command", metavar="ACTION", parser_class=_Parser)
    d_sub.required = True
    check = d_sub.add_parser("check", help="check flows, locale catalogs and intents")
    check.add_argument("--dir", help="dialogs folder (default: COACH_DIALOGS_DIR, the shipped one)")

    catalog = sub.add_parser("catalog", help="resource catalog commands")
    c_sub = catalog.add_subparsers(dest="catalog_command", metavar="ACTION", parser_class=_Parser)
    c_sub.required = True
    c_check = c_sub.add_parser("check", help="check a catalog folder or YAML file")
    c_check.add_argument(
        "path", nargs="?", help="folder or file (default: COACH_CONTENT_DIR/catalog)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        # In a terminal chat, log lines would interleave with the conversation.
        quiet = args.command == "chat" and settings.log_level == "INFO"
        configure_logging("WARNING" if quiet else settings.log_level)
        return _run(args, settings)
    except ConfigError as exc:
        print(f"coach: {exc}", file=sys.stderr)
        return 2
    except FlowError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"coach: {len(exc.problems)} problem(s) in the dialogs", file=sys.stderr)
        return 1
    except (OperationalError, DBAPIError, OSError) as exc:
        reason = getattr(exc, "orig", None) or exc
        print(f"coach: cannot use the database: {reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        if overrides:
            settings = load_settings(**overrides)
        return _serve(settings)
    if args.command == "chat":
        return asyncio.run(_chat(settings, args.user or f"console-{getpass.getuser()}"))
    if args.command == "db":
        asyncio.run(_upgrade(settings))
        print("coach: the database is up to date")
        return 0
    if args.command == "dialogs":
        if args.dir:
            from pathlib import Path

            settings = load_settings(dialogs_dir=Path(args.dir))
        from bot.services import load_dialog

        dialog = load_dialog(settings)
        print(
            f"coach: {len(dialog.flows.flows)} flows, "
            f"{len(dialog.catalogs.entries['en'])} messages in "
            f"{', '.join(dialog.catalogs.locales)}: all good"
        )
        return 0
    if args.command == "catalog":
        return _catalog_check(settings, args.path)
    raise AssertionError(args.command)


def _catalog_check(settings: Settings, path: str | None) -> int:
    from pathlib import Path

    from bot.coach.catalog import catalog_files, check_catalog, load_catalog
    from bot.engine.topics import Vocabulary

    where = Path(path) if path else settings.content_dir / "catalog"
    try:
        vocabulary = Vocabulary.load(settings.content_dir / "vocabulary.yaml")
    except ValueError as exc:
        print(f"coach: {exc}", file=sys.stderr)
        return 1
    problems = check_catalog(where, vocabulary)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"coach: {len(problems)} problem(s) in the catalog", file=sys.stderr)
        return 1
    catalog = load_catalog(where, vocabulary)
    print(f"coach: {len(catalog)} resources in {len(catalog_files(where))} files: all good")
    return 0


async def _upgrade(settings: Settings) -> None:
    from bot.store import migrate
    from bot.store.db import Database

    db = Database(settings.database_url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.dispose()


async def _chat(settings: Settings, user: str) -> int:
    from bot.channels.console import chat
    from bot.services import build_services
    from bot.store import migrate

    services = build_services(settings)
    try:
        await migrate.upgrade(services.db)
        await chat(services.turns, user)
    finally:
        await services.close()
    return 0


def _serve(settings: Settings) -> int:
    from aiohttp import web

    from bot.app import build_app
    from bot.delivery.housekeeping import housekeeping
    from bot.services import build_services
    from bot.store import migrate

    settings.check_for_serving()
    services = build_services(settings)

    async def make_app() -> web.Application:
        await migrate.upgrade(services.db)
        app = build_app(services)
        app.cleanup_ctx.append(housekeeping(services))
        log.info(
            "coach %s listening on http://%s:%s", bot.__version__, settings.host, settings.port
        )
        return app

    web.run_app(
        make_app(),
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        handle_signals=True,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
