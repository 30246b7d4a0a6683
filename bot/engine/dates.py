"""Dates as learners type them ("next Friday", "en dos semanas", "Dec 4"), and dates in words.

`parse_date` applies our own rules first, for the phrases a deadline question
gets most and that dateparser reads differently from how a school week works
("next Friday" on a Monday is dateparser's this-week Friday; "fin de mes" and
"el viernes que viene" it does not read at all). dateparser is the fallback for
the long tail ("Thursday December 10th", "3rd of January").
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date as babel_format_date
from dateparser.date import DateDataParser

from bot.engine.understand import parse_number

# -- words -----------------------------------------------------------------------------

# Monday is 0, as in date.weekday(). Accents are stripped before matching.
# fmt: off
_WEEKDAYS: dict[str, int] = {
    "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "wed": 2,
    "thursday": 3, "thu": 3, "thur": 3, "thurs": 3, "friday": 4, "fri": 4,
    "saturday": 5, "sat": 5, "sunday": 6, "sun": 6,
    "lunes": 0, "martes": 1, "miercoles": 2, "jueves": 3, "viernes": 4, "sabado": 5,
    "domingo": 6,
}
# fmt: on
# fmt: off
_MONTHS: dict[str, int] = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4,
    "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11,
    "nov": 11, "december": 12, "dec": 12,
    "enero": 1, "ene": 1, "febrero": 2, "marzo": 3, "abril": 4, "abr": 4, "mayo": 5,
    "junio": 6, "julio": 7, "agosto": 8, "ago": 8, "septiembre": 9, "setiembre": 9,
    "set": 9, "octubre": 10, "noviembre": 11, "diciembre": 12, "dic": 12,
}
# fmt: on
# fmt: off
_DAY_UNITS: dict[str, int] = {
    "day": 1, "days": 1, "dia": 1, "dias": 1, "week": 7, "weeks": 7, "semana": 7, "semanas": 7,
    "fortnight": 14, "fortnights": 14, "quincena": 14, "quincenas": 14,
}
# fmt: on
# fmt: off
_MONTH_UNITS: dict[str, int] = {
    "month": 1, "months": 1, "mes": 1, "meses": 1, "year": 12, "years": 12, "ano": 12,
    "anos": 12,
}
# fmt: on
# Counts spelled without a number word: "in a week", "en un par de días".
# fmt: off
_COUNT_WORDS: dict[str, int] = {
    "a": 1, "an": 1, "one": 1, "un": 1, "una": 1, "uno": 1,
    "a couple of": 2, "a couple": 2, "couple of": 2, "un par de": 2, "par de": 2,
}
# fmt: on

_WEEKDAY = "(" + "|".join(sorted(_WEEKDAYS, key=len, reverse=True)) + ")"
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + ")"
_UNIT = "(" + "|".join(sorted({*_DAY_UNITS, *_MONTH_UNITS}, key=len, reverse=True)) + ")"

# Words around a date that do not change it: "by Friday", "para el viernes, creo".
_LEADING = re.compile(
    r"^(?:(?:it s|its|it is|its on|it is on|my test is|the test is|due|due on|by|on|before|"
    r"until|till|for|around|maybe|probably|i think|i guess|hopefully|"
    r"para|antes del|antes de|hasta el|hasta|es|sera|creo que|quizas|tal vez|"
    r"probablemente|el examen es|mi examen es)\s+)+"
)
_TRAILING = re.compile(
    r"(?:\s+(?:i think|i guess|maybe|probably|please|creo|quizas|por favor|"
    r"in the (?:morning|afternoon|evening)|at night|tonight|morning|afternoon|evening|night|"
    r"por la (?:manana|tarde|noche)|en la (?:manana|tarde|noche)|"
    r"(?:at|a las|a la) \d{1,2}(?::\d{2})?(?: ?(?:am|pm|h))?))+$"
)
_ORDINAL = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th|ro|do|er|o|a)\b")


def _clean(text: str) -> str:
    """Lowercase, accents and punctuation gone, but date separators kept between digits."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    chars: list[str] = []
    for char in decomposed:
        if unicodedata.category(char) in ("Mn", "Me"):
            continue
        chars.append(char if char.isalnum() or char in "/.-:" else " ")
    cleaned = "".join(chars)
    # "/", "-", "." and ":" only mean something between digits: 12/4, 2026-12-04, 5:30.
    cleaned = re.sub(r"(?<!\d)[/.:-]|[/.:-](?!\d)", " ", cleaned)
    cleaned = _ORDINAL.sub(r"\1", cleaned)
    return re.sub(r"\s+", " ", cleaned).strip()


