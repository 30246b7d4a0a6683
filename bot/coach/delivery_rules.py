"""When a proactive message may reach a person: pure time rules, no database.

Reminders, nudges and digests all ask the same questions: when does a weekly
appointment ("Sunday 18:00 where they live") fall this week, in UTC; is a moment
inside the person's quiet hours, and if so when does the window open; where does
their week (their local ISO week, Monday to Sunday) start and end. Everything
here is computed with zoneinfo on wall-clock times, so a daylight saving change
moves the UTC instant and never the local time a person chose.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.store.models import Person

# What COACH_QUIET_HOURS looks like: "HH:MM-HH:MM", local time, start inclusive,
# end exclusive; a start later than the end crosses midnight.
_HHMM_LENGTH = 5


def parse_hhmm(value: str) -> time:
    """'08:00' -> 08:00; a ValueError names the bad value."""
    text = value.strip()
    hours, sep, minutes = text.partition(":")
    if (
        not sep
        or len(text) != _HHMM_LENGTH
        or not hours.isdigit()
        or not minutes.isdigit()
        or int(hours) > 23
        or int(minutes) > 59
    ):
        raise ValueError(f"{value!r} is not a time of day like 08:00")
    return time(int(hours), int(minutes))


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window, in local wall-clock time, when nothing proactive is sent.

    `start == end` means no quiet hours at all.
    """

    start: time
    end: time

    @classmethod
    def parse(cls, value: str) -> QuietHours:
        """'20:00-08:00' -> QuietHours(20:00, 08:00)."""
        first, sep, second = value.partition("-")
        if not sep:
            raise ValueError(f"{value!r} is not a window like 20:00-08:00")
        return cls(parse_hhmm(first), parse_hhmm(second))

    @property
    def crosses_midnight(self) -> bool:
        return self.start > self.end

    def contains(self, moment: time) -> bool:
        """Whether a local time of day falls inside the window."""
        moment = moment.replace(second=0, microsecond=0, tzinfo=None)
        if self.start == self.end:
            return False
        if self.crosses_midnight:
            return moment >= self.start or moment < self.end
        return self.start <= moment < self.end


def zone_of(name: str | None) -> ZoneInfo:
    """A person's zone; a name the system does not know falls back to UTC."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def quiet_hours_of(person: Person, default: QuietHours) -> QuietHours:
    """The person's own window when both ends are set and readable, else the default."""
    if person.quiet_start and person.quiet_end:
        try:
            return QuietHours(parse_hhmm(person.quiet_start), parse_hhmm(person.quiet_end))
        except ValueError:
            return default
    return default


def at_local(day: date, moment: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time on a local date.

    A time that does not exist that day (the hour skipped in spring) comes out an
    hour later, as clocks read after the jump; a time that happens twice (the
    hour repeated in autumn) is the first of the two (fold=0). Either way the
    person gets it once, as near to the time they chose as the clock allows.
    """
    local = datetime.combine(day, moment).replace(tzinfo=zone, fold=0)
    return local.astimezone(UTC)


def local_date(when: datetime, zone: ZoneInfo) -> date:
    return when.astimezone(zone).date()


def week_start(day: date) -> date:
    """The Monday of the ISO week holding `day`."""
    return day - timedelta(days=day.isoweekday() - 1)


def week_bounds(when: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The person's local ISO week around `when`: [Monday 00:00, next Monday 00:00) in UTC."""
    monday = week_start(local_date(when, zone))
    return at_local(monday, time(0), zone), at_local(monday + timedelta(days=7), time(0), zone)


def iso_week(when: datetime, zone: ZoneInfo) -> str:
    """'2026-W10': the local ISO week, for dedupe keys (one weekly message per week)."""
    year, week, _ = local_date(when, zone).isocalendar()
    return f"{year}-W{week:02d}"


def weekly_occurrence(
    when: datetime, zone: ZoneInfo, weekday: int, moment: time, *, weeks_back: int = 0
) -> datetime:
    """This local week's (or an earlier week's) appointment on ISO `weekday` at `moment`, UTC."""
    monday = week_start(local_date(when, zone)) - timedelta(days=7 * weeks_back)
    return at_local(monday + timedelta(days=weekday - 1), moment, zone)


def next_allowed(when: datetime, zone: ZoneInfo, quiet: QuietHours) -> datetime:
    """`when` itself if it is outside quiet hours, else the moment the window ends."""
    local = when.astimezone(zone)
    if not quiet.contains(local.time()):
        return when
    day = local.date()
    if quiet.crosses_midnight and local.time() >= quiet.start:
        # Evening side of a window like 20:00-08:00: it opens tomorrow morning.
        day += timedelta(days=1)
    opens = at_local(day, quiet.end, zone)
    # The end itself can fall in a skipped hour and come out inside the window's
    # next night only in zones with absurd rules; guard against going backwards.
    return max(opens, when)


def is_paused(person: Person, when: datetime) -> bool:
    """/pause holds proactive messages until paused_until; /stop until /start."""
    if person.stopped_at is not None:
        return True
    return person.paused_until is not None and person.paused_until > when
