"""Engine features the shipped flows do not all use: calling a flow and returning, topics."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from bot.paths import shipped
from bot.services import Services
from bot.testing.conversation import Chat
from bot.testing.people import seed_learner

FLOWS = """
flows:
  study:
    title: study.title
    triggers: [/study]
    steps:
      intro:
        say: study.intro
        call: pick_topic
        next: after
      after:
        say: study.back
        branch:
          - if: {slot: study.topic, in: [fractions, algebra]}
            goto: maths
        next: other
      maths:
        say: study.maths
        next: end
      other:
        say: study.other
        next: end
  pick_topic:
    title: study.pick_title
    steps:
      ask:
        ask: study.ask_topic
        expect: topic
        slot: study.topic
        next: end
"""

CATALOG = {
    "en": """
study:
  title: "studying"
  pick_title: "picking a topic"
  intro: "Let's pick something to study."
  ask_topic: "What do you want to work on?"
  back: "Back in the study flow with {study.topic}."
  maths: "Maths it is."
  other: "Something else, then."
""",
    "es": """
study:
  title: "el estudio"
  pick_title: "elegir un tema"
  intro: "Elijamos algo para estudiar."
  ask_topic: "¿En qué quieres trabajar?"
  back: "De vuelta al estudio con {study.topic}."
  maths: "Matemáticas, entonces."
  other: "Otra cosa, entonces."
""",
}


@pytest.fixture
async def study(tmp_path: Path, open_services: Any) -> Services:
    dialogs = tmp_path / "dialogs"
    shutil.copytree(shipped("dialogs"), dialogs)
    (dialogs / "flows" / "study.yaml").write_text(FLOWS, encoding="utf-8")
    for code, extra in CATALOG.items():
        (dialogs / "locales" / code / "study.yaml").write_text(extra, encoding="utf-8")
    services: Services = await open_services("sqlite", dialogs_dir=dialogs)
    await seed_learner(services.db, services.clock, "kim")
    return services


async def test_a_called_flow_returns_to_its_caller(study: Services) -> None:
    chat = Chat(study.turns, "kim")
    await chat.script("""
        > /study
        < Let's pick something to study
        < What do you want to work on?
        = topic study.topic
        > fractoins please
        < Back in the study flow with fractions
        < Maths it is
        = none
    """)


async def test_a_topic_question_re_prompts_on_something_vague(study: Services) -> None:
    chat = Chat(study.turns, "kim")
    await chat.script("""
        > /study
        > school stuff
        < What subject or skill is it?
        = topic study.topic
        > quiero aprender sobre volcanes
        < Back in the study flow with volcanoes
        < Something else, then
    """)


async def test_help_inside_a_called_flow_comes_back_to_it(study: Services) -> None:
    chat = Chat(study.turns, "kim")
    await chat.script("""
        > /study
        > help
        < Carry on with picking a topic
        > yes
        < What do you want to work on?
        > algebra
        < Back in the study flow with algebra
        < Maths it is
    """)


async def test_a_command_typed_at_a_question_starts_that_flow(study: Services) -> None:
    chat = Chat(study.turns, "kim")
    await chat.script("""
        > /study
        = topic study.topic
        > /warmup
        < What should I call you?
        = text profile.name
    """)
    async with study.db.reading() as session:
        from sqlmodel import select

        from bot.store.models import Conversation

        conversation = (await session.exec(select(Conversation))).one()
    # The command was not taken as the answer, and the study flow waits to be resumed.
    assert "study.topic" not in conversation.slots
    assert conversation.meta["suspended"]["flow"] == "pick_topic"


async def test_a_button_naming_a_flow_starts_it(study: Services) -> None:
    chat = Chat(study.turns, "kim")
    await chat.script("""
        > /study
        > [warmup]
        < What should I call you?
    """)