def _trim(phrase: str) -> str:
    previous = None
    while previous != phrase:
        previous = phrase
        phrase = _LEADING.sub("", phrase)
        phrase = _TRAILING.sub("", phrase).strip()
    return phrase


# -- calendar arithmetic ---------------------------------------------------------------


def _last_day(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's end (Jan 31 + 1 month = Feb 28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _coming(today: date, weekday: int) -> date:
    """The next `weekday` strictly after today.

    "Friday" said on a Friday is a week away: a deadline is asked about in
    advance, so a learner naming today's weekday means the next one.
    """
    ahead = (weekday - today.weekday()) % 7
    return today + timedelta(days=ahead or 7)


def _next_week(today: date, weekday: int) -> date:
    """`weekday` in the week after this one; weeks start on Monday (ISO 8601)."""
    monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
    return monday + timedelta(days=weekday)


def _roll_forward(candidate: date, today: date) -> date:
    """A date given without a year that has passed this year means next year."""
    if candidate >= today:
        return candidate
    try:
        return candidate.replace(year=candidate.year + 1)
    except ValueError:  # Feb 29 with no Feb 29 next year
        return date(candidate.year + 1, 3, 1)


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


# -- our own rules ---------------------------------------------------------------------

_Rule = Callable[[re.Match[str], date, str], date | None]
_RULES: list[tuple[re.Pattern[str], _Rule]] = []


def _rule(pattern: str) -> Callable[[_Rule], _Rule]:
    def register(func: _Rule) -> _Rule:
        _RULES.append((re.compile(f"^(?:{pattern})$"), func))
        return func

    return register


@_rule(r"today|hoy|tonight|esta noche|now|ahora|right now|ahora mismo")
def _today(m: re.Match[str], today: date, locale: str) -> date | None:
    return today


@_rule(r"(?:the )?day after tomorrow|pasado manana")
def _day_after_tomorrow(m: re.Match[str], today: date, locale: str) -> date | None:
    return today + timedelta(days=2)


@_rule(r"tomorrow|tmrw|tmr|tomorow|tommorow|tommorrow|manana|manana mismo")
def _tomorrow(m: re.Match[str], today: date, locale: str) -> date | None:
    return today + timedelta(days=1)


@_rule(r"(?:the )?day before yesterday|anteayer|antier|antes de ayer")
def _day_before_yesterday(m: re.Match[str], today: date, locale: str) -> date | None:
    return today - timedelta(days=2)


@_rule(r"yesterday|ayer")
def _yesterday(m: re.Match[str], today: date, locale: str) -> date | None:
    return today - timedelta(days=1)


@_rule(r"(?:the )?end of (?:the |this )?month|(?:a |el |al )?(?:fin|final|finales) (?:de|del) mes")
def _end_of_month(m: re.Match[str], today: date, locale: str) -> date | None:
    end = _last_day(today.year, today.month)
    if end == today:
        # On the last day the month's end is today; the learner means the next one.
        following = _add_months(today.replace(day=1), 1)
        return _last_day(following.year, following.month)
    return end


@_rule(
    r"(?:the )?end of next month"
    r"|(?:a |el |al )?(?:fin|final|finales) del (?:mes que viene|proximo mes)"
)
def _end_of_next_month(m: re.Match[str], today: date, locale: str) -> date | None:
    following = _add_months(today.replace(day=1), 1)
    return _last_day(following.year, following.month)


@_rule(
    r"(?:the )?end of (?:the |this )?week"
    r"|(?:a |al |el )?(?:fin|final|finales) de (?:la|esta) semana"
    r"|(?:a |al )?(?:final|finales) de semana"
)
def _end_of_week(m: re.Match[str], today: date, locale: str) -> date | None:
    # The school week ends on Friday.
    return _coming(today, 4)


@_rule(r"next weekend|(?:el )?(?:proximo fin de semana|fin de semana que viene|finde que viene)")
def _next_weekend(m: re.Match[str], today: date, locale: str) -> date | None:
    return _next_week(today, 5)


@_rule(r"(?:the |this )?weekend|(?:el |este )?(?:fin de semana|finde)")
def _weekend(m: re.Match[str], today: date, locale: str) -> date | None:
    # The coming Saturday; on a Saturday this weekend's Sunday is still ahead.
    if today.weekday() == 5:
        return today + timedelta(days=1)
    return _coming(today, 5)


@_rule(r"next week|(?:la )?(?:semana que viene|proxima semana|semana proxima)")
def _next_week_start(m: re.Match[str], today: date, locale: str) -> date | None:
    return _next_week(today, 0)


@_rule(r"next month|(?:el )?(?:mes que viene|proximo mes|mes proximo)")
def _next_month(m: re.Match[str], today: date, locale: str) -> date | None:
    return _add_months(today.replace(day=1), 1)


@_rule(r"next year|(?:el )?(?:ano que viene|proximo ano|ano proximo)")
def _next_year(m: re.Match[str], today: date, locale: str) -> date | None:
    return date(today.year + 1, 1, 1)


@_rule(
    rf"next {_WEEKDAY}|{_WEEKDAY} next week|next week s {_WEEKDAY}|next weeks {_WEEKDAY}"
    rf"|(?:el )?proximo {_WEEKDAY}|(?:el )?{_WEEKDAY} (?:que viene|proximo)"
    rf"|(?:el )?{_WEEKDAY} de la (?:semana que viene|proxima semana|semana proxima)"
)
def _next_weekday(m: re.Match[str], today: date, locale: str) -> date | None:
    name = next(g for g in m.groups() if g)
    return _next_week(today, _WEEKDAYS[name])


@_rule(rf"(?:this coming |this |coming |el |este )?{_WEEKDAY}")
def _this_weekday(m: re.Match[str], today: date, locale: str) -> date | None:
    return _coming(today, _WEEKDAYS[m.group(1)])


def _count(words: str, locale: str) -> int | None:
    if words in _COUNT_WORDS:
        return _COUNT_WORDS[words]
    number = parse_number(words, locale)
    if number is None or number != int(number) or number < 0:
        return None
    return int(number)


def _shift(today: date, count: int, unit: str) -> date | None:
    # Ten years is further than any learner's deadline; it also keeps
    # date arithmetic clear of date.max.
    if unit in _DAY_UNITS:
        days = count * _DAY_UNITS[unit]
        return today + timedelta(days=days) if days <= 3660 else None
    months = count * _MONTH_UNITS[unit]
    return _add_months(today, months) if months <= 120 else None


def _in_count(words: str, unit: str, today: date, locale: str) -> date | None:
    count = _count(words, locale)
    return None if count is None else _shift(today, count, unit)


@_rule(rf"(?:in|within|en|dentro de) (.+?) {_UNIT}(?: time)?")
def _in_n(m: re.Match[str], today: date, locale: str) -> date | None:
    return _in_count(m.group(1), m.group(2), today, locale)


@_rule(rf"(.+?) {_UNIT} (?:from now|from today|a partir de hoy|desde hoy)")
def _n_from_now(m: re.Match[str], today: date, locale: str) -> date | None:
    return _in_count(m.group(1), m.group(2), today, locale)


@_rule(rf"(\d+|a couple of|un par de|[a-z]+(?: y [a-z]+)?) {_UNIT}")
def _bare_n(m: re.Match[str], today: date, locale: str) -> date | None:
    # "two weeks" is a span from today, but "one day" / "un día" mean "some day".
    if m.group(1) in ("a", "an", "one", "un", "una", "uno"):
        return None
    return _in_count(m.group(1), m.group(2), today, locale)


@_rule(rf"(.+?) {_UNIT} ago|hace (.+?) {_UNIT}")
def _ago(m: re.Match[str], today: date, locale: str) -> date | None:
    words, unit = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    count = _count(words, locale)
    if count is None:
        return None
    ahead = _shift(today, count, unit)
    return None if ahead is None else today - (ahead - today)


@_rule(r"(\d{4})-(\d{1,2})-(\d{1,2})")
def _iso(m: re.Match[str], today: date, locale: str) -> date | None:
    return _safe_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))


