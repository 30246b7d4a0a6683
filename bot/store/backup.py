"""Backups of a SQLite database, taken live, and their restore.

`coach db backup PATH` copies the database with SQLite's online backup API: one
step, inside one read transaction, so the copy is the database as of one
commit. The database stays in WAL mode, where a reader never blocks writers, so
a running `coach serve` keeps answering while the copy is made. The copy goes
to a temporary file beside PATH and is renamed into place only once it is whole
and checked, so PATH is never a half-written backup.

`coach db restore PATH` checks that PATH is a Coach database at a schema
revision this Coach knows, refuses while another process has the current
database open, moves the current file aside (`<name>.bak-<UTC time>`), puts the
backup in its place, and then the caller migrates it to the newest revision.

PostgreSQL has pg_dump and pg_restore, which do this better than we could
(README, "Backups").
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import make_url

from bot.config import ConfigError, normalise_database_url
from bot.paths import MIGRATIONS
from bot.store.db import SQLITE_BUSY_TIMEOUT_MS

POSTGRES_HINT = (
    "on PostgreSQL, back up with `pg_dump -Fc` and restore with `pg_restore` "
    "(see README, section Backups)"
)

# Tables every Coach database has had since the first migration: a file with an
# alembic_version table but none of these belongs to some other application.
COACH_TABLES = ("people", "channel_identities", "conversations", "message_log")

# How long a restore waits for another connection to let go of the current
# database before deciding it is in use; a finished command lets go at once.
IN_USE_WAIT_SECONDS = 1.0


class BackupError(Exception):
    """Why a backup or a restore cannot be done: one line for the operator."""


@dataclass(frozen=True, slots=True)
class BackupReport:
    path: Path
    size: int
    revision: str | None

    def summary(self, source: Path) -> str:
        return (
            f"backed up {source} (schema {self.revision or 'unknown'}) "
            f"to {self.path}: {self.size:,} bytes"
        )


@dataclass(frozen=True, slots=True)
class RestoreReport:
    path: Path
    revision: str
    moved_aside: Path | None

    def summary(self, source: Path) -> str:
        where = (
            f"; the previous database is at {self.moved_aside}"
            if self.moved_aside
            else " (there was no database before)"
        )
        return f"restored {source} (schema {self.revision}) into {self.path}{where}"


def sqlite_path(database_url: str, command: str) -> Path:
    """The file behind a SQLite COACH_DATABASE_URL; a BackupError for anything else."""
    try:
        url = make_url(normalise_database_url(database_url))
    except ConfigError as exc:
        raise BackupError(str(exc)) from None
    if url.get_backend_name() == "postgresql":
        raise BackupError(f"`coach db {command}` works on SQLite; {POSTGRES_HINT}")
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise BackupError(
            f"COACH_DATABASE_URL names no database file ({database or 'in memory'}); "
            "set it to sqlite:///path/to/coach.db"
        )
    return Path(database).expanduser().resolve()


def backup(source: Path, target: Path, *, force: bool = False) -> BackupReport:
    """Copy the live database at `source` to `target` (refusing to overwrite unless `force`)."""
    target = target.expanduser().resolve()
    if not source.is_file():
        raise BackupError(f"there is no database at {source} to back up")
    if target == source:
        raise BackupError(f"{target} is the database itself; choose another file")
    if target.is_dir():
        raise BackupError(f"{target} is a folder; give the backup a file name")
    if target.exists() and not force:
        raise BackupError(f"{target} already exists; pass --force to overwrite it")
    if not target.parent.is_dir():
        raise BackupError(f"the folder {target.parent} does not exist")
    # Read-write but never create ("rw"): as the last connection to close it folds
    # the -wal back into the file, as a finished `coach serve` would.
    with _open(source, mode="rw") as live:
        revision = _revision(live, source)
        with _partial(target) as partial, _open(partial) as copy:
            _copy(live, copy, source)
            # The copy is one self-contained file: no -wal beside it to lose.
            copy.execute("PRAGMA journal_mode=DELETE")
            _check_whole(copy, source)
    return BackupReport(path=target, size=target.stat().st_size, revision=revision)


def check_coach_database(path: Path) -> str:
    """The schema revision of the Coach database at `path`; a BackupError if it is not one."""
    if not path.is_file():
        raise BackupError(f"there is no file at {path}")
    with _open(path, mode="ro") as conn:
        revision = _revision(conn, path)
        if revision is None:
            raise BackupError(f"{path} is not a Coach database (it has no schema revision)")
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        missing = [name for name in COACH_TABLES if name not in tables]
        if missing:
            raise BackupError(f"{path} is not a Coach database (no {missing[0]} table)")
        try:
            ScriptDirectory(str(MIGRATIONS)).get_revision(revision)
        except CommandError:
            raise BackupError(
                f"{path} is at schema revision {revision!r}, which this Coach does not "
                "know: restore it with the Coach version that wrote it"
            ) from None
        _check_whole(conn, path)
    return revision


def restore(source: Path, target: Path, *, now: datetime) -> RestoreReport:
    """Put the backup at `source` where the database `target` is, moving the current
    file aside first. The caller migrates the result (bot.store.migrate.upgrade)."""
    source = source.expanduser().resolve()
    revision = check_coach_database(source)
    if source == target:
        raise BackupError(f"{source} is the database itself; nothing to restore")
    if not target.parent.is_dir():
        raise BackupError(f"the folder {target.parent} does not exist")
    # The restored file keeps the owner and mode of the one it replaces (or of its
    # folder), so a service user can open it when root ran the restore.
    like = target.stat() if target.exists() else target.parent.stat()
    moved_aside = _move_aside(target, now) if target.exists() else None
    with (
        _open(source, mode="ro") as backup_copy,
        _partial(target, like) as partial,
        _open(partial) as fresh,
    ):
        _copy(backup_copy, fresh, source)
    return RestoreReport(path=target, revision=revision, moved_aside=moved_aside)


def _move_aside(target: Path, now: datetime) -> Path:
    """Rename the current database (and any -wal/-shm beside it) to .bak-<time>."""
    try:
        with _open(target, mode="rw", timeout=IN_USE_WAIT_SECONDS) as current:
            # Leaving WAL mode needs the database to itself: it fails while any
            # other connection (a running `coach serve`) has the file open, and
            # otherwise folds the -wal into the file, so the .bak is whole.
            current.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise BackupError(
                f"{target} is in use (is `coach serve` running?); stop Coach, then restore"
            ) from None
        raise BackupError(f"cannot open {target}: {exc}") from None
    except sqlite3.DatabaseError:
        pass  # not a database at all: moving it aside is all it needs
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    aside = target.with_name(f"{target.name}.bak-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = target.with_name(f"{target.name}.bak-{stamp}-{n}")
    try:
        # Sidecars first: a stale -wal left beside the restored file would be
        # replayed into it by SQLite on the next open.
        for suffix in ("-wal", "-shm"):
            sidecar = target.with_name(target.name + suffix)
            if sidecar.exists():
                os.replace(sidecar, aside.with_name(aside.name + suffix))
        os.replace(target, aside)
    except OSError as exc:
        raise BackupError(f"cannot move {target} aside: {exc.strerror}") from None
    return aside


@contextlib.contextmanager
def _open(
    path: Path, *, mode: str = "rwc", timeout: float = SQLITE_BUSY_TIMEOUT_MS / 1000
) -> Iterator[sqlite3.Connection]:
    """A connection in autocommit; `mode` is SQLite's URI mode: ro, rw, or rwc (create).
    By default it waits for a writer's lock as long as the app does."""
    try:
        conn = sqlite3.connect(
            f"{path.as_uri()}?mode={mode}", uri=True, timeout=timeout, isolation_level=None
        )
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {path}: {exc}") from None
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def _partial(target: Path, like: os.stat_result | None = None) -> Iterator[Path]:
    """A temporary file beside `target`, renamed onto it when the block succeeds.

    It is created readable by its owner only (learners' data); `like` gives it the
    owner (when we may) and the permission bits of another file instead."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    except OSError as exc:
        raise BackupError(f"cannot write in {target.parent}: {exc.strerror}") from None
    os.close(fd)
    partial = Path(name)
    try:
        yield partial
        if like is not None:
            _take_owner_and_mode(partial, like)
        _fsync(partial)
        os.replace(partial, target)
        _fsync(target.parent)  # the rename itself survives a power cut
    finally:
        partial.unlink(missing_ok=True)
        for suffix in ("-journal", "-wal", "-shm"):
            partial.with_name(partial.name + suffix).unlink(missing_ok=True)


def _copy(source: sqlite3.Connection, target: sqlite3.Connection, path: Path) -> None:
    try:
        # pages=-1: the whole database in one step, one read transaction, so the
        # copy is consistent; in WAL mode writers carry on meanwhile.
        source.backup(target, pages=-1)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"cannot copy {path}: {exc}") from None


def _revision(conn: sqlite3.Connection, path: Path) -> str | None:
    try:
        has_table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()
        if not has_table:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite database ({exc})") from None
    return str(row[0]) if row else None


def _check_whole(conn: sqlite3.Connection, path: Path) -> None:
    # quick_check reads every page but skips index-content checks: minutes faster
    # than integrity_check on a big file and still finds a torn or truncated copy.
    try:
        result = conn.execute("PRAGMA quick_check").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is damaged: {exc}") from None
    if not result or result[0] != "ok":
        raise BackupError(f"{path} is damaged: {result[0] if result else 'no answer'}")


def _take_owner_and_mode(path: Path, like: os.stat_result) -> None:
    if os.geteuid() == 0:
        os.chown(path, like.st_uid, like.st_gid)
    # A folder's mode has execute bits a database file has no use for.
    os.chmod(path, like.st_mode & 0o666 if stat.S_ISREG(like.st_mode) else 0o600)


def _fsync(path: Path) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
