"""The coach command: help, version, one clear line for a user's mistake, chat on the same db."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import bot

ROOT = Path(__file__).resolve().parent.parent


def coach(
    *args: str, tmp_path: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COACH_")} | {
        "COACH_DATABASE_URL": f"sqlite:///{tmp_path / 'coach.db'}",
        # Runs from the checkout even where the package is not installed.
        "PYTHONPATH": str(ROOT),
    }
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        input=stdin,
        timeout=120,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_version(tmp_path: Path) -> None:
    result = coach("--version", tmp_path=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"coach {bot.__version__}"


@pytest.mark.parametrize(
    "args", [[], ["serve"], ["chat"], ["db"], ["db", "upgrade"], ["dialogs"], ["dialogs", "check"]]
)
def test_every_command_has_help(tmp_path: Path, args: list[str]) -> None:
    result = coach(*args, "--help", tmp_path=tmp_path)
    assert result.returncode == 0
    assert "usage: coach" in result.stdout


def test_a_bad_option_is_one_line(tmp_path: Path) -> None:
    line = one_line_error(coach("serve", "--colour", "red", tmp_path=tmp_path))
    assert "unrecognized arguments: --colour red" in line
    line = one_line_error(coach("frobnicate", tmp_path=tmp_path))
    assert "invalid choice" in line


def test_an_unknown_database_scheme_is_one_line(tmp_path: Path) -> None:
    result = coach("db", "upgrade", tmp_path=tmp_path, env={"COACH_DATABASE_URL": "mysql://x@y/z"})
    assert "does not support" in one_line_error(result)


def test_a_bad_setting_is_one_line(tmp_path: Path) -> None:
    result = coach("db", "upgrade", tmp_path=tmp_path, env={"COACH_TIMEZONE": "Mars/Base"})
    assert (
        one_line_error(result)
        == "coach: COACH_TIMEZONE: Value error, 'Mars/Base' is not an IANA time zone"
    )


def test_an_unreadable_dialogs_folder_is_one_clear_problem(tmp_path: Path) -> None:
    result = coach("dialogs", "check", "--dir", str(tmp_path / "missing"), tmp_path=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "does not exist" in result.stderr


def test_dialogs_check_passes_on_the_shipped_dialogs(tmp_path: Path) -> None:
    result = coach("dialogs", "check", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "all good" in result.stdout


def test_serving_on_the_network_without_a_token_is_refused(tmp_path: Path) -> None:
    result = coach("serve", "--host", "0.0.0.0", tmp_path=tmp_path)
    assert "set COACH_API_TOKEN" in one_line_error(result)


def test_db_upgrade_then_chat_in_the_console_shows_in_the_export(tmp_path: Path) -> None:
    assert coach("db", "upgrade", tmp_path=tmp_path).returncode == 0
    result = coach("chat", "--user", "maria", tmp_path=tmp_path, stdin="Maria\n2\n/quit\n")
    assert result.returncode == 0, result.stderr
    assert "coach> Hi, I'm Coach!" in result.stdout
    assert "coach> Nice to meet you, Maria!" in result.stdout
    assert "[1] English   [2] Español" in result.stdout
    assert "coach> ¿En qué grado estás?" in result.stdout
    # The same database, seen through the API's export.
    code = (
        "import asyncio, json, sys\n"
        "from bot.config import load_settings\n"
        "from bot.services import build_services\n"
        "async def main():\n"
        "    s = build_services(load_settings())\n"
        "    print(json.dumps(await s.turns.export('web', 'maria')))\n"
        "    await s.close()\n"
        "asyncio.run(main())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COACH_")}
    env["COACH_DATABASE_URL"] = f"sqlite:///{tmp_path / 'coach.db'}"
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    data = json.loads(out.stdout)
    assert [m["text"] for m in data["messages"] if m["direction"] == "in"] == [
        "hi",
        "Maria",
        "Español",
    ]
    assert {m["channel"] for m in data["messages"]} == {"console"}


def test_mydata_in_the_console_saves_the_export_as_a_file(tmp_path: Path) -> None:
    result = coach("chat", "--user", "ana", tmp_path=tmp_path, stdin="Ana\n1\n/mydata\n/quit\n")
    assert result.returncode == 0, result.stderr
    assert f"(file saved: {tmp_path / 'coach-data.json'})" in result.stdout
    data = json.loads((tmp_path / "coach-data.json").read_text(encoding="utf-8"))
    assert data["schema"] == "coach.export/v1"
    assert data["person"]["name"] == "Ana"


def test_serving_takes_what_was_loaded_out_of_the_collectors_walk() -> None:
    import gc

    from bot import cli

    walked_before = len(gc.get_objects())
    try:
        frozen = cli._settle_heap()
        # A full collection now walks only what came after: a few objects, not all.
        assert frozen >= walked_before // 2
        assert len(gc.get_objects()) < walked_before // 10
    finally:
        gc.unfreeze()
