"""One class's week, from the database in a handful of set-based queries.

`summarise` takes a batch of classes (one teacher's, or every class whose digest
is due) and answers each question for all of them at once: one query per kind
of fact, grouped by class in SQL wherever the database can do the counting, so
the cost grows with the rows read, never with a query per learner. 300 classes
and 10,000 learners take well under the 5 s issue 7 allows (bench/digest.py).

Every window is in the teacher's time zone: the ISO week runs from Monday 00:00
to the next Monday 00:00 local time, and "now" (`as_of`) caps it, so a preview
on Wednesday covers Monday to Wednesday.

Definitions the digest states in words (issue 5 names them, these fix them):
- checked in this week: at least one check-in row this ISO week;
- the trend: the average of every rating (1-5) given in each of the last six
  ISO weeks, this one included;
- needs attention: no check-in for 14 days or more (counted from the last
  check-in, or from joining the class for someone who never checked in); an
  active goal marked stuck (bot/coach/checkins.py: two ratings of 2 or lower in
  a row); falling ratings on an active goal over the six weeks: its latest
  rating 2 or more points below the one before (4 then 2), or its last three
  ratings each lower than the one before (4, 3, 2);
- helpful resources: 👍 given in the last six weeks, counted once per learner;
- shared reflections: only check-ins the learner marked to share; every other
  check-in contributes its rating and nothing of its text.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Executable, and_, case, distinct, func, insert, or_, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.models import (
    AuditEntry,
    CheckIn,
    Enrollment,
    Goal,
    InterestProfile,
    Person,
    RecommendationShown,
    SafetyAlert,
    SchoolClass,
)

# Issue 5: "a six-week trend as a sparkline".
TREND_WEEKS = 6
# Issue 5: "no check-in for 14 days".
QUIET_DAYS = 14
# A fall of this many points between two check-ins on one goal is worth a look by
# itself (on the 1-5 scale, "good" to "hard" or "okay" to "really hard").
FALL_DROP = 2
# How many of each list a digest for a class of 35 can show and still fit one
# Telegram message (4096 characters) with room to spare.
TOP_INTERESTS = 5
TOP_RESOURCES = 3
MAX_REFLECTIONS = 3


def zone_of(name: str | None) -> ZoneInfo:
    """A person's IANA zone; UTC when it is missing or unknown (never fail a digest)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class Week:
    """One ISO week in one time zone: local Monday 00:00 to the next Monday 00:00."""

    monday: date
    zone: ZoneInfo

    @classmethod
    def of(cls, moment: datetime, zone: ZoneInfo) -> Week:
        local = moment.astimezone(zone).date()
        return cls(local - timedelta(days=local.weekday()), zone)

    @property
    def key(self) -> str:
        """ISO 8601 week label, `2026-W48`: part of the digest's dedupe key."""
        year, number, _ = self.monday.isocalendar()
        return f"{year}-W{number:02d}"

    def start(self, weeks_back: int = 0) -> datetime:
        """UTC instant of local Monday 00:00, this week or `weeks_back` weeks earlier."""
        return self.local(self.monday - timedelta(weeks=weeks_back), time(0))

    @property
    def end(self) -> datetime:
        return self.start(-1)

    def local(self, day: date, at: time) -> datetime:
        """A local wall-clock time as a UTC instant.

        In a daylight-saving gap (02:30 on a spring-forward night) zoneinfo reads the
        time with the offset before the change, which lands an hour later in wall time:
        the digest goes out late rather than never.
        """
        return datetime.combine(day, at, tzinfo=self.zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class ClassRef:
    """Which class, and whose: what `summarise` needs to know up front."""

    id: int
    name: str
    teacher_id: int


@dataclass(frozen=True, slots=True)
class Learner:
    id: int
    name: str | None


@dataclass(frozen=True, slots=True)
class Attention:
    """Why one learner needs a look (any of the reasons may hold at once)."""

    learner: Learner
    # Days since the last check-in (or since joining) when QUIET_DAYS or more.
    quiet_days: int | None = None
    never_checked_in: bool = False
    stuck_goals: int = 0
    # The ratings that fell on one active goal, oldest first ((4, 3, 2) or (5, 3)).
    falling: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class OpenAlert:
    id: int
    learner: Learner
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class HelpfulResource:
    name: str
    url: str
    learners: int  # how many learners gave it a 👍


@dataclass(frozen=True, slots=True)
class SharedReflection:
    learner: Learner
    went_well: str | None
    obstacle: str | None
    next_step: str | None


@dataclass(slots=True)
class ClassDigest:
    """Everything one class's digest says, before it is put into words."""

    ref: ClassRef
    week: Week
    as_of: datetime
    learners: list[Learner] = field(default_factory=list)
    checked_in: int = 0
    goals_set: int = 0
    goals_completed: int = 0
    # Average rating per ISO week, oldest first, this week last; None: no ratings.
    weekly_average: list[float | None] = field(default_factory=lambda: [None] * TREND_WEEKS)
    attention: list[Attention] = field(default_factory=list)
    alerts: list[OpenAlert] = field(default_factory=list)
    # Interest tag ids (content/vocabulary.yaml) by how many learners' latest profile
    # names them; RIASEC areas the same way (used when no learner named a tag).
    interests: list[tuple[str, int]] = field(default_factory=list)
    areas: list[tuple[str, int]] = field(default_factory=list)
    resources: list[HelpfulResource] = field(default_factory=list)
    reflections: list[SharedReflection] = field(default_factory=list)

    @property
    def enrolled(self) -> int:
        return len(self.learners)

    @property
    def learner_ids(self) -> list[int]:
        return [learner.id for learner in self.learners]


async def teacher_classes(session: AsyncSession, teacher_id: int) -> list[ClassRef]:
    """The teacher's classes that are not archived, oldest first."""
    rows = await _all(
        session,
        select(col(SchoolClass.id), col(SchoolClass.name), col(SchoolClass.teacher_id))
        .where(col(SchoolClass.teacher_id) == teacher_id)
        .where(col(SchoolClass.archived_at).is_(None))
        .order_by(col(SchoolClass.id)),
    )
    return [ClassRef(int(i), str(n), int(t)) for i, n, t in rows if i is not None]


async def summarise(
    session: AsyncSession, classes: Sequence[ClassRef], week: Week, as_of: datetime
) -> list[ClassDigest]:
    """The digests of `classes` for `week` (in its zone) as of `as_of`, in their order.

    Eight queries whatever the number of classes or learners; nothing is written.
    """
    digests = {ref.id: ClassDigest(ref, week, as_of) for ref in classes}
    if not digests:
        return []
    ids = list(digests)
    starts = [week.start(TREND_WEEKS - 1 - n) for n in range(TREND_WEEKS)]  # oldest first
    this_week = starts[-1]
    # Nothing after the end of the week or after "now" counts (a preview mid-week).
    until = min(week.end, as_of + timedelta(microseconds=1))
    in_class = col(Enrollment.class_id).in_(ids)
    class_learners = select(col(Enrollment.learner_id)).where(in_class)

    # 1. The roster, with each learner's last check-in and stuck goals (correlated
    # subqueries that both databases answer from an index per learner).
    last_checkin = (
        select(func.max(col(CheckIn.created_at)))
        .where(col(CheckIn.person_id) == col(Enrollment.learner_id))
        .where(col(CheckIn.created_at) < until)
        .scalar_subquery()
    )
    stuck = (
        select(func.count())
        .select_from(Goal)
        .where(col(Goal.person_id) == col(Enrollment.learner_id))
        .where(col(Goal.status) == "active")
        .where(col(Goal.stuck).is_(True))
        .scalar_subquery()
    )
    roster = await _all(
        session,
        select(
            col(Enrollment.class_id),
            col(Person.id),
            col(Person.name),
            col(Enrollment.created_at),
            last_checkin,
            stuck,
        )
        .join(Person, col(Person.id) == col(Enrollment.learner_id))
        .where(in_class)
        .order_by(col(Enrollment.class_id), col(Person.id)),
    )
    people: dict[int, Learner] = {}
    classes_of: dict[int, list[int]] = defaultdict(list)
    # class id → learner id → the reasons that learner needs a look (Attention fields).
    concerns: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
    quiet_before = as_of - timedelta(days=QUIET_DAYS)
    for class_id, person_id, name, joined, last, stuck_count in roster:
        if person_id is None:
            continue
        learner = people.setdefault(person_id, Learner(person_id, name))
        digests[class_id].learners.append(learner)
        classes_of[person_id].append(class_id)
        reasons: dict[str, Any] = {}
        since = last or joined
        if since is not None and since <= quiet_before:
            reasons["quiet_days"] = (as_of - since).days
            reasons["never_checked_in"] = last is None
        if stuck_count:
            reasons["stuck_goals"] = int(stuck_count)
        if reasons:
            concerns[class_id][person_id] = reasons

    # 2. Check-ins per class and week: counts, rating sums, learners who checked in.
    bucket = case(
        *[(col(CheckIn.created_at) >= starts[n], n) for n in range(TREND_WEEKS - 1, 0, -1)],
        else_=0,
    )
    rated = (
        select(
            col(Enrollment.class_id).label("class_id"),
            bucket.label("week"),
            col(CheckIn.rating).label("rating"),
            col(CheckIn.person_id).label("person_id"),
        )
        .join(Enrollment, col(Enrollment.learner_id) == col(CheckIn.person_id))
        .where(in_class)
        .where(col(CheckIn.created_at) >= starts[0])
        .where(col(CheckIn.created_at) < until)
        .subquery()
    )
    weekly = await _all(
        session,
        select(
            rated.c.class_id,
            rated.c.week,
            func.count(),
            func.sum(rated.c.rating),
            func.count(distinct(rated.c.person_id)),
        ).group_by(rated.c.class_id, rated.c.week),
    )
    for class_id, n, count, total, checked in weekly:
        digest = digests[class_id]
        digest.weekly_average[int(n)] = int(total) / int(count) if count else None
        if int(n) == TREND_WEEKS - 1:
            digest.checked_in = int(checked)

    # 3. Goals set (and not dropped) and completed this week, per class.
    set_now = and_(col(Goal.created_at) >= this_week, col(Goal.created_at) < until)
    done_now = and_(col(Goal.completed_at) >= this_week, col(Goal.completed_at) < until)
    goals = await _all(
        session,
        select(
            col(Enrollment.class_id),
            func.sum(case((and_(set_now, col(Goal.status) != "dropped"), 1), else_=0)),
            func.sum(case((and_(done_now, col(Goal.status) == "done"), 1), else_=0)),
        )
        .join(Enrollment, col(Enrollment.learner_id) == col(Goal.person_id))
        .where(in_class)
        .where(or_(set_now, done_now))
        .group_by(col(Enrollment.class_id)),
    )
    for class_id, made, done in goals:
        digests[class_id].goals_set = int(made or 0)
        digests[class_id].goals_completed = int(done or 0)

    # 4. Falling ratings: per active goal, its latest rating and the two before it in
    # the six weeks (window functions; SQLite 3.25+ and PostgreSQL both have them).
    oldest_first = (col(CheckIn.created_at), col(CheckIn.id))
    newest_first = (col(CheckIn.created_at).desc(), col(CheckIn.id).desc())
    series = (
        select(
            col(CheckIn.person_id).label("person_id"),
            col(CheckIn.rating).label("rating"),
            func.lag(col(CheckIn.rating), 1)
            .over(partition_by=col(CheckIn.goal_id), order_by=oldest_first)
            .label("prev1"),
            func.lag(col(CheckIn.rating), 2)
            .over(partition_by=col(CheckIn.goal_id), order_by=oldest_first)
            .label("prev2"),
            func.row_number()
            .over(partition_by=col(CheckIn.goal_id), order_by=newest_first)
            .label("latest"),
        )
        .join(Goal, col(Goal.id) == col(CheckIn.goal_id))
        .where(col(Goal.status) == "active")
        .where(col(CheckIn.person_id).in_(class_learners))
        .where(col(CheckIn.created_at) >= starts[0])
        .where(col(CheckIn.created_at) < until)
        .subquery()
    )
    three_down = and_(series.c.prev2 > series.c.prev1, series.c.prev1 > series.c.rating)
    falling = await _all(
        session,
        select(series.c.person_id, series.c.prev2, series.c.prev1, series.c.rating)
        .where(series.c.latest == 1)
        .where(series.c.prev1.is_not(None))
        .where(or_(series.c.prev1 - series.c.rating >= FALL_DROP, three_down))
        .order_by(series.c.person_id),
    )
    for person_id, prev2, prev1, rating in falling:
        fell = (
            (int(prev2), int(prev1), int(rating))
            if prev2 is not None and prev2 > prev1 > rating
            else (int(prev1), int(rating))
        )
        for class_id in classes_of.get(person_id, ()):
            reasons = concerns[class_id].setdefault(person_id, {})
            reasons.setdefault("falling", fell)  # one goal's story is enough for one line

    # 5. Open safeguarding alerts for the classes' learners.
    alerts = await _all(
        session,
        select(
            col(SafetyAlert.id),
            col(SafetyAlert.learner_id),
            col(SafetyAlert.opened_at),
            col(Enrollment.class_id),
        )
        .join(Enrollment, col(Enrollment.learner_id) == col(SafetyAlert.learner_id))
        .where(in_class)
        .where(col(SafetyAlert.acknowledged_at).is_(None))
        .where(col(SafetyAlert.opened_at) < until)
        .order_by(col(SafetyAlert.opened_at), col(SafetyAlert.id)),
    )
    for alert_id, learner_id, opened_at, class_id in alerts:
        if alert_id is not None:
            learner = people.get(learner_id, Learner(learner_id, None))
            digests[class_id].alerts.append(OpenAlert(alert_id, learner, opened_at))

    # 6. Interests: each learner's latest profile.
    ranked_profiles = (
        select(
            col(InterestProfile.person_id).label("person_id"),
            col(InterestProfile.tags).label("tags"),
            col(InterestProfile.top_areas).label("top_areas"),
            func.row_number()
            .over(
                partition_by=col(InterestProfile.person_id),
                order_by=(col(InterestProfile.created_at).desc(), col(InterestProfile.id).desc()),
            )
            .label("latest"),
        )
        .where(col(InterestProfile.person_id).in_(class_learners))
        .where(col(InterestProfile.created_at) < until)
        .subquery()
    )
    profiles = await _all(
        session,
        select(
            ranked_profiles.c.person_id, ranked_profiles.c.tags, ranked_profiles.c.top_areas
        ).where(ranked_profiles.c.latest == 1),
    )
    tag_counts: dict[int, Counter[str]] = defaultdict(Counter)
    area_counts: dict[int, Counter[str]] = defaultdict(Counter)
    for person_id, tags, top_areas in profiles:
        for class_id in classes_of.get(person_id, ()):
            tag_counts[class_id].update(set(tags or ()))
            area_counts[class_id].update(set(top_areas or ()))

    # 7. The resources learners found most helpful: 👍 in the six weeks, top few per
    # class ranked in SQL so only those few rows come back.
    Shown = RecommendationShown
    liked_at = func.coalesce(col(Shown.feedback_at), col(Shown.shown_at))
    liked = (
        select(
            col(Enrollment.class_id).label("class_id"),
            func.max(col(Shown.name)).label("name"),
            func.max(col(Shown.url)).label("url"),
            func.count(distinct(col(Shown.person_id))).label("learners"),
        )
        .join(Enrollment, col(Enrollment.learner_id) == col(Shown.person_id))
        .where(in_class)
        .where(col(Shown.feedback) == 1)
        .where(liked_at >= starts[0])
        .where(liked_at < until)
        .group_by(col(Enrollment.class_id), col(Shown.resource_id))
        .subquery()
    )
    ranked_liked = select(
        liked,
        func.row_number()
        .over(
            partition_by=liked.c.class_id,
            order_by=(liked.c.learners.desc(), liked.c.name),
        )
        .label("place"),
    ).subquery()
    resources = await _all(
        session,
        select(
            ranked_liked.c.class_id,
            ranked_liked.c.name,
            ranked_liked.c.url,
            ranked_liked.c.learners,
        )
        .where(ranked_liked.c.place <= TOP_RESOURCES)
        .order_by(ranked_liked.c.class_id, ranked_liked.c.place),
    )
    for class_id, name, url, learners in resources:
        digests[class_id].resources.append(HelpfulResource(str(name), str(url), int(learners)))

    # 8. Reflections the learner chose to share, this week, the latest few per class.
    has_text = or_(
        col(CheckIn.went_well).is_not(None),
        col(CheckIn.obstacle).is_not(None),
        col(CheckIn.next_step).is_not(None),
    )
    shared = (
        select(
            col(Enrollment.class_id).label("class_id"),
            col(CheckIn.person_id).label("person_id"),
            col(CheckIn.went_well).label("went_well"),
            col(CheckIn.obstacle).label("obstacle"),
            col(CheckIn.next_step).label("next_step"),
            func.row_number()
            .over(partition_by=col(Enrollment.class_id), order_by=newest_first)
            .label("place"),
        )
        .join(Enrollment, col(Enrollment.learner_id) == col(CheckIn.person_id))
        .where(in_class)
        .where(col(CheckIn.shared).is_(True))
        .where(has_text)
        .where(col(CheckIn.created_at) >= this_week)
        .where(col(CheckIn.created_at) < until)
        .subquery()
    )
    reflections = await _all(
        session,
        select(
            shared.c.class_id,
            shared.c.person_id,
            shared.c.went_well,
            shared.c.obstacle,
            shared.c.next_step,
        )
        .where(shared.c.place <= MAX_REFLECTIONS)
        .order_by(shared.c.class_id, shared.c.place),
    )
    for class_id, person_id, went_well, obstacle, next_step in reflections:
        learner = people.get(person_id, Learner(person_id, None))
        digests[class_id].reflections.append(
            SharedReflection(learner, went_well, obstacle, next_step)
        )

    for class_id, digest in digests.items():
        digest.interests = _top(tag_counts[class_id], TOP_INTERESTS)
        digest.areas = _top(area_counts[class_id], TOP_INTERESTS)
        digest.attention = sorted(
            (
                Attention(people[person_id], **reasons)
                for person_id, reasons in concerns[class_id].items()
            ),
            key=_attention_order,
        )
    return [digests[ref.id] for ref in classes]


async def _all(session: AsyncSession, statement: Executable) -> list[Any]:
    """Rows of a Core statement (labels, subqueries, window functions: what sqlmodel's
    typed `select` cannot spell)."""
    result = await session.exec(cast(Any, statement))
    return list(result.all())


def _top(counts: Counter[str], most: int) -> list[tuple[str, int]]:
    """The most common entries, ties in a stable (alphabetical) order."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:most]


def _attention_order(item: Attention) -> tuple[str, int]:
    return ((item.learner.name or "").casefold(), item.learner.id)


async def record_reads(
    session: AsyncSession, digests: Sequence[ClassDigest], *, now: datetime, detail: str
) -> None:
    """Audit: each teacher read every learner their class's digest summarises (issue 5).

    The rows bot.coach.access.audit writes, for many readers in one statement: the
    weekly job audits 10,000 learners at once, and one INSERT per class would be
    300 round trips to the database.
    """
    rows = [
        {
            "actor_id": digest.ref.teacher_id,
            "actor_label": None,
            "subject_id": learner_id,
            "action": "digest",
            "detail": f"class {digest.ref.id}, {digest.week.key}, {detail}",
            "at": now,
        }
        for digest in digests
        for learner_id in digest.learner_ids
        if learner_id != digest.ref.teacher_id
    ]
    if rows:
        await session.exec(cast(Any, insert(AuditEntry.__table__)), params=rows)  # type: ignore[attr-defined]
