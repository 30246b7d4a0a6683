"""/settings for every role: time zone and language for all; check-in day and time for
learners, digest day and time for teachers, how often to hear and consent for families.

Flow: dialogs/flows/settings.yaml. Days and times are said back in the person's
language through Babel; a time zone may be an IANA name or a city
(bot.coach.timezones).
"""

from __future__ import annotations

from datetime import time

from babel import Locale
from babel.dates import format_time

from bot.coach import access
from bot.coach.onboarding import (
    EARLIEST,
    LATEST,
    day_name,
    parse_checkin_time,
    time_words,
    within_reminder_hours,
)
from bot.coach.school import learner_label, role_group
from bot.coach.timezones import resolve_zone, zone_of
from bot.engine.actions import ActionContext, ActionRegistry
from bot.engine.runtime import MISSES_BEFORE_WAY_OUT
from bot.store.models import NUDGE_FREQUENCIES, FamilyLink, Person

CHOICES = "settings.choices"
WHAT = "settings.what"
OK = "settings.ok"
MISSES = "settings.misses"
ZONE_SAID = "settings.zone_said"
LOCALE = "settings.locale"
WEEKDAY = "settings.weekday"
TIME_SAID = "settings.time_said"
FREQUENCY = "settings.frequency"
HAS_LINKS = "settings.has_links"
LEARNER_CHOICES = "settings.learner_choices"
LEARNER_ID = "settings.learner_id"
LEARNER = "settings.learner"
CONSENT = "settings.consent"
DONE = "done"

# Issue 5: a teacher's digest goes out on Fridays at 15:00 unless they choose otherwise.
DEFAULT_DIGEST_WEEKDAY = 5
DEFAULT_DIGEST_TIME = time(15, 0)
# What each role may change, in the order the buttons show.
_ITEMS = {
    "learner": ("timezone", "language", "checkin", "quiet_hours"),
    "teacher": ("timezone", "language", "digest", "quiet_hours"),
    "family": ("timezone", "language", "nudges", "sharing", "quiet_hours"),
}
QUIET_START_SAID = "settings.quiet_start_said"


def language_name(code: str, locale: str) -> str:
    """ "Spanish" or "español": a language's name in the person's language (Babel)."""
    return str(Locale.parse(code).get_display_name(locale) or code)


def _hhmm(value: str | None, default: time) -> time:
    if value:
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    return default


def current_lines(ctx: ActionContext) -> list[str]:
    """One line per setting the person has, in their language."""
    person = ctx.person
    zone = zone_of(person.timezone)
    local_now = ctx.now.astimezone(zone)
    lines = [
        ctx.render(
            "settings.current_zone",
            {
                "zone": person.timezone,
                "time": format_time(local_now, format="short", locale=ctx.locale),
            },
        ),
        ctx.render(
            "settings.current_language", {"language": language_name(person.locale, ctx.locale)}
        ),
    ]
    group = role_group(person)
    if group == "learner":
        if person.checkin_weekday and person.checkin_time:
            params = {
                "day": day_name(person.checkin_weekday, ctx.locale),
                "time": time_words(_hhmm(person.checkin_time, EARLIEST), ctx.locale),
            }
            lines.append(ctx.render("settings.current_checkin", params))
    elif group == "teacher":
        params = {
            "day": day_name(person.digest_weekday or DEFAULT_DIGEST_WEEKDAY, ctx.locale),
            "time": time_words(_hhmm(person.digest_time, DEFAULT_DIGEST_TIME), ctx.locale),
        }
        lines.append(ctx.render("settings.current_digest", params))
    else:
        frequency = person.nudge_frequency or "weekly"
        lines.append(ctx.render(f"settings.current_nudges_{frequency}", {}))
    if person.quiet_start and person.quiet_end:
        params = {
            "start": time_words(_hhmm(person.quiet_start, EARLIEST), ctx.locale),
            "end": time_words(_hhmm(person.quiet_end, EARLIEST), ctx.locale),
        }
        lines.append(ctx.render("settings.current_quiet", params))
    else:
        lines.append(ctx.render("settings.current_quiet_default", {}))
    return lines


