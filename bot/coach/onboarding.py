"""Onboarding: who a new learner is, in their first conversation.

The `main` flow (dialogs/flows/core.yaml) asks `onboarding.status` whether the
person has been through onboarding; if not it hands over to the `onboarding`
flow (dialogs/flows/onboarding.yaml), which asks what to call them, their
language, their grade band (and, in grades 6-8, whether they are 13 or older),
and when a weekly check-in suits them. The actions here tidy and check those
answers and store them on the person.

The answers the engine cannot judge (is this a name? is this a time?) are checked
here: an action that finds a problem says so and the flow asks again, the same
way the engine re-prompts.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import time

from babel.dates import format_time, get_day_names

from bot.coach import codes
from bot.coach.profile import MAX_NAME_LENGTH
from bot.engine.actions import ActionContext, ActionRegistry
from bot.engine.messages import Button, Reply
from bot.engine.runtime import MISSES_BEFORE_WAY_OUT
from bot.engine.understand import normalize

# -- names -----------------------------------------------------------------------------

# What people type around their name: "my name is Sam", "me llamo Ana".
_NAME_LEAD = re.compile(
    r"^(?:my\s+name\s+is|my\s+name[’']?s|i\s+am|i[’']?m|call\s+me|you\s+can\s+call\s+me|"
    r"it[’']?s|me\s+llamo|mi\s+nombre\s+es|me\s+dicen|puedes\s+llamarme|ll[aá]mame|soy)"
    r"\s+",
    re.IGNORECASE,
)
# Punctuation around a name adds nothing: "Sam!", "«Ana»".
_NAME_EDGES = " \t.,;:!?¡¿\"'“”‘’«»()[]{}-_*~"
# A second "hi" is a greeting, not a name (learners often greet twice).
_GREETINGS = frozenset({"hi", "hii", "hello", "hey", "heya", "hiya", "hola", "holi", "buenas"})
# "What should I call you?" "No thanks": a way of not saying, like "skip". Only clear
# refusals: "Nel", "Na" and "Dale" are names as well as slang for no and yes.
_NO_NAME = frozenset({"no", "nope", "nah", "no thanks", "no thank you", "no gracias", "mejor no"})
# Words in a name that stay lower-case when we capitalise one typed all in lower case.
_NAME_PARTICLES = frozenset({"de", "del", "la", "las", "los", "y", "da", "di", "van", "von"})


def tidy_name(text: str) -> str | None:
    """The name in a reply to "what should I call you?", tidied; None if it is not one.

    Drops "my name is"/"me llamo", surrounding punctuation and extra spaces, and
    capitalises a name typed all in lower case ("maria jose" -> "Maria Jose").
    Not a name: nothing with a letter, a greeting, a question, a /command, or an
    address (e-mail, web link): we would rather not keep those as what to call
    someone.
    """
    name = " ".join(text.split())
    if name.startswith("/") or "?" in name:
        return None  # a command, or a question back ("why?") rather than a name
    name = _NAME_LEAD.sub("", name).strip(_NAME_EDGES).strip()
    if not any(unicodedata.category(c).startswith("L") for c in name):
        return None
    lowered = name.lower()
    if "@" in name or "http" in lowered or "www." in lowered:
        return None
    if normalize(name) in _GREETINGS:
        return None
    if name == lowered:
        words = name.split(" ")
        name = " ".join(
            w
            if i and w in _NAME_PARTICLES
            else "-".join(p[:1].upper() + p[1:] for p in w.split("-"))
            for i, w in enumerate(words)
        )
    return name[:MAX_NAME_LENGTH].rstrip()


# -- grades ----------------------------------------------------------------------------

# The catalog's grade bands (its educationalLevel), as the buttons offer them.
GRADE_BANDS = ("K-2", "3-5", "6-8", "9-12")
# Bands whose learners are all under 13 (grade 5 ends at about 11), and bands whose
# learners are 13 or older (grade 9 starts at about 14); 6-8 spans both, so we ask.
UNDER_13_BANDS = frozenset({"K-2", "3-5"})
OVER_13_BANDS = frozenset({"9-12"})


def band_for_grade(grade: int) -> str | None:
    """The band of a grade number (0 = kindergarten), or None past grade 12."""
    if grade < 0:
        return None
    for band, last in zip(GRADE_BANDS, (2, 5, 8, 12), strict=True):
        if grade <= last:
            return band
    return None


def typed_grade_band(said: str) -> str | None:
    """The band for a grade typed as a bare number ("2" -> "K-2"), else None.

    The engine reads a typed number at a choice as the button in that position
    ("2" -> the second button, 3-5); at this question a learner who types a
    number means their grade, so it wins.
    """
    if not said.strip().isdigit():
        return None
    return band_for_grade(int(said))


# -- check-in times --------------------------------------------------------------------

# "After school" (and no preference at all): 15:30, the default issue 3's brief
# suggests; US school days mostly end by 15:00, so a learner is on their way home.
AFTER_SCHOOL = time(15, 30)
# Reminders only in waking hours: one that arrives at night would wake a household.
EARLIEST = time(7, 0)
LATEST = time(21, 0)
# Without "am"/"pm", "at 4" means 16:00 to a school-age learner, and "at 8" 20:00
# (nobody picks a weekly check-in at 4 in the morning); 9 to 12 read as morning.
_LATEST_AFTERNOON_HOUR = 8

# Times said in words, without a clock time: the time they most likely mean.
# fmt: off
_TIME_WORDS: dict[str, time] = {
    "after school": AFTER_SCHOOL, "when school ends": AFTER_SCHOOL,
    "whenever": AFTER_SCHOOL, "any time": AFTER_SCHOOL, "anytime": AFTER_SCHOOL,
    "despues de clase": AFTER_SCHOOL, "despues de clases": AFTER_SCHOOL,
    "despues del cole": AFTER_SCHOOL, "despues de la escuela": AFTER_SCHOOL,
    "despues del colegio": AFTER_SCHOOL, "al salir de clase": AFTER_SCHOOL,
    "al salir del cole": AFTER_SCHOOL, "cuando sea": AFTER_SCHOOL,
    "a cualquier hora": AFTER_SCHOOL,
    "before school": time(7, 30), "antes de clase": time(7, 30),
    "antes del cole": time(7, 30), "antes de la escuela": time(7, 30),
    "morning": time(8, 0), "in the morning": time(8, 0), "por la manana": time(8, 0),
    "en la manana": time(8, 0),
    "noon": time(12, 0), "midday": time(12, 0), "lunch": time(12, 30),
    "lunchtime": time(12, 30), "at lunch": time(12, 30), "mediodia": time(12, 0),
    "al mediodia": time(12, 0),
    "afternoon": time(16, 0), "in the afternoon": time(16, 0), "por la tarde": time(16, 0),
    "en la tarde": time(16, 0), "tarde": time(16, 0),
    "evening": time(19, 0), "in the evening": time(19, 0), "tonight": time(19, 0),
    "after dinner": time(19, 30), "despues de cenar": time(19, 30),
    "despues de la cena": time(19, 30),
    "night": time(20, 0), "at night": time(20, 0), "por la noche": time(20, 0),
    "en la noche": time(20, 0), "noche": time(20, 0),
}
_HOUR_WORDS: dict[str, int] = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "una": 1, "uno": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6,
    "siete": 7, "ocho": 8, "nueve": 9, "diez": 10, "once": 11, "doce": 12,
}
# A number word is an hour only next to these: "at four", "a las cinco", "four pm",
# "cuatro y media"; elsewhere it is not ("once a week", "una vez por semana").
_BEFORE_HOUR = frozenset({"at", "around", "about", "by", "past", "to", "las", "la"})
_AFTER_HOUR = frozenset({"pm", "am", "oclock", "o", "ish", "de", "y", "menos"})
# Minutes said in words, as a shift from the hour they go with.
_MINUTE_PHRASES: dict[str, int] = {
    "half past": 30, "quarter past": 15, "quarter to": -15,
    "y media": 30, "y cuarto": 15, "menos cuarto": -15,
}
# fmt: on
_PM = re.compile(
    r"\b(?:pm|p m|de la tarde|de la noche|in the afternoon|in the evening|at night|tonight)\b"
)
_AM = re.compile(r"\b(?:am|a m|de la manana|in the morning|de la madrugada)\b")
# An hour, then optional minutes ("16 00" once ":" became a space, "16h30"), then an
# optional marker glued on ("4pm", "16h").
_CLOCK = re.compile(r"\b(\d{1,2})(?:(?: |h)(\d{2}))?(?: ?(h|am|pm))?\b")


@dataclass(frozen=True, slots=True)
class CheckinTime:
    """A time of day for the weekly check-in; `guessed` when said in words ("after school")."""

    at: time
    guessed: bool = False

    @property
    def hhmm(self) -> str:
        return self.at.strftime("%H:%M")


def parse_checkin_time(text: str) -> CheckinTime | None:
    """The time of day in "4pm", "16:00", "16h", "a las 4", "half past four", "after school".

    English and Spanish. Words without a clock time map to a likely time and come
    back `guessed`. Returns None when no time can be read; it does not judge
    whether the time suits a reminder (see `EARLIEST`, `LATEST`).
    """
    tokens = normalize(re.sub(r"(\d)\s*ish\b", r"\1", text)).split()
    said = " ".join(_hour_words_to_digits(tokens))
    minute_shift = 0
    for phrase, shift in _MINUTE_PHRASES.items():
        if re.search(rf"\b{phrase}\b", said):
            said = " ".join(re.sub(rf"\b{phrase}\b", " ", said).split())
            minute_shift = shift
    found = _CLOCK.search(said)
    if found is None:
        for phrase in sorted(_TIME_WORDS, key=len, reverse=True):
            if re.search(rf"\b{phrase}\b", said):
                return CheckinTime(_TIME_WORDS[phrase], guessed=True)
        return None
    raw_hour, raw_minute, marker = found.groups()
    hour, minute = int(raw_hour), int(raw_minute or 0)
    pm = marker == "pm" or _PM.search(said) is not None
    am = marker == "am" or _AM.search(said) is not None
    if minute > 59 or hour > 23 or (pm and am):
        return None
    if pm:
        if hour <= 12:
            hour = hour % 12 + 12
    elif am:
        if hour > 12:
            return None
        hour %= 12
    elif marker != "h" and not raw_hour.startswith("0") and 1 <= hour <= _LATEST_AFTERNOON_HOUR:
        hour += 12
    if minute_shift:
        total = (hour * 60 + minute_shift) % (24 * 60)
        hour, minute = divmod(total, 60)
    return CheckinTime(time(hour, minute))


def _hour_words_to_digits(tokens: list[str]) -> list[str]:
    """ "at four" -> "at 4", "a las cinco y media" -> "a las 5 y media"; other words stay."""
    out: list[str] = []
    for i, token in enumerate(tokens):
        hour = _HOUR_WORDS.get(token)
        before = tokens[i - 1] if i else ""
        after = tokens[i + 1] if i + 1 < len(tokens) else ""
        if hour is not None and (
            len(tokens) == 1 or before in _BEFORE_HOUR or after in _AFTER_HOUR
        ):
            out.append(str(hour))
        else:
            out.append(token)
    return out


def within_reminder_hours(at: time) -> bool:
    return EARLIEST <= at <= LATEST


# -- formatting ------------------------------------------------------------------------


def day_name(weekday: int, locale: str) -> str:
    """The ISO weekday (1 = Monday) in words, in the person's language (Babel)."""
    return str(get_day_names("wide", locale=locale)[weekday - 1])


