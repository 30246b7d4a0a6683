"""`coach doctor`: one line per check in plain words, exit 1 on any problem (issue 7)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import text

from bot import doctor
from bot.cli import main
from bot.config import Settings
from bot.store.db import Database
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import DEFAULT_TOKEN, FakeTelegram

LONG_SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Only the COACH_* settings a test sets, a SQLite file in tmp_path, no .env."""
    for name in list(os.environ):
        if name.startswith("COACH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env of the checkout is read
    monkeypatch.setenv("COACH_DATABASE_URL", f"sqlite:///{tmp_path / 'coach.db'}")
    monkeypatch.setenv("COACH_SECRET_KEY", LONG_SECRET)
    return tmp_path


def doctor_says(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, str], str]:
    """Run `coach doctor`: the exit code, each check's line by name, the summary."""
    code = main(["doctor"])
    out = capsys.readouterr().out.splitlines()
    checks = {}
    for line in out[:-1]:
        level, _, rest = line.partition(" ")
        name, _, message = rest.strip().partition(": ")
        checks[name] = f"{level}: {message}"
    return code, checks, out[-1]


def settings_for(tmp_path: Path, **values: object) -> Settings:
    base: dict[str, object] = {
        "database_url": f"sqlite:///{tmp_path / 'coach.db'}",
        "secret_key": LONG_SECRET,
        "_env_file": None,
    }
    return Settings(**(base | values))  # type: ignore[arg-type]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_sound_deployment_is_all_ok(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    code, checks, summary = doctor_says(capsys)
    assert code == 0
    assert summary == "coach doctor: all good"
    assert checks == {
        "configuration": "ok: every COACH_* setting reads",
        "serving": "ok: listens on 127.0.0.1 (this machine only)",
        "secret key": "ok: COACH_SECRET_KEY is set",
        "database": f"ok: sqlite:///{env / 'coach.db'} answers",
        "migrations": checks["migrations"],
        "dialogs": checks["dialogs"],
        "catalog": checks["catalog"],
        "telegram": "ok: not configured (COACH_TELEGRAM_TOKEN unset)",
        "slack": "ok: not configured (COACH_SLACK_BOT_TOKEN unset)",
    }
    assert checks["migrations"].startswith("ok: the schema is current")
    assert checks["dialogs"].startswith("ok: ")
    assert "messages in en, es" in checks["dialogs"]
    assert checks["catalog"].startswith("ok: ")
    assert "check clean" in checks["catalog"]


