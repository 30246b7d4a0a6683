"""Resources in chat: /resources, "more", searches, 👍 / 👎, and what other flows offer.

The `ResourceLibrary` is the shipped catalog (content/catalog) merged with the
school's own resources (the catalog_resources table, `coach catalog import`),
indexed once as a `Recommender`. Another process may import while this one
serves, so the library looks at the table's revision (row count and newest
update) at most every REFRESH_EVERY and rebuilds when it moved.

Every resource shown is stored (RecommendationShown) with the reason the learner
read; that history is what keeps recommendations new (nothing again within 14
days unless asked), what 👍 and 👎 attach to, and what the export lists.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.coach.catalog import Catalog, Resource
from bot.coach.catalog_store import catalog_revision, merged_catalog, school_resources
from bot.coach.interests import latest_profile
from bot.coach.recommend import (
    NOVELTY_WINDOW,
    Learner,
    Recommendation,
    Recommender,
    SearchQuery,
    parse_search,
)
from bot.engine.actions import ActionContext, ActionRegistry
from bot.engine.messages import Button, Reply
from bot.engine.topics import Vocabulary
from bot.store.models import Goal, Person, RecommendationShown

# How stale the library may be after a `coach catalog import` in another process: a
# cheap COUNT/MAX query at most this often (an import is a rare, manual event).
REFRESH_EVERY = timedelta(seconds=30)
# Issue 4: "two or three resources"; three fill one chat turn (the engine's cap).
SHOW = 3
EXTRAS_KEY = "resources"
# A 👍 / 👎 button's value: "like:<resource id>" / "dislike:<resource id>".
_FEEDBACK = re.compile(r"^(like|dislike):([a-z0-9]+(?:-[a-z0-9]+)*)$")
LIKE, DISLIKE = 1, -1


class ResourceLibrary:
    """The catalog a school's learners are recommended from, kept current."""

    def __init__(
        self,
        shipped: Catalog,
        vocabulary: Vocabulary,
        area_labels: Mapping[str, Mapping[str, str]],
        *,
        refresh_every: timedelta = REFRESH_EVERY,
    ) -> None:
        self.shipped = shipped
        self.vocabulary = vocabulary
        self.area_labels = area_labels
        self.refresh_every = refresh_every
        self._recommender = Recommender(shipped, vocabulary, area_labels)
        self._revision: tuple[int, datetime | None] = (0, None)
        self._checked_at: datetime | None = None
        self._lock = asyncio.Lock()

    async def recommender(self, session: AsyncSession, now: datetime) -> Recommender:
        """The current recommender: rebuilt when the school's resources changed."""
        if self._checked_at is not None and now - self._checked_at < self.refresh_every:
            return self._recommender
        async with self._lock:
            if self._checked_at is not None and now - self._checked_at < self.refresh_every:
                return self._recommender
            revision = await catalog_revision(session)
            if revision != self._revision:
                merged = merged_catalog(self.shipped, await school_resources(session))
                # Indexing 50,000 resources takes about a second (bench/recommend.py):
                # off the event loop, so other conversations go on meanwhile.
                self._recommender = await asyncio.to_thread(
                    Recommender, merged, self.vocabulary, self.area_labels
                )
                self._revision = revision
            self._checked_at = now
            return self._recommender

    def invalidate(self) -> None:
        """Look at the table again on the next request (after an import in-process)."""
        self._checked_at = None


def library_of(ctx: ActionContext) -> ResourceLibrary:
    library = ctx.extras.get(EXTRAS_KEY)
    if not isinstance(library, ResourceLibrary):
        raise RuntimeError("the resource library is not configured (bot.services.load_dialog)")
    return library


# -- what we know about the learner --------------------------------------------------------


