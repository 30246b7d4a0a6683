"""Access codes: a teacher invite, a class join code or a family code, typed in any chat.

A teacher hands out a code such as `KD7QM-4RX2P`; a learner may type it as the
first thing they say, in the middle of a question, after "code" or "código", or
arrive with it through a Telegram deep link (`/start KD7QM4RX2P`). Recognising
one is a pure function (`parse_join_code`); `handle_code`, an interceptor that
sees every message first, redeems it:

- a teacher invite (`coach admin teacher-invite`, single use, 7 days) makes the
  sender a teacher;
- a class code (multi-use, until the class is archived or the teacher makes a new
  one) enrols a learner in the class (a learner may be in several);
- a family code (`/familycode`, single use, 14 days) links the sender to that
  learner as a family member; the family flow then asks language, consent and
  how often to hear (dialogs/flows/family.yaml).

Only a code's SHA-256 is stored. A used, expired, revoked or unknown code gets
the same kind answer, so nobody learns which it was; five of those from one
person within 10 minutes lock code entry for an hour.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from datetime import datetime, timedelta

from babel.dates import format_datetime, format_time
from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.coach.timezones import zone_of
from bot.engine.actions import ActionContext, ActionRegistry
from bot.store.models import (
    AccessCode,
    ChannelIdentity,
    CodeAttempt,
    Enrollment,
    FamilyLink,
    Person,
    SchoolClass,
)

# Crockford-style alphabet without the look-alikes 0/O and 1/I/L, so a code read
# off a whiteboard or a slip of paper can be typed back without guessing.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 10
# Codes are printed in two groups of five (KD7QM-4RX2P), like a licence key.
GROUP = 5
# 10 symbols of 31 carry 10 * log2(31) = 49.5 bits (issue 5 asks for at least 40).
# Codes without a digit or without a letter are drawn again (`parse_join_code` reads
# only codes with both, so ten-letter words are never taken for one); that rejects
# (23/31)^10 + (8/31)^10 = 5% of draws and costs 0.08 bits: 49.5 remain.
CODE_BITS = CODE_LENGTH * math.log2(len(ALPHABET))

# Issue 5: a teacher invite lasts 7 days, a family code 14; both work once.
TEACHER_CODE_LIFETIME = timedelta(days=7)
FAMILY_CODE_LIFETIME = timedelta(days=14)
# Issue 5: five wrong codes within 10 minutes lock code entry for an hour. With
# 31^10 possible codes, five guesses an hour make guessing hopeless.
WRONG_CODES_BEFORE_LOCK = 5
WRONG_CODE_WINDOW = timedelta(minutes=10)
LOCK_DURATION = timedelta(hours=1)

# Roles that may not be turned into a learner's family member by a code: their
# account is for their school work (one person has one role).
_STAFF_ROLES = frozenset({"teacher", "admin"})

# Slots the family flow reads after a family code (dialogs/flows/family.yaml).
PENDING_LINK = "family.pending"
WAS_FAMILY = "family.returning"

_SYMBOL = "[" + re.escape(ALPHABET) + "]"
# re.ASCII keeps case-folding to A-Z: without it IGNORECASE lets the Kelvin sign
# (U+212A) pass for K and the long s (U+017F) for S.
_CODE = re.compile(
    rf"({_SYMBOL}{{{GROUP}}})[- ]?({_SYMBOL}{{{CODE_LENGTH - GROUP}}})",
    re.IGNORECASE | re.ASCII,
)
# What may come before the code: a word saying it is one, or Telegram's deep-link
# command (with the optional @botname Telegram adds in groups).
_PREFIX = re.compile(
    r"(?:(?:code|c[oó]digo)\s*[:#]?\s*|/start(?:@\w+)?\s+)",
    re.IGNORECASE,
)


def parse_join_code(text: str) -> str | None:
    """The code a message consists of, upper-case without its dash, or None.

    The message must be only the code (surrounding spaces aside), optionally after
    "code", "código" or "/start". A code is ten symbols from `ALPHABET` in any
    case, with at most one dash or space after the fifth, and holds at least one
    digit and one letter: ordinary ten-letter words ("everything") never do.
    """
    text = text.strip()
    prefix = _PREFIX.match(text)
    if prefix is not None:
        text = text[prefix.end() :]
    found = _CODE.fullmatch(text)
    if found is None:
        return None
    code = (found.group(1) + found.group(2)).upper()
    if not _has_digit_and_letter(code):
        return None
    return code


def _has_digit_and_letter(code: str) -> bool:
    return any(c.isdigit() for c in code) and any(c.isalpha() for c in code)


def display_code(code: str) -> str:
    """A code as it is printed for people: two groups of five joined by a dash."""
    return f"{code[:GROUP]}-{code[GROUP:]}"


def new_code() -> str:
    """A fresh random code (upper case, no dash) from the operating system's CSPRNG."""
    while True:
        code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        if _has_digit_and_letter(code):
            return code


def code_hash(code: str) -> str:
    """What the database keeps of a code: SHA-256 (hex) of it in upper case, no dash."""
    normalised = re.sub(r"[\s-]", "", code).upper()
    return hashlib.sha256(normalised.encode("ascii")).hexdigest()


