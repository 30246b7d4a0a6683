"""The tables. Every change here comes with an Alembic migration in migrations/versions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from bot.store.types import UTCDateTime

ROLES = ("learner", "family", "teacher", "admin")


def _no_items() -> list[Any]:
    """An empty list for a new row. Not `default_factory=_no_items`: for a builtin factory,
    pydantic asks inspect.signature whether it takes the validated data, which parses
    `list`'s text signature with the tokenizer on every construction: a new
    Conversation took 103 us, 35 with these functions."""
    return []


def _no_fields() -> dict[str, Any]:
    """An empty mapping for a new row (see `_no_items`)."""
    return {}


def _utc(nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Person(SQLModel, table=True):
    """Anyone who talks to Coach; one person may have several channel identities."""

    __tablename__ = "people"

    id: int | None = Field(default=None, primary_key=True)
    role: str = Field(default="learner", sa_column=Column(String(16), nullable=False))
    name: str | None = Field(default=None, sa_column=Column(String(128)))
    locale: str = Field(default="en", sa_column=Column(String(8), nullable=False))
    timezone: str = Field(default="UTC", sa_column=Column(String(64), nullable=False))
    # No reminders or nudges before this time (/pause).
    paused_until: datetime | None = _utc(nullable=True)
    # Grade band: K-2, 3-5, 6-8, 9-12 (the catalog's educationalLevel), or "adult".
    grade_band: str | None = Field(default=None, sa_column=Column(String(8)))
    # Under 13: sharing with anyone but their teachers waits for a family's consent
    # (COPPA's age line). None until onboarding asks.
    under_13: bool | None = Field(default=None, sa_column=Column(Boolean))
    # When the learner wants the weekly check-in: ISO weekday 1-7 and local "HH:MM".
    checkin_weekday: int | None = Field(default=None, sa_column=Column(SmallInteger))
    checkin_time: str | None = Field(default=None, sa_column=Column(String(5)))
    onboarded_at: datetime | None = _utc(nullable=True)
    # No nudges or reminders between these local times ("HH:MM"; the window may cross
    # midnight). None: the deployment's COACH_QUIET_HOURS.
    quiet_start: str | None = Field(default=None, sa_column=Column(String(5)))
    quiet_end: str | None = Field(default=None, sa_column=Column(String(5)))
    # A teacher's weekly digest: ISO weekday 1-7 and local "HH:MM" (None: Friday 15:00).
    digest_weekday: int | None = Field(default=None, sa_column=Column(SmallInteger))
    digest_time: str | None = Field(default=None, sa_column=Column(String(5)))
    # A family member's nudges: "weekly", "milestones" or "off" (None: not asked yet).
    nudge_frequency: str | None = Field(default=None, sa_column=Column(String(10)))
    # /stop: nothing proactive until /start.
    stopped_at: datetime | None = _utc(nullable=True)
    # /here: reminders, nudges, digests and alerts go to this channel's identity while
    # it is reachable (None: the one used last).
    preferred_channel: str | None = Field(default=None, sa_column=Column(String(16)))
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class ChannelIdentity(SQLModel, table=True):
    """(channel, external id) → a person: a Telegram chat, a Slack user, a web cookie."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_identity_channel_ext"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(sa_column=Column(String(16), nullable=False))
    external_id: str = Field(sa_column=Column(String(128), nullable=False))
    person_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("people.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    # The platform refused us for good (the person blocked the bot): stop sending.
    unreachable: bool = Field(default=False)
    created_at: datetime = _utc()
    last_seen_at: datetime = _utc()


class Conversation(SQLModel, table=True):
    """Where a person is in the dialog: a plain JSON-able value any replica can continue."""

    __tablename__ = "conversations"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("people.id", ondelete="CASCADE"), nullable=False, unique=True
        )
    )
    flow: str | None = Field(default=None, sa_column=Column(String(64)))
    step: str | None = Field(default=None, sa_column=Column(String(64)))
    slots: dict[str, Any] = Field(
        default_factory=_no_fields, sa_column=Column(JSON, nullable=False)
    )
    stack: list[dict[str, Any]] = Field(
        default_factory=_no_items, sa_column=Column(JSON, nullable=False)
    )
    # Engine bookkeeping (misses, a pending resume offer, the expected input).
    meta: dict[str, Any] = Field(default_factory=_no_fields, sa_column=Column(JSON, nullable=False))
    # Optimistic lock: a write names the version it read, so two replicas cannot both win.
    version: int = Field(default=0)
    updated_at: datetime = _utc()