async def learner_for(session: AsyncSession, person: Person, now: datetime) -> Learner:
    """Everything the recommender weighs, read in four small queries."""
    assert person.id is not None
    profile = await latest_profile(session, person.id)
    goals = (
        await session.exec(
            select(Goal.topic)
            .where(Goal.person_id == person.id)
            .where(Goal.status == "active")
            .where(col(Goal.topic).is_not(None))
            # Most urgent first: the nearest deadline, then the newest goal.
            .order_by(col(Goal.deadline).is_(None), col(Goal.deadline), col(Goal.id).desc())
        )
    ).all()
    shown = (
        await session.exec(
            select(RecommendationShown.resource_id, func.max(RecommendationShown.shown_at))
            .where(RecommendationShown.person_id == person.id)
            .where(RecommendationShown.shown_at > now - NOVELTY_WINDOW)
            .group_by(col(RecommendationShown.resource_id))
        )
    ).all()
    feedback = (
        await session.exec(
            select(RecommendationShown.resource_id, RecommendationShown.feedback)
            .where(RecommendationShown.person_id == person.id)
            .where(col(RecommendationShown.feedback).is_not(None))
            .order_by(col(RecommendationShown.feedback_at))
        )
    ).all()
    latest: dict[str, int] = {}
    for resource_id, value in feedback:  # the newest opinion of each resource wins
        latest[resource_id] = int(value or 0)
    return Learner(
        grade_band=person.grade_band,
        locale="es" if person.locale == "es" else "en",
        interest_areas=tuple(profile.top_areas) if profile else (),
        interest_tags=tuple(profile.tags) if profile else (),
        goal_topics=tuple(topic for topic in goals if topic),
        shown={resource_id: at for resource_id, at in shown},
        liked=frozenset(r for r, v in latest.items() if v == LIKE),
        disliked=frozenset(r for r, v in latest.items() if v == DISLIKE),
    )


# -- showing -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Picks:
    """What one request showed, whether a search filter had to be dropped to find it,
    and whether the learner had been shown anything lately (so it is "more")."""

    items: list[Shown]
    relaxed: bool
    again: bool


@dataclass(frozen=True, slots=True)
class Shown:
    """A recommendation as the learner read it."""

    recommendation: Recommendation
    reason: str


async def recommend_for(
    ctx: ActionContext,
    *,
    k: int = SHOW,
    query: SearchQuery | None = None,
    topic: str | None = None,
) -> Picks:
    """The top `k` for this learner (a search's filters, or one goal's topic), stored as
    shown, each with its reason rendered in their language; and whether the search
    had to be loosened to find them."""
    assert ctx.person.id is not None
    library = library_of(ctx)
    recommender = await library.recommender(ctx.session, ctx.now)
    learner = await learner_for(ctx.session, ctx.person, ctx.now)
    query = query or SearchQuery()
    found, relaxed = _search(recommender, learner, k, ctx.now, query, topic)
    shown: list[Shown] = []
    for rec in found:
        reason = ctx.render(rec.reason_key, rec.reason_params)
        shown.append(Shown(rec, reason))
        resource = rec.resource
        ctx.session.add(
            RecommendationShown(
                person_id=ctx.person.id,
                resource_id=resource.id,
                name=resource.name[:300],
                url=resource.url[:500],
                tags=sorted({*resource.teaches, *resource.interest_tags}),
                reason=reason[:300],
                shown_at=ctx.now,
            )
        )
    return Picks(shown, relaxed, again=bool(learner.shown))


def _search(
    recommender: Recommender,
    learner: Learner,
    k: int,
    now: datetime,
    query: SearchQuery,
    topic: str | None,
) -> tuple[list[Recommendation], bool]:
    """The top `k` for a request, loosening a search that finds nothing: first allow
    what was shown lately (issue 4: "unless asked"; a search is asking), then drop
    the format, then the time limit. Returns the picks and whether a filter the
    learner set was dropped (so the intro can say it is the closest, not a match)."""
    topic = query.topic or topic
    base: dict[str, Any] = {"language": query.language, "topic": topic}
    attempts: list[tuple[dict[str, Any], bool, bool]] = [
        ({"types": query.types or None, "max_minutes": query.max_minutes}, False, False)
    ]
    if query != SearchQuery():
        attempts += [
            ({"types": query.types or None, "max_minutes": query.max_minutes}, True, False),
            ({"max_minutes": query.max_minutes}, True, bool(query.types)),
            ({}, True, bool(query.types or query.max_minutes)),
        ]
    for filters, include_shown, relaxed in attempts:
        found = recommender.recommend(
            learner, k, now, include_shown=include_shown, **base, **filters
        )
        if found:
            return found, relaxed
    return [], False


def _minutes(resource: Resource) -> int | None:
    if resource.time_required is None:
        return None
    return max(1, round(resource.time_required.total_seconds() / 60))


def resource_text(ctx: ActionContext, item: Shown) -> str:
    """One resource as a message: name, provider, format and time, address, reason."""
    resource = item.recommendation.resource
    minutes = _minutes(resource)
    kind = ctx.render(f"resources.type.{resource.learning_resource_type}", {})
    details = (
        ctx.render("resources.details_minutes", {"type": kind, "minutes": minutes})
        if minutes is not None
        else kind
    )
    return ctx.render(
        "resources.item",
        {
            "name": resource.name,
            "provider": resource.provider,
            "details": details,
            "url": resource.url,
            "reason": item.reason,
        },
    )


