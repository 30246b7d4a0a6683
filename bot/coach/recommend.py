"""Recommending resources: the top k for one learner, each with a reason they can read.

A `Recommender` is built once from the catalog (a list of `Resource`) and the tag
vocabulary. It indexes the resources by language, grade band and feature (goal
topic, subject, keyword topic, interest tag, interest area), so a request scores
only the candidates those indexes hand it, never the whole catalog (issue 4 asks
for p95 <= 20 ms on 50,000 resources; bench/recommend.py measures it).

Candidates come from "sources" (one index bucket each) visited best first. Every
source has an upper bound on the score of anything in it; once the pool of the
best candidates is full and its weakest member beats the next source's bound,
no unvisited resource can get in, so the search stops (Fagin's threshold
algorithm, "Optimal aggregation algorithms for middleware", 2001). The pool is
then re-ranked greedily for variety.

Pure: no database, no clock (the caller passes `now`), no locale catalogs (a
`Recommendation` carries a message key and parameters; the chat layer renders them).
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from bot.coach.catalog import GRADE_BANDS, RESOURCE_TYPES, Resource
from bot.engine.topics import AREAS, Vocabulary
from bot.engine.understand import normalize

if TYPE_CHECKING:
    from bot.engine.locales import Catalogs

Locale = Literal["en", "es"]

# -- weights -----------------------------------------------------------------------------
# Scores are points; only their order matters. The topic tiers are far apart so
# that the goal decides first: every secondary bonus together (interest 16, grade
# 8, time 4, format 5, liked 10 = 43) is less than the gap between an exact topic
# and a same-subject one (60), so a resource that teaches the goal's topic is
# never beaten by a neighbour that merely matches everything else.
W_EXACT_TOPIC = 100.0  # teaches the goal's topic: what the learner asked for.
W_SUBJECT = 40.0  # teaches another topic of the goal's subject (fractions -> ratios).
# Its keywords name the goal's topic but it neither teaches it nor sits in its
# subject (a geography page tagged "volcanoes"): issue 4 ranks it below subject.
W_KEYWORD = 25.0
# The most urgent goal counts fully; each later one 20% less, down to 40%: a
# second goal still beats interest-only matches (0.4 * 25 = 10 > 0).
URGENCY_STEP = 0.2
URGENCY_FLOOR = 0.4
# Interest: the learner's top Holland areas in order (first 8, then 6, 4) and a
# matching interest tag (8): a tag is as telling as the top area.
W_AREA_BY_RANK = (8.0, 6.0, 4.0)
W_TAG = 8.0
# Grade: the learner's own band is preferred; one band away is allowed with no
# bonus; two or more away is excluded (issue 4: "never more than one band away").
W_GRADE_EXACT = 8.0
# Time: fits the minutes the learner has (+4); up to half again as long is
# neutral (they may stretch); longer is a poor fit (-8), one sitting won't do it.
W_TIME_FITS = 4.0
TIME_STRETCH = 1.5
W_TIME_TOO_LONG = -8.0
W_PREFERRED_TYPE = 5.0  # a format the learner said they prefer.
# 👍: a resource like one they liked: same topic (5), provider (2), type (3).
W_LIKED_TOPIC = 5.0
W_LIKED_PROVIDER = 2.0
W_LIKED_TYPE = 3.0
# 👎 hides that resource; its neighbours (a shared topic) lose 12, enough to drop
# below a same-topic alternative with a matching interest; the same provider and
# type together lose 4.
W_DISLIKED_TOPIC = -12.0
W_DISLIKED_PROVIDER_TYPE = -4.0
# Nothing shown again within 14 days (issue 4) unless asked; when asked, a recent
# one still comes after fresh ones of similar fit.
NOVELTY_WINDOW = timedelta(days=14)
W_RECENTLY_SHOWN = -20.0
# Variety: in the top k no provider and no type more than this share, when the
# pool has alternatives; greedy, each pick penalising its provider and type.
VARIETY_PROVIDER = 15.0
VARIETY_TYPE = 10.0
# The pool re-ranked for variety: enough alternatives for k=3 (six per slot).
POOL_PER_SLOT = 6
POOL_MIN = 20
# Without a goal, matches are plentiful and close: on the 50,000-resource bench a
# learner's interest tags and areas name ~20,000 resources, all within a few
# points of each other, and scoring them all costs ~50 ms (3 us each). So the
# interest and fallback sources share a budget of this many resources, visited
# best bucket first; goal sources are never cut. Below this size (the shipped
# catalog has a few hundred) the answer is exact; beyond it the pool is the best
# of the first 3,000 interest matches in catalog order.
SCAN_BUDGET = 3000
# "Short" in a search: 15 minutes, a typical single sitting for a K-12 learner.
SHORT_MINUTES = 15

# The message keys a Recommendation's reason_key takes; the chat layer renders
# them with reason_params (dialogs/locales/<locale>/recommend.yaml).
REASON_GOAL_AND_INTEREST = "recommend.reason.goal_and_interest"  # {area} {topic}
REASON_GOAL = "recommend.reason.goal"  # {topic}
REASON_GOAL_SUBJECT = "recommend.reason.goal_subject"  # {topic}
REASON_SEARCH = "recommend.reason.search"  # {topic}
REASON_INTEREST = "recommend.reason.interest"  # {area}
REASON_LIKED = "recommend.reason.liked"  # {name}
REASON_TIME = "recommend.reason.time"  # {minutes}
REASON_GRADE = "recommend.reason.grade"  # {grade}
REASON_NEW = "recommend.reason.new"  # no parameters
REASON_KEYS = (
    REASON_GOAL_AND_INTEREST,
    REASON_GOAL,
    REASON_GOAL_SUBJECT,
    REASON_SEARCH,
    REASON_INTEREST,
    REASON_LIKED,
    REASON_TIME,
    REASON_GRADE,
    REASON_NEW,
)

# "adult" sits just past 9-12: one band away, so 9-12 resources are allowed.
_BAND_INDEX = {band: i for i, band in enumerate((*GRADE_BANDS, "adult"))}
# Resources with no educational level are filed under this pseudo-band: allowed
# for everyone, never an exact grade match.
_ANY_BAND = -1


@dataclass(frozen=True)
class Learner:
    """What the recommender knows about one person, gathered by the chat layer."""

    grade_band: str | None = None  # K-2, 3-5, 6-8, 9-12, "adult", or unknown
    locale: Locale = "en"
    interest_areas: tuple[str, ...] = ()  # top Holland letters, best first
    interest_tags: tuple[str, ...] = ()  # interest ids from the vocabulary
    goal_topics: tuple[str, ...] = ()  # topic ids of active goals, most urgent first
    preferred_types: tuple[str, ...] = ()  # RESOURCE_TYPES
    minutes_available: int | None = None
    shown: Mapping[str, datetime] = field(default_factory=dict)  # id -> last shown (UTC)
    liked: frozenset[str] = frozenset()
    disliked: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Recommendation:
    """One resource to offer, its score, and why, as a message key with parameters."""

    resource: Resource
    score: float
    reason_key: str
    reason_params: dict[str, Any]


@dataclass(frozen=True)
class SearchQuery:
    """Filters read from a chat search; None or () means "not said"."""

    types: tuple[str, ...] = ()
    language: str | None = None
    topic: str | None = None
    max_minutes: int | None = None


class _Features:
    """A resource reduced to what scoring reads, precomputed once at build time."""

    __slots__ = (
        "areas",
        "bands",
        "keyword_topics",
        "minutes",
        "provider",
        "resource",
        "subjects",
        "tags",
        "teaches",
        "type",
    )

    def __init__(
        self, resource: Resource, subjects: frozenset[str], keyword_topics: frozenset[str]
    ):
        self.resource = resource
        self.teaches = frozenset(resource.teaches)
        self.subjects = subjects
        self.keyword_topics = keyword_topics
        self.areas = frozenset(resource.interest_areas)
        self.tags = frozenset(resource.interest_tags)
        self.provider = resource.provider
        self.type = resource.learning_resource_type
        self.bands = frozenset(
            _BAND_INDEX[b] for b in resource.educational_level if b in _BAND_INDEX
        ) or frozenset({_ANY_BAND})
        self.minutes = (
            resource.time_required.total_seconds() / 60
            if resource.time_required is not None
            else None
        )


# An index bucket: (language, band, kind, key); kind t=topic, s=subject,
# k=keyword topic, g=interest tag, a=interest area, *=everything.
_Key = tuple[str, int, str, str]


class _Request:
    """One call's learner-specific lookups, so scoring a candidate is a few set probes."""

    def __init__(
        self,
        rec: Recommender,
        learner: Learner,
        now: datetime,
        include_shown: bool,
        types: tuple[str, ...] | None,
        topic: str | None,
        max_minutes: int | None,
    ) -> None:
        self.learner = learner
        self.band = _BAND_INDEX.get(learner.grade_band or "")
        self.search = topic is not None
        goals = (topic,) if topic is not None else learner.goal_topics
        self.goals: list[tuple[str, float, str | None]] = []
        for i, goal in enumerate(dict.fromkeys(goals)):
            urgency = max(URGENCY_FLOOR, 1.0 - URGENCY_STEP * i)
            self.goals.append((goal, urgency, rec.subject_of(goal)))
        self.areas = {a: W_AREA_BY_RANK[i] for i, a in enumerate(learner.interest_areas[:3])}
        self.tags = frozenset(learner.interest_tags)
        self.preferred = frozenset(learner.preferred_types)
        self.types = frozenset(types) if types else None
        self.max_minutes = max_minutes
        self.include_shown = include_shown
        cutoff = now - NOVELTY_WINDOW
        self.recent = frozenset(rid for rid, at in learner.shown.items() if at > cutoff)
        liked = [rec.features(rid) for rid in learner.liked]
        disliked = [rec.features(rid) for rid in learner.disliked]
        self.liked = [f for f in liked if f is not None]
        self.liked_topics = frozenset(t for f in self.liked for t in f.teaches)
        self.liked_providers = frozenset(f.provider for f in self.liked)
        self.liked_types = frozenset(f.type for f in self.liked)
        found = [f for f in disliked if f is not None]
        self.disliked = learner.disliked
        self.disliked_topics = frozenset(t for f in found for t in f.teaches)
        self.disliked_pairs = frozenset((f.provider, f.type) for f in found)
        # The most anything can add beyond topic, interest and grade: the bound's tail.
        self.rest = (
            (W_TIME_FITS if learner.minutes_available else 0.0)
            + (W_PREFERRED_TYPE if self.preferred else 0.0)
            + (
                (W_LIKED_TOPIC if self.liked_topics else 0.0)
                + (W_LIKED_PROVIDER if self.liked else 0.0)
                + (W_LIKED_TYPE if self.liked else 0.0)
            )
        )
        self.max_area = max(self.areas.values(), default=0.0)

    def topic_fit(self, f: _Features) -> tuple[float, str, str | None]:
        """The best goal fit: points, tier ("exact", "subject", "keyword" or ""), goal."""
        best, tier, which = 0.0, "", None
        for goal, urgency, subject in self.goals:
            if goal in f.teaches:
                points, kind = W_EXACT_TOPIC * urgency, "exact"
            elif not self.search and subject is not None and subject in f.subjects:
                points, kind = W_SUBJECT * urgency, "subject"
            elif goal in f.keyword_topics:
                points, kind = W_KEYWORD * urgency, "keyword"
            else:
                continue
            if points > best:
                best, tier, which = points, kind, goal
        return best, tier, which

    def score(self, f: _Features) -> float | None:
        """The resource's score for this learner, or None when a filter excludes it."""
        r = f.resource
        if r.id in self.disliked:
            return None
        recent = r.id in self.recent
        if recent and not self.include_shown:
            return None
        if self.types is not None and f.type not in self.types:
            return None
        if self.max_minutes is not None and (f.minutes is None or f.minutes > self.max_minutes):
            return None
        points, _, _ = self.topic_fit(f) if self.goals else (0.0, "", None)
        if self.search and points == 0.0:
            return None
        if self.areas:
            points += max((self.areas.get(a, 0.0) for a in f.areas), default=0.0)
        if self.tags and not self.tags.isdisjoint(f.tags):
            points += W_TAG
        if self.band is not None and self.band in f.bands:
            points += W_GRADE_EXACT
        minutes = self.learner.minutes_available
        if minutes and f.minutes is not None:
            if f.minutes <= minutes:
                points += W_TIME_FITS
            elif f.minutes > minutes * TIME_STRETCH:
                points += W_TIME_TOO_LONG
        if f.type in self.preferred:
            points += W_PREFERRED_TYPE
        if self.liked:
            if not self.liked_topics.isdisjoint(f.teaches):
                points += W_LIKED_TOPIC
            if f.provider in self.liked_providers:
                points += W_LIKED_PROVIDER
            if f.type in self.liked_types:
                points += W_LIKED_TYPE
        if self.disliked_topics and not self.disliked_topics.isdisjoint(f.teaches):
            points += W_DISLIKED_TOPIC
        if (f.provider, f.type) in self.disliked_pairs:
            points += W_DISLIKED_PROVIDER_TYPE
        if recent:
            points += W_RECENTLY_SHOWN
        return points