@_rule(r"(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{4}|\d{2}))?")
def _numeric(m: re.Match[str], today: date, locale: str) -> date | None:
    first, second = int(m.group(1)), int(m.group(2))
    # The US writes month/day; Spain and Latin America day/month. A reading
    # impossible in the locale's order ("25/12" in English) is taken the other way.
    month, day = (first, second) if locale.startswith("en") else (second, first)
    if month > 12 and day <= 12:
        month, day = day, month
    if m.group(3):
        year = int(m.group(3))
        year = year + 2000 if year < 100 else year
        return _safe_date(year, month, day)
    found = _safe_date(today.year, month, day)
    return None if found is None else _roll_forward(found, today)


@_rule(
    rf"(?:{_WEEKDAY} )?(?:el )?(?:dia )?(?:the )?(\d{{1,2}}) (?:de |of )?{_MONTH}"
    rf"(?: (?:de |del )?(\d{{4}}))?"
)
def _day_month(m: re.Match[str], today: date, locale: str) -> date | None:
    return _worded(today, int(m.group(2)), _MONTHS[m.group(3)], m.group(4))


@_rule(rf"(?:{_WEEKDAY} )?{_MONTH} (?:the )?(\d{{1,2}})(?: (\d{{4}}))?")
def _month_day(m: re.Match[str], today: date, locale: str) -> date | None:
    return _worded(today, int(m.group(3)), _MONTHS[m.group(2)], m.group(4))


