"""`coach dialogs check`: the shipped dialogs pass; every kind of mistake is named with its line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.config import Settings
from bot.engine.flows import FlowError
from bot.engine.locales import Catalogs
from bot.paths import shipped
from bot.services import load_dialog


def settings_for(dialogs: Path) -> Settings:
    return Settings(dialogs_dir=dialogs, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def dialogs(tmp_path: Path) -> Path:
    copy = tmp_path / "dialogs"
    shutil.copytree(shipped("dialogs"), copy)
    return copy


def add_flow(dialogs: Path, body: str) -> Path:
    path = dialogs / "flows" / "broken.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def problems(dialogs: Path) -> list[str]:
    with pytest.raises(FlowError) as caught:
        load_dialog(settings_for(dialogs))
    return caught.value.problems


def test_the_shipped_dialogs_are_sound() -> None:
    dialog = load_dialog(settings_for(shipped("dialogs")))
    assert {"main", "menu", "help", "warmup"} <= set(dialog.flows.flows)


def test_every_key_exists_in_every_shipped_locale() -> None:
    catalogs = Catalogs.load(shipped("dialogs") / "locales")
    assert catalogs.locales == ("en", "es")
    assert catalogs.problems() == []
    assert set(catalogs.entries["en"]) == set(catalogs.entries["es"])


BROKEN = {
    "unknown step": (
        """flows:
  broken:
    steps:
      one:
        say: help.what
        next: nowhere
""",
        "broken.yaml:4: flow broken step one: unknown step 'nowhere'",
    ),
    "unknown action": (
        """flows:
  broken:
    title: help.title
    steps:
      one:
        action: no.such.action
        next: end
""",
        "broken.yaml:5: flow broken step one: unknown action 'no.such.action'",
    ),
    "unknown message key": (
        """flows:
  broken:
    title: help.title
    steps:
      one:
        say: help.nothing_here
        next: end
""",
        "broken.yaml:5: flow broken step one: unknown message key 'help.nothing_here'",
    ),
    "unknown slot": (
        """flows:
  broken:
    title: help.title
    steps:
      one:
        say: help.what
        branch:
          - if: {slot: never.set, equals: 1}
            goto: one
        next: end
""",
        "broken.yaml:8: flow broken step one: unknown slot 'never.set'",
    ),
    "unknown flow": (
        """flows:
  broken:
    title: help.title
    steps:
      one:
        call: nothing
        next: end
""",
        "broken.yaml:5: flow broken step one: unknown flow 'nothing'",
    ),
    "unknown expect": (
        """flows:
  broken:
    title: help.title
    steps:
      one:
        ask: help.what
        expect: colour
        slot: x.y
        next: end
""",
        "broken.yaml:5: flow broken step one: expect 'colour' is not one of",
    ),
    "unknown key": (
        """flows:
  broken:
    title: help.title
    steps:
      one:
        sya: help.what
        next: end
""",
        "broken.yaml:5: flow broken step one: unknown key 'sya'",
    ),
    "malformed yaml": (
        """flows:
  broken:
    steps: [one
""",
        "broken.yaml:4:",
    ),
    "duplicate key": (
        """flows:
  broken:
    title: help.title
    title: help.title
    steps:
      one: {say: help.what, next: end}
""",
        "broken.yaml:4: duplicate key 'title'",
    ),
    "unknown trigger": (
        """flows:
  broken:
    title: help.title
    triggers: [no_such_intent]
    steps:
      one: {say: help.what, next: end}
""",
        "flow broken: trigger 'no_such_intent' is not a known intent",
    ),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_each_kind_of_mistake_is_reported_with_file_and_line(dialogs: Path, kind: str) -> None:
    body, expected = BROKEN[kind]
    add_flow(dialogs, body)
    found = problems(dialogs)
    assert any(expected in problem for problem in found), found


def test_a_missing_translation_is_reported(dialogs: Path) -> None:
    es = dialogs / "locales" / "es" / "warmup.yaml"
    es.write_text(
        es.read_text(encoding="utf-8").replace('  done: "¡Ya tienes un plan!', '  donee: "x'),
        encoding="utf-8",
    )
    found = problems(dialogs)
    assert any("missing key 'warmup.done'" in p for p in found), found


def test_a_placeholder_that_differs_between_locales_is_reported(dialogs: Path) -> None:
    es = dialogs / "locales" / "es" / "engine.yaml"
    es.write_text(
        es.read_text(encoding="utf-8").replace("Anotado: {date}.", "Anotado: {fecha}."),
        encoding="utf-8",
    )
    found = problems(dialogs)
    assert any("'engine.date_confirm' placeholders" in p for p in found), found


def test_a_missing_dialogs_folder_is_one_clear_problem(tmp_path: Path) -> None:
    found = problems(tmp_path / "nope")
    assert len(found) == 1
    assert "does not exist" in found[0]