async def issue_code(
    session: AsyncSession,
    *,
    kind: str,
    now: datetime,
    class_id: int | None = None,
    learner_id: int | None = None,
    created_by: int | None = None,
) -> str:
    """Store a new code of `kind` (teacher, class or family) and return it, undashed.

    Teacher and family codes work once and expire (7 and 14 days); a class code
    works until the class is archived or replaced, so a new class code revokes the
    class's earlier ones. Only the hash is stored: the code is shown once.
    """
    if kind == "class":
        if class_id is None:
            raise ValueError("a class code needs its class")
        await revoke_class_codes(session, class_id, now)
    elif kind == "family":
        if learner_id is None:
            raise ValueError("a family code needs its learner")
    elif kind != "teacher":
        raise ValueError(f"unknown code kind {kind!r}")
    lifetime = {"teacher": TEACHER_CODE_LIFETIME, "family": FAMILY_CODE_LIFETIME}.get(kind)
    code = new_code()
    session.add(
        AccessCode(
            code_hash=code_hash(code),
            kind=kind,
            class_id=class_id,
            learner_id=learner_id,
            created_by=created_by,
            single_use=kind != "class",
            expires_at=now + lifetime if lifetime else None,
            created_at=now,
        )
    )
    # A collision (one in 2^49 per pair) fails the unique index here and the turn
    # runs again with a new code.
    await session.flush()
    return code


async def revoke_class_codes(session: AsyncSession, class_id: int, now: datetime) -> None:
    """Stop every live join code of a class (a new one replaces them)."""
    rows = await session.exec(
        select(AccessCode)
        .where(AccessCode.class_id == class_id, AccessCode.kind == "class")
        .where(col(AccessCode.revoked_at).is_(None))
    )
    for row in rows.all():
        row.revoked_at = now


async def usable_code(session: AsyncSession, code: str, now: datetime) -> AccessCode | None:
    """The stored code if it still works now: not used (if single use), revoked or expired,
    and for a class code, the class is not archived."""
    row = (
        await session.exec(select(AccessCode).where(AccessCode.code_hash == code_hash(code)))
    ).first()
    if row is None or row.revoked_at is not None:
        return None
    if row.single_use and row.used_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    if row.kind == "class":
        school_class = await session.get(SchoolClass, row.class_id)
        if school_class is None or school_class.archived_at is not None:
            return None
    return row


# -- wrong codes and the lock -----------------------------------------------------------


async def _identity_ids(session: AsyncSession, person_id: int) -> list[int]:
    """The person's identities, most recently used first."""
    rows = await session.exec(
        select(ChannelIdentity.id)
        .where(ChannelIdentity.person_id == person_id)
        .order_by(col(ChannelIdentity.last_seen_at).desc(), col(ChannelIdentity.id).desc())
    )
    return [i for i in rows.all() if i is not None]


async def record_wrong_code(session: AsyncSession, person_id: int, now: datetime) -> None:
    """Note a code that did not work, against the identity the person used last.

    A turn's actions know the person, not which of their identities spoke; nearly
    everyone has one, and counting over all of a person's identities (see
    `locked_until`) is the stricter reading of "from one identity".
    """
    ids = await _identity_ids(session, person_id)
    if ids:
        # Tries older than a lock's reach can never count again: keep the table small.
        await session.exec(
            delete(CodeAttempt)
            .where(col(CodeAttempt.identity_id).in_(ids))
            .where(col(CodeAttempt.at) <= now - LOCK_DURATION - WRONG_CODE_WINDOW)
        )
        session.add(CodeAttempt(identity_id=ids[0], at=now))
        await session.flush()


async def locked_until(session: AsyncSession, person_id: int, now: datetime) -> datetime | None:
    """When code entry opens again for this person, or None if it is open now.

    Locked for `LOCK_DURATION` from the fifth wrong code within `WRONG_CODE_WINDOW`.
    Codes sent while locked are not checked and not counted, so the lock ends an
    hour after it began, not an hour after the last try.
    """
    ids = await _identity_ids(session, person_id)
    if not ids:
        return None
    since = now - LOCK_DURATION - WRONG_CODE_WINDOW
    rows = await session.exec(
        select(CodeAttempt.at)
        .where(col(CodeAttempt.identity_id).in_(ids))
        .where(col(CodeAttempt.at) > since)
        .order_by(col(CodeAttempt.at))
    )
    times = list(rows.all())
    until: datetime | None = None
    first = WRONG_CODES_BEFORE_LOCK - 1
    for i in range(first, len(times)):
        if times[i] - times[i - first] <= WRONG_CODE_WINDOW:
            end = times[i] + LOCK_DURATION
            until = end if until is None or end > until else until
    return until if until is not None and until > now else None


def when_words(at: datetime, person: Person, now: datetime) -> str:
    """A moment in the person's time zone and language: "4:35 PM", or with the date when
    it is not today there (Babel)."""
    zone = zone_of(person.timezone)
    local = at.astimezone(zone)
    if local.date() == now.astimezone(zone).date():
        return str(format_time(local, format="short", tzinfo=zone, locale=person.locale))
    return str(format_datetime(local, format="short", tzinfo=zone, locale=person.locale))


