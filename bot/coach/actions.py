"""Every action the shipped flows use, registered in one place."""

from __future__ import annotations

from bot.coach import profile, warmup
from bot.engine.actions import ActionRegistry


def build_registry() -> ActionRegistry:
    actions = ActionRegistry()
    profile.register(actions)
    warmup.register(actions)
    return actions
