"""Issue 3's tone rules, checked on every catalog sentence: short, no "you must"."""

from __future__ import annotations

import re

from bot.engine.locales import Catalogs
from bot.paths import shipped

# Short messages: at most about 320 characters (a phone screen without scrolling).
MAX_CHARS = 320
# Autonomy-supportive: offer choices and reasons, never orders.
ORDERS = re.compile(r"\b(you must|you have to|you need to|debes|tienes que)\b", re.IGNORECASE)


def test_every_sentence_is_short_and_never_an_order() -> None:
    catalogs = Catalogs.load(shipped("dialogs") / "locales")
    too_long, orders = [], []
    for code, entries in catalogs.entries.items():
        for key, entry in entries.items():
            for form in entry.forms():
                if len(form) > MAX_CHARS:
                    too_long.append(f"{code} {key}: {len(form)} characters")
                if ORDERS.search(form):
                    orders.append(f"{code} {key}: {form}")
    assert too_long == []
    assert orders == []
