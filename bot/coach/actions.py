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
    warmup,
)
from bot.engine.actions import ActionRegistry


def build_registry() -> ActionRegistry:
    actions = ActionRegistry()
    for module in (profile, warmup, onboarding, interests, goals, checkins, nextstep, mydata):
        module.register(actions)
    return actions