class InboxMessage(SQLModel, table=True):
    """Each inbound message once: a redelivery finds its row and gets the same replies."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", "message_id", name="uq_inbox_message"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(sa_column=Column(String(16), nullable=False))
    external_id: str = Field(sa_column=Column(String(128), nullable=False))
    message_id: str = Field(sa_column=Column(String(128), nullable=False))
    person_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("people.id", ondelete="CASCADE"), index=True),
    )
    replies: dict[str, Any] = Field(
        default_factory=_no_fields, sa_column=Column(JSON, nullable=False)
    )
    received_at: datetime = _utc(index=True)


class MessageLog(SQLModel, table=True):
    """What was said, both ways; kept for COACH_MESSAGE_RETENTION_DAYS, erased with the person."""

    __tablename__ = "message_log"
    __table_args__ = (Index("ix_message_log_person_at", "person_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(
        sa_column=Column(Integer, ForeignKey("people.id", ondelete="CASCADE"), nullable=False)
    )
    direction: str = Field(sa_column=Column(String(3), nullable=False))  # "in" or "out"
    channel: str = Field(sa_column=Column(String(16), nullable=False))
    text: str = Field(sa_column=Column(Text, nullable=False))
    buttons: list[dict[str, str]] = Field(
        default_factory=_no_items, sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = _utc(index=True)


class OutboxMessage(SQLModel, table=True):
    """A message to push to a platform: written in the turn's transaction, sent after it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    identity_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("channel_identities.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    # Whom it is for (None on rows written before 0004): caps and the export count by it.
    person_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("people.id", ondelete="CASCADE"), index=True),
    )
    # What it is: reply, reminder, nudge, milestone, digest or alert (OUTBOX_KINDS).
    kind: str = Field(default="reply", sa_column=Column(String(12), nullable=False))
    payload: dict[str, Any] = Field(
        default_factory=_no_fields, sa_column=Column(JSON, nullable=False)
    )
    # Deterministic for proactive messages (digest:{class}:{iso week}) so every replica
    # may schedule them and each goes out once.
    dedupe_key: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    status: str = Field(default="pending", sa_column=Column(String(10), nullable=False))
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _utc()
    lease_until: datetime | None = _utc(nullable=True)
    last_error: str | None = Field(default=None, sa_column=Column(String(500)))
    created_at: datetime = _utc()
    sent_at: datetime | None = _utc(nullable=True)


# skipped: a reminder, nudge or digest whose person paused or stopped before it went.
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "skipped")
OUTBOX_KINDS = ("reply", "reminder", "nudge", "milestone", "digest", "alert")

GOAL_STATUSES = ("active", "done", "dropped")
# Holland's six interest areas (RIASEC), in their usual order.
AREAS = ("R", "I", "A", "S", "E", "C")


