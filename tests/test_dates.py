"""Dates as learners type them, seen from their own time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.engine.dates import format_date, parse_date

UTC_ZONE = ZoneInfo("UTC")
MONDAY = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # Monday 23 November 2026
FRIDAY = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SATURDAY = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SUNDAY = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
MONTH_END = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # last day of November
DEC_30 = datetime(2026, 12, 30, 12, 0, tzinfo=UTC)
YEAR_END = datetime(2026, 12, 31, 12, 0, tzinfo=UTC)


def parse(text: str, now: datetime = MONDAY, locale: str = "en", tz: str = "UTC") -> date | None:
    return parse_date(text, locale=locale, tz=ZoneInfo(tz), now=now)


def test_the_fixed_days_are_the_weekdays_the_tests_assume() -> None:
    assert [d.strftime("%A") for d in (MONDAY, FRIDAY, SATURDAY, SUNDAY)] == [
        "Monday",
        "Friday",
        "Saturday",
        "Sunday",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # "next Friday" is Friday of next week.
        ("next Friday", date(2026, 12, 4)),
        ("next friday!", date(2026, 12, 4)),
        ("by next Friday", date(2026, 12, 4)),
        ("friday next week", date(2026, 12, 4)),
        # "Friday" is the coming one.
        ("Friday", date(2026, 11, 27)),
        ("this Friday", date(2026, 11, 27)),
        ("by friday", date(2026, 11, 27)),
        ("friday morning", date(2026, 11, 27)),
        ("wed", date(2026, 11, 25)),
        ("monday", date(2026, 11, 30)),  # today is Monday: a week away
        ("end of the month", date(2026, 11, 30)),
        ("end of month", date(2026, 11, 30)),
        ("by the end of the month", date(2026, 11, 30)),
        ("end of next month", date(2026, 12, 31)),
        ("end of the week", date(2026, 11, 27)),
        ("the weekend", date(2026, 11, 28)),
        ("next week", date(2026, 11, 30)),
        ("next month", date(2026, 12, 1)),
        ("next year", date(2027, 1, 1)),
        ("in two weeks", date(2026, 12, 7)),
        ("in 2 weeks time", date(2026, 12, 7)),
        ("two weeks", date(2026, 12, 7)),
        ("in 3 days", date(2026, 11, 26)),
        ("in a week", date(2026, 11, 30)),
        ("in a couple of days", date(2026, 11, 25)),
        ("4 days from now", date(2026, 11, 27)),
        ("in a month", date(2026, 12, 23)),
        ("tomorrow", date(2026, 11, 24)),
        ("tomorrow at 5pm", date(2026, 11, 24)),
        ("day after tomorrow", date(2026, 11, 25)),
        ("today", date(2026, 11, 23)),
        ("yesterday", date(2026, 11, 22)),
        ("3 days ago", date(2026, 11, 20)),
        ("Dec 4", date(2026, 12, 4)),
        ("December 4th", date(2026, 12, 4)),
        ("Friday, December 4", date(2026, 12, 4)),
        ("4 December", date(2026, 12, 4)),
        ("12/4", date(2026, 12, 4)),  # month/day in English
        ("12/4/2026", date(2026, 12, 4)),
        ("12-4-26", date(2026, 12, 4)),
        ("25/12", date(2026, 12, 25)),  # no 25th month: read day/month
        ("2026-12-04", date(2026, 12, 4)),
        ("2028-01-10", date(2028, 1, 10)),
        ("jan 5", date(2027, 1, 5)),  # past this year: next year's
        ("nov 22", date(2027, 11, 22)),
        ("nov 23", date(2026, 11, 23)),  # today has not passed
        ("feb 29", date(2028, 2, 29)),
        ("the 15th", date(2026, 12, 15)),  # the 15th of this month has passed
        ("the 30th", date(2026, 11, 30)),
        ("3rd of January", date(2027, 1, 3)),
        ("Thursday December 10th", date(2026, 12, 10)),
    ],
)
def test_english_on_a_monday(text: str, expected: date) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("el próximo viernes", date(2026, 12, 4)),
        ("próximo viernes", date(2026, 12, 4)),
        ("el viernes que viene", date(2026, 12, 4)),
        ("el viernes de la semana que viene", date(2026, 12, 4)),
        ("el viernes de la próxima semana", date(2026, 12, 4)),
        ("el viernes", date(2026, 11, 27)),
        ("este viernes", date(2026, 11, 27)),
        ("para el viernes", date(2026, 11, 27)),
        ("viernes", date(2026, 11, 27)),
        ("el miércoles", date(2026, 11, 25)),
        ("fin de mes", date(2026, 11, 30)),
        ("a fin de mes", date(2026, 11, 30)),
        ("final del mes", date(2026, 11, 30)),
        ("a finales de mes", date(2026, 11, 30)),
        ("fin de semana", date(2026, 11, 28)),  # the weekend: Saturday
        ("el fin de semana", date(2026, 11, 28)),
        ("final de la semana", date(2026, 11, 27)),  # the end of the school week
        ("la semana que viene", date(2026, 11, 30)),
        ("la próxima semana", date(2026, 11, 30)),
        ("el mes que viene", date(2026, 12, 1)),
        ("el próximo mes", date(2026, 12, 1)),
        ("en dos semanas", date(2026, 12, 7)),
        ("en 10 días", date(2026, 12, 3)),
        ("dentro de tres días", date(2026, 11, 26)),
        ("en una semana", date(2026, 11, 30)),
        ("en un par de días", date(2026, 11, 25)),
        ("mañana", date(2026, 11, 24)),
        ("mañana por la tarde", date(2026, 11, 24)),
        ("pasado mañana", date(2026, 11, 25)),
        ("hoy", date(2026, 11, 23)),
        ("ayer", date(2026, 11, 22)),
        ("4 de diciembre", date(2026, 12, 4)),
        ("el 4 de diciembre de 2026", date(2026, 12, 4)),
        ("viernes 4 de diciembre", date(2026, 12, 4)),
        ("diciembre 4", date(2026, 12, 4)),
        ("12/4", date(2027, 4, 12)),  # day/month in Spanish; April has passed
        ("4/12", date(2026, 12, 4)),
        ("4.12.", date(2026, 12, 4)),
        ("5 de enero", date(2027, 1, 5)),
        ("el 15", date(2026, 12, 15)),
    ],
)
def test_spanish_on_a_monday(text: str, expected: date) -> None:
    assert parse(text, locale="es") == expected


@pytest.mark.parametrize(
    ("now", "text", "locale", "expected"),
    [
        # On a Friday, "Friday" is next week's and so is "next Friday".
        (FRIDAY, "Friday", "en", date(2026, 12, 4)),
        (FRIDAY, "next Friday", "en", date(2026, 12, 4)),
        (FRIDAY, "el viernes", "es", date(2026, 12, 4)),
        (FRIDAY, "end of the week", "en", date(2026, 12, 4)),
        (FRIDAY, "tomorrow", "en", date(2026, 11, 28)),
        # On a Saturday both name the coming Friday, which is in next week.
        (SATURDAY, "next Friday", "en", date(2026, 12, 4)),
        (SATURDAY, "Friday", "en", date(2026, 12, 4)),
        (SATURDAY, "the weekend", "en", date(2026, 11, 29)),
        (SATURDAY, "el próximo viernes", "es", date(2026, 12, 4)),
        # On a Sunday next week starts tomorrow.
        (SUNDAY, "next week", "en", date(2026, 11, 30)),
        (SUNDAY, "next Friday", "en", date(2026, 12, 4)),
        (SUNDAY, "Monday", "en", date(2026, 11, 30)),
        (SUNDAY, "next Monday", "en", date(2026, 11, 30)),
        (SUNDAY, "fin de semana", "es", date(2026, 12, 5)),
        # On the last day of a month its end is next month's.
        (MONTH_END, "end of the month", "en", date(2026, 12, 31)),
        (MONTH_END, "fin de mes", "es", date(2026, 12, 31)),
        (MONTH_END, "next month", "en", date(2026, 12, 1)),
        (MONTH_END, "tomorrow", "en", date(2026, 12, 1)),
        # Across the year end.
        (DEC_30, "end of the month", "en", date(2026, 12, 31)),
        (DEC_30, "next month", "en", date(2027, 1, 1)),
        (DEC_30, "next week", "en", date(2027, 1, 4)),
        (DEC_30, "in two weeks", "en", date(2027, 1, 13)),
        (DEC_30, "jan 5", "en", date(2027, 1, 5)),
        (DEC_30, "Dec 4", "en", date(2027, 12, 4)),
        (DEC_30, "12/4", "en", date(2027, 12, 4)),
        (DEC_30, "5 de enero", "es", date(2027, 1, 5)),
        (YEAR_END, "end of the month", "en", date(2027, 1, 31)),
        (YEAR_END, "tomorrow", "en", date(2027, 1, 1)),
        (YEAR_END, "next year", "en", date(2027, 1, 1)),
        (YEAR_END, "el mes que viene", "es", date(2027, 1, 1)),
    ],
)
def test_relative_to_the_day(now: datetime, text: str, locale: str, expected: date) -> None:
    assert parse(text, now=now, locale=locale) == expected


NOON_UTC = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz", "text", "expected"),
    [
        # 11:00 UTC is already Tuesday 24 November in Auckland (UTC+13 in summer)...
        ("Pacific/Auckland", "today", date(2026, 11, 24)),
        ("Pacific/Auckland", "tomorrow", date(2026, 11, 25)),
        ("Pacific/Auckland", "Monday", date(2026, 11, 30)),
        ("Pacific/Auckland", "next Friday", date(2026, 12, 4)),
        # ...and still Monday 23 November in Pago Pago (UTC-11).
        ("Pacific/Pago_Pago", "today", date(2026, 11, 23)),
        ("Pacific/Pago_Pago", "tomorrow", date(2026, 11, 24)),
        ("Pacific/Pago_Pago", "Monday", date(2026, 11, 30)),
        ("Pacific/Pago_Pago", "Tuesday", date(2026, 11, 24)),
        ("Pacific/Auckland", "Tuesday", date(2026, 12, 1)),
        ("UTC", "today", date(2026, 11, 23)),
    ],
)
def test_today_is_the_learners_day(tz: str, text: str, expected: date) -> None:
    assert parse(text, now=NOON_UTC, tz=tz) == expected


@pytest.mark.parametrize(
    ("now", "tz", "expected"),
    [
        # 10:00 UTC on 30 November is 23:00 on the 30th in Auckland, the month's
        # last day, but 23:00 on the 29th in Pago Pago.
        (datetime(2026, 11, 30, 10, 0, tzinfo=UTC), "Pacific/Auckland", date(2026, 12, 31)),
        (datetime(2026, 11, 30, 10, 0, tzinfo=UTC), "Pacific/Pago_Pago", date(2026, 11, 30)),
        # 20:00 UTC on 29 November is already the 30th in Kiritimati (UTC+14).
        (datetime(2026, 11, 29, 20, 0, tzinfo=UTC), "Pacific/Kiritimati", date(2026, 12, 31)),
        (datetime(2026, 11, 29, 20, 0, tzinfo=UTC), "Pacific/Pago_Pago", date(2026, 11, 30)),
    ],
)
def test_the_month_end_depends_on_the_zone(now: datetime, tz: str, expected: date) -> None:
    assert parse("end of the month", now=now, tz=tz) == expected


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("no idea", "en"),
        ("banana", "en"),
        ("maybe", "en"),
        ("soon", "en"),
        ("later", "en"),
        ("whenever", "en"),
        ("not sure", "en"),
        ("5", "en"),  # a day, a count of days or a grade?
        ("one day", "en"),  # "some day"
        ("this week", "en"),
        ("may", "en"),  # a month is not a deadline day
        ("december", "en"),
        ("13/13", "en"),
        ("2026-02-30", "en"),
        ("the 32nd", "en"),
        ("", "en"),
        ("   ", "en"),
        ("ni idea", "es"),
        ("plátano", "es"),
        ("nunca", "es"),
        ("un día", "es"),
    ],
)
def test_not_a_date(text: str, locale: str) -> None:
    assert parse(text, locale=locale) is None


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_date("tomorrow", locale="en", tz=UTC_ZONE, now=datetime(2026, 11, 23, 12))


@pytest.mark.parametrize(
    ("day", "locale", "text"),
    [
        (date(2026, 12, 4), "en", "Friday, December 4, 2026"),
        (date(2026, 12, 4), "es", "viernes, 4 de diciembre de 2026"),
        (date(2027, 1, 1), "en", "Friday, January 1, 2027"),
        (date(2027, 1, 1), "es", "viernes, 1 de enero de 2027"),
    ],
)
def test_format_date(day: date, locale: str, text: str) -> None:
    assert format_date(day, locale) == text
