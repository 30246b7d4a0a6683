"""Every action the shipped flows use, registered in one place."""

from __future__ import annotations

from bot.coach import (
    checkins,
    goals,
    interests,
    mydata,
    nextstep,
    onboarding,
    profile,
    resources,
    warmup,
)
from bot.engine.actions import ActionRegistry


def build_registry() -> ActionRegistry:
    actions = ActionRegistry()
    # Interceptors run in this order (the safety screen, when registered, goes first).
    for module in (
        profile,
        warmup,
        onboarding,
        interests,
        goals,
        checkins,
        nextstep,
        mydata,
        resources,
    ):
        module.register(actions)
    return actions