class Goal(SQLModel, table=True):
    """A learner's goal with its WOOP plan: wish, outcome, obstacle, if-then plan."""

    __tablename__ = "goals"
    __table_args__ = (Index("ix_goals_person_status", "person_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(
        sa_column=Column(Integer, ForeignKey("people.id", ondelete="CASCADE"), nullable=False)
    )
    status: str = Field(default="active", sa_column=Column(String(8), nullable=False))
    # Two check-ins in a row rated 2 or lower: the coach offers a smaller step and the
    # teacher's digest shows it.
    stuck: bool = Field(default=False)
    topic: str | None = Field(default=None, sa_column=Column(String(64)))
    wish: str = Field(sa_column=Column(String(500), nullable=False))
    outcome: str | None = Field(default=None, sa_column=Column(String(500)))
    obstacle: str | None = Field(default=None, sa_column=Column(String(500)))
    plan: str | None = Field(default=None, sa_column=Column(String(500)))
    measure: str | None = Field(default=None, sa_column=Column(String(500)))
    deadline: date | None = Field(default=None, sa_column=Column(Date))
    created_at: datetime = _utc()
    updated_at: datetime = _utc()
    completed_at: datetime | None = _utc(nullable=True)


class CheckIn(SQLModel, table=True):
    """One reflection on one goal: how it went (1-5), what helped, what got in the way."""

    __tablename__ = "checkins"
    __table_args__ = (Index("ix_checkins_person_at", "person_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    goal_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("goals.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    person_id: int = Field(
        sa_column=Column(Integer, ForeignKey("people.id", ondelete="CASCADE"), nullable=False)
    )
    rating: int = Field(sa_column=Column(SmallInteger, nullable=False))
    went_well: str | None = Field(default=None, sa_column=Column(String(500)))
    obstacle: str | None = Field(default=None, sa_column=Column(String(500)))
    next_step: str | None = Field(default=None, sa_column=Column(String(500)))
    mood: int | None = Field(default=None, sa_column=Column(SmallInteger))
    # Reflection text stays private unless the learner marks it to share.
    shared: bool = Field(default=False)
    created_at: datetime = _utc()


class InterestProfile(SQLModel, table=True):
    """The result of one interest quiz; the newest one is the learner's profile."""

    __tablename__ = "interest_profiles"
    __table_args__ = (Index("ix_interest_profiles_person_at", "person_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(
        sa_column=Column(Integer, ForeignKey("people.id", ondelete="CASCADE"), nullable=False)
    )
    # Area letter (R I A S E C) → 0-100.
    scores: dict[str, int] = Field(
        default_factory=_no_fields, sa_column=Column(JSON, nullable=False)
    )
    top_areas: list[str] = Field(default_factory=_no_items, sa_column=Column(JSON, nullable=False))
    # Interest tag ids from content/vocabulary.yaml.
    tags: list[str] = Field(default_factory=_no_items, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _utc()


class CatalogResource(SQLModel, table=True):
    """A school's own resource, imported with `coach catalog import`.

    Kept beside the shipped catalog (content/catalog), never mixed into it: an entry
    here with a shipped id replaces that resource for this school, so a shipped
    catalog update never overwrites the school's edit. `data` holds the resource in
    the catalog's source field names (schema.org / LRMI), exactly as checked.
    """

    __tablename__ = "catalog_resources"

    id: str = Field(sa_column=Column(String(100), primary_key=True))
    data: dict[str, Any] = Field(default_factory=_no_fields, sa_column=Column(JSON, nullable=False))
    # The file it was imported from (its name only), for the operator's own records.
    origin: str | None = Field(default=None, sa_column=Column(String(200)))
    created_at: datetime = _utc()
    updated_at: datetime = _utc(index=True)


class RecommendationShown(SQLModel, table=True):
    """One resource offered to one learner, why, and what they thought of it (👍/👎)."""

    __tablename__ = "recommendations"
    __table_args__ = (Index("ix_recommendations_person_at", "person_id", "shown_at"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(
        sa_column=Column(Integer, ForeignKey("people.id", ondelete="CASCADE"), nullable=False)
    )
    resource_id: str = Field(sa_column=Column(String(100), nullable=False))
    # Name, address and tags as shown: the export and the digest stay true to what the
    # learner saw even after the catalog changes or drops the resource.
    name: str = Field(sa_column=Column(String(300), nullable=False))
    url: str = Field(sa_column=Column(String(500), nullable=False))
    tags: list[str] = Field(default_factory=_no_items, sa_column=Column(JSON, nullable=False))
    reason: str = Field(sa_column=Column(String(300), nullable=False))
    # 1 for 👍, -1 for 👎, None until they say.
    feedback: int | None = Field(default=None, sa_column=Column(SmallInteger))
    feedback_at: datetime | None = _utc(nullable=True)
    shown_at: datetime = _utc()


CODE_KINDS = ("teacher", "class", "family")
NUDGE_FREQUENCIES = ("weekly", "milestones", "off")
ALERT_CATEGORIES = ("suicide", "self_harm", "abuse", "violence")


def _person_fk(nullable: bool = False, ondelete: str = "CASCADE", index: bool = False) -> Any:
    return Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("people.id", ondelete=ondelete), nullable=nullable, index=index
        ),
    )


class SchoolClass(SQLModel, table=True):
    """A teacher's class: learners join it with its code; the digest is per class."""

    __tablename__ = "classes"

    id: int | None = Field(default=None, primary_key=True)
    teacher_id: int = _person_fk(index=True)
    name: str = Field(sa_column=Column(String(100), nullable=False))
    created_at: datetime = _utc()
    archived_at: datetime | None = _utc(nullable=True)


class Enrollment(SQLModel, table=True):
    """A learner in a class (a learner may be in several)."""

    __tablename__ = "enrollments"
    __table_args__ = (UniqueConstraint("class_id", "learner_id", name="uq_enrollment"),)

    id: int | None = Field(default=None, primary_key=True)
    class_id: int = Field(
        sa_column=Column(Integer, ForeignKey("classes.id", ondelete="CASCADE"), nullable=False)
    )
    learner_id: int = _person_fk(index=True)
    created_at: datetime = _utc()


class FamilyLink(SQLModel, table=True):
    """A family member linked to a learner by a family code; consent is asked after."""

    __tablename__ = "family_links"
    __table_args__ = (UniqueConstraint("family_id", "learner_id", name="uq_family_link"),)

    id: int | None = Field(default=None, primary_key=True)
    family_id: int = _person_fk(index=True)
    learner_id: int = _person_fk(index=True)
    # When the family member gave consent (for an under-13 learner nothing is shared
    # with the family before it).
    consented_at: datetime | None = _utc(nullable=True)
    created_at: datetime = _utc()


class AccessCode(SQLModel, table=True):
    """A teacher invite, a class join code or a family code; only its hash is stored."""

    __tablename__ = "access_codes"

    id: int | None = Field(default=None, primary_key=True)
    # SHA-256 of the normalised code (upper case, no dash), hex.
    code_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    kind: str = Field(sa_column=Column(String(8), nullable=False))  # CODE_KINDS
    class_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("classes.id", ondelete="CASCADE"), nullable=True),
    )
    learner_id: int | None = _person_fk(nullable=True)  # a family code's learner
    created_by: int | None = _person_fk(nullable=True, ondelete="SET NULL")
    # Teacher and family codes are single-use and expire; a class code lasts until
    # the class is archived or the teacher makes a new one.
    single_use: bool = Field(default=True)
    expires_at: datetime | None = _utc(nullable=True)
    used_at: datetime | None = _utc(nullable=True)
    used_by: int | None = _person_fk(nullable=True, ondelete="SET NULL")
    revoked_at: datetime | None = _utc(nullable=True)
    created_at: datetime = _utc()


class CodeAttempt(SQLModel, table=True):
    """A wrong code from one identity: five within 10 minutes lock code entry for an hour."""

    __tablename__ = "code_attempts"
    __table_args__ = (Index("ix_code_attempts_identity_at", "identity_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    identity_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("channel_identities.id", ondelete="CASCADE"), nullable=False
        )
    )
    at: datetime = _utc()


class AuditEntry(SQLModel, table=True):
    """One read of another person's data: who, whom, what, when (`coach admin audit`)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    # None with actor_label "cli" when an operator ran a command.
    actor_id: int | None = _person_fk(nullable=True, ondelete="SET NULL", index=True)
    actor_label: str | None = Field(default=None, sa_column=Column(String(64)))
    subject_id: int = _person_fk(index=True)
    action: str = Field(sa_column=Column(String(32), nullable=False))  # digest, roster, export
    detail: str | None = Field(default=None, sa_column=Column(String(200)))
    at: datetime = _utc()


class SafetyAlert(SQLModel, table=True):
    """A safeguarding alert on a learner's message; open until a teacher sends /ack."""

    __tablename__ = "safety_alerts"
    __table_args__ = (Index("ix_safety_alerts_open", "acknowledged_at", "last_notified_at"),)

    id: int | None = Field(default=None, primary_key=True)
    learner_id: int = _person_fk(index=True)
    category: str = Field(sa_column=Column(String(16), nullable=False))  # ALERT_CATEGORIES
    opened_at: datetime = _utc()
    acknowledged_at: datetime | None = _utc(nullable=True)
    acknowledged_by: int | None = _person_fk(nullable=True, ondelete="SET NULL")
    # Notifications sent so far; unacknowledged alerts are re-sent every 30 minutes.
    notified_count: int = Field(default=0)
    last_notified_at: datetime | None = _utc(nullable=True)


# Slack's OAuth tables (slack_sdk's shape) live on the same metadata, under our migrations.
from bot.store import slack_tables  # noqa: E402, F401
