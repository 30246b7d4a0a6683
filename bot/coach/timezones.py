"""Reading a time zone as people say it: "America/Chicago", "chicago", "Nueva York", "pacific".

IANA names come from the system's tz database (zoneinfo, with the tzdata package
as fallback); the cities people type are the last part of those names ("New
York" for America/New_York) and Babel's CLDR exemplar cities in English and
Spanish ("Ciudad de México", "Londres"). A typo of a letter or two still finds
the city.
"""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel import Locale
from rapidfuzz import fuzz, process

from bot.engine.understand import normalize

# US time zone names, as US families and schools say them (the four zones of the
# contiguous US plus Alaska, Hawaii and Arizona, which keeps standard time all year).
_US_NAMES = {
    "eastern": "America/New_York",
    "eastern time": "America/New_York",
    "central": "America/Chicago",
    "central time": "America/Chicago",
    "mountain": "America/Denver",
    "mountain time": "America/Denver",
    "pacific": "America/Los_Angeles",
    "pacific time": "America/Los_Angeles",
    "alaska": "America/Anchorage",
    "hawaii": "Pacific/Honolulu",
    "arizona": "America/Phoenix",
}
# IANA areas of the canonical Area/City names; others ("US/Eastern", "Cuba") are
# older aliases, kept only for exact matches.
_AREAS = frozenset(
    {"Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe", "Indian"}
    | {"Pacific"}
)
# How close (rapidfuzz ratio, 0-100) a typed city must be to a known one: "chicgo"
# for "chicago" scores 92, while different cities of similar length stay below 80.
CITY_MATCH_SCORE = 88


@cache
def _names() -> tuple[dict[str, str], dict[str, str]]:
    """(exact IANA names by lower case, canonical zones by normalised city name)."""
    zones = {z for z in available_timezones() if z not in ("localtime", "Factory")}
    exact = {z.lower(): z for z in zones}
    cities: dict[str, str] = {}
    canonical = sorted(z for z in zones if z.split("/", 1)[0] in _AREAS)
    for zone in canonical:
        cities.setdefault(normalize(zone.rsplit("/", 1)[-1].replace("_", " ")), zone)
    for code in ("en", "es"):
        names = Locale.parse(code).time_zones
        for zone in canonical:
            city = names.get(zone, {}).get("city")
            if city:
                cities.setdefault(normalize(str(city)), zone)
    for said, zone in _US_NAMES.items():
        cities[normalize(said)] = zone
    return exact, cities


def resolve_zone(text: str) -> str | None:
    """The IANA time zone the text names, or None if it names none we know."""
    said = " ".join(text.split())
    if not said:
        return None
    exact, cities = _names()
    found = exact.get(said.lower()) or exact.get(said.lower().replace(" ", "_"))
    if found:
        return found
    wanted = normalize(said)
    if wanted in cities:
        return cities[wanted]
    match = process.extractOne(
        wanted, list(cities), scorer=fuzz.ratio, score_cutoff=CITY_MATCH_SCORE
    )
    return cities[match[0]] if match else None


def zone_of(name: str) -> ZoneInfo:
    """A person's zone; a name that no longer resolves reads as UTC."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
