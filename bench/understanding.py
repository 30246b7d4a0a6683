"""How long understanding takes per message: intents, topics, dates, yes/no.

    .venv/bin/python bench/understanding.py [--runs 2000]

Prints the median and p95 in microseconds per call, each measured over the same
messages in one run. (These were timed tests once; timing belongs in bench/.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.engine.dates import parse_date  # noqa: E402
from bot.engine.topics import Vocabulary  # noqa: E402
from bot.engine.understand import IntentMatcher, parse_rating, parse_yes_no  # noqa: E402
from bot.paths import shipped  # noqa: E402

MESSAGES = [
    "i wnat to set a goal",
    "stop procrastinating",
    "hlep",
    "Maria",
    "I want to get better at fractions",
    "quiero mejorar en dibujo",
    "i really want to get better at fractions and algebra before my test next week",
]
DATES = ["next friday", "end of the month", "in two weeks", "el próximo viernes", "banana"]


def measure(fn: Callable[[str], object], inputs: list[str], runs: int) -> tuple[float, float]:
    samples: list[float] = []
    for n in range(runs):
        text = inputs[n % len(inputs)]
        start = time.perf_counter()
        fn(text)
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    intents = IntentMatcher.load(shipped("dialogs") / "intents")
    vocabulary = Vocabulary.load(shipped("content") / "vocabulary.yaml")
    now = datetime(2026, 11, 23, 15, tzinfo=UTC)
    zone = ZoneInfo("America/New_York")
    parse_date("tomorrow", locale="en", tz=zone, now=now)  # dateparser loads its data once
    rows = [
        ("intent match", measure(lambda t: intents.match(t, "en"), MESSAGES, args.runs)),
        ("topic find", measure(vocabulary.find, MESSAGES, args.runs)),
        (
            "date parse",
            measure(lambda t: parse_date(t, locale="en", tz=zone, now=now), DATES, args.runs),
        ),
        ("yes/no", measure(parse_yes_no, ["yep", "nah", "maybe later", "sí"], args.runs)),
        ("rating", measure(parse_rating, ["4", "four", "😀", "great"], args.runs)),
    ]
    print(f"{'what':<14} {'median µs':>10} {'p95 µs':>10}")
    for name, (median, p95) in rows:
        print(f"{name:<14} {median:>10.1f} {p95:>10.1f}")


if __name__ == "__main__":
    main()