# -- redeeming --------------------------------------------------------------------------


async def _use(row: AccessCode, person: Person, now: datetime) -> None:
    if row.single_use:
        row.used_at = now
        row.used_by = person.id


async def _redeem_teacher(ctx: ActionContext, row: AccessCode) -> None:
    person = ctx.person
    await _use(row, person, ctx.now)
    if person.role in _STAFF_ROLES:
        ctx.say("codes.already_teacher")
        return
    person.role = "teacher"
    ctx.say("codes.teacher_welcome")
    # Whatever they were in the middle of was a learner's conversation.
    ctx.restart = True


async def _redeem_class(ctx: ActionContext, row: AccessCode) -> None:
    person = ctx.person
    assert person.id is not None
    assert row.class_id is not None
    school_class = await ctx.session.get(SchoolClass, row.class_id)
    assert school_class is not None  # usable_code checked it
    assert school_class.id is not None
    if person.role != "learner":
        key = "codes.class_for_learners_teacher" if person.role in _STAFF_ROLES else None
        ctx.say(key or "codes.class_for_learners")
        return
    teacher = await ctx.session.get(Person, school_class.teacher_id)
    teacher_name = teacher.name if teacher is not None else None
    already = (
        await ctx.session.exec(
            select(Enrollment.id).where(
                Enrollment.class_id == school_class.id, Enrollment.learner_id == person.id
            )
        )
    ).first()
    if already is not None:
        ctx.say("codes.already_in_class", class_name=school_class.name)
        return
    ctx.session.add(Enrollment(class_id=school_class.id, learner_id=person.id, created_at=ctx.now))
    # Two deliveries of the same code race on the unique (class, learner) pair: the
    # loser's turn fails there and runs again, finding the enrolment made.
    await ctx.session.flush()
    if teacher_name:
        ctx.say("codes.joined_class", class_name=school_class.name, teacher=teacher_name)
    else:
        ctx.say("codes.joined_class_unnamed", class_name=school_class.name)


async def _enrolled_anywhere(session: AsyncSession, person_id: int) -> bool:
    row = await session.exec(
        select(func.count()).select_from(Enrollment).where(Enrollment.learner_id == person_id)
    )
    return bool(row.one())


async def _redeem_family(ctx: ActionContext, row: AccessCode) -> None:
    person = ctx.person
    assert person.id is not None
    assert row.learner_id is not None
    if row.learner_id == person.id:
        ctx.say("codes.family_own_code")
        return
    if person.role in _STAFF_ROLES:
        ctx.say("codes.family_not_for_staff")
        return
    if person.role == "learner" and await _enrolled_anywhere(ctx.session, person.id):
        # A learner's account stays a learner's: the code is for a grown-up's own phone.
        ctx.say("codes.family_not_for_learners")
        return
    learner = await ctx.session.get(Person, row.learner_id)
    assert learner is not None  # the code goes with its learner (ON DELETE CASCADE)
    assert learner.id is not None
    await _use(row, person, ctx.now)
    was_family = person.role == "family"
    link = (
        await ctx.session.exec(
            select(FamilyLink).where(
                FamilyLink.family_id == person.id, FamilyLink.learner_id == learner.id
            )
        )
    ).first()
    if link is None:
        link = FamilyLink(family_id=person.id, learner_id=learner.id, created_at=ctx.now)
        ctx.session.add(link)
        await ctx.session.flush()
    person.role = "family"
    ctx.slots[PENDING_LINK] = link.id
    ctx.slots[WAS_FAMILY] = was_family
    key = "codes.family_linked_too" if was_family else "codes.family_linked"
    ctx.say(key, learner=learner.name or ctx.render("family.someone", {}))
    # The family flow asks language, consent and how often, whatever was in progress.
    ctx.restart = True


async def handle_code(ctx: ActionContext) -> bool:
    """Answer a message that is an access code; True when it was one."""
    code = parse_join_code(ctx.said)
    if code is None:
        return False
    person = ctx.person
    assert person.id is not None
    until = await locked_until(ctx.session, person.id, ctx.now)
    if until is not None:
        ctx.say("codes.locked", time=when_words(until, person, ctx.now))
        return True
    row = await usable_code(ctx.session, code, ctx.now)
    if row is None:
        # Unknown, used, expired or revoked: one answer for all, so nobody learns which.
        await record_wrong_code(ctx.session, person.id, ctx.now)
        ctx.say("codes.not_recognised", code=display_code(code))
        until = await locked_until(ctx.session, person.id, ctx.now)
        if until is not None:
            ctx.say("codes.locked_now", time=when_words(until, person, ctx.now))
        return True
    if row.kind == "teacher":
        await _redeem_teacher(ctx, row)
    elif row.kind == "class":
        await _redeem_class(ctx, row)
    else:
        await _redeem_family(ctx, row)
    return True


def register(actions: ActionRegistry) -> None:
    """Let access codes be recognised at any step (called from onboarding.register)."""
    actions.intercept(handle_code)
