"""A school's own resources in the database, beside the shipped catalog.

`coach catalog import` writes them here (the catalog_resources table, one row
per resource, `data` in the catalog's source field names); the shipped catalog
stays in content/catalog. They meet only in `merged_catalog`, where the school's
version of a resource wins, so a shipped catalog update never overwrites a
school's own edit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.coach.catalog import Catalog, Resource, resource_from_source, url_key
from bot.coach.catalog_formats import (
    Progress,
    Rows,
    read_resources,
    source_mapping,
    without_cycle_collector,
)
from bot.engine.topics import Vocabulary
from bot.store.db import Database
from bot.store.models import CatalogResource

log = logging.getLogger(__name__)

# Rows per executemany call while saving: how often the progress bar moves (a
# 50,000-row import moves it 50 times); the statement is the same for every batch.
BATCH = 1000


@dataclass(slots=True)
class ImportSummary:
    """What an import did: counts of resources, and each rejected row with the reason.

    `updated` counts resources that existed (the school's own, or shipped ones the
    school now edits) and changed; `unchanged` ones were already exactly so.
    """

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)


async def import_resources(
    db: Database,
    path: Path,
    vocabulary: Vocabulary,
    shipped: Catalog,
    now: datetime,
    progress: Progress | None = None,
    *,
    dry_run: bool = False,
) -> ImportSummary:
    """Import a CSV or JSON-LD file of resources into the school's catalog (see
    `import_rows`). Raises catalog_formats.FormatError, before touching the database,
    if the file cannot be read at all.
    """
    # Reading and checking 50,000 rows takes seconds: off the event loop.
    rows = await asyncio.to_thread(read_resources, path, vocabulary, progress)
    return await import_rows(db, rows, path.name, shipped, now, progress, dry_run=dry_run)


async def import_rows(
    db: Database,
    rows: Rows,
    origin: str,
    shipped: Catalog,
    now: datetime,
    progress: Progress | None = None,
    *,
    dry_run: bool = False,
) -> ImportSummary:
    """Save a file's checked rows (catalog_formats.read_resources) as the school's own.

    Rows are matched by id: a new id is added; a known one (the school's, or a
    shipped one the school now edits) is updated if it differs from the version in
    effect, and left alone if not, so importing an unedited export changes nothing.
    A row whose address belongs to another resource, shipped or the school's, is
    rejected with the reason; the file's own bad rows arrive rejected already. All
    the good rows are written in one transaction: a crash leaves the table as it
    was. `dry_run` counts and rejects the same way and writes nothing. `origin` is
    the file's name, kept on each row written.
    """
    summary = ImportSummary(rejected=list(rows.rejected))
    # Tens of thousands of acyclic dicts loaded and compared: see without_cycle_collector.
    with without_cycle_collector():
        async with db.transaction() as session:
            await _save(session, rows, origin, shipped, now, progress, summary, dry_run=dry_run)
    summary.rejected = rows.in_file_order(summary.rejected)
    # Counts and the file's name only: resource text is the school's content, not a log's.
    log.info(
        "catalog import of %s%s: added %d, updated %d, unchanged %d, rejected %d",
        origin,
        " (dry run)" if dry_run else "",
        summary.added,
        summary.updated,
        summary.unchanged,
        len(summary.rejected),
    )
    return summary


async def _save(
    session: AsyncSession,
    rows: Rows,
    origin: str,
    shipped: Catalog,
    now: datetime,
    progress: Progress | None,
    summary: ImportSummary,
    *,
    dry_run: bool,
) -> None:
    """import_rows inside its transaction: compare with what is in effect, then upsert."""
    table = CatalogResource.__table__  # type: ignore[attr-defined]
    stored: dict[str, Any] = dict((await session.exec(select(table.c.id, table.c.data))).all())
    current = _current_sources(shipped, stored)
    owners = {url_key(data["url"]): rid for rid, data in current.items()}
    writes: list[dict[str, Any]] = []
    for label, mapping in rows.good:
        rid, url = mapping["id"], mapping["url"]
        owner = owners.get(url_key(url))
        if owner is not None and owner != rid:
            where = " in the shipped catalog" if owner not in stored else ""
            summary.rejected.append(
                (label, f"resource {rid!r}: address {url} is already used by {owner!r}{where}")
            )
            continue
        before = current.get(rid)
        if before == mapping:
            summary.unchanged += 1
            continue
        if before is None:
            summary.added += 1
        else:
            summary.updated += 1
            owners.pop(url_key(before["url"]), None)
        owners[url_key(url)] = rid
        current[rid] = mapping
        writes.append(
            {
                "id": rid,
                "data": mapping,
                "origin": origin[:200],
                "created_at": now,
                "updated_at": now,
            }
        )
    if not dry_run:
        await _upsert(session, writes, progress)


def _current_sources(shipped: Catalog, stored: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every resource now in effect by id, as source mappings: the school's rows over the
    shipped ones (a stored row that is not a mapping with an address is left out)."""
    current = {r.id: source_mapping(r) for r in shipped}
    for rid, data in stored.items():
        if isinstance(data, dict) and isinstance(data.get("url"), str):
            current[rid] = data
    return current


