"""Check-in reminders (issue 5): at the learner's chosen day and time, one reminder;
two days later, one gentle follow-up if they have not checked in since.

A scheduler job (bot/coach/jobs.py). Each tick it looks at every learner with a
check-in day and time, works out their appointment this week and last week in
their own time zone (bot/coach/delivery_rules.py), and writes what has come due
as an outbox row with a deterministic key, `reminder:{person}:{local date}` and
`reminder:{person}:{local date}:followup`, so it is written once however many
replicas run the job. Nothing goes in quiet hours (the row waits for the window
to end), nothing while paused or stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.coach.delivery_rules import (
    QuietHours,
    at_local,
    is_paused,
    local_date,
    next_allowed,
    parse_hhmm,
    quiet_hours_of,
    weekly_occurrence,
    zone_of,
)
from bot.coach.jobs import JobContext
from bot.engine.locales import Catalogs
from bot.engine.messages import Button, Reply
from bot.store.models import CheckIn, OutboxMessage, Person
from bot.store.outbox import enqueue

# A reminder whose time passed while no scheduler ran (a deploy, an outage) is still
# sent up to this late; after that it would read as a mistake, and is dropped.
CATCH_UP = timedelta(hours=12)
# Issue 5: "at most one gentle follow-up two days later if they did not check in".
FOLLOW_UP_DAYS = 2
# The button's value names the flow it starts (the engine starts a flow a button names).
CHECKIN_FLOW = "checkin"


@dataclass(frozen=True, slots=True)
class _Due:
    person: Person
    key: str
    wanted: datetime  # the appointment, UTC
    follow_up: bool
    since: datetime  # for a follow-up: the reminder's time (a check-in since cancels it)


def _locale(catalogs: Catalogs, person: Person) -> str:
    return person.locale if person.locale in catalogs.locales else "en"


def reminder_reply(catalogs: Catalogs, person: Person, *, follow_up: bool) -> Reply:
    """The reminder (or the follow-up) in the learner's language, with a check-in button."""
    locale = _locale(catalogs, person)
    base = "reminders.followup" if follow_up else "reminders.checkin"
    key = f"{base}_named" if person.name else base
    text = catalogs.render(key, locale, {"name": person.name or ""})
    button = Button(catalogs.render("reminders.button", locale), CHECKIN_FLOW)
    return Reply(text, (button,))


def _candidates(person: Person, now: datetime) -> list[_Due]:
    """What may be due for one learner now: this or last week's reminder, and its
    follow-up (a follow-up can fall in the week after its reminder)."""
    if person.checkin_weekday is None or not person.checkin_time or person.id is None:
        return []
    try:
        moment: time = parse_hhmm(person.checkin_time)
    except ValueError:
        return []
    if not 1 <= person.checkin_weekday <= 7:
        return []
    zone = zone_of(person.timezone)
    # Nothing from before they chose a time (or joined): no reminder at onboarding's end.
    start = person.onboarded_at or person.created_at
    found: list[_Due] = []
    for weeks_back in (0, 1):
        at = weekly_occurrence(now, zone, person.checkin_weekday, moment, weeks_back=weeks_back)
        if at > now or (start is not None and at < start):
            continue
        day = local_date(at, zone).isoformat()
        key = f"reminder:{person.id}:{day}"
        if now - at <= CATCH_UP and not is_paused(person, at) and not is_paused(person, now):
            found.append(_Due(person, key, at, follow_up=False, since=at))
        later = at_local(local_date(at, zone) + timedelta(days=FOLLOW_UP_DAYS), moment, zone)
        if later <= now and now - later <= CATCH_UP and not is_paused(person, now):
            found.append(_Due(person, f"{key}:followup", later, follow_up=True, since=at))
    return found


async def _existing(session: AsyncSession, keys: list[str]) -> dict[str, str]:
    """dedupe key -> status, for the keys already written."""
    if not keys:
        return {}
    rows = await session.exec(
        select(OutboxMessage.dedupe_key, OutboxMessage.status).where(
            col(OutboxMessage.dedupe_key).in_(keys)
        )
    )
    return dict(rows.all())


async def _checked_in_since(session: AsyncSession, person_id: int, since: datetime) -> bool:
    row = await session.exec(
        select(CheckIn.id)
        .where(CheckIn.person_id == person_id)
        .where(col(CheckIn.created_at) >= since)
        .limit(1)
    )
    return row.first() is not None


