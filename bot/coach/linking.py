"""/link: one person on several channels (a teacher on Slack and Telegram gets one digest).

`/link` gives a short-lived code (10 minutes, single use; the format and the
hashing of bot/coach/codes.py, kept in access_codes with kind "link"). Sent from
another channel (typed alone, as "/link CODE", or through a Telegram deep link
"/start CODE"), it joins the two people into one:

- the person with data is kept (goals, check-ins, interests, classes, family
  links, alerts, or a role other than learner); with none on either side, the
  one who finished onboarding, else the older one;
- the other's identities, message log and inbox move to the kept person, and
  the other person and their conversation are deleted;
- when both have data, nothing is joined: merging two sets of goals, classes or
  consents would guess at what the person wants. They are told to /forget the
  one they don't need (or link a new app before using it) and try again.

Proactive messages then go where the person was last seen (bot/store/outbox.py).

The code's sender is usually the new, empty person, and the turn that redeems
the code is theirs: the turn service writes their conversation, log and inbox
rows after the actions run. So in that case the folding happens as the turn's
transaction commits (SQLAlchemy's before_commit event, in the same transaction),
and the reply stands alone (nothing of the empty person's onboarding is asked).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from babel.lists import format_list
from sqlalchemy import delete, event, func, update
from sqlalchemy.orm import Session
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.coach.codes import (
    code_hash,
    display_code,
    locked_until,
    new_code,
    parse_join_code,
    record_wrong_code,
    usable_code,
    when_words,
)
from bot.engine.actions import ActionContext, ActionRegistry
from bot.store.models import AccessCode, ChannelIdentity, Conversation, Person

KIND = "link"
# Long enough to open the other app and type ten characters, short enough that a
# code seen over someone's shoulder is soon worthless (the brief: 10 minutes).
LIFETIME = timedelta(minutes=10)
# Rows that every person has, or that are about the conversation rather than the
# coaching: they move with the person and do not count as data.
BOOKKEEPING = frozenset(
    {
        "people",
        "channel_identities",
        "conversations",
        "message_log",
        "inbox",
        "outbox",
        "access_codes",
        "code_attempts",
        "audit_log",
    }
)
# "/link KD7QM-4RX2P" (or the Spanish /vincular), with the @botname Telegram may add.
_LINK_COMMAND = re.compile(r"/(?:link|vincular)(?:@\w+)?\s+(\S.*)", re.IGNORECASE | re.DOTALL)


def link_code_in(text: str) -> tuple[str | None, bool]:
    """(the code in a message, whether it came after /link). The code alone, "code
    KD7QM-4RX2P" or "/start KD7QM4RX2P" read as codes.parse_join_code reads them."""
    found = _LINK_COMMAND.fullmatch(text.strip())
    if found is not None:
        return parse_join_code(found.group(1)), True
    return parse_join_code(text), False