async def _upsert(
    session: AsyncSession, rows: Sequence[dict[str, Any]], progress: Progress | None
) -> None:
    """Insert or update rows by id; created_at stays as it was."""
    table = CatalogResource.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert: Callable[..., Any] = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # One statement, compiled once, run for each batch of rows with the driver's
    # executemany: a multi-row VALUES statement would be compiled afresh per batch,
    # which measured slower than the writing itself (~6 s of 8 for 50,000 rows).
    statement = insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.id],
        set_={
            "data": statement.excluded.data,
            "origin": statement.excluded.origin,
            "updated_at": statement.excluded.updated_at,
        },
    )
    for start in range(0, len(rows), BATCH):
        if progress is not None:
            progress("saving", start, len(rows))
        await session.exec(statement, params=rows[start : start + BATCH])
    if progress is not None:
        progress("saving", len(rows), len(rows))


async def school_resources(session: AsyncSession) -> list[Resource]:
    """The school's own resources by id; a row that no longer loads is skipped, not fatal."""
    found: list[Resource] = []
    rows = (
        await session.exec(
            select(CatalogResource.id, CatalogResource.data).order_by(col(CatalogResource.id))
        )
    ).all()
    # Paused only around the loop, never across an await: the collector is process-wide
    # and other conversations run while this one waits for the database.
    with without_cycle_collector():  # tens of thousands of rows: see there
        for rid, data in rows:
            try:
                found.append(resource_from_source(data))
            except (TypeError, ValueError, KeyError):
                log.warning("catalog resource %s no longer loads; left out", rid)
    return found


async def catalog_revision(session: AsyncSession) -> tuple[int, datetime | None]:
    """The school catalog's revision: how many rows and the newest change. One indexed
    aggregate (updated_at has an index), cheap enough to ask before every rebuild."""
    count, newest = (
        await session.exec(select(func.count(), func.max(CatalogResource.updated_at)))
    ).one()
    return int(count), newest


def merged_catalog(shipped: Catalog, school: Sequence[Resource]) -> Catalog:
    """The catalog a school's learners see: the shipped one with the school's resources.

    A school resource with a shipped id replaces that resource in place; new ones
    follow in order. A shipped resource at an address a school resource now has
    (a later shipped update added it under another id) gives way too: the school's
    entry is the one the school maintains.
    """
    claimed = {url_key(r.url): r.id for r in school}
    resources = {
        rid: resource
        for rid, resource in shipped.resources.items()
        if claimed.get(url_key(resource.url), rid) == rid
    }
    for resource in school:
        resources[resource.id] = resource
    return Catalog(resources, shipped.files)