def _read_time(ctx: ActionContext) -> time | None:
    """The time in TIME_SAID, or None after saying what was wrong (the flow asks again).

    After `MISSES_BEFORE_WAY_OUT` misses the setting is left as it was."""
    said = str(ctx.slots.get(TIME_SAID) or "")
    parsed = parse_checkin_time(said)
    problem: str | None = None
    if parsed is None:
        problem = "settings.time_unclear"
    elif not within_reminder_hours(parsed.at):
        problem = "settings.time_outside"
    if problem is None:
        assert parsed is not None
        ctx.slots[OK] = True
        return parsed.at
    misses = int(ctx.slots.get(MISSES) or 0) + 1
    ctx.slots[MISSES] = misses
    ctx.slots[OK] = misses >= MISSES_BEFORE_WAY_OUT
    ctx.say(
        problem,
        time=time_words(parsed.at, ctx.locale) if parsed else "",
        earliest=time_words(EARLIEST, ctx.locale),
        latest=time_words(LATEST, ctx.locale),
    )
    if ctx.slots[OK]:
        ctx.say("settings.unchanged")
    return None


async def _learners(ctx: ActionContext) -> list[tuple[Person, FamilyLink]]:
    assert ctx.person.id is not None
    return await access.linked_learners(ctx.session, ctx.person.id)


