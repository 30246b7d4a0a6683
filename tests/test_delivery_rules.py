"""The time rules every proactive message obeys: quiet hours, weeks, appointments,
daylight saving and the date line (bot/coach/delivery_rules.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from bot.coach.delivery_rules import (
    QuietHours,
    at_local,
    iso_week,
    next_allowed,
    parse_hhmm,
    week_bounds,
    weekly_occurrence,
)

NEW_YORK = ZoneInfo("America/New_York")
AUCKLAND = ZoneInfo("Pacific/Auckland")
PAGO_PAGO = ZoneInfo("Pacific/Pago_Pago")
NIGHT = QuietHours.parse("20:00-08:00")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "quiet"),
    [
        (time(19, 59), False),
        (time(20, 0), True),
        (time(23, 59), True),
        (time(0, 0), True),
        (time(7, 59), True),
        (time(8, 0), False),
        (time(12, 0), False),
    ],
)
def test_quiet_hours_cross_midnight(moment: time, quiet: bool) -> None:
    assert NIGHT.contains(moment) is quiet


def test_a_daytime_window_and_an_empty_one() -> None:
    lunch = QuietHours.parse("12:00-13:30")
    assert lunch.contains(time(12, 45))
    assert not lunch.contains(time(13, 30))
    assert not QuietHours.parse("00:00-00:00").contains(time(3, 0))


@pytest.mark.parametrize("bad", ["8:00", "24:00", "08:60", "noon", "08-00", ""])
def test_bad_times_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="time of day"):
        parse_hhmm(bad)


def test_an_evening_message_waits_for_the_next_morning() -> None:
    # 21:30 in New York (EST, UTC-5) on Tuesday -> 08:00 Wednesday local.
    assert next_allowed(utc(2026, 1, 7, 2, 30), NEW_YORK, NIGHT) == utc(2026, 1, 7, 13, 0)
    # 03:00 local, after midnight -> 08:00 the same local day.
    assert next_allowed(utc(2026, 1, 7, 8, 0), NEW_YORK, NIGHT) == utc(2026, 1, 7, 13, 0)
    # Daytime: unchanged.
    assert next_allowed(utc(2026, 1, 7, 15, 0), NEW_YORK, NIGHT) == utc(2026, 1, 7, 15, 0)


def test_the_window_opens_at_local_eight_across_both_dst_changes() -> None:
    # The night of 7-8 March 2026 loses an hour in New York: 08:00 is EDT (UTC-4).
    assert next_allowed(utc(2026, 3, 8, 2, 0), NEW_YORK, NIGHT) == utc(2026, 3, 8, 12, 0)
    # The night of 31 Oct - 1 Nov 2026 gains one: 08:00 is EST (UTC-5) again.
    assert next_allowed(utc(2026, 11, 1, 4, 0), NEW_YORK, NIGHT) == utc(2026, 11, 1, 13, 0)


def test_appointments_keep_their_local_time_through_dst() -> None:
    # Sunday 18:00 in New York: 23:00 UTC in winter, 22:00 UTC in summer.
    before = weekly_occurrence(utc(2026, 3, 2, 12), NEW_YORK, 7, time(18, 0))
    after = weekly_occurrence(utc(2026, 3, 9, 12), NEW_YORK, 7, time(18, 0))
    assert before == utc(2026, 3, 8, 22, 0)  # Sunday 8 March is already EDT
    assert weekly_occurrence(utc(2026, 2, 23, 12), NEW_YORK, 7, time(18, 0)) == utc(
        2026, 3, 1, 23, 0
    )
    assert after == utc(2026, 3, 15, 22, 0)
    # November: Sunday 1 November is EST again.
    assert weekly_occurrence(utc(2026, 10, 26, 12), NEW_YORK, 7, time(18, 0)) == utc(
        2026, 11, 1, 23, 0
    )


def test_a_time_skipped_or_repeated_by_dst_happens_once() -> None:
    # 02:30 does not exist on 8 March 2026 in New York: it comes out as 03:30 EDT.
    assert at_local(date(2026, 3, 8), time(2, 30), NEW_YORK) == utc(2026, 3, 8, 7, 30)
    # 01:30 happens twice on 1 November 2026: the first one (EDT).
    assert at_local(date(2026, 11, 1), time(1, 30), NEW_YORK) == utc(2026, 11, 1, 5, 30)


def test_weeks_on_both_sides_of_the_date_line() -> None:
    # One instant, Sunday 05:30 UTC on 11 January 2026: already Sunday evening in
    # Auckland (UTC+13), still Saturday evening in Pago Pago (UTC-11).
    moment = utc(2026, 1, 11, 5, 30)
    assert moment.astimezone(AUCKLAND).isoweekday() == 7
    assert moment.astimezone(PAGO_PAGO).isoweekday() == 6
    start, end = week_bounds(moment, AUCKLAND)
    assert (start, end) == (utc(2026, 1, 4, 11, 0), utc(2026, 1, 11, 11, 0))
    start, end = week_bounds(moment, PAGO_PAGO)
    assert (start, end) == (utc(2026, 1, 5, 11, 0), utc(2026, 1, 12, 11, 0))
    assert iso_week(moment, AUCKLAND) == iso_week(moment, PAGO_PAGO) == "2026-W02"
    # A few hours later Auckland is in week 3, Pago Pago still in week 2.
    later = utc(2026, 1, 11, 12, 0)
    assert (iso_week(later, AUCKLAND), iso_week(later, PAGO_PAGO)) == ("2026-W03", "2026-W02")
    # Sunday 18:00 local in each: 24 hours apart in UTC.
    assert weekly_occurrence(moment, AUCKLAND, 7, time(18)) == utc(2026, 1, 11, 5, 0)
    assert weekly_occurrence(moment, PAGO_PAGO, 7, time(18)) == utc(2026, 1, 12, 5, 0)
