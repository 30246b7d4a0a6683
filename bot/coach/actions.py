"""Every action the shipped flows use, registered in one place."""

from __future__ import annotations

from bot.coach import (
    checkins,
    digest,
    family,
    goals,
    interests,
    linking,
    mydata,
    nextstep,
    nudges,
    onboarding,
    preferences,
    profile,
    resources,
    safety_alerts,
    school,
    warmup,
)
from bot.engine.actions import ActionRegistry


def build_registry() -> ActionRegistry:
    actions = ActionRegistry()
    # Interceptors run in this order (the safety screen, when registered, goes first).
    for module in (
        safety_alerts,  # the safety screen sees every learner message before anything
        linking,  # a link code before bot/coach/codes.py (onboarding) takes it for another
        profile,
        warmup,
        onboarding,
        interests,
        goals,
        checkins,
        nextstep,
        mydata,
        resources,
        digest,
        nudges,
        school,
        family,
        preferences,
    ):
        module.register(actions)
    return actions