def register(actions: ActionRegistry) -> None:
    """Register the /settings actions."""

    @actions.register("settings.start", sets=(CHOICES, MISSES))
    async def start(ctx: ActionContext) -> None:
        """Say how things are set now, and offer what this person may change."""
        ctx.slots[MISSES] = 0
        ctx.say("settings.current", lines="\n".join(current_lines(ctx)))
        items = _ITEMS[role_group(ctx.person)]
        ctx.slots[CHOICES] = [
            {"value": item, "label": ctx.render(f"settings.item_{item}", {})}
            for item in (*items, DONE)
        ]

    @actions.register("settings.save_zone", sets=(OK, MISSES))
    async def save_zone(ctx: ActionContext) -> None:
        """An IANA name or a city; a name we cannot place is asked again (three times)."""
        said = str(ctx.slots.get(ZONE_SAID) or "")
        zone = resolve_zone(said)
        if zone is None:
            misses = int(ctx.slots.get(MISSES) or 0) + 1
            ctx.slots[MISSES] = misses
            ctx.slots[OK] = misses >= MISSES_BEFORE_WAY_OUT
            ctx.say("settings.zone_unknown", said=said)
            if ctx.slots[OK]:
                ctx.say("settings.unchanged")
            return
        ctx.slots[OK] = True
        ctx.person.timezone = zone
        local_now = ctx.now.astimezone(zone_of(zone))
        ctx.say(
            "settings.zone_set",
            zone=zone,
            time=format_time(local_now, format="short", locale=ctx.locale),
        )

    @actions.register("settings.save_language")
    async def save_language(ctx: ActionContext) -> None:
        chosen = ctx.slots.get(LOCALE)
        if chosen in ("en", "es"):
            ctx.person.locale = str(chosen)
        ctx.say("settings.language_set", language=language_name(ctx.person.locale, ctx.locale))

    @actions.register("settings.save_checkin", sets=(OK, MISSES))
    async def save_checkin(ctx: ActionContext) -> None:
        """A learner's weekly check-in: the day chosen and a time within reminder hours."""
        at = _read_time(ctx)
        if at is None:
            return
        weekday = int(str(ctx.slots.get(WEEKDAY) or 1))
        ctx.person.checkin_weekday = weekday
        ctx.person.checkin_time = at.strftime("%H:%M")
        ctx.say(
            "settings.checkin_set",
            day=day_name(weekday, ctx.locale),
            time=time_words(at, ctx.locale),
        )

    @actions.register("settings.save_quiet", sets=(OK, MISSES))
    async def save_quiet(ctx: ActionContext) -> None:
        """Quiet hours: from the evening time to the morning one (the window may cross
        midnight); reminders, nudges and digests wait for its end, alerts never do."""
        start = parse_checkin_time(str(ctx.slots.get(QUIET_START_SAID) or ""))
        end = parse_checkin_time(str(ctx.slots.get(TIME_SAID) or ""))
        # A guess ("after school" read as 3:30 PM) will not do for a line never crossed.
        if start is None or end is None or start.guessed or end.guessed or start.at == end.at:
            misses = int(ctx.slots.get(MISSES) or 0) + 1
            ctx.slots[MISSES] = misses
            ctx.slots[OK] = misses >= MISSES_BEFORE_WAY_OUT
            ctx.say("settings.quiet_unclear")
            if ctx.slots[OK]:
                ctx.say("settings.unchanged")
            return
        ctx.slots[OK] = True
        ctx.person.quiet_start = start.at.strftime("%H:%M")
        ctx.person.quiet_end = end.at.strftime("%H:%M")
        ctx.say(
            "settings.quiet_set",
            start=time_words(start.at, ctx.locale),
            end=time_words(end.at, ctx.locale),
        )

    @actions.register("settings.save_digest", sets=(OK, MISSES))
    async def save_digest(ctx: ActionContext) -> None:
        """A teacher's weekly digest: the day chosen and a time within waking hours."""
        at = _read_time(ctx)
        if at is None:
            return
        weekday = int(str(ctx.slots.get(WEEKDAY) or DEFAULT_DIGEST_WEEKDAY))
        ctx.person.digest_weekday = weekday
        ctx.person.digest_time = at.strftime("%H:%M")
        ctx.say(
            "settings.digest_set",
            day=day_name(weekday, ctx.locale),
            time=time_words(at, ctx.locale),
        )

    @actions.register("settings.save_nudges")
    async def save_nudges(ctx: ActionContext) -> None:
        chosen = ctx.slots.get(FREQUENCY)
        if chosen in NUDGE_FREQUENCIES:
            ctx.person.nudge_frequency = str(chosen)
        frequency = ctx.person.nudge_frequency or "weekly"
        ctx.say(f"settings.current_nudges_{frequency}")

    @actions.register("settings.sharing_start", sets=(HAS_LINKS, LEARNER_ID, LEARNER_CHOICES))
    async def sharing_start(ctx: ActionContext) -> None:
        """Which linked learner the consent question is about (asked if there are several)."""
        learners = await _learners(ctx)
        ctx.slots[HAS_LINKS] = bool(learners)
        ctx.slots[LEARNER_ID] = None
        ctx.slots[LEARNER_CHOICES] = None
        if not learners:
            ctx.say("family.help_unlinked")
        elif len(learners) == 1:
            ctx.slots[LEARNER_ID] = str(learners[0][0].id)
        else:
            ctx.slots[LEARNER_CHOICES] = [
                {"value": str(p.id), "label": learner_label(ctx, p)} for p, _ in learners
            ]

    @actions.register("settings.sharing_named", sets=(LEARNER,))
    async def sharing_named(ctx: ActionContext) -> None:
        """The chosen learner's name, for the consent question."""
        ctx.slots[LEARNER] = None
        for learner, _ in await _learners(ctx):
            if str(learner.id) == str(ctx.slots.get(LEARNER_ID)):
                ctx.slots[LEARNER] = learner_label(ctx, learner)

    @actions.register("settings.save_consent")
    async def save_consent(ctx: ActionContext) -> None:
        """Give or withdraw consent for one linked learner."""
        for learner, link in await _learners(ctx):
            if str(learner.id) != str(ctx.slots.get(LEARNER_ID)):
                continue
            name = learner_label(ctx, learner)
            if ctx.slots.get(CONSENT) is True:
                link.consented_at = link.consented_at or ctx.now
                if ctx.person.nudge_frequency is None:
                    ctx.person.nudge_frequency = "weekly"
                ctx.say("settings.consent_given", learner=name)
            else:
                link.consented_at = None
                ctx.say("family.declined", learner=name)
