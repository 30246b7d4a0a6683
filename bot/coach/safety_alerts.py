"""Safeguarding alerts: what happens when the safety screen flags a learner's message.

Every learner message is screened before the dialog sees it (`screen_message`, the
first interceptor in bot/coach/actions.py). On a match, in the same transaction:

1. the learner gets a caring reply with crisis contacts (COACH_CRISIS_CONTACTS_EN/_ES)
   and is told a trusted adult has been let know, and the flow they were in is put
   aside (ActionContext.pause_flow): their next message offers to carry on;
2. an alert opens (SafetyAlert). One stays open per learner and category: a repeat
   before someone acknowledges it is answered with the same care but opens nothing
   new and tells no one again (the re-sends keep going); a different category, or
   anything after an acknowledgement, opens a new alert;
3. the learner's class teachers and the deployment's safeguarding contact
   (COACH_SAFEGUARDING_CONTACT) are notified at once: outbox rows of kind "alert", due
   now, dedupe key `alert:{id}:{round}:{person}`. The dispatcher sends alerts at any
   hour and outside the weekly caps. The family is never told. The alert names the
   learner, the category in plain words and the time in the reader's zone, never the
   learner's words.

Until someone sends /ack ID, the job `resend_unacknowledged_alerts` notifies everyone
again every COACH_SAFETY_RESEND_MINUTES (30: issue 5). /ack records who and when and
tells the others who was told; /alerts lists the open ones a person may see (their
own learners' for a teacher, all for the safeguarding contact).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_skeleton, format_time
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.coach.access import audit, class_teachers, teaches
from bot.coach.jobs import JobContext
from bot.coach.safety import PATTERNS_FILE, SafetyPatternError, Screen, load_screen
from bot.config import Settings, safeguarding_contacts
from bot.engine.actions import ActionContext, ActionRegistry
from bot.engine.flows import FlowError
from bot.engine.locales import Catalogs
from bot.engine.messages import Button, Reply
from bot.paths import shipped
from bot.store.models import (
    ChannelIdentity,
    Conversation,
    Enrollment,
    FamilyLink,
    OutboxMessage,
    Person,
    SafetyAlert,
    SchoolClass,
)
from bot.store.outbox import enqueue

log = logging.getLogger(__name__)

# ActionContext.extras key under which bot/services.py hands over the `Safeguarding`.
EXTRAS_KEY = "safeguarding"
ALERT_KIND = "alert"
# /alerts shows at most this many (the oldest first: they have waited longest); a
# school with more open alerts than this has a bigger problem than a long message.
LIST_LIMIT = 15
_ALERT_NUMBER = re.compile(r"#?\s*(\d{1,9})")


@dataclass(frozen=True, slots=True)
class Safeguarding:
    """What screening and alerting need in a turn: the deployment's settings, every
    locale's catalog (an alert is written in each reader's language) and the screen."""

    settings: Settings
    catalogs: Catalogs
    screen: Screen

    @classmethod
    def build(cls, settings: Settings, catalogs: Catalogs) -> Safeguarding:
        """Load the patterns (COACH_CONTENT_DIR's safety/patterns.yaml, else the shipped
        one); a broken file is a FlowError, reported like a broken flow."""
        try:
            return cls(settings, catalogs, load_screen(patterns_path(settings)))
        except SafetyPatternError as exc:
            raise FlowError([str(exc)]) from None


def patterns_path(settings: Settings) -> Path:
    own = settings.content_dir / PATTERNS_FILE
    return own if own.is_file() else shipped("content") / PATTERNS_FILE


@lru_cache(maxsize=1)
def _fallback() -> Safeguarding:
    # Only for a Dialog built without bot/services.py (a bare test rig): the screen
    # must never be off, so it runs with the environment's settings.
    settings = Settings()
    log.warning("safety screen running without services' settings; using the environment")
    return Safeguarding.build(settings, Catalogs.load(settings.dialogs_dir / "locales"))


def _desk(ctx: ActionContext) -> Safeguarding:
    found = ctx.extras.get(EXTRAS_KEY)
    return found if isinstance(found, Safeguarding) else _fallback()


# -- words -------------------------------------------------------------------------------


def _locale(person: Person, catalogs: Catalogs) -> str:
    return person.locale if person.locale in catalogs.locales else "en"


def _zone(person: Person) -> ZoneInfo:
    try:
        return ZoneInfo(person.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def when(moment: datetime, reader: Person, locale: str) -> str:
    """A moment as the reader reads it: their zone and language ("Mon, Nov 23, 3:05 PM")."""
    zone = _zone(reader)
    local = moment.astimezone(zone)
    day = format_skeleton("MMMEd", local, tzinfo=zone, locale=locale)
    return f"{day}, {format_time(local, 'short', tzinfo=zone, locale=locale)}"


def learner_label(learner: Person, catalogs: Catalogs, locale: str) -> str:
    if learner.name:
        return learner.name
    return catalogs.render("safety.unnamed", locale, {"id": learner.id})


def crisis_lines(settings: Settings, locale: str) -> str:
    """The crisis contacts for the learner's language, one per line."""
    raw = settings.crisis_contacts_es if locale == "es" else settings.crisis_contacts_en
    lines = [line.strip() for line in re.split(r"[;\n]", raw) if line.strip()]
    return "\n".join(f"• {line}" for line in lines)


