"""Family members: setting up after a family code, and a helpful answer to anything else.

A family code (bot.coach.codes) links the sender to a learner and leaves the
link's id in the `family.pending` slot; `main` (core.yaml) hands family members
to `family_home` (dialogs/flows/family.yaml), which runs `family_setup` while a
link waits: language (first, so the consent question is read in the family's own
language), consent, and how often to hear. Without consent nothing about the
learner is shared (bot.coach.access.family_may_hear), and they are told so kindly.

Anything else a family member says, including a reply to a nudge, gets the
family help: what they get, how to talk about goals at home, how to change
settings, /pause and /stop.
"""

from __future__ import annotations

from bot.coach import access
from bot.coach.codes import PENDING_LINK, WAS_FAMILY
from bot.coach.school import learner_label, names_list
from bot.engine.actions import ActionContext, ActionRegistry
from bot.store.models import NUDGE_FREQUENCIES, FamilyLink, Person

PENDING = "family.has_pending"
GONE = "family.gone"
LEARNER = "family.learner"
UNDER_13 = "family.under_13"
ASK_LANGUAGE = "family.ask_language"
LOCALE = "family.locale"
CONSENT = "family.consent"
ASK_FREQUENCY = "family.ask_frequency"
FREQUENCY = "family.frequency"
# What a family member hears when they have not chosen (issue 5: weekly by default).
DEFAULT_FREQUENCY = "weekly"


async def pending_link(ctx: ActionContext) -> FamilyLink | None:
    """The link this family member's setup is about, if one waits and is still theirs."""
    link_id = ctx.slots.get(PENDING_LINK)
    if not isinstance(link_id, int):
        return None
    link = await ctx.session.get(FamilyLink, link_id)
    if link is None or link.family_id != ctx.person.id:
        return None
    return link


def register(actions: ActionRegistry) -> None:
    """Register the family setup and help actions."""

    @actions.register("family.status", sets=(PENDING,))
    async def status(ctx: ActionContext) -> None:
        """Is a new link waiting for language, consent and frequency?"""
        ctx.slots[PENDING] = await pending_link(ctx) is not None

    @actions.register("family.setup_start", sets=(GONE, LEARNER, UNDER_13, ASK_LANGUAGE))
    async def setup_start(ctx: ActionContext) -> None:
        """Name the learner for the questions; ask the language only of someone new."""
        link = await pending_link(ctx)
        ctx.slots[GONE] = link is None
        if link is None:
            ctx.slots.pop(PENDING_LINK, None)
            return
        learner = await ctx.session.get(Person, link.learner_id)
        assert learner is not None  # the link goes with the learner (ON DELETE CASCADE)
        ctx.slots[LEARNER] = learner_label(ctx, learner)
        # Not knowing the age counts as under 13, as in onboarding.
        ctx.slots[UNDER_13] = learner.under_13 is not False
        ctx.slots[ASK_LANGUAGE] = not ctx.slots.get(WAS_FAMILY)

    @actions.register("family.save_language")
    async def save_language(ctx: ActionContext) -> None:
        """Speak the chosen language from now on (a skip keeps the current one)."""
        chosen = ctx.slots.get(LOCALE)
        if chosen in ("en", "es"):
            ctx.person.locale = str(chosen)

    @actions.register("family.save_consent", sets=(ASK_FREQUENCY,))
    async def save_consent(ctx: ActionContext) -> None:
        """Record consent on the link (or its absence: nothing is shared without it)."""
        link = await pending_link(ctx)
        agreed = ctx.slots.get(CONSENT) is True
        if link is not None:
            link.consented_at = ctx.now if agreed else None
        ctx.slots[ASK_FREQUENCY] = agreed and ctx.person.nudge_frequency in (None, "off")

    @actions.register("family.save_frequency")
    async def save_frequency(ctx: ActionContext) -> None:
        """How often to hear: weekly, milestones only, or off (a skip means weekly)."""
        chosen = ctx.slots.get(FREQUENCY)
        ctx.person.nudge_frequency = (
            str(chosen) if chosen in NUDGE_FREQUENCIES else DEFAULT_FREQUENCY
        )

    @actions.register("family.finish")
    async def finish(ctx: ActionContext) -> None:
        """Setup done: say what happens now, and where to change it."""
        link = await pending_link(ctx)
        ctx.slots.pop(PENDING_LINK, None)
        ctx.slots.pop(WAS_FAMILY, None)
        if link is not None and link.consented_at is None:
            ctx.say("family.declined", learner=ctx.slots.get(LEARNER))
            return
        key = {
            "weekly": "family.set_weekly",
            "milestones": "family.set_milestones",
        }.get(ctx.person.nudge_frequency or "", "family.set_off")
        ctx.say(key, learner=ctx.slots.get(LEARNER))
        ctx.say("family.change_later")

    @actions.register("family.help")
    async def family_help(ctx: ActionContext) -> None:
        """What a family member gets, how to talk about goals at home, and the commands."""
        assert ctx.person.id is not None
        linked = await access.linked_learners(ctx.session, ctx.person.id)
        agreed = [learner_label(ctx, p) for p, link in linked if link.consented_at]
        declined = [learner_label(ctx, p) for p, link in linked if not link.consented_at]
        if agreed:
            ctx.say("family.help_updates", learners=names_list(agreed, ctx.locale))
        if declined:
            ctx.say("family.help_no_updates", learners=names_list(declined, ctx.locale))
        if not linked:
            ctx.say("family.help_unlinked")
        ctx.say("family.help_talk")
        ctx.say("family.help_commands")
