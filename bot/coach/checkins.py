"""Actions for the checkins flow (being written)."""

from __future__ import annotations

from bot.engine.actions import ActionRegistry


def register(actions: ActionRegistry) -> None:
    """Register this module's actions (none yet)."""