def time_words(at: time, locale: str) -> str:
    """A time as people in that language write it: 4:00 PM, 16:00 (Babel)."""
    return str(format_time(at, format="short", locale=locale))


# -- the actions -----------------------------------------------------------------------

# The weekday offered when a learner has no preference: a fresh start to the week.
DEFAULT_WEEKDAY = 1


def register(actions: ActionRegistry) -> None:
    """Register onboarding's actions, and the join-code hook (see bot.coach.codes)."""
    codes.register(actions)

    @actions.register("onboarding.status", sets=("onboarding.done", "onboarding.named"))
    async def status(ctx: ActionContext) -> None:
        """Has this person been through onboarding, and do we have a name for them?"""
        ctx.slots["onboarding.done"] = ctx.person.onboarded_at is not None
        ctx.slots["onboarding.named"] = bool(ctx.person.name)

    @actions.register("onboarding.begin", sets=("onboarding.start_locale", "onboarding.misses"))
    async def begin(ctx: ActionContext) -> None:
        """Remember the language we started in, to notice a learner who switches."""
        ctx.slots["onboarding.start_locale"] = ctx.person.locale
        ctx.slots["onboarding.misses"] = 0

    @actions.register("onboarding.save_name", sets=("onboarding.name_ok",))
    async def save_name(ctx: ActionContext) -> None:
        """Store what to call the person; a skip stores no name at all."""
        raw = ctx.slots.get("onboarding.name")
        if raw is not None and normalize(str(raw)) in _NO_NAME:
            raw = None
            ctx.slots["onboarding.name"] = None
        if raw is None:
            # Skipped, or "I don't know": we do not fall back on a channel's display
            # name the learner did not choose to give us.
            ctx.person.name = None
            ctx.slots["onboarding.name_ok"] = True
            return
        name = tidy_name(str(raw))
        ctx.slots["onboarding.name_ok"] = name is not None
        ctx.slots["onboarding.name"] = name
        if name is None:
            ctx.say("onboarding.name_unclear")
            return
        ctx.person.name = name

    @actions.register("onboarding.language_check", sets=("onboarding.language_chosen",))
    async def language_check(ctx: ActionContext) -> None:
        """A learner who already said "español" (or "English") has chosen: no need to ask."""
        start = ctx.slots.get("onboarding.start_locale")
        ctx.slots["onboarding.language_chosen"] = ctx.person.locale != start

    @actions.register("onboarding.save_language")
    async def save_language(ctx: ActionContext) -> None:
        """Switch to the chosen language; the rest of the flow speaks it."""
        chosen = ctx.slots.get("onboarding.locale")
        if chosen is None:
            ctx.say("onboarding.language_kept")
            return
        ctx.person.locale = str(chosen)

    @actions.register("onboarding.save_grade")
    async def save_grade(ctx: ActionContext) -> None:
        """Store the grade band, and what it tells us about being under 13."""
        band = ctx.slots.get("onboarding.grade")
        if band is not None and ctx.said != band:
            band = typed_grade_band(ctx.said) or band
            ctx.slots["onboarding.grade"] = band
        ctx.person.grade_band = band
        if band in UNDER_13_BANDS:
            ctx.person.under_13 = True
        elif band in OVER_13_BANDS:
            ctx.person.under_13 = False
        elif band is None:
            ctx.say("onboarding.grade_unknown")

    @actions.register("onboarding.save_age", sets=("onboarding.age_known",))
    async def save_age(ctx: ActionContext) -> None:
        """13 or older, or not; not knowing counts as under 13 (sharing waits for a family)."""
        over_13 = ctx.slots.get("onboarding.over_13")
        ctx.slots["onboarding.age_known"] = over_13 is not None
        ctx.person.under_13 = over_13 is not True

    @actions.register("onboarding.save_weekday")
    async def save_weekday(ctx: ActionContext) -> None:
        """Store the check-in day (ISO 1-7); no preference gets Monday, said out loud."""
        chosen = ctx.slots.get("onboarding.weekday")
        if chosen is None:
            ctx.person.checkin_weekday = DEFAULT_WEEKDAY
            ctx.say("onboarding.weekday_default", day=day_name(DEFAULT_WEEKDAY, ctx.locale))
            return
        ctx.person.checkin_weekday = int(chosen)

    @actions.register("onboarding.save_time", sets=("onboarding.time_ok", "onboarding.misses"))
    async def save_time(ctx: ActionContext) -> None:
        """Read the check-in time; a problem is said and the flow asks again."""
        said = ctx.slots.get("onboarding.time_said")
        weekday = ctx.person.checkin_weekday or DEFAULT_WEEKDAY
        day = day_name(weekday, ctx.locale)
        parsed = None if said is None else parse_checkin_time(str(said))
        problem: str | None = None
        if said is not None and parsed is None:
            problem = "onboarding.time_unclear"
        elif parsed is not None and not within_reminder_hours(parsed.at):
            problem = "onboarding.time_quiet"
        if problem is not None:
            misses = int(ctx.slots.get("onboarding.misses") or 0) + 1
            ctx.slots["onboarding.misses"] = misses
            if misses < MISSES_BEFORE_WAY_OUT:
                ctx.slots["onboarding.time_ok"] = False
                ctx.say(
                    problem,
                    time=time_words(parsed.at, ctx.locale) if parsed else "",
                    earliest=time_words(EARLIEST, ctx.locale),
                    latest=time_words(LATEST, ctx.locale),
                )
                return
        ctx.slots["onboarding.time_ok"] = True
        ctx.slots["onboarding.misses"] = 0
        if parsed is None or problem is not None:
            # Skipped, "I don't know", or a third miss: after school, said out loud.
            key = "onboarding.time_gave_up" if problem else "onboarding.time_default"
            parsed = CheckinTime(AFTER_SCHOOL, guessed=True)
        else:
            key = "onboarding.time_guessed" if parsed.guessed else "onboarding.time_set"
        ctx.person.checkin_weekday = weekday
        ctx.person.checkin_time = parsed.hhmm
        ctx.say(key, day=day, time=time_words(parsed.at, ctx.locale))

    @actions.register("onboarding.finish")
    async def finish(ctx: ActionContext) -> None:
        """Mark onboarding done and offer what to do next, the learner's pick."""
        ctx.person.onboarded_at = ctx.now
        ctx.say("onboarding.done_named" if ctx.person.name else "onboarding.done")
        # The buttons' values are the intents of the interest quiz and goal setting
        # (and the menu): pressed after the flow has ended, the engine starts the
        # flow that intent triggers, like typing "interests" would.
        ctx.replies.append(
            Reply(
                ctx.render("onboarding.offer", {}),
                (
                    Button(ctx.render("onboarding.offer_interests", {}), "interests"),
                    Button(ctx.render("onboarding.offer_goal", {}), "goal"),
                    Button(ctx.render("onboarding.offer_menu", {}), "menu"),
                ),
            )
        )
