"""The teacher's weekly digest (issue 5): one message per class per week.

- facts.py: one class's week from the database, set-based (`summarise`), and the
  audit rows a digest writes;
- text.py: the digest in the teacher's language, the sparkline, `split_message`
  and the outbox payload's shape;
- weekly.py: the scheduler job `send_weekly_digests` and `export_digests`;
- command.py: /digest [CLASS], the teacher's preview (dialogs/flows/digest.yaml).
"""

from __future__ import annotations

from bot.coach.digest.command import register
from bot.coach.digest.facts import ClassDigest, ClassRef, Week, summarise
from bot.coach.digest.text import PART_LIMIT, render_digest, sparkline, split_message
from bot.coach.digest.weekly import export_digests, send_weekly_digests

__all__ = [
    "PART_LIMIT",
    "ClassDigest",
    "ClassRef",
    "Week",
    "export_digests",
    "register",
    "render_digest",
    "send_weekly_digests",
    "sparkline",
    "split_message",
    "summarise",
]
