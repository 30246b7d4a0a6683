"""Who may see whom (bot.coach.access), the audit trail, and the admin commands.

`may_see` is tried on every crossing, on every backend: a teacher and another
class's learner, a family member before and after consent (the under-13 rule),
a learner and another learner. `coach admin audit` lists what the chat wrote;
`coach admin teacher-invite` prints a code that works in chat.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.coach import access
from bot.coach.codes import parse_join_code
from bot.services import Services
from bot.store.models import Person
from bot.testing.conversation import Chat
from bot.testing.people import seed_learner
from bot.testing.school import seed_class, seed_family, seed_teacher

ROOT = Path(__file__).resolve().parent.parent
MONDAY = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def monday(clock: FakeClock) -> None:
    clock.set(MONDAY)


async def sees(services: Services, viewer: Person, subject: Person) -> bool:
    assert subject.id is not None
    async with services.db.reading() as session:
        return await access.may_see(session, viewer, subject.id)


async def test_every_crossing_of_may_see(any_services: Services, clock: FakeClock) -> None:
    db = any_services.db
    kid = await seed_learner(db, clock, "kid", name="Kim", under_13=True)
    teen = await seed_learner(db, clock, "teen", name="Tom", under_13=False)
    other = await seed_learner(db, clock, "other", name="Olu")
    lee = await seed_teacher(db, clock, "lee")
    ortiz = await seed_teacher(db, clock, "ortiz", name="Mr Ortiz")
    await seed_class(db, clock, lee, "Biology 7B", learners=(kid, teen))
    await seed_class(db, clock, ortiz, "History 8", learners=(other,))
    mum = await seed_family(db, clock, kid, "mum")  # linked, not consented yet
    dad = await seed_family(db, clock, teen, "dad", consented_at=MONDAY)

    # A learner sees only themself.
    assert await sees(any_services, kid, kid)
    assert not await sees(any_services, kid, teen)
    # A teacher sees the learners of their own classes only.
    assert await sees(any_services, lee, kid)
    assert not await sees(any_services, lee, other)
    assert not await sees(any_services, ortiz, kid)
    # A family member sees only their linked learner, and only after consenting.
    assert await sees(any_services, dad, teen)
    assert not await sees(any_services, dad, kid)
    assert not await sees(any_services, mum, teen)
    # Under 13: nothing to anyone but the class teachers until a family member consents.
    assert not await sees(any_services, mum, kid)
    assert [p.id for p in await _teachers(any_services, kid)] == [lee.id]
    async with db.transaction() as session:
        [(_, link)] = await access.family_links(session, kid.id or 0, consented_only=False)
        link.consented_at = MONDAY
    assert await sees(any_services, mum, kid)
    # An archived class no longer lets its teacher see its learners.
    async with db.transaction() as session:
        for school_class in await access.own_classes(session, lee.id or 0):
            school_class.archived_at = MONDAY
    assert not await sees(any_services, lee, kid)


async def _teachers(services: Services, learner: Person) -> list[Person]:
    async with services.db.reading() as session:
        return await access.class_teachers(session, learner.id or 0)


async def test_audit_rows_filter_by_time_and_person(
    any_services: Services, clock: FakeClock
) -> None:
    db = any_services.db
    sam = await seed_learner(db, clock, "sam")
    ana = await seed_learner(db, clock, "ana", name="Ana")
    lee = await seed_teacher(db, clock, "lee")
    async with db.transaction() as session:
        await access.audit(
            session, actor_id=lee.id, subject_ids=[sam.id or 0], action="roster", now=MONDAY
        )
        await access.audit(
            session,
            actor_id=None,
            actor_label="cli",
            subject_ids=[ana.id or 0],
            action="export",
            now=MONDAY + timedelta(days=1),
        )
    async with db.reading() as session:
        every = await access.audit_rows(session)
        later = await access.audit_rows(session, since=MONDAY + timedelta(hours=1))
        about_ana = await access.audit_rows(session, person_id=ana.id)
        by_lee = await access.audit_rows(session, person_id=lee.id)
    assert [(r.action, r.subject_id) for r in every] == [("roster", sam.id), ("export", ana.id)]
    assert [r.action for r in later] == ["export"]
    assert [r.actor_label for r in about_ana] == ["cli"]
    assert [r.subject_id for r in by_lee] == [sam.id]


async def test_reading_your_own_data_is_not_audited(services: Services, clock: FakeClock) -> None:
    sam = await seed_learner(services.db, clock, "sam")
    async with services.db.transaction() as session:
        await access.audit(
            session, actor_id=sam.id, subject_ids=[sam.id or 0], action="export", now=MONDAY
        )
    async with services.db.reading() as session:
        assert await access.audit_rows(session) == []


# -- the admin commands -------------------------------------------------------------------


def coach(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The real `coach` command on the test's SQLite database (the `services` one)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COACH_")} | {
        "COACH_DATABASE_URL": f"sqlite:///{tmp_path / 'coach.db'}",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


async def test_a_teacher_invite_from_the_command_line_works_in_chat(
    services: Services, tmp_path: Path
) -> None:
    result = coach("admin", "teacher-invite", "--name", "Ms Lee", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "teacher invite for Ms Lee" in result.stdout
    assert "works once" in result.stdout
    found = re.search(r"\b([A-Z0-9]{5}-[A-Z0-9]{5})\b", result.stdout)
    assert found is not None
    assert parse_join_code(found.group(1)) is not None
    await Chat(services.turns, "lee").script(f"""
        > {found.group(1)}
        < Welcome to Coach as a teacher
    """)


async def test_the_audit_command_lists_what_the_chat_wrote(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    sam = await seed_learner(services.db, clock, "sam", name="Sam Lee")
    lee = await seed_teacher(services.db, clock, "lee")
    await seed_class(services.db, clock, lee, "Biology 7B", learners=(sam,))
    await Chat(services.turns, "lee").send("/roster Biology")
    clock.advance(days=2)
    await Chat(services.turns, "lee").send("/familycode sam")

    listed = coach("admin", "audit", tmp_path=tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["when", "(UTC)", "actor", "subject", "action", "detail"]
    assert re.match(
        rf"2026-01-05 15:00:00\s+#{lee.id} Ms Lee\s+#{sam.id} Sam Lee\s+roster", lines[1]
    )
    assert "family_code" in lines[2]
    assert len(lines) == 3

    since = coach("admin", "audit", "--since", "2026-01-06", tmp_path=tmp_path)
    assert [line.split()[-1] for line in since.stdout.splitlines()[1:]] == ["family_code"]
    nobody = coach("admin", "audit", "--person", "999", tmp_path=tmp_path)
    assert nobody.stdout.strip() == "coach: no audit rows"


def test_a_bad_audit_date_is_one_line(tmp_path: Path) -> None:
    result = coach("admin", "audit", "--since", "the day after never", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "coach admin audit: argument --since: cannot read 'the day after never' as a date "
        "(see coach admin audit --help)"
    ]


@pytest.mark.parametrize("args", [["admin"], ["admin", "audit"], ["admin", "teacher-invite"]])
def test_the_admin_commands_have_help(tmp_path: Path, args: list[str]) -> None:
    result = coach(*args, "--help", tmp_path=tmp_path)
    assert result.returncode == 0
    assert "usage: coach admin" in result.stdout
