"""What text from the outside may contain before it reaches the engine and the database."""

from __future__ import annotations

import re

# C0 controls (except tab, newline, carriage return) and DEL carry no meaning in
# chat, and PostgreSQL text cannot hold NUL at all.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class BadText(ValueError):
    """Text that is not valid Unicode (lone surrogates): refused, not guessed at."""


def clean_text(value: str) -> str:
    if _SURROGATE.search(value):
        raise BadText("contains invalid Unicode (a lone surrogate)")
    return _CONTROL.sub("", value)
