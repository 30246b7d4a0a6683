"""A class digest in words, and cut to size for the platforms that limit a message.

The text is a few sections separated by blank lines (the week in numbers, who
needs attention, open alerts, interests and helpful resources, what learners
shared), one fact per line, so it reads top to bottom in a chat window and can
be split at a section or a line without breaking a sentence.

The outbox payload of a digest (and the shape any long proactive message may use):

    {
      "reply": {"text": <the whole digest>, "buttons": []},   # Reply.to_json()
      "parts": [<text>, ...],   # the same text cut at section/line boundaries,
                                # each part at most PART_LIMIT UTF-16 code units
      "digest": {"class_id": 12, "class": "7B", "week": "2026-W48"}
    }

A channel that can show the whole text (the web chat) uses "reply"; Telegram
sends each part as its own message, in order; Slack puts each part in its own
section block of one message. Joining the parts with blank lines gives the text
back, give or take the blank line or line break each cut replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from babel.dates import format_skeleton
from babel.lists import format_list
from babel.numbers import format_percent

from bot.coach.digest.facts import Attention, ClassDigest, Learner, SharedReflection
from bot.engine.messages import Reply
from bot.engine.topics import Vocabulary

# (key, params) → the sentence in the teacher's language (ActionContext.render, or
# Catalogs.render with the teacher's locale bound).
Render = Callable[[str, Mapping[str, Any]], str]

# Eight block heights for the 1-5 rating scale: 1 is the lowest block, 5 the full one.
SPARK = "▁▂▃▄▅▆▇█"
# A week without any rating: a middle dot keeps the column (a space would be trimmed
# or invisible, and a low block would read as a bad week).
GAP = "·"
# Telegram Bot API sendMessage: "1-4096 characters after entities parsing".
TELEGRAM_LIMIT = 4096
# Slack Block Kit section block: text "Maximum length for this field is 3000 characters".
SLACK_SECTION_LIMIT = 3000
# The parts fit the stricter of the two, so one list serves every push channel.
PART_LIMIT = min(TELEGRAM_LIMIT, SLACK_SECTION_LIMIT)
# Learner text in a digest line: long enough to be useful, short enough that a class
# of 35 all needing attention, with alerts, resources and reflections, still fits one
# Telegram message (tests/test_digest.py builds that worst case).
NAME_CHARS = 30
CLASS_CHARS = 40
RESOURCE_CHARS = 60
REFLECTION_CHARS = 80  # each of went well / in the way / next
REFLECTION_LINE_CHARS = 200


def sparkline(averages: Sequence[float | None]) -> str:
    """One character per week: the average rating's height, or GAP for no ratings."""
    return "".join(GAP if value is None else SPARK[_level(value)] for value in averages)


def _level(average: float) -> int:
    # 1..5 onto 0..7, rounding half up: 1 ▁, 2 ▃, 3 ▅, 4 ▆, 5 █.
    scaled = (average - 1) * (len(SPARK) - 1) / 4
    return min(len(SPARK) - 1, max(0, int(scaled + 0.5)))


def render_digest(
    digest: ClassDigest, *, render: Render, locale: str, vocabulary: Vocabulary
) -> str:
    """The digest as the teacher reads it, in `locale` (the teacher's language)."""
    name = _one_line(digest.ref.name, CLASS_CHARS)
    week = format_skeleton("MMMd", digest.week.monday, locale=locale)
    if not digest.learners:
        return render("digest.empty_class", {"class": name, "week": week})
    sections = [
        _numbers(digest, render, locale, name, week),
        _attention(digest.attention, render),
        _alerts(digest, render, locale),
        _interests_and_resources(digest, render, locale, vocabulary),
        _reflections(digest.reflections, render),
    ]
    return "\n\n".join(section for section in sections if section)


def _numbers(digest: ClassDigest, render: Render, locale: str, name: str, week: str) -> str:
    share = format_percent(digest.checked_in / digest.enrolled, locale=locale)
    lines = [
        render("digest.heading", {"class": name, "week": week}),
        render(
            "digest.participation",
            {"checked": digest.checked_in, "count": digest.enrolled, "percent": share},
        ),
        render(
            "digest.goals",
            {
                "made": render("digest.goals_set", {"count": digest.goals_set}),
                "done": render("digest.goals_done", {"count": digest.goals_completed}),
            },
        ),
    ]
    average = digest.weekly_average[-1]
    if average is None:
        lines.append(render("digest.rating_none", {}))
    else:
        lines.append(render("digest.rating", {"average": round(average, 1)}))
    trend = sparkline(digest.weekly_average)
    key = "digest.trend_with_gaps" if GAP in trend else "digest.trend"
    lines.append(render(key, {"trend": trend, "gap": GAP}))
    return "\n".join(lines)


def learner_name(learner: Learner, render: Render) -> str:
    if learner.name and learner.name.strip():
        return _one_line(learner.name, NAME_CHARS)
    # The id as digits, not a Babel number ("learner 1,234" would be wrong).
    return render("digest.unnamed", {"id": str(learner.id)})


