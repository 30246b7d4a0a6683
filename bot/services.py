"""Builds what a running Coach needs from its settings: database, dialog, turn service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.clock import Clock, SystemClock
from bot.coach.actions import build_registry
from bot.coach.catalog import Catalog, CatalogError, load_catalog
from bot.coach.recommend import area_labels_from
from bot.coach.resources import EXTRAS_KEY, ResourceLibrary
from bot.coach.safety_alerts import EXTRAS_KEY as SAFEGUARDING
from bot.coach.safety_alerts import Safeguarding
from bot.config import Settings
from bot.engine.actions import ActionRegistry
from bot.engine.flows import FlowError, FlowSet, check_flows, load_flows
from bot.engine.locales import Catalogs
from bot.engine.runtime import Dialog
from bot.engine.topics import Vocabulary
from bot.engine.turns import Defaults, TurnService
from bot.engine.understand import IntentMatcher
from bot.engine.yamlfile import YamlError
from bot.store.db import Database


@dataclass(frozen=True)
class Content:
    """What the dialog is made of, read from COACH_DIALOGS_DIR and COACH_CONTENT_DIR and
    checked; the same for every Dialog built from those folders (tests share one)."""

    flows: FlowSet
    catalogs: Catalogs
    intents: IntentMatcher
    actions: ActionRegistry
    vocabulary: Vocabulary
    shipped: Catalog


def load_content(settings: Settings) -> Content:
    """Load and check flows, catalogs, intents, vocabulary and the shipped catalog;
    FlowError lists every problem."""
    dialogs = settings.dialogs_dir
    if not dialogs.is_dir():
        raise FlowError([f"{dialogs}: the dialogs folder does not exist or is not readable"])
    problems: list[str] = []
    try:
        catalogs = Catalogs.load(dialogs / "locales")
    except YamlError as exc:
        raise FlowError([str(exc)]) from None
    problems.extend(catalogs.problems())
    try:
        intents = IntentMatcher.load(dialogs / "intents")
    except (ValueError, OSError) as exc:
        raise FlowError([str(exc)]) from None
    try:
        vocabulary = Vocabulary.load(settings.content_dir / "vocabulary.yaml")
    except (ValueError, OSError) as exc:
        raise FlowError([str(exc)]) from None
    flows = load_flows(dialogs / "flows")
    actions = build_registry()
    problems.extend(
        check_flows(
            flows,
            catalogs,
            actions.names(),
            intents.intents(),
            actions.slots(),
            readers=actions.readers.keys(),
        )
    )
    for required in ("main", "menu"):
        if required not in flows.flows:
            problems.append(f"{dialogs / 'flows'}: no {required!r} flow (the engine starts there)")
    shipped = Catalog({})
    try:
        shipped = load_catalog(settings.content_dir / "catalog", vocabulary)
    except CatalogError as exc:
        problems.extend(exc.problems)
    except OSError as exc:
        problems.append(f"{settings.content_dir / 'catalog'}: {exc.strerror or exc}")
    if problems:
        raise FlowError(problems)
    return Content(flows, catalogs, intents, actions, vocabulary, shipped)


def assemble_dialog(content: Content, settings: Settings) -> Dialog:
    """A Dialog from loaded content and the settings that shape it (idle time, crisis
    contacts); its resource library starts fresh (it caches per database)."""
    library = ResourceLibrary(
        content.shipped, content.vocabulary, area_labels_from(content.catalogs)
    )
    return Dialog(
        content.flows,
        content.catalogs,
        content.intents,
        content.actions,
        content.vocabulary,
        idle_after=timedelta(hours=settings.idle_resume_hours),
        extras={
            EXTRAS_KEY: library,
            SAFEGUARDING: Safeguarding.build(settings, content.catalogs),
        },
    )


def load_dialog(settings: Settings) -> Dialog:
    """Load, check and assemble the dialog; FlowError lists every problem."""
    return assemble_dialog(load_content(settings), settings)


@dataclass
class Services:
    settings: Settings
    clock: Clock
    db: Database
    dialog: Dialog
    turns: TurnService

    async def close(self) -> None:
        await self.db.dispose()


def build_services(
    settings: Settings,
    clock: Clock | None = None,
    db: Database | None = None,
    *,
    content: Content | None = None,
) -> Services:
    clock = clock or SystemClock()
    dialog = assemble_dialog(content, settings) if content else load_dialog(settings)
    db = db or Database(settings.database_url, pool_size=settings.db_pool_size)
    turns = TurnService(
        db,
        dialog,
        clock,
        defaults=Defaults(locale=settings.default_locale, timezone=settings.timezone),
        # Telegram's and Slack's replies are pushed through the outbox, not returned in a
        # response.
        push_channels=tuple(
            name
            for name, on in (
                ("telegram", settings.telegram_token is not None),
                ("slack", settings.slack_enabled),
            )
            if on
        ),
    )
    return Services(settings=settings, clock=clock, db=db, dialog=dialog, turns=turns)