async def _class_names(session: AsyncSession, learner_id: int, teacher_id: int | None) -> str:
    """The learner's classes the reader runs (all of them for the safeguarding contact)."""
    query = (
        select(SchoolClass.name)
        .join(Enrollment, col(Enrollment.class_id) == col(SchoolClass.id))
        .where(Enrollment.learner_id == learner_id)
        .where(col(SchoolClass.archived_at).is_(None))
        .order_by(col(SchoolClass.name))
    )
    if teacher_id is not None:
        query = query.where(SchoolClass.teacher_id == teacher_id)
    return ", ".join((await session.exec(query)).all())


# -- who hears of an alert ---------------------------------------------------------------


async def contact_people(session: AsyncSession, settings: Settings, now: datetime) -> list[Person]:
    """The safeguarding contact(s), as people. An identity nobody has used yet (a Slack
    user who never wrote to the bot) is created, so alerts can reach it at once."""
    people: list[Person] = []
    for channel, external_id in safeguarding_contacts(settings.safeguarding_contact):
        identity = (
            await session.exec(
                select(ChannelIdentity).where(
                    ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
                )
            )
        ).first()
        if identity is None:
            person = Person(
                role="admin",
                locale=settings.default_locale,
                timezone=settings.timezone,
                created_at=now,
                updated_at=now,
            )
            session.add(person)
            await session.flush()
            assert person.id is not None
            session.add(
                ChannelIdentity(
                    channel=channel,
                    external_id=external_id,
                    person_id=person.id,
                    created_at=now,
                    last_seen_at=now,
                )
            )
            # Every person has their conversation row from the start (the turn service
            # relies on it). Marked started: the contact's first message is most likely
            # the alert's /ack button, which must act, not open a first-contact welcome.
            session.add(Conversation(person_id=person.id, meta={"started": True}, updated_at=now))
            await session.flush()
            log.info("safeguarding contact identity created", extra={"channel": channel})
            people.append(person)
            continue
        found = await session.get(Person, identity.person_id)
        if found is not None:
            people.append(found)
    return people


async def is_contact(session: AsyncSession, person: Person, settings: Settings) -> bool:
    """Whether `person` is (one of) the deployment's safeguarding contact(s)."""
    wanted = set(safeguarding_contacts(settings.safeguarding_contact))
    if not wanted:
        return False
    rows = await session.exec(
        select(ChannelIdentity.channel, ChannelIdentity.external_id).where(
            ChannelIdentity.person_id == person.id
        )
    )
    return any((channel, external_id) in wanted for channel, external_id in rows.all())


async def recipients(
    session: AsyncSession, learner: Person, settings: Settings, now: datetime
) -> list[tuple[Person, bool]]:
    """Who hears of this learner's alerts: (person, is the safeguarding contact).

    Their class teachers and the safeguarding contact; never a family member of theirs
    (not even a contact who happens to be one), never the learner.
    """
    assert learner.id is not None
    family = set(
        (
            await session.exec(
                select(FamilyLink.family_id).where(FamilyLink.learner_id == learner.id)
            )
        ).all()
    )
    chosen: dict[int, tuple[Person, bool]] = {}
    for teacher in await class_teachers(session, learner.id):
        if teacher.id is not None:
            chosen[teacher.id] = (teacher, False)
    for contact in await contact_people(session, settings, now):
        if contact.id is not None:
            chosen[contact.id] = (contact, True)
    return [pair for person_id, pair in chosen.items() if person_id not in family | {learner.id}]