def _attention(items: Sequence[Attention], render: Render) -> str:
    if not items:
        return render("digest.attention_none", {})
    lines = [render("digest.attention_heading", {"count": len(items)})]
    for item in items:
        reasons = "; ".join(_reasons(item, render))
        lines.append(
            render(
                "digest.learner_line",
                {"learner": learner_name(item.learner, render), "reasons": reasons},
            )
        )
    return "\n".join(lines)


def _reasons(item: Attention, render: Render) -> Iterator[str]:
    if item.quiet_days is not None:
        key = "digest.reason.never" if item.never_checked_in else "digest.reason.quiet"
        yield render(key, {"count": item.quiet_days})
    if item.stuck_goals:
        yield render("digest.reason.stuck", {"count": item.stuck_goals})
    if item.falling:
        ratings = " → ".join(str(r) for r in item.falling)
        yield render("digest.reason.falling", {"ratings": ratings})


def _alerts(digest: ClassDigest, render: Render, locale: str) -> str:
    if not digest.alerts:
        return ""
    lines = [render("digest.alerts_heading", {"count": len(digest.alerts)})]
    for alert in digest.alerts:
        opened = alert.opened_at.astimezone(digest.week.zone).date()
        lines.append(
            render(
                "digest.alert_line",
                {
                    "learner": learner_name(alert.learner, render),
                    "opened": format_skeleton("MMMEd", opened, locale=locale),
                    "id": str(alert.id),
                },
            )
        )
    return "\n".join(lines)


def _interests_and_resources(
    digest: ClassDigest, render: Render, locale: str, vocabulary: Vocabulary
) -> str:
    lines: list[str] = []
    if digest.interests:
        items = [
            render("digest.counted", {"what": vocabulary.label(tag, locale), "count": n})
            for tag, n in digest.interests
        ]
        lines.append(render("digest.interests", {"interests": format_list(items, locale=locale)}))
    elif digest.areas:
        items = [
            render("digest.counted", {"what": render(f"interests.area.{area}", {}), "count": n})
            for area, n in digest.areas
        ]
        lines.append(render("digest.areas", {"areas": format_list(items, locale=locale)}))
    if digest.resources:
        lines.append(render("digest.resources_heading", {}))
        for resource in digest.resources:
            lines.append(
                render(
                    "digest.resource_line",
                    {
                        "resource": _one_line(resource.name, RESOURCE_CHARS),
                        "url": resource.url,
                        "count": resource.learners,
                    },
                )
            )
    return "\n".join(lines)


def _reflections(items: Sequence[SharedReflection], render: Render) -> str:
    if not items:
        return ""
    lines = [render("digest.reflections_heading", {})]
    for item in items:
        said = [
            render(f"digest.reflection.{part}", {"text": _one_line(text, REFLECTION_CHARS)})
            for part, text in (
                ("went_well", item.went_well),
                ("obstacle", item.obstacle),
                ("next_step", item.next_step),
            )
            if text and text.strip()
        ]
        line = render(
            "digest.learner_line",
            {"learner": learner_name(item.learner, render), "reasons": "; ".join(said)},
        )
        lines.append(_one_line(line, REFLECTION_LINE_CHARS))
    return "\n".join(lines)


def _one_line(text: str, limit: int) -> str:
    """Learner-typed text on one line (a newline would break the digest's layout), clipped."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:") + "…"


# -- cutting to size ----------------------------------------------------------------------


def text_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji such as 📋 counts two).

    Never less than the number of characters, so it is safe for Slack's limit too.
    """
    return len(text.encode("utf-16-le")) // 2


def split_message(text: str, limit: int) -> list[str]:
    """`text` in parts of at most `limit` (UTF-16 code units), cut where it reads best.

    Whole sections (separated by a blank line) are kept together and packed as many
    to a part as fit; a section longer than `limit` is cut between lines; a single
    line longer than `limit` (never in a digest: names and quotes are clipped) is
    cut at a space, or mid-word as the last resort. Text that fits is one part.
    """
    if limit < 2:
        raise ValueError("a message limit must be at least 2")
    if text_length(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""

    def add(piece: str, joint: str) -> None:
        nonlocal current
        if not current:
            current = piece
        elif text_length(current) + text_length(joint) + text_length(piece) <= limit:
            current += joint + piece
        else:
            parts.append(current)
            current = piece

    for section in text.split("\n\n"):
        if text_length(section) <= limit:
            add(section, "\n\n")
            continue
        joint = "\n\n"
        for line in section.split("\n"):
            for piece in _cut_line(line, limit):
                add(piece, joint)
                joint = "\n"
    if current:
        parts.append(current)
    return [part for part in parts if part.strip()]


def _cut_line(line: str, limit: int) -> Iterator[str]:
    while text_length(line) > limit:
        # The longest prefix that fits (astral characters count two).
        end, used = 0, 0
        while used + text_length(line[end]) <= limit:
            used += text_length(line[end])
            end += 1
        space = line.rfind(" ", 0, end)
        cut = space if space > end // 2 else end
        yield line[:cut].rstrip()
        line = line[cut:].lstrip()
    yield line


def digest_payload(digest: ClassDigest, text: str) -> dict[str, Any]:
    """The outbox payload (see the module docstring for its shape)."""
    return {
        "reply": Reply(text).to_json(),
        "parts": split_message(text, PART_LIMIT),
        "digest": {"class_id": digest.ref.id, "class": digest.ref.name, "week": digest.week.key},
    }