# The database narrows the learners to those whose appointment (or follow-up) fell in
# the window being looked at; zone offsets move by at most an hour at a daylight-saving
# change, so the window is widened by that much and `_candidates` decides exactly.
_MARGIN = timedelta(hours=1)


def _window_filter(zone_name: str, start: datetime, end: datetime) -> ColumnElement[bool]:
    """Learners in `zone_name` whose weekly (weekday, "HH:MM") falls in [start, end]
    read in that zone's local time (a window spans at most a few local dates)."""
    zone = zone_of(zone_name)
    first, last = start.astimezone(zone), end.astimezone(zone)
    parts = []
    day = first.date()
    while day <= last.date():
        low = first.strftime("%H:%M") if day == first.date() else "00:00"
        high = last.strftime("%H:%M") if day == last.date() else "23:59"
        parts.append(
            and_(
                col(Person.checkin_weekday) == day.isoweekday(),
                col(Person.checkin_time) >= low,
                col(Person.checkin_time) <= high,
            )
        )
        day += timedelta(days=1)
    return and_(col(Person.timezone) == zone_name, or_(*parts))


async def _learners_due(session: AsyncSession, now: datetime, since: datetime) -> Sequence[Person]:
    """Learners with a reminder (appointment in [since, now]) or a follow-up (appointment
    two days before that) that may be due: a few per tick, not every learner."""
    zones = (
        await session.exec(
            select(Person.timezone)
            .where(Person.role == "learner")
            .where(col(Person.checkin_weekday).is_not(None))
            .distinct()
        )
    ).all()
    if not zones:
        return []
    start, end = since - _MARGIN, now + _MARGIN
    back = timedelta(days=FOLLOW_UP_DAYS)
    windows = [
        _window_filter(zone, s, e)
        for zone in zones
        for s, e in ((start, end), (start - back, end - back))
    ]
    return (
        await session.exec(
            select(Person)
            .where(Person.role == "learner")
            .where(col(Person.checkin_time).is_not(None))
            .where(col(Person.stopped_at).is_(None))
            .where(or_(*windows))
        )
    ).all()


class CheckinReminders:
    """The job as the scheduler runs it: after the first tick (which catches up on the
    last CATCH_UP), each tick looks only at appointments since the previous one."""

    def __init__(self) -> None:
        self.covered_until: datetime | None = None

    async def __call__(self, ctx: JobContext) -> int:
        since = ctx.now - CATCH_UP
        if self.covered_until is not None:
            since = max(since, self.covered_until)
        written = await checkin_reminders(ctx, since=since)
        self.covered_until = ctx.now
        return written


async def checkin_reminders(ctx: JobContext, *, since: datetime | None = None) -> int:
    """The job: write every reminder and follow-up that is due now (looking at
    appointments since `since`, default the last CATCH_UP); return how many."""
    default_quiet = QuietHours.parse(ctx.settings.quiet_hours)
    written = 0
    async with ctx.db.reading() as session:
        learners = await _learners_due(session, ctx.now, since or ctx.now - CATCH_UP)
    due = [item for person in learners for item in _candidates(person, ctx.now)]
    if not due:
        return 0
    async with ctx.db.transaction() as session:
        # Most ticks find everything already written: one query answers that.
        existing = await _existing(
            session,
            [item.key for item in due]
            + [item.key.removesuffix(":followup") for item in due if item.follow_up],
        )
        for item in due:
            if item.key in existing:
                continue
            person = item.person
            assert person.id is not None
            if item.follow_up:
                reminder = item.key.removesuffix(":followup")
                # Only after a reminder that went out, and only if they have not checked
                # in since it was due.
                if existing.get(reminder) != "sent":
                    continue
                if await _checked_in_since(session, person.id, item.since):
                    continue
            zone = zone_of(person.timezone)
            # A late tick (after a restart) sends from now, never into the past's night.
            wanted = max(item.wanted, ctx.now)
            when = next_allowed(wanted, zone, quiet_hours_of(person, default_quiet))
            reply = reminder_reply(ctx.catalogs, person, follow_up=item.follow_up)
            if await enqueue(
                session,
                person_id=person.id,
                kind="reminder",
                payload={"reply": reply.to_json()},
                dedupe_key=item.key,
                due_at=when,
                now=ctx.now,
            ):
                written += 1
    return written
