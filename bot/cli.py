"""The `coach` command: serve, chat, db upgrade, dialogs check, catalog check."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

import bot
from bot.shutdown import exit_within

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp import web

    from bot.coach.catalog import Catalog
    from bot.config import Settings
    from bot.engine.topics import Vocabulary
    from bot.services import Services

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
    serve.add_argument(
        "--telegram-polling",
        action="store_true",
        help="fetch Telegram updates with getUpdates instead of the webhook (no public address)",
    )

    chat = sub.add_parser("chat", help="chat with the coach in this terminal")
    chat.add_argument("--user", help="your web user id (default: console-<login name>)")

    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", parser_class=_Parser)
    db_sub.required = True
    db_sub.add_parser("upgrade", help="apply database migrations")
    backup = db_sub.add_parser("backup", help="copy the live SQLite database to PATH")
    backup.add_argument("path", help="the backup file to write")
    backup.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    restore = db_sub.add_parser(
        "restore", help="replace the SQLite database with a backup, then migrate it"
    )
    restore.add_argument("path", help="a file written by `coach db backup`")

    dialogs = sub.add_parser("dialogs", help="flow commands")
    d_sub = dialogs.add_subparsers(dest="dialogs_command", metavar="ACTION", parser_class=_Parser)
    d_sub.required = True
    check = d_sub.add_parser("check", help="check flows, locale catalogs and intents")
    check.add_argument("--dir", help="dialogs folder (default: COACH_DIALOGS_DIR, the shipped one)")

    from bot.store.models import OUTBOX_KINDS

    jobs = sub.add_parser("jobs", help="the outbox of proactive messages")
    j_sub = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", parser_class=_Parser)
    j_sub.required = True
    j_sub.add_parser("status", help="due, later, sending, failed, sent and skipped counts")
    j_retry = j_sub.add_parser("retry-failed", help="send failed messages again")
    j_retry.add_argument(
        "--kind",
        choices=OUTBOX_KINDS,
        help="only messages of this kind",
    )

    telegram = sub.add_parser("telegram", help="Telegram bot set-up")
    t_sub = telegram.add_subparsers(dest="telegram_command", metavar="ACTION", parser_class=_Parser)
    t_sub.required = True
    t_hook = t_sub.add_parser(
        "set-webhook", help="tell Telegram to send updates to URL (with the secret token)"
    )
    t_hook.add_argument("url", help="https://your.host or the full /telegram/webhook address")

    admin = sub.add_parser("admin", help="school administration: teacher invites, the audit log")
    a_sub = admin.add_subparsers(dest="admin_command", metavar="ACTION", parser_class=_Parser)
    a_sub.required = True
    invite = a_sub.add_parser(
        "teacher-invite", help="print a single-use teacher code (valid 7 days)"
    )
    invite.add_argument("--name", help="who the invite is for (printed with the code)")
    audit = a_sub.add_parser("audit", help="list reads of other people's data, oldest first")
    audit.add_argument(
        "--since", type=_since, help="from this date or time on (UTC), e.g. 2026-01-05"
    )
    audit.add_argument("--person", type=int, help="only rows where this person id read or was read")

    sub.add_parser("doctor", help="check settings, database, dialogs, catalog and channel tokens")

    catalog = sub.add_parser("catalog", help="resource catalog commands")
    c_sub = catalog.add_subparsers(dest="catalog_command", metavar="ACTION", parser_class=_Parser)
    c_sub.required = True
    c_check = c_sub.add_parser(
        "check", help="check a catalog folder, a YAML file, or a .csv/.json/.jsonld file"
    )
    c_check.add_argument(
        "path", nargs="?", help="folder or file (default: COACH_CONTENT_DIR/catalog)"
    )
    c_import = c_sub.add_parser(
        "import", help="add or update the school's own resources from CSV or JSON-LD"
    )
    c_import.add_argument("file", help="a .csv, .json or .jsonld file")
    c_import.add_argument(
        "--dry-run", action="store_true", help="check and count, but save nothing"
    )
    c_export = c_sub.add_parser(
        "export", help="write the catalog: the shipped one with the school's own resources"
    )
    c_export.add_argument("--format", choices=("jsonld", "csv"), required=True)
    c_export.add_argument("--output", help="file to write (default: standard output)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    # `coach serve` takes SIGTERM and SIGINT over before anything slow: the parser (it
    # imports the models), the imports in _main (SQLAlchemy, pydantic: about 0.5 s in
    # all), the settings, the dialogs, the migrations. The command is the first word:
    # coach has no options before it but --help and --version.
    start_up = _StartUp() if given[:1] == ["serve"] else None
    try:
        return _main(_parser().parse_args(given), start_up)
    except _StopRequested:
        assert start_up is not None
        start_up.announce()
        return 0


def _main(args: argparse.Namespace, start_up: _StartUp | None) -> int:
    from sqlalchemy.exc import DBAPIError, OperationalError

    from bot.config import ConfigError, load_settings
    from bot.engine.flows import FlowError
    from bot.logs import configure_logging

    if args.command == "doctor":
        # Before the settings load: a setting that does not read is one of its findings.
        from bot import doctor

        configure_logging("WARNING")
        return doctor.main()
    try:
        settings = load_settings()
        # In a terminal chat, log lines would interleave with the conversation; in the
        # catalog commands, with the report (rejected rows, the summary, the export).
        quiet = args.command in ("chat", "catalog") and settings.log_level == "INFO"
        configure_logging("WARNING" if quiet else settings.log_level)
        return _run(args, settings, start_up)
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


def _run(args: argparse.Namespace, settings: Settings, start_up: _StartUp | None) -> int:
    from bot.config import load_settings

    if args.command == "serve":
        assert start_up is not None
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        if overrides:
            settings = load_settings(**overrides)
        return _serve(settings, start_up, telegram_polling=args.telegram_polling)
    if args.command == "chat":
        return asyncio.run(_chat(settings, args.user or f"console-{getpass.getuser()}"))
    if args.command == "db":
        if args.db_command in ("backup", "restore"):
            return _backup_or_restore(settings, args)
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
    if args.command == "admin":
        return asyncio.run(_admin(settings, args))
    if args.command == "jobs":
        return asyncio.run(_jobs(settings, args.jobs_command, getattr(args, "kind", None)))
    if args.command == "catalog" and args.catalog_command == "import":
        return asyncio.run(_catalog_import(settings, args.file, dry_run=args.dry_run))
    if args.command == "catalog" and args.catalog_command == "export":
        return asyncio.run(_catalog_export(settings, args.format, args.output))
    if args.command == "telegram":
        return asyncio.run(_telegram_set_webhook(settings, args.url))
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
    from bot.coach.catalog_formats import SUFFIXES

    if where.suffix.lower() in SUFFIXES:
        return _catalog_check_file(where, vocabulary)
    problems = check_catalog(where, vocabulary)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"coach: {len(problems)} problem(s) in the catalog", file=sys.stderr)
        return 1
    catalog = load_catalog(where, vocabulary)
    print(f"coach: {len(catalog)} resources in {len(catalog_files(where))} files: all good")
    return 0


def _catalog_check_file(where: Path, vocabulary: Vocabulary) -> int:
    """`coach catalog check` on a CSV or JSON-LD file: the rows an import would reject."""
    from bot.coach.catalog_formats import FormatError, read_resources

    try:
        rows = read_resources(where, vocabulary)
        problems = [f"{label}: {reason}" for label, reason in rows.rejected]
    except FormatError as exc:
        problems = [str(exc)]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"coach: {len(problems)} problem(s) in the catalog", file=sys.stderr)
        return 1
    print(f"coach: {len(rows.good)} resources in {where.name}: all good")
    return 0


def _shipped_catalog(settings: Settings) -> tuple[Catalog, Vocabulary] | None:
    """The vocabulary and the shipped catalog, or None after saying why they do not load."""
    from bot.coach.catalog import CatalogError, load_catalog
    from bot.engine.topics import Vocabulary

    try:
        vocabulary = Vocabulary.load(settings.content_dir / "vocabulary.yaml")
        return load_catalog(settings.content_dir / "catalog", vocabulary), vocabulary
    except CatalogError as exc:
        print(
            f"coach: the shipped catalog does not load ({exc}); see coach catalog check",
            file=sys.stderr,
        )
    except ValueError as exc:
        print(f"coach: {exc}", file=sys.stderr)
    return None


async def _catalog_import(settings: Settings, file: str, *, dry_run: bool) -> int:
    """`coach catalog import FILE`: rejected rows on stderr, then the summary; exit 1 if
    any row was rejected, 2 if the file could not be read at all."""
    from pathlib import Path

    from bot.clock import SystemClock
    from bot.coach.catalog_formats import FormatError, read_resources
    from bot.coach.catalog_store import import_rows
    from bot.store import migrate
    from bot.store.db import Database

    loaded = _shipped_catalog(settings)
    if loaded is None:
        return 1
    shipped, vocabulary = loaded
    bars = _ProgressBars()
    try:
        # The file first: a file that cannot be read leaves the database untouched.
        rows = read_resources(Path(file), vocabulary, bars)
    except FormatError as exc:
        bars.close()
        print(f"coach: {exc}", file=sys.stderr)
        return 2
    db = Database(settings.database_url)
    try:
        await migrate.upgrade(db)
        summary = await import_rows(
            db, rows, Path(file).name, shipped, SystemClock().now(), bars, dry_run=dry_run
        )
    finally:
        bars.close()
        await db.dispose()
    for label, reason in summary.rejected:
        print(f"{label}: {reason}", file=sys.stderr)
    print(
        f"coach: {'dry run, nothing saved: ' if dry_run else ''}added {summary.added}, "
        f"updated {summary.updated}, unchanged {summary.unchanged}, "
        f"rejected {len(summary.rejected)}"
    )
    return 1 if summary.rejected else 0


async def _catalog_export(settings: Settings, form: str, output: str | None) -> int:
    """`coach catalog export`: the shipped catalog with the school's resources merged in."""
    from pathlib import Path

    from bot.coach.catalog_formats import to_csv, to_jsonld
    from bot.coach.catalog_store import merged_catalog, school_resources
    from bot.store import migrate
    from bot.store.db import Database

    loaded = _shipped_catalog(settings)
    if loaded is None:
        return 1
    shipped, _ = loaded
    db = Database(settings.database_url)
    try:
        await migrate.upgrade(db)
        async with db.reading() as session:
            school = await school_resources(session)
    finally:
        await db.dispose()
    catalog = merged_catalog(shipped, school)
    text = to_jsonld(catalog) if form == "jsonld" else to_csv(catalog)
    if output is None:
        sys.stdout.write(text)
        return 0
    target = Path(output)
    # Written beside the target and renamed over it: never half a file under its name.
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8", newline="")
        partial.replace(target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        print(f"coach: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"coach: {len(catalog)} resources ({len(school)} the school's own) written to {target}")
    return 0


# A progress bar only from this many rows: an import costs about 70-90 µs of CPU a
# row (50,000 synthetic rows: 3.7-4.5 s of CPU to read, check and save on SQLite),
# so a smaller file is done within about a second and a bar would only flicker.
_BAR_FROM_ROWS = 10_000


class _ProgressBars:
    """tqdm bars on stderr, one per stage of a large import, only when it is a terminal."""

    def __init__(self) -> None:
        self._enabled = sys.stderr.isatty()
        self._bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self._enabled or total < _BAR_FROM_ROWS:
            return
        from tqdm import tqdm

        bar = self._bars.get(stage)
        if bar is None:
            bar = tqdm(total=total, desc=stage, unit=" rows", file=sys.stderr, leave=False)
            self._bars[stage] = bar
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


def _backup_or_restore(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.clock import SystemClock
    from bot.store import backup

    given = Path(args.path)
    try:
        database = backup.sqlite_path(settings.database_url, args.db_command)
        if args.db_command == "backup":
            print(f"coach: {backup.backup(database, given, force=args.force).summary(database)}")
            return 0
        report = backup.restore(given, database, now=SystemClock().now())
    except backup.BackupError as exc:
        print(f"coach: {exc}", file=sys.stderr)
        return 1
    asyncio.run(_upgrade(settings))
    print(f"coach: {report.summary(given)}; migrated to the newest schema")
    return 0


async def _jobs(settings: Settings, action: str, kind: str | None) -> int:
    """`coach jobs status` and `coach jobs retry-failed [--kind K]`."""
    from bot.clock import SystemClock
    from bot.delivery.status import describe, outbox_status, retry_failed
    from bot.store.db import Database

    db = Database(settings.database_url)
    now = SystemClock().now()
    try:
        if action == "status":
            for line in describe(await outbox_status(db, now)):
                print(line)
            return 0
        retried, left = await retry_failed(db, now, kind)
    finally:
        await db.dispose()
    what = f"{kind} " if kind else ""
    print(f"coach: {retried} failed {what}message(s) will be sent again")
    if left:
        print(f"coach: {left} left failed: the person blocked us on that channel")
    return 0


async def _telegram_set_webhook(settings: Settings, url: str) -> int:
    from bot.channels.telegram import TelegramSetupError, set_webhook

    try:
        target = await set_webhook(settings, url)
    except TelegramSetupError as exc:
        print(f"coach: {exc}", file=sys.stderr)
        return 1
    print(f"coach: Telegram will send messages and button presses to {target}")
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


def _serve(settings: Settings, start_up: _StartUp, *, telegram_polling: bool = False) -> int:
    from aiohttp import web

    from bot.app import build_app
    from bot.delivery.runner import delivery
    from bot.services import build_services
    from bot.store import migrate

    settings.check_for_serving(telegram_polling=telegram_polling)
    services = build_services(settings)  # loads and checks the dialogs and the catalog
    grace = settings.shutdown_grace_seconds

    async def make_app() -> web.Application:
        start_up.on_the_loop(grace)
        try:
            # On PostgreSQL this waits while another replica migrates.
            log.info("checking the database schema (migrating it if needed)")
            await migrate.upgrade(services.db)
        except (asyncio.CancelledError, Exception):
            if start_up.signal_name is None:
                raise
        if start_up.signal_name is not None:
            # Cancelled by the signal (or failing because of it): the migration's
            # transaction was rolled back and its connection closed, which on
            # PostgreSQL also ends the advisory lock, held or waited for.
            await services.close()
            raise _StopRequested
        app = build_app(services)
        # The scheduler (reminders, nudges, digests, retention) and the outbox dispatcher;
        # stopping it on shutdown hands this replica's outbox claims back.
        app.cleanup_ctx.append(delivery(services))
        app.on_shutdown.append(_stopping(grace))
        _channel_connections(app, services, telegram_polling=telegram_polling)
        log.info(
            "coach %s listening on http://%s:%s", bot.__version__, settings.host, settings.port
        )
        _settle_heap()
        start_up.done()
        return app

    # SIGTERM or SIGINT: aiohttp closes the listening socket and idle connections, waits
    # for the handlers in flight (then cancels them: their transactions roll back), then
    # runs the clean-ups (delivery, the database). It waits shutdown_timeout twice for a
    # handler that overruns (aiohttp 3.14, web_protocol.RequestHandler.shutdown: once
    # for it to finish, once after cancelling its body), hence the half.
    in_flight = max(0.0, grace - min(_CLEANUP_RESERVE_SECONDS, grace / 2))
    web.run_app(
        make_app(),
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        handle_signals=True,
        shutdown_timeout=in_flight / 2,
    )
    log.info("coach stopped")
    # The interpreter's exit ends with full garbage collections over every object
    # still alive (a running server holds a few hundred thousand): 0.4-1 s of CPU here,
    # longer on a busy host, for memory the OS takes back anyway. Frozen objects are
    # skipped; everything that must be flushed or closed already was.
    import gc

    gc.freeze()
    return 0


def _settle_heap() -> int:
    """Move everything loaded so far out of the garbage collector's sight; returns how
    many objects that was.

    The dialogs, the catalog, the recommender's index and SQLAlchemy's metadata (about
    140,000 objects) live as long as the process. A full collection walks them all with
    the event loop stopped: 60-70 ms here, every few thousand turns, seen as a 90 ms
    stall in bench/http_turns.py. Frozen (gc.freeze), they are never walked again;
    what a turn allocates is collected as before.
    """
    import gc

    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class _StopRequested(BaseException):
    """SIGTERM or SIGINT before `coach serve` serves. A BaseException, as KeyboardInterrupt
    is, so that no `except Exception` in the loading code takes it for a load error."""


class _StartUp:
    """SIGTERM and SIGINT during start-up, until aiohttp takes them over.

    web.run_app installs its signal handlers only once the app is built, after the
    migrations; before that the default actions applied: SIGTERM killed the process
    at once (exit status 143), in the middle of a migration or while waiting for
    another replica's migration lock, and SIGINT was a KeyboardInterrupt wherever it
    landed (exit 130, or a traceback). Here they stop it cleanly, with one log line
    and exit 0, as a SIGTERM while serving does: the stop was asked for and nothing
    was left half done, so a supervisor has no failure to report.

    - Loading (dialogs, catalog) is plain Python code: the signal raises _StopRequested
      where it lands; nothing is open yet, so unwinding is all there is to do.
    - On the event loop (the migrations) the signal cancels the start-up task instead:
      the migration's transaction rolls back (each migration runs in one, and DDL is
      transactional on PostgreSQL and SQLite), its connection is closed, and on
      PostgreSQL the advisory lock, held or waited for, goes with it.
    """

    def __init__(self) -> None:
        self.grace = 0.0  # COACH_SHUTDOWN_GRACE_SECONDS, once the settings are read
        self.signal_name: str | None = None  # the first stop signal, once one came
        self._task: asyncio.Task[Any] | None = None
        self._serving = False
        self._announced = False
        for sig in _STOP_SIGNALS:
            signal.signal(sig, self._raise)

    def _raise(self, signum: int, frame: object) -> None:
        if self.signal_name is not None:
            return  # a second signal, while the first one unwinds
        self.signal_name = signal.Signals(signum).name
        raise _StopRequested

    def on_the_loop(self, grace: float) -> None:
        """Called first thing in the start-up task: from now on a signal cancels it."""
        self.grace = grace
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        for sig in _STOP_SIGNALS:
            # Windows' event loop has no signal handlers; aiohttp allows for that too.
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self._cancel, sig)

    def _cancel(self, sig: signal.Signals) -> None:
        if self._serving:
            # Between the app being built and aiohttp installing its own handlers:
            # what aiohttp's handler does, a graceful shutdown.
            from aiohttp import web

            raise web.GracefulExit
        if self.signal_name is not None:
            return
        self.signal_name = sig.name
        self.announce()
        # If the database stopped answering, rolling back could hang.
        exit_within(self.grace, "start-up stop")
        if self._task is not None:
            self._task.cancel()

    def done(self) -> None:
        """The app is built: aiohttp's handlers take over the signals."""
        self._serving = True

    def announce(self) -> None:
        if not self._announced:
            self._announced = True
            if not logging.getLogger().handlers:  # the signal came before the settings
                from bot.logs import configure_logging

                configure_logging()
            log.info(
                "%s during start-up: stopping before serving "
                "(a migration under way is rolled back)",
                self.signal_name,
            )


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _channel_connections(
    app: web.Application, services: Services, *, telegram_polling: bool
) -> None:
    """Connections a channel opens itself: Telegram's getUpdates loop (--telegram-polling)
    and Slack's Socket Mode (COACH_SLACK_APP_TOKEN), both living as long as the app."""
    settings = services.settings
    if telegram_polling:
        from bot.channels import telegram

        app.cleanup_ctx.append(telegram.polling(services.turns, services.dialog.catalogs))
    if settings.slack_app_token is not None and settings.slack_enabled:
        from bot.channels import slack

        app.cleanup_ctx.append(slack.socket_mode(settings.slack_app_token.get_secret_value()))


# Of the shutdown grace period, what is kept back from the turns in flight for the
# clean-up after them (stop the delivery loops, hand back claims, close the database;
# measured at under 50 ms): a second, or half of a grace period shorter than two.
_CLEANUP_RESERVE_SECONDS = 1.0


def _stopping(grace: float) -> Callable[[Any], Awaitable[None]]:
    """An on_shutdown hook: say so, and make sure the process is gone within the grace
    period even if a clean-up hangs (a database that stopped answering)."""

    async def hook(app: Any) -> None:
        log.info("stopping: finishing turns in flight", extra={"grace_seconds": grace})
        exit_within(grace)

    return hook


def _since(text: str) -> datetime:
    """--since: a date or time (dateparser reads "2026-01-05", "yesterday", "7 days ago")."""
    import dateparser

    found = dateparser.parse(text, settings={"TIMEZONE": "UTC", "RETURN_AS_TIMEZONE_AWARE": True})
    if found is None:
        raise argparse.ArgumentTypeError(f"cannot read {text!r} as a date")
    return found


async def _admin(settings: Settings, args: argparse.Namespace) -> int:
    """`coach admin teacher-invite` and `coach admin audit`."""
    from bot.clock import SystemClock
    from bot.coach import access, codes
    from bot.store import migrate
    from bot.store.db import Database
    from bot.store.models import Person

    db = Database(settings.database_url)
    try:
        await migrate.upgrade(db)
        now = SystemClock().now()
        if args.admin_command == "teacher-invite":
            async with db.transaction() as session:
                code = await codes.issue_code(session, kind="teacher", now=now)
            until = (now + codes.TEACHER_CODE_LIFETIME).strftime("%Y-%m-%d %H:%M UTC")
            whom = f" for {args.name}" if args.name else ""
            print(
                f"coach: teacher invite{whom}: {codes.display_code(code)} "
                f"(works once, until {until}; whoever sends it in chat becomes a teacher)"
            )
            return 0
        async with db.reading() as session:
            rows = await access.audit_rows(session, since=args.since, person_id=args.person)
            ids = {r.subject_id for r in rows} | {r.actor_id for r in rows if r.actor_id}
            names = {p.id: p.name for p in [await session.get(Person, i) for i in ids] if p}
    finally:
        await db.dispose()
    if not rows:
        print("coach: no audit rows")
        return 0

    def who(person_id: int | None, label: str | None) -> str:
        if person_id is None:
            return label or "-"
        name = names.get(person_id)
        return f"#{person_id} {name}" if name else f"#{person_id}"

    table = [("when (UTC)", "actor", "subject", "action", "detail")] + [
        (
            r.at.strftime("%Y-%m-%d %H:%M:%S"),
            who(r.actor_id, r.actor_label),
            who(r.subject_id, None),
            r.action,
            r.detail or "",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
