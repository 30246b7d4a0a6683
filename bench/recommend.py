"""Recommendation speed on a synthetic 50,000-resource catalog.

    .venv/bin/python bench/recommend.py [--resources 50000] [--learners 1000] [--seed 4]

Builds a deterministic random catalog over the shipped vocabulary's topics and
interests (grade bands, two languages, every type, a dozen providers), times
building the `Recommender` (the "load"), then one `recommend` call for each of
the synthetic learners. Prints a table and saves bench/results/recommend.json.
Targets (issue 4): load <= 2 s, p95 <= 20 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.coach.catalog import GRADE_BANDS, RESOURCE_TYPES, Resource  # noqa: E402
from bot.coach.recommend import Learner, Recommender  # noqa: E402
from bot.engine.topics import AREAS, Vocabulary  # noqa: E402
from bot.paths import shipped  # noqa: E402

PROVIDERS = (
    "Khan Academy", "CK-12", "PhET", "OpenStax", "Code.org", "Scratch", "NASA",
    "Smithsonian", "Library of Congress", "BBC Bitesize", "Duolingo", "PBS LearningMedia",
)  # fmt: skip
MINUTES = (5, 10, 15, 20, 30, 45, 60, 120)
NOW = datetime(2026, 11, 23, 15, tzinfo=UTC)
TARGET_LOAD_S = 2.0
TARGET_P95_MS = 20.0


def catalog(size: int, vocabulary: Vocabulary, rng: random.Random) -> list[Resource]:
    """`size` resources: 1-2 topics, 1-2 adjacent bands, 1-2 interests, 70% English."""
    topics = vocabulary.topics()
    interests = vocabulary.interests()
    out: list[Resource] = []
    for n in range(size):
        taught = rng.sample(topics, rng.choice((1, 1, 2)))
        liked = rng.sample(interests, rng.choice((1, 2)))
        first = rng.randrange(len(GRADE_BANDS))
        bands = GRADE_BANDS[first : first + rng.choice((1, 2))]
        keywords = tuple(vocabulary.label(t.id, "en") for t in rng.sample(topics, 2))
        out.append(
            Resource(
                id=f"r{n}",
                name=f"Resource {n}",
                url=f"https://example.org/r{n}",
                description="",
                provider=rng.choice(PROVIDERS),
                learning_resource_type=rng.choice(RESOURCE_TYPES),
                educational_level=bands,
                about=tuple({t.group for t in taught}),
                teaches=tuple(t.id for t in taught),
                keywords=keywords,
                interest_areas=tuple({i.group for i in liked}),
                interest_tags=tuple(i.id for i in liked),
                time_required=timedelta(minutes=rng.choice(MINUTES)),
                in_language="en" if rng.random() < 0.7 else "es",
            )
        )
    return out


def learners(
    count: int, vocabulary: Vocabulary, ids: list[str], rng: random.Random
) -> list[Learner]:
    """Learners with 0-3 goals, 0-3 areas and tags, some history and feedback."""
    topics = [t.id for t in vocabulary.topics()]
    interests = [i.id for i in vocabulary.interests()]
    out: list[Learner] = []
    for _ in range(count):
        shown = {rid: NOW - timedelta(days=rng.randrange(30)) for rid in rng.sample(ids, 20)}
        out.append(
            Learner(
                grade_band=rng.choice((*GRADE_BANDS, None)),
                locale=rng.choice(("en", "en", "es")),
                interest_areas=tuple(rng.sample(AREAS, rng.randrange(4))),
                interest_tags=tuple(rng.sample(interests, rng.randrange(4))),
                goal_topics=tuple(rng.sample(topics, rng.randrange(4))),
                preferred_types=tuple(rng.sample(RESOURCE_TYPES, rng.randrange(3))),
                minutes_available=rng.choice((None, 10, 20, 30, 60)),
                shown=shown,
                liked=frozenset(rng.sample(ids, rng.randrange(3))),
                disliked=frozenset(rng.sample(ids, rng.randrange(3))),
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=50_000)
    parser.add_argument("--learners", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    vocabulary = Vocabulary.load(shipped("content") / "vocabulary.yaml")
    resources = catalog(args.resources, vocabulary, rng)

    started = time.perf_counter()
    recommender = Recommender(resources, vocabulary)
    load_s = time.perf_counter() - started

    people = learners(args.learners, vocabulary, [r.id for r in resources], rng)
    samples: list[float] = []
    empty = 0
    for learner in people:
        started = time.perf_counter()
        found = recommender.recommend(learner, k=3, now=NOW)
        samples.append((time.perf_counter() - started) * 1000)
        empty += len(found) < 3
    samples.sort()
    median_ms = statistics.median(samples)
    p95_ms = samples[int(len(samples) * 0.95)]

    rows: list[dict[str, Any]] = [
        {"measure": "load (build indexes)", "value": round(load_s, 3), "unit": "s",
         "target": TARGET_LOAD_S, "ok": load_s <= TARGET_LOAD_S},
        {"measure": "recommend median", "value": round(median_ms, 2), "unit": "ms",
         "target": None, "ok": True},
        {"measure": "recommend p95", "value": round(p95_ms, 2), "unit": "ms",
         "target": TARGET_P95_MS, "ok": p95_ms <= TARGET_P95_MS},
        {"measure": "recommend max", "value": round(samples[-1], 2), "unit": "ms",
         "target": None, "ok": True},
    ]  # fmt: skip
    print(f"{'measure':<22} {'value':>9} {'unit':<4} {'target':>8}  ok")
    for row in rows:
        target = "" if row["target"] is None else f"{row['target']:g}"
        ok = "yes" if row["ok"] else "NO"
        print(f"{row['measure']:<22} {row['value']:>9} {row['unit']:<4} {target:>8}  {ok}")

    result = {
        "bench": "recommend",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "resources": len(recommender),
        "learners": args.learners,
        "seed": args.seed,
        "short_lists": empty,
        "rows": rows,
    }
    out = ROOT / "bench" / "results" / "recommend.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"\n{result['machine']}; {len(recommender)} resources, {args.learners} learners "
        f"({empty} got fewer than 3); saved {out.relative_to(ROOT)}"
    )


if __name__ == "__main__":
    main()