async def notify(
    session: AsyncSession,
    alert: SafetyAlert,
    learner: Person,
    *,
    round_no: int,
    settings: Settings,
    catalogs: Catalogs,
    now: datetime,
) -> int:
    """Write round `round_no` of an alert's notifications; how many rows were written."""
    assert alert.id is not None
    assert learner.id is not None
    written = 0
    people = await recipients(session, learner, settings, now)
    for person, contact in people:
        assert person.id is not None
        locale = _locale(person, catalogs)
        params = {
            "id": alert.id,
            "learner": learner_label(learner, catalogs, locale),
            "classes": await _class_names(session, learner.id, None if contact else person.id),
            "category": catalogs.render(f"safety.category.{alert.category}", locale),
            "time": when(alert.opened_at, person, locale),
            "count": round_no - 1,
        }
        key = "safety.alert" if round_no == 1 else "safety.alert_again"
        text = catalogs.render(key, locale, params)
        if params["classes"]:
            text = f"{text}\n{catalogs.render('safety.alert_classes', locale, params)}"
        button = Button(catalogs.render("safety.button_ack", locale, params), f"/ack {alert.id}")
        written += await enqueue(
            session,
            person_id=person.id,
            kind=ALERT_KIND,
            payload={"reply": Reply(text, (button,)).to_json(), "alert_id": alert.id},
            dedupe_key=f"alert:{alert.id}:{round_no}:{person.id}",
            due_at=now,
            now=now,
        )
    if round_no == 1:
        # Telling a teacher about a learner is a disclosure of that learner's data.
        for person, _ in people:
            await audit(
                session,
                actor_id=person.id,
                subject_ids=[learner.id],
                action="alert",
                now=now,
                detail=f"alert {alert.id}",
            )
    if not written:
        # Nobody at all can be told: an operator must hear of it (never the text).
        log.warning(
            "safety alert has nobody to notify",
            extra={"alert_id": alert.id, "learner_id": learner.id, "round": round_no},
        )
    return written


# -- the screen in the turn ----------------------------------------------------------------


async def open_alert(
    session: AsyncSession, learner_id: int, category: str, now: datetime
) -> tuple[SafetyAlert, bool]:
    """The learner's open alert of this category, or a new one; True when new."""
    existing = (
        await session.exec(
            select(SafetyAlert)
            .where(SafetyAlert.learner_id == learner_id)
            .where(SafetyAlert.category == category)
            .where(col(SafetyAlert.acknowledged_at).is_(None))
            .order_by(col(SafetyAlert.id).desc())
            .limit(1)
        )
    ).first()
    if existing is not None:
        return existing, False
    alert = SafetyAlert(learner_id=learner_id, category=category, opened_at=now)
    session.add(alert)
    await session.flush()
    return alert, True


async def _anyone_told(session: AsyncSession, alert_id: int) -> bool:
    row = await session.exec(
        select(OutboxMessage.id)
        .where(OutboxMessage.kind == ALERT_KIND)
        .where(col(OutboxMessage.dedupe_key).startswith(f"alert:{alert_id}:"))
        .limit(1)
    )
    return row.first() is not None


async def screen_message(ctx: ActionContext) -> bool:
    """The interceptor: screen a learner's message; on a match, care, alert, pause."""
    learner = ctx.person
    if learner.role != "learner" or learner.id is None:
        return False
    desk = _desk(ctx)
    finding = desk.screen.check(ctx.said)
    if finding is None:
        return False
    alert, new = await open_alert(ctx.session, learner.id, finding.category, ctx.now)
    assert alert.id is not None
    if new:
        told = await notify(
            ctx.session,
            alert,
            learner,
            round_no=1,
            settings=desk.settings,
            catalogs=desk.catalogs,
            now=ctx.now,
        )
        alert.notified_count = 1
        alert.last_notified_at = ctx.now
    else:
        told = await _anyone_told(ctx.session, alert.id)
    # Ids and the category only: the learner's words never reach the log.
    log.info(
        "safety screen matched",
        extra={"alert_id": alert.id, "category": finding.category, "new_alert": new},
    )
    # Answer in Spanish when they wrote in Spanish, whatever their setting (Spanish
    # patterns only match Spanish; English ones also catch slang like "kms" that
    # Spanish speakers use, so an English match keeps the learner's own language).
    locale = "es" if finding.language == "es" else _locale(learner, desk.catalogs)
    for key, params in (
        (f"safety.care.{finding.category}", {}),
        ("safety.contacts", {"contacts": crisis_lines(desk.settings, locale)}),
        ("safety.told" if told else "safety.here", {}),
    ):
        ctx.replies.append(Reply(desk.catalogs.render(key, locale, params)))
    ctx.pause_flow = True
    return True


# -- the re-send job ---------------------------------------------------------------------