class Recommender:
    """The catalog indexed for recommending; build once, call `recommend` per request."""

    def __init__(
        self,
        resources: Iterable[Resource],
        vocabulary: Vocabulary,
        area_labels: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """Index `resources`. `vocabulary` gives each topic its subject (resources of
        the goal's subject are its neighbours) and the words for reasons;
        `area_labels` maps locale -> Holland letter -> phrase ("building things"),
        see `area_labels_from`. A later resource with an id already seen replaces it.
        """
        self.vocabulary = vocabulary
        self.area_labels = {k: dict(v) for k, v in (area_labels or {}).items()}
        self._topic_subject = {t.id: t.group for t in vocabulary.topics()}
        by_id: dict[str, Resource] = {}
        for resource in resources:
            by_id[resource.id] = resource
        keyword_cache: dict[str, frozenset[str]] = {}
        self._features: list[_Features] = []
        self._by_id: dict[str, int] = {}
        buckets: defaultdict[_Key, list[int]] = defaultdict(list)
        for i, resource in enumerate(by_id.values()):
            subjects = frozenset(resource.about) | {
                self._topic_subject[t] for t in resource.teaches if t in self._topic_subject
            }
            kw: set[str] = set()
            for word in resource.keywords:
                found = keyword_cache.get(word)
                if found is None:
                    # Distinct keywords are few next to resources (a few hundred in
                    # a catalog of thousands), so each is looked up once.
                    found = frozenset(
                        m.term.id for m in vocabulary.find(word, kind="topic", limit=2)
                    )
                    keyword_cache[word] = found
                kw |= found
            f = _Features(resource, frozenset(subjects), frozenset(kw) - set(resource.teaches))
            self._features.append(f)
            self._by_id[resource.id] = i
            lang = resource.in_language
            keys = [
                *(("t", t) for t in f.teaches),
                *(("s", s) for s in f.subjects),
                *(("k", t) for t in f.keyword_topics),
                *(("g", g) for g in f.tags),
                *(("a", a) for a in f.areas),
                ("*", ""),
            ]
            for band in f.bands:
                for kind, key in keys:
                    buckets[(lang, band, kind, key)].append(i)
        self._buckets: dict[_Key, list[int]] = dict(buckets)

    def __len__(self) -> int:
        return len(self._features)

    def features(self, resource_id: str) -> _Features | None:
        i = self._by_id.get(resource_id)
        return None if i is None else self._features[i]

    def get(self, resource_id: str) -> Resource | None:
        """The resource with this id, if the catalog has it."""
        f = self.features(resource_id)
        return None if f is None else f.resource

    def subject_of(self, topic: str) -> str | None:
        return self._topic_subject.get(topic)

    def recommend(
        self,
        learner: Learner,
        k: int = 3,
        now: datetime | None = None,
        *,
        include_shown: bool = False,
        language: str | None = None,
        types: Sequence[str] | None = None,
        topic: str | None = None,
        max_minutes: int | None = None,
    ) -> list[Recommendation]:
        """The top `k` resources for `learner`, best first, varied in provider and type.

        `now` (UTC; default the clock) decides what was shown within 14 days:
        hidden unless `include_shown`. `language` asks for another language than
        the learner's own; `types`, `topic` and `max_minutes` are a search's
        filters (see `parse_search`): with `topic`, only resources that teach it
        or name it in their keywords qualify.
        """
        if k <= 0:
            return []
        now = now or datetime.now(UTC)
        request = _Request(
            self, learner, now, include_shown, tuple(types) if types else None, topic, max_minutes
        )
        pool_size = max(POOL_MIN, POOL_PER_SLOT * k)
        pool = self._gather(request, language or learner.locale, pool_size)
        picked = self._vary(pool, k)
        return [self._explain(request, self._features[i], score) for score, i in picked]

    # -- candidates ----------------------------------------------------------------------

    def _sources(self, req: _Request, lang: str) -> list[tuple[float, _Key, bool]]:
        """Every bucket worth visiting: the bound on its scores, its key, whether it
        counts against SCAN_BUDGET (interest and fallback buckets do)."""
        if req.band is None:
            bands = [(b, 0.0) for b in range(len(GRADE_BANDS))]
        else:
            bands = [
                (b, W_GRADE_EXACT if b == req.band else 0.0)
                for b in range(len(GRADE_BANDS))
                if abs(b - req.band) <= 1
            ]
        bands.append((_ANY_BAND, 0.0))
        interest = req.max_area + (W_TAG if req.tags else 0.0)
        sources: list[tuple[float, _Key, bool]] = []
        subjects: dict[str, float] = {}
        for goal, urgency, subject in req.goals:
            for kind, weight in (("t", W_EXACT_TOPIC), ("k", W_KEYWORD)):
                for band, grade in bands:
                    bound = weight * urgency + interest + grade + req.rest
                    sources.append((bound, (lang, band, kind, goal), False))
            if subject is not None and not req.search:
                subjects[subject] = max(subjects.get(subject, 0.0), urgency)
        for subject, urgency in subjects.items():
            for band, grade in bands:
                bound = W_SUBJECT * urgency + interest + grade + req.rest
                sources.append((bound, (lang, band, "s", subject), False))
        if not req.search:
            for band, grade in bands:
                for tag in req.tags:
                    bound = W_TAG + req.max_area + grade + req.rest
                    sources.append((bound, (lang, band, "g", tag), True))
                for area, weight in req.areas.items():
                    sources.append((weight + grade + req.rest, (lang, band, "a", area), True))
                sources.append((grade + req.rest, (lang, band, "*", ""), True))
        sources.sort(key=lambda s: -s[0])
        return sources

    def _gather(self, req: _Request, lang: str, pool_size: int) -> list[tuple[float, int]]:
        """The best `pool_size` (score, index) pairs, best first (threshold algorithm)."""
        heap: list[tuple[float, int]] = []  # min-heap of the best so far
        seen: set[int] = set()
        features = self._features
        budget = SCAN_BUDGET
        for bound, key, budgeted in self._sources(req, lang):
            if len(heap) >= pool_size and heap[0][0] >= bound:
                break  # nothing unvisited can beat the weakest in the pool
            bucket = self._buckets.get(key)
            if not bucket:
                continue
            if budgeted:
                if budget <= 0:
                    continue  # a weak goal source (a keyword) may still follow
                bucket = bucket[:budget]
                budget -= len(bucket)
            for i in bucket:
                if i in seen:
                    continue
                seen.add(i)
                score = req.score(features[i])
                if score is None:
                    continue
                # Ties keep the catalog order: -i makes the earlier resource "larger".
                item = (score, -i)
                if len(heap) < pool_size:
                    heapq.heappush(heap, item)
                elif item > heap[0]:
                    heapq.heapreplace(heap, item)
        return [(score, -neg) for score, neg in sorted(heap, reverse=True)]

    def _vary(self, pool: list[tuple[float, int]], k: int) -> list[tuple[float, int]]:
        """Greedy re-rank: each pick makes its provider and type cost more for the next.

        No provider and no type fills more than two thirds of the k slots (two of
        three) while the pool holds an alternative; past that, score decides.
        """
        cap = max(2, math.ceil(k * 2 / 3))
        providers: Counter[str] = Counter()
        kinds: Counter[str] = Counter()
        remaining = list(pool)
        picked: list[tuple[float, int]] = []
        while remaining and len(picked) < k:
            best_at, best_key = 0, (False, -math.inf)
            for at, (score, i) in enumerate(remaining):
                f = self._features[i]
                within = providers[f.provider] < cap and kinds[f.type] < cap
                adjusted = (
                    score - VARIETY_PROVIDER * providers[f.provider] - VARIETY_TYPE * kinds[f.type]
                )
                if (within, adjusted) > best_key:
                    best_at, best_key = at, (within, adjusted)
            score, i = remaining.pop(best_at)
            picked.append((score, i))
            providers[self._features[i].provider] += 1
            kinds[self._features[i].type] += 1
        return picked

    # -- reasons -------------------------------------------------------------------------

    def _explain(self, req: _Request, f: _Features, score: float) -> Recommendation:
        """Why this one, as the strongest true statement: goal and interest, goal, ..."""
        locale = req.learner.locale
        _, tier, goal = req.topic_fit(f) if req.goals else (0.0, "", None)
        interest = self._interest_words(req, f, locale)
        if goal is not None:
            words = self.vocabulary.label(goal, locale)
            if req.search:
                return Recommendation(f.resource, score, REASON_SEARCH, {"topic": words})
            if tier == "subject":
                return Recommendation(f.resource, score, REASON_GOAL_SUBJECT, {"topic": words})
            if interest is not None:
                params = {"area": interest, "topic": words}
                return Recommendation(f.resource, score, REASON_GOAL_AND_INTEREST, params)
            return Recommendation(f.resource, score, REASON_GOAL, {"topic": words})
        if interest is not None:
            return Recommendation(f.resource, score, REASON_INTEREST, {"area": interest})
        for liked in req.liked:
            if not liked.teaches.isdisjoint(f.teaches) or liked.provider == f.provider:
                params = {"name": liked.resource.name}
                return Recommendation(f.resource, score, REASON_LIKED, params)
        minutes = req.learner.minutes_available
        if minutes and f.minutes is not None and f.minutes <= minutes:
            return Recommendation(f.resource, score, REASON_TIME, {"minutes": minutes})
        if req.band is not None and req.band in f.bands and req.learner.grade_band:
            params = {"grade": req.learner.grade_band}
            return Recommendation(f.resource, score, REASON_GRADE, params)
        return Recommendation(f.resource, score, REASON_NEW, {})

    def _interest_words(self, req: _Request, f: _Features, locale: str) -> str | None:
        """The learner's interest this resource meets, in words: a tag, else an area."""
        for tag in req.learner.interest_tags:
            if tag in f.tags:
                return self.vocabulary.label(tag, locale)
        for area in req.learner.interest_areas[:3]:
            if area in f.areas:
                labels = self.area_labels.get(locale) or self.area_labels.get("en") or {}
                return labels.get(area, area)
        return None


def area_labels_from(catalogs: Catalogs) -> dict[str, dict[str, str]]:
    """Locale -> Holland letter -> phrase, from the locale catalogs' `interests.area.<L>`
    (the words the interest quiz already uses: "building things", "construir cosas")."""
    return {
        locale: {area: catalogs.render(f"interests.area.{area}", locale) for area in AREAS}
        for locale in catalogs.locales
    }


# -- chat searches ---------------------------------------------------------------------
# Words for each format, normalized (lowercase, no accents), English and Spanish.
# fmt: off
_TYPE_WORDS: dict[str, str] = {
    "video": "video", "videos": "video",
    "article": "article", "articles": "article", "articulo": "article", "articulos": "article",
    "interactive": "interactive", "interactives": "interactive",
    "simulation": "interactive", "simulations": "interactive", "sim": "interactive",
    "sims": "interactive", "interactivo": "interactive", "interactivos": "interactive",
    "interactiva": "interactive", "interactivas": "interactive",
    "simulacion": "interactive", "simulaciones": "interactive",
    "course": "course", "courses": "course", "curso": "course", "cursos": "course",
    "activity": "activity", "activities": "activity",
    "actividad": "activity", "actividades": "activity",
    "book": "book", "books": "book", "ebook": "book", "libro": "book", "libros": "book",
    "podcast": "podcast", "podcasts": "podcast",
    "game": "game", "games": "game", "juego": "game", "juegos": "game",
}
_SHORT_WORDS = frozenset({
    "short", "shorter", "quick", "brief", "corto", "corta", "cortos", "cortas",
    "rapido", "rapida", "rapidos", "rapidas", "breve", "breves",
})
# fmt: on
assert set(_TYPE_WORDS.values()) <= set(RESOURCE_TYPES)
# "video game(s)" is a game, not a video and a game.
_VIDEO_GAME = re.compile(r"\bvideo ?games?\b|\bvideojuegos?\b")
# Only "in Spanish" / "en español" set the language: a bare "spanish" is the topic
# (the learner may want to learn Spanish).
_LANGUAGE = re.compile(r"\b(?:in|en)\s+(spanish|espanol|castellano|english|ingles)\b")
_LANGUAGE_CODE = {"spanish": "es", "espanol": "es", "castellano": "es"}
_MINUTES = re.compile(
    r"\b(?:(?:under|less than|at most|max|maximum|within|in|no more than|up to|menos de|"
    r"maximo|como mucho|como maximo|hasta|en)\s+)?(\d{1,3})\s*"
    r"(?:m|min|mins|minute|minutes|minuto|minutos)\b"
)


def parse_search(text: str, vocabulary: Vocabulary) -> SearchQuery:
    """The filters in a chat search, in English or Spanish.

    "videos about volcanoes" -> type video, topic volcanoes; "algo de fracciones
    en español" -> language es, topic fractions; "something short on essays" ->
    at most 15 minutes, topic essays; "juegos de menos de 10 minutos" -> game,
    at most 10. Words that set a filter are taken out before the topic is looked
    up, so "en español" never reads as the topic Spanish.
    """
    words = normalize(text)
    language = None
    found = _LANGUAGE.search(words)
    if found:
        language = _LANGUAGE_CODE.get(found.group(1), "en")
        words = words[: found.start()] + " " + words[found.end() :]
    max_minutes = None
    found = _MINUTES.search(words)
    if found:
        max_minutes = int(found.group(1))
        words = words[: found.start()] + " " + words[found.end() :]
    types: list[str] = []
    if _VIDEO_GAME.search(words):
        types.append("game")
        words = _VIDEO_GAME.sub(" ", words)
    rest: list[str] = []
    for word in words.split():
        kind = _TYPE_WORDS.get(word)
        if kind is not None:
            if kind not in types:
                types.append(kind)
        elif word in _SHORT_WORDS:
            if max_minutes is None:
                max_minutes = SHORT_MINUTES
        else:
            rest.append(word)
    matches = vocabulary.find(" ".join(rest), kind="topic", limit=1) if rest else []
    return SearchQuery(
        types=tuple(types),
        language=language,
        topic=matches[0].term.id if matches else None,
        max_minutes=max_minutes,
    )