async def issue_link_code(session: AsyncSession, person: Person, now: datetime) -> str:
    """A new link code for `person` (undashed); their earlier unused ones stop working."""
    assert person.id is not None
    await session.exec(
        update(AccessCode)
        .where(col(AccessCode.kind) == KIND, col(AccessCode.created_by) == person.id)
        .where(col(AccessCode.used_at).is_(None), col(AccessCode.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    code = new_code()
    session.add(
        AccessCode(
            code_hash=code_hash(code),
            kind=KIND,
            created_by=person.id,
            single_use=True,
            expires_at=now + LIFETIME,
            created_at=now,
        )
    )
    # A collision (one in 2^49) fails the unique index and the turn runs again.
    await session.flush()
    return code


# -- who has data ------------------------------------------------------------------------


async def has_data(session: AsyncSession, person: Person) -> bool:
    """Whether joining would lose something if this person were the one folded away.

    Driven by the schema, like erasure (bot/coach/privacy.py): any row outside
    `BOOKKEEPING` that refers to the person counts, so a table added later is
    counted the day it is added (merging then refuses rather than loses it).
    """
    if person.role != "learner":
        return True
    for table in SQLModel.metadata.sorted_tables:
        if table.name in BOOKKEEPING:
            continue
        for fk in table.foreign_keys:
            if fk.column.table.name != "people":
                continue
            found = await session.exec(
                select(func.count()).select_from(table).where(fk.parent == person.id)
            )
            if found.one():
                return True
    return False


async def choose(
    session: AsyncSession, owner: Person, sender: Person
) -> tuple[Person, Person] | None:
    """(kept, folded away), or None when both have data."""
    owner_data, sender_data = await has_data(session, owner), await has_data(session, sender)
    if owner_data and sender_data:
        return None
    if owner_data != sender_data:
        return (owner, sender) if owner_data else (sender, owner)
    if (owner.onboarded_at is None) != (sender.onboarded_at is None):
        return (owner, sender) if owner.onboarded_at is not None else (sender, owner)
    older = min((owner, sender), key=lambda p: (p.created_at, p.id or 0))
    return (older, sender if older is owner else owner)


# -- folding one person into another --------------------------------------------------------


def fold(session: Session, drop_id: int, keep_id: int) -> None:
    """Every row that refers to person `drop_id` refers to `keep_id` instead (identities,
    message log, inbox, outbox, codes: the schema says which); then the dropped
    person's conversation and the person go. Synchronous: it runs inside
    `AsyncSession.run_sync` or a commit hook."""
    for table in SQLModel.metadata.sorted_tables:
        if table.name in ("people", "conversations"):
            continue
        for fk in sorted(table.foreign_keys, key=lambda f: f.parent.name):
            if fk.column.table.name == "people":
                session.execute(
                    update(table).where(fk.parent == drop_id).values({fk.parent.name: keep_id})
                )
    session.execute(delete(Conversation).where(col(Conversation.person_id) == drop_id))
    session.execute(delete(Person).where(col(Person.id) == drop_id))


def fold_at_commit(session: AsyncSession, drop_id: int, keep_id: int) -> None:
    """`fold` as this session's transaction commits, after the turn wrote its rows."""

    def before_commit(sync: Session) -> None:
        sync.flush()
        fold(sync, drop_id, keep_id)

    # A turn that rolls back (and runs again) does so in a new session: the hook goes
    # with the old one.
    event.listen(session.sync_session, "before_commit", before_commit, once=True)


# -- the chat ----------------------------------------------------------------------------------


async def _channel_names(ctx: ActionContext, person_id: int) -> str:
    """Where a person talks to us, in words: "Telegram and web chat"."""
    rows = await ctx.session.exec(
        select(ChannelIdentity.channel).where(ChannelIdentity.person_id == person_id)
    )
    names: list[str] = []
    for channel in sorted(set(rows.all())):
        key = f"link.channels.{channel}"
        try:
            names.append(ctx.render(key, {}))
        except KeyError:
            names.append(channel)
    return format_list(names, locale=ctx.locale) if names else ""


async def redeem_link(ctx: ActionContext) -> bool:
    """The interceptor: answer a message that is a link code; True when it was one."""
    code, explicit = link_code_in(ctx.said)
    if code is None:
        return False
    person = ctx.person
    assert person.id is not None
    until = await locked_until(ctx.session, person.id, ctx.now)
    if until is not None:
        if not explicit:
            return False  # bot/coach/codes.py says it is locked
        ctx.say("codes.locked", time=when_words(until, person, ctx.now))
        return True
    row = await usable_code(ctx.session, code, ctx.now)
    owner = await ctx.session.get(Person, row.created_by) if row and row.kind == KIND else None
    if row is None or owner is None or owner.id is None:
        if not explicit:
            return False  # a class or family code, or a wrong one: bot/coach/codes.py
        # The same answer and the same count as any code that does not work (codes.py).
        await record_wrong_code(ctx.session, person.id, ctx.now)
        ctx.say("codes.not_recognised", code=display_code(code))
        until = await locked_until(ctx.session, person.id, ctx.now)
        if until is not None:
            ctx.say("codes.locked_now", time=when_words(until, person, ctx.now))
        return True
    ctx.quiet = True
    if owner.id == person.id:
        ctx.say("link.own_code")
        return True
    if ctx.session.get_bind().dialect.name == "postgresql":
        # The owner may be mid-turn on their other channel: wait for it, then hold them.
        await ctx.session.exec(
            select(Conversation.id).where(Conversation.person_id == owner.id).with_for_update()
        )
    chosen = await choose(ctx.session, owner, person)
    if chosen is None:
        ctx.say("link.both_have_data")
        return True
    keep, drop = chosen
    assert keep.id is not None
    assert drop.id is not None
    where = await _channel_names(ctx, owner.id)
    row.used_at = ctx.now
    row.used_by = keep.id
    if drop is person:
        # This turn is the dropped person's: fold them away as it commits, and let the
        # reply stand alone (their onboarding is no longer anyone's).
        fold_at_commit(ctx.session, drop.id, keep.id)
        ctx.pause_flow = True
        named = keep.name
    else:
        await ctx.session.run_sync(fold, drop.id, keep.id)
        named = person.name
    if named:
        ctx.say("link.joined_named", where=where, name=named)
    else:
        ctx.say("link.joined", where=where)
    return True


# Channels with a name in the catalog (link.channel.<name>).
_CHANNEL_NAMES = ("telegram", "slack", "web", "api")


def register(actions: ActionRegistry) -> None:
    """/link's action, and the interceptor that redeems link codes (before other codes)."""
    actions.intercept(redeem_link)

    @actions.register("link.here")
    async def here(ctx: ActionContext) -> None:
        """/here: proactive messages come to the channel this message came from."""
        assert ctx.person.id is not None
        channels = set(
            (
                await ctx.session.exec(
                    select(ChannelIdentity.channel).where(
                        ChannelIdentity.person_id == ctx.person.id
                    )
                )
            ).all()
        )
        ctx.person.preferred_channel = ctx.channel or None
        if len(channels) <= 1:
            ctx.say("link.here_only")
            return
        name = (
            ctx.render(f"link.channel.{ctx.channel}", {})
            if ctx.channel in _CHANNEL_NAMES
            else ctx.channel
        )
        ctx.say("link.here_set", channel=name)

    @actions.register("link.issue")
    async def issue(ctx: ActionContext) -> None:
        """Give the person a link code for their other app."""
        code = await issue_link_code(ctx.session, ctx.person, ctx.now)
        minutes = int(LIFETIME.total_seconds() // 60)
        ctx.say("link.code", code=display_code(code), minutes=minutes)
        ctx.say("link.how")