def _worded(today: date, day: int, month: int, year: str | None) -> date | None:
    if year is not None:
        return _safe_date(int(year), month, day)
    found = _safe_date(today.year, month, day)
    if found is None and (month, day) == (2, 29):
        # Feb 29 said in a year without one: the next leap year's.
        leap = next(y for y in range(today.year + 1, today.year + 9) if calendar.isleap(y))
        return date(leap, 2, 29)
    return None if found is None else _roll_forward(found, today)


@_rule(r"(?:the|on the|el|el dia|dia) (\d{1,2})")
def _day_of_month(m: re.Match[str], today: date, locale: str) -> date | None:
    """ "the 15th" / "el 15": this month's if still ahead (or today), else the next one with it."""
    day = int(m.group(1))
    if not 1 <= day <= 31:
        return None
    for months in range(0, 12):
        first = _add_months(today.replace(day=1), months)
        found = _safe_date(first.year, first.month, day)
        if found is not None and found >= today:
            return found
    return None


# -- dateparser fallback ---------------------------------------------------------------

# Only absolute and relative readings: dateparser's "timestamp" parser turns
# any long number into a date, and "no-spaces-time" reads "1230" as a time.
_PARSERS = ["relative-time", "absolute-time"]
# A day (or a week, "in 2 weeks time") is a deadline; "December" or "2027" alone is not.
_PRECISE = frozenset({"day", "week"})


def _languages(locale: str) -> list[str]:
    language = locale.split("_")[0].split("-")[0]
    other = "es" if language == "en" else "en"
    return [language, other] if language in ("en", "es") else ["en", "es"]


def _dateparser(phrase: str, locale: str, local_now: datetime) -> date | None:
    # A DateDataParser takes RELATIVE_BASE at construction, and ours changes
    # every turn (a simulated clock in tests, the learner's zone in production),
    # so one is built per call. That costs ~30 µs: dateparser keeps the loaded
    # language data (the slow part, ~100 ms on first use) at class level.
    parser = DateDataParser(
        languages=_languages(locale),
        settings={
            "PREFER_DATES_FROM": "future",
            "RELATIVE_BASE": local_now.replace(tzinfo=None),
            "DATE_ORDER": "MDY" if locale.startswith("en") else "DMY",
            "PARSERS": _PARSERS,
            "RETURN_AS_TIMEZONE_AWARE": False,
        },
    )
    try:
        data = parser.get_date_data(phrase)
    except (ValueError, OverflowError):
        return None
    if data.date_obj is None or data.period not in _PRECISE:
        return None
    # PREFER_DATES_FROM=future already puts a year-less "March 3" in the future,
    # and a relative past ("last Friday") must stay past.
    return data.date_obj.date()


# -- public ----------------------------------------------------------------------------


def parse_date(text: str, *, locale: str, tz: ZoneInfo, now: datetime) -> date | None:
    """The calendar day `text` names, seen from the learner's `tz`, or None.

    `now` is an aware datetime (UTC in practice); "today" is its date in `tz`,
    so the same instant is Tuesday in Auckland and Monday in Pago Pago.

    Decisions, for deadlines:

    * "next Friday", "el próximo viernes", "el viernes que viene" are Friday of
      next week (weeks start Monday); "Friday", "this Friday", "el viernes" are
      the coming Friday, and on a Friday that is a week away.
    * "end of the month" / "fin de mes": the month's last day; on the last day,
      next month's. "end of the week": the coming Friday. "the weekend" /
      "fin de semana": the coming Saturday (Sunday if said on a Saturday).
    * "next week" is its Monday, "next month" its 1st, "next year" January 1.
    * "12/4" is December 4 in English and 12 April in Spanish; a date without a
      year that has passed this year is next year's.
    * "yesterday" and "3 days ago" are parsed (the caller says they have passed);
      a bare number ("5") is None: a day, a count of days and a grade are all
      plausible readings.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    local_now = now.astimezone(tz)
    today = local_now.date()
    phrase = _trim(_clean(text))
    if not phrase or phrase.isdigit():
        return None
    for pattern, rule in _RULES:
        m = pattern.match(phrase)
        if m is not None:
            return rule(m, today, locale)
    return _dateparser(phrase, locale, local_now)


def format_date(d: date, locale: str) -> str:
    """The date in words with its weekday, in the learner's language.

    "Friday, December 4, 2026" in English, "viernes, 4 de diciembre de 2026" in Spanish.
    """
    return babel_format_date(d, format="full", locale=locale)