def test_a_setting_that_does_not_read_is_the_one_problem(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COACH_TIMEZONE", "Mars/Base")
    code, checks, summary = doctor_says(capsys)
    assert code == 1
    assert checks == {
        "configuration": "problem: COACH_TIMEZONE: Value error, 'Mars/Base' is not an IANA "
        "time zone"
    }
    assert summary == "coach doctor: 1 problem, 0 warnings"


def test_each_problem_is_named_in_plain_words(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (env / "empty").mkdir()
    monkeypatch.setenv("COACH_HOST", "0.0.0.0")
    monkeypatch.setenv("COACH_DIALOGS_DIR", str(env / "nowhere"))
    monkeypatch.setenv("COACH_CONTENT_DIR", str(env / "empty"))
    monkeypatch.setenv("COACH_SECRET_KEY", "short")
    code, checks, summary = doctor_says(capsys)
    assert code == 1
    assert checks["serving"] == (
        "problem: coach serve will not start: refusing to listen on 0.0.0.0: set "
        "COACH_API_TOKEN first, so the API is not open to the network"
    )
    assert checks["secret key"].startswith("warning: COACH_SECRET_KEY is shorter than 16")
    # No database file yet: said, and nothing is created.
    assert checks["database"] == (
        f"warning: no database at sqlite:///{env / 'coach.db'} yet (coach serve or coach "
        "db upgrade creates it); migrations not checked"
    )
    assert "migrations" not in checks
    assert not (env / "coach.db").exists()
    assert checks["dialogs"].startswith("problem: ")
    assert "the dialogs folder does not exist" in checks["dialogs"]
    assert checks["dialogs"].endswith("coach dialogs check lists every one")
    assert checks["catalog"].startswith("problem: ")
    assert summary == "coach doctor: 3 problems, 2 warnings"


def test_an_unreachable_database_is_a_problem_without_its_password(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    monkeypatch.setenv("COACH_DATABASE_URL", f"postgresql://coach:hunter2@127.0.0.1:{port}/coach")
    code, checks, _ = doctor_says(capsys)
    assert code == 1
    assert checks["database"].startswith(
        f"problem: cannot reach postgresql://coach:***@127.0.0.1:{port}/coach: "
    )
    assert "hunter2" not in capsys.readouterr().out + str(checks)


@pytest.mark.parametrize(
    ("revision", "level", "says"),
    [
        ("0003", "warning", "the schema is at 0003, this Coach needs {head}: coach serve migrates"),
        ("9999", "problem", "the schema is at 9999, which this Coach does not know"),
    ],
)
async def test_a_schema_behind_or_unknown_is_said(
    tmp_path: Path, revision: str, level: str, says: str
) -> None:
    from bot.store import migrate

    settings = settings_for(tmp_path)
    db = Database(settings.database_url)
    try:
        await migrate.upgrade(db)
        async with db.transaction() as session:
            await session.exec(  # type: ignore[call-overload]
                text("UPDATE alembic_version SET version_num = :r"), params={"r": revision}
            )
    finally:
        await db.dispose()
    found = {f.check: f for f in await doctor.database(settings)}
    assert found["database"].level == "ok"
    assert found["migrations"].level == level
    assert found["migrations"].message.startswith(says.format(head=migrate.head_revision()))


def test_several_replicas_need_one_secret_key(tmp_path: Path) -> None:
    shared = settings_for(tmp_path, database_url="postgresql://coach@db/coach", secret_key=None)
    finding = doctor.secret_key(shared)
    assert finding.level == "warning"
    assert "each replica would make its own" in finding.message
    alone = doctor.secret_key(settings_for(tmp_path, secret_key=None))
    assert alone.level == "ok"


async def test_telegram_token_is_checked_with_get_me(tmp_path: Path) -> None:
    async with FakeTelegram() as telegram:
        good = settings_for(
            tmp_path,
            telegram_token=DEFAULT_TOKEN,
            telegram_webhook_secret="hook-secret",
            telegram_api_base=telegram.api_base,
        )
        found = {f.check: f for f in await doctor.check_all(lambda: good)}
        assert (found["telegram"].level, found["telegram"].message) == (
            "ok",
            "the token works: this is @coach_test_bot",
        )
        wrong = "987654321:AAWrongTokenWrongTokenWrongToken-0123"
        bad = good.model_copy(update={"telegram_token": SecretStr(wrong)})
        found = {f.check: f for f in await doctor.check_all(lambda: bad)}
        assert found["telegram"].level == "problem"
        assert "does not accept COACH_TELEGRAM_TOKEN" in found["telegram"].message
        assert wrong not in found["telegram"].message
        assert [c.method for c in telegram.calls] == ["getMe", "getMe"]

    away = good.model_copy(update={"telegram_api_base": f"http://127.0.0.1:{closed_port()}"})
    found = {f.check: f for f in await doctor.check_all(lambda: away)}
    assert found["telegram"].level == "warning"
    assert found["telegram"].message.startswith("could not reach it")
    assert found["telegram"].message.endswith("token unchecked")
    assert DEFAULT_TOKEN not in found["telegram"].message


async def test_slack_token_is_checked_with_auth_test(tmp_path: Path) -> None:
    async with FakeSlack() as slack:
        good = settings_for(
            tmp_path,
            slack_bot_token=slack.bot_token,
            slack_signing_secret="signing-secret",
            slack_api_base=slack.base_url,
        )
        found = {f.check: f for f in await doctor.check_all(lambda: good)}
        assert (found["slack"].level, found["slack"].message) == (
            "ok",
            "the token works in workspace Coach School",
        )
        bad = good.model_copy(update={"slack_bot_token": SecretStr("xoxb-0000-0000-NotAToken")})
        found = {f.check: f for f in await doctor.check_all(lambda: bad)}
    assert found["slack"].level == "problem"
    assert "reinstall the app" in found["slack"].message
    assert "NotAToken" not in found["slack"].message


async def test_slack_unreachable_is_a_warning() -> None:
    async with aiohttp.ClientSession() as http:
        away = await doctor.slack(http, f"http://127.0.0.1:{closed_port()}/api/", "xoxb-1-2-x")
    assert away.level == "warning"
    assert away.message.endswith("token unchecked")