def feedback_buttons(ctx: ActionContext, resource_id: str) -> tuple[Button, ...]:
    return (
        Button(ctx.render("resources.button.like", {}), f"like:{resource_id}"),
        Button(ctx.render("resources.button.dislike", {}), f"dislike:{resource_id}"),
    )


def show(ctx: ActionContext, items: Sequence[Shown], intro: str) -> None:
    """Each resource its own message with 👍 / 👎; the intro leads the first, and the
    last also offers more."""
    for index, item in enumerate(items):
        text = resource_text(ctx, item)
        if index == 0:
            text = f"{intro}\n\n{text}"
        buttons = feedback_buttons(ctx, item.recommendation.resource.id)
        if index == len(items) - 1:
            buttons = (*buttons, Button(ctx.render("resources.button.more", {}), "resources"))
        ctx.replies.append(Reply(text, buttons))


def _search_of(ctx: ActionContext) -> SearchQuery:
    said = ctx.said.strip()
    if not said or said.startswith("/") or ctx.vocabulary is None:
        return SearchQuery()
    return parse_search(said, ctx.vocabulary)


def _intro(ctx: ActionContext, query: SearchQuery, picks: Picks) -> str:
    assert ctx.vocabulary is not None
    count = len(picks.items)
    if picks.relaxed:
        return ctx.render("resources.intro_closest", {"count": count})
    if query.topic:
        topic = ctx.vocabulary.label(query.topic, ctx.locale)
        return ctx.render("resources.intro_topic", {"count": count, "topic": topic})
    if picks.again:
        return ctx.render("resources.intro_more", {"count": count})
    return ctx.render("resources.intro", {"count": count})


async def record_feedback(ctx: ActionContext) -> bool:
    """A 👍 / 👎 button (at any step): store it on the latest showing of that resource."""
    found = _FEEDBACK.match(ctx.said.strip())
    if found is None:
        return False
    assert ctx.person.id is not None
    kind, resource_id = found.groups()
    latest = (
        await ctx.session.exec(
            select(RecommendationShown)
            .where(RecommendationShown.person_id == ctx.person.id)
            .where(RecommendationShown.resource_id == resource_id)
            .order_by(col(RecommendationShown.shown_at).desc(), col(RecommendationShown.id).desc())
            .limit(1)
        )
    ).first()
    ctx.quiet = True
    if latest is None:
        ctx.say("resources.feedback_unknown")
        return True
    value = LIKE if kind == "like" else DISLIKE
    await ctx.session.exec(
        update(RecommendationShown)
        .where(col(RecommendationShown.id) == latest.id)
        .values(feedback=value, feedback_at=ctx.now)
    )
    key = "resources.liked" if value == LIKE else "resources.disliked"
    ctx.replies.append(
        Reply(
            ctx.render(key, {"name": latest.name}),
            (Button(ctx.render("resources.button.more", {}), "resources"),),
        )
    )
    return True


def register(actions: ActionRegistry) -> None:
    actions.intercept(record_feedback)

    @actions.register("resources.show")
    async def show_resources(ctx: ActionContext) -> None:
        """/resources, "more", or a search ("videos about volcanoes"): three that fit."""
        query = _search_of(ctx)
        picks = await recommend_for(ctx, query=query)
        if picks.items:
            show(ctx, picks.items, _intro(ctx, query, picks))
        elif query.topic or query.types or query.language or query.max_minutes:
            ctx.say("resources.none_search")
        else:
            ctx.say("resources.none")


async def export_recommendations(session: AsyncSession, person: Person) -> list[dict[str, Any]]:
    """Every resource shown to the person, with the reason and their feedback."""
    rows = (
        await session.exec(
            select(RecommendationShown)
            .where(RecommendationShown.person_id == person.id)
            .order_by(col(RecommendationShown.shown_at), col(RecommendationShown.id))
        )
    ).all()
    words = {LIKE: "up", DISLIKE: "down"}
    return [
        {
            "resource_id": row.resource_id,
            "name": row.name,
            "url": row.url,
            "tags": list(row.tags),
            "reason": row.reason,
            "feedback": words.get(row.feedback) if row.feedback is not None else None,
            "feedback_at": row.feedback_at.isoformat() if row.feedback_at else None,
            "time": row.shown_at.isoformat(),
        }
        for row in rows
    ]