async def resend_unacknowledged_alerts(ctx: JobContext) -> int:
    """Notify everyone again about each alert nobody acknowledged for the interval."""
    every = timedelta(minutes=ctx.settings.safety_resend_minutes)
    written = 0
    async with ctx.db.transaction() as session:
        due = await session.exec(
            select(SafetyAlert, Person)
            .join(Person, col(Person.id) == col(SafetyAlert.learner_id))
            .where(col(SafetyAlert.acknowledged_at).is_(None))
            .where(col(SafetyAlert.last_notified_at) <= ctx.now - every)
            .order_by(col(SafetyAlert.id))
        )
        for alert, learner in due.all():
            round_no = alert.notified_count + 1
            # Claim the round: of two replicas running this job at once, one writes it.
            claimed = await session.exec(
                update(SafetyAlert)
                .where(col(SafetyAlert.id) == alert.id)
                .where(col(SafetyAlert.notified_count) == alert.notified_count)
                .where(col(SafetyAlert.acknowledged_at).is_(None))
                .values(notified_count=round_no, last_notified_at=ctx.now)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:
                continue
            written += await notify(
                session,
                alert,
                learner,
                round_no=round_no,
                settings=ctx.settings,
                catalogs=ctx.catalogs,
                now=ctx.now,
            )
    return written


# -- /ack and /alerts ----------------------------------------------------------------------


async def may_handle(session: AsyncSession, person: Person, settings: Settings) -> bool:
    """Teachers and the safeguarding contact may list and acknowledge alerts."""
    return person.role in ("teacher", "admin") or await is_contact(session, person, settings)


async def visible_open_alerts(
    session: AsyncSession, person: Person, settings: Settings
) -> list[tuple[SafetyAlert, Person]]:
    """Open alerts `person` may see: all for the contact, their learners' for a teacher."""
    query = (
        select(SafetyAlert, Person)
        .join(Person, col(Person.id) == col(SafetyAlert.learner_id))
        .where(col(SafetyAlert.acknowledged_at).is_(None))
        .order_by(col(SafetyAlert.opened_at), col(SafetyAlert.id))
    )
    if not await is_contact(session, person, settings):
        taught = (
            select(Enrollment.learner_id)
            .join(SchoolClass, col(SchoolClass.id) == col(Enrollment.class_id))
            .where(SchoolClass.teacher_id == person.id)
            .where(col(SchoolClass.archived_at).is_(None))
        )
        query = query.where(col(SafetyAlert.learner_id).in_(taught))
    return [(alert, learner) for alert, learner in (await session.exec(query)).all()]


async def may_see_alert(
    session: AsyncSession, person: Person, alert: SafetyAlert, settings: Settings
) -> bool:
    assert person.id is not None
    if await is_contact(session, person, settings):
        return True
    return person.role in ("teacher", "admin") and await teaches(
        session, person.id, alert.learner_id
    )


def _alert_number(said: str) -> int | None:
    """The number after /ack ("/ack 12", "/ack #12"), if any."""
    rest = said.split(maxsplit=1)[1] if len(said.split(maxsplit=1)) == 2 else ""
    found = _ALERT_NUMBER.match(rest.strip())
    return int(found.group(1)) if found else None


async def _list(ctx: ActionContext, desk: Safeguarding) -> None:
    found = await visible_open_alerts(ctx.session, ctx.person, desk.settings)
    if not found:
        ctx.say("safety.none_open")
        return
    locale = _locale(ctx.person, desk.catalogs)
    lines = [
        ctx.render(
            "safety.list_item",
            {
                "id": alert.id,
                "learner": learner_label(learner, desk.catalogs, locale),
                "category": desk.catalogs.render(f"safety.category.{alert.category}", locale),
                "time": when(alert.opened_at, ctx.person, locale),
                "count": alert.notified_count,
            },
        )
        for alert, learner in found[:LIST_LIMIT]
    ]
    if len(found) > LIST_LIMIT:
        lines.append(ctx.render("safety.list_more", {"count": len(found) - LIST_LIMIT}))
    header = ctx.render("safety.list_header", {"count": len(found)})
    footer = ctx.render("safety.list_footer", {"id": found[0][0].id})
    ctx.replies.append(Reply("\n".join([header, *lines, footer])))
    await audit(
        ctx.session,
        actor_id=ctx.person.id,
        subject_ids=sorted({learner.id for _, learner in found if learner.id is not None}),
        action="alert_list",
        now=ctx.now,
    )


async def list_alerts(ctx: ActionContext) -> None:
    """/alerts: the open alerts this teacher (or the safeguarding contact) may see."""
    desk = _desk(ctx)
    if not await may_handle(ctx.session, ctx.person, desk.settings):
        ctx.say("safety.staff_only")
        return
    await _list(ctx, desk)


async def acknowledge(ctx: ActionContext) -> None:
    """/ack ID: record who acknowledged the alert and when, and tell the others."""
    desk = _desk(ctx)
    person = ctx.person
    assert person.id is not None
    if not await may_handle(ctx.session, person, desk.settings):
        ctx.say("safety.staff_only")
        return
    number = _alert_number(ctx.said)
    if number is None:
        ctx.say("safety.ack_which")
        await _list(ctx, desk)
        return
    alert = await ctx.session.get(SafetyAlert, number)
    if alert is None or not await may_see_alert(ctx.session, person, alert, desk.settings):
        # The same answer whether it does not exist or is another class's: no hints.
        ctx.say("safety.ack_unknown", id=number)
        return
    learner = await ctx.session.get(Person, alert.learner_id)
    assert learner is not None
    locale = _locale(person, desk.catalogs)
    done = await ctx.session.exec(
        update(SafetyAlert)
        .where(col(SafetyAlert.id) == alert.id)
        .where(col(SafetyAlert.acknowledged_at).is_(None))
        .values(acknowledged_at=ctx.now, acknowledged_by=person.id)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        await ctx.session.refresh(alert)
        by = await ctx.session.get(Person, alert.acknowledged_by or -1)
        ctx.say(
            "safety.ack_already",
            id=alert.id,
            who=_who(by, desk.catalogs, locale),
            time=when(alert.acknowledged_at or ctx.now, person, locale),
        )
        return
    await audit(
        ctx.session,
        actor_id=person.id,
        subject_ids=[alert.learner_id],
        action="alert_ack",
        now=ctx.now,
        detail=f"alert {alert.id}",
    )
    others = await _told_about(ctx.session, alert.id or 0, exclude=person.id)
    for other in others:
        assert other.id is not None
        other_locale = _locale(other, desk.catalogs)
        text = desk.catalogs.render(
            "safety.acknowledged_by",
            other_locale,
            {
                "id": alert.id,
                "learner": learner_label(learner, desk.catalogs, other_locale),
                "who": _who(person, desk.catalogs, other_locale),
                "time": when(ctx.now, other, other_locale),
            },
        )
        await enqueue(
            ctx.session,
            person_id=other.id,
            kind=ALERT_KIND,
            payload={"reply": Reply(text).to_json(), "alert_id": alert.id},
            dedupe_key=f"alert:{alert.id}:ack:{other.id}",
            due_at=ctx.now,
            now=ctx.now,
        )
    ctx.say(
        "safety.ack_done",
        id=alert.id,
        learner=learner_label(learner, desk.catalogs, locale),
        time=when(ctx.now, person, locale),
    )


def _who(person: Person | None, catalogs: Catalogs, locale: str) -> str:
    if person is not None and person.name:
        return person.name
    return catalogs.render("safety.colleague", locale)


async def _told_about(session: AsyncSession, alert_id: int, *, exclude: int) -> list[Person]:
    """Everyone an alert was sent to, but `exclude`."""
    rows = await session.exec(
        select(Person)
        .where(
            col(Person.id).in_(
                select(OutboxMessage.person_id)
                .where(OutboxMessage.kind == ALERT_KIND)
                .where(col(OutboxMessage.dedupe_key).startswith(f"alert:{alert_id}:"))
            )
        )
        .where(col(Person.id) != exclude)
        .order_by(col(Person.id))
    )
    return list(rows.all())


# -- the export ----------------------------------------------------------------------------


async def export_alerts(session: AsyncSession, person: Person) -> list[dict[str, Any]]:
    """A learner's own alerts for their export: when, what kind, acknowledged when
    (not who: the staff member's identity is theirs, not the learner's)."""
    rows = await session.exec(
        select(SafetyAlert)
        .where(SafetyAlert.learner_id == person.id)
        .order_by(col(SafetyAlert.opened_at), col(SafetyAlert.id))
    )
    return [
        {
            "opened_at": alert.opened_at.isoformat(),
            "category": alert.category,
            "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
        }
        for alert in rows.all()
    ]


def register(actions: ActionRegistry) -> None:
    """The screen first of all interceptors; /ack and /alerts (dialogs/flows/safety.yaml)."""
    actions.intercept(screen_message)
    actions.register("safety.ack")(acknowledge)
    actions.register("safety.alerts")(list_alerts)
