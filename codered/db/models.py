"""The schema. Every table a newcomer needs to follow one email from IMAP to SMTP.

Times are stored as naive UTC (portable across SQLite and PostgreSQL) and come
back timezone-aware through :class:`UtcDateTime`, so no code ever compares a
naive time with an aware one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "ApiToken",
    "AuditEntry",
    "Base",
    "Call",
    "DeadLetter",
    "Draft",
    "InboundMessage",
    "Incident",
    "IncidentNote",
    "MailboxState",
    "ModelCall",
    "OutboxMessage",
    "PolicyEvent",
    "Promise",
    "User",
    "WebSession",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, naive UTC in the column, aware UTC out."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime, dict[str, Any]: JSON}


class MailboxState(Base):
    """The IMAP cursor and the watcher's health, one row per configured mailbox."""

    __tablename__ = "mailbox_state"

    mailbox: Mapped[str] = mapped_column(String(64), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    baseline_uid: Mapped[int] = mapped_column(BigInteger)
    """Where history ended on first connect: UIDs up to here are never acknowledged."""
    baselined_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(32), default="unknown")
    state_at: Mapped[datetime | None]
    last_sync_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    warning: Mapped[str | None] = mapped_column(Text)


class InboundMessage(Base):
    """Raw bytes of every fetched message, stored before anything else happens."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_inbound_mailbox_uid"),
        Index("ix_inbound_status", "status", "id"),
        Index("ix_inbound_message_id", "message_id"),
        Index("ix_inbound_incident", "incident_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(64))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    """None only for messages over the size cap, which are dead-lettered unfetched."""
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending → processed | dead."""
    message_id: Mapped[str | None] = mapped_column(String(998))
    sender: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None]
    action: Mapped[str | None] = mapped_column(String(16))
    deciding_rule: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    decision: Mapped[dict[str, Any] | None]
    """Every rule hit and the classification, for managers and the demo."""
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))


class Incident(Base):
    """One customer problem, from the first complaint to its close."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_customer", "customer_email"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    mailbox: Mapped[str] = mapped_column(String(64))
    customer_email: Mapped[str] = mapped_column(String(320))
    customer_name: Mapped[str] = mapped_column(String(256), default="")
    subject: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float] = mapped_column(Float)
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(24))
    """held (no automatic reply; a person must act), or a step of the incident's life:
    acknowledged → gathering_facts → investigating → resolving → resolved → summarized →
    closed (``codered.lifecycle``)."""
    held_reason: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    reply_by: Mapped[datetime]
    """The promised time of the next substantive update (already buffered)."""
    customer_utc_offset_minutes: Mapped[int | None] = mapped_column(Integer)
    owner: Mapped[str | None] = mapped_column(String(64))
    """The CSM in the customer's corner (assigned by rule, round robin or by hand)."""
    status_changed_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]


class OutboxMessage(Base):
    """A message to send, written in the same transaction as the decision that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        # The circuit breaker and the per-sender limit count recent acknowledgements for
        # every message; without these, each count scans the whole outbox.
        Index("ix_outbox_kind_created", "kind", "created_at"),
        Index("ix_outbox_incident", "incident_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    kind: Mapped[str] = mapped_column(String(32))
    mailbox: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    envelope_from: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[list[str]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    """The exact bytes to send: a retry re-sends the same message, never a new one."""
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending → sending → sent | failed."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    sent_at: Mapped[datetime | None]
    smtp_reply: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)


class DeadLetter(Base):
    """Something that could not be processed, with its reason; it can be re-run."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(64))
    inbound_id: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id"))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="open")
    """open → retried (processed on retry) | open again with a new reason."""
    retried_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Append-only, hash-chained record of everything codered decided and did."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_incident", "incident_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(64))
    incident_id: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class IncidentNote(Base):
    """A fact a CSM recorded on an incident: the only source a summary may draw from."""

    __tablename__ = "incident_notes"
    __table_args__ = (Index("ix_notes_incident", "incident_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    author: Mapped[str] = mapped_column(String(128))
    about: Mapped[str | None] = mapped_column(String(32))
    """Which of the four questions it answers (``policies.sections.Question``), if said."""
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Draft(Base):
    """A drafted message waiting for a person: nothing in it is sent without approval."""

    __tablename__ = "drafts"
    __table_args__ = (
        Index("ix_drafts_status", "status", "id"),
        Index("ix_drafts_incident", "incident_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="requested")
    """requested → drafting → pending → approved | rejected; or drafting → failed."""
    requested_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    drafted_at: Mapped[datetime | None]
    drafter: Mapped[str | None] = mapped_column(String(200))
    """The model string, or ``offline-template``."""
    template: Mapped[bool] = mapped_column(Boolean, default=False)
    prompt: Mapped[str | None] = mapped_column(String(200))
    """Prompt name and version, e.g. ``four_question_summary.v1+drafting_rules.v1``."""
    source_text: Mapped[str | None] = mapped_column(Text)
    """Call notes (recap) or the CSM's own text (rewrite)."""
    content: Mapped[dict[str, Any] | None]
    """The structured draft as the drafter returned it (validated)."""
    text: Mapped[str | None] = mapped_column(Text)
    """The drafted customer text."""
    edited_text: Mapped[str | None] = mapped_column(Text)
    """A person's saved edit, not yet approved (the review desk saves as you go)."""
    final_text: Mapped[str | None] = mapped_column(Text)
    """What a person approved (the drafted text, or their edit)."""
    notes_to_csm: Mapped[list[str]] = mapped_column(JSON, default=list)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    promise_at: Mapped[datetime | None]
    """The time this draft tells the customer we will write again, if any."""
    omitted_messages: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None]
    override_reason: Mapped[str | None] = mapped_column(Text)
    reject_reason: Mapped[str | None] = mapped_column(Text)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))


class ModelCall(Base):
    """One HTTP call to a language model, with litellm's token and cost counters."""

    __tablename__ = "model_calls"
    __table_args__ = (Index("ix_model_calls_incident", "incident_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    incident_id: Mapped[int | None] = mapped_column(Integer)
    draft_id: Mapped[int | None] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(200))
    ok: Mapped[bool] = mapped_column(Boolean)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class User(Base):
    """A person who signs in to the review desk: csm, manager or admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(256))
    """argon2; None for accounts that only sign in through the SSO header."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class ApiToken(Base):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class WebSession(Base):
    """A signed-in browser; in the database so that several processes share sign-ins."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class Call(Base):
    """A phone call with a customer, logged so that it is followed by an email."""

    __tablename__ = "calls"
    __table_args__ = (Index("ix_calls_incident", "incident_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    started_at: Mapped[datetime]
    duration_minutes: Mapped[int] = mapped_column(Integer)
    participants: Mapped[list[str]] = mapped_column(JSON)
    notes: Mapped[str] = mapped_column(Text)
    logged_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Promise(Base):
    """A time we told the customer we would write by; kept when a message went out in time."""

    __tablename__ = "promises"
    __table_args__ = (Index("ix_promises_open", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    due_at: Mapped[datetime]
    stated_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(32))
    """``acknowledgement`` or ``reply.<kind>``: the message that stated it."""
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    status: Mapped[str] = mapped_column(String(16), default="open")
    """open → kept | missed | superseded (a later message stated a new time in time)."""
    settled_at: Mapped[datetime | None]
    settled_by_outbox_id: Mapped[int | None] = mapped_column(Integer)


class PolicyEvent(Base):
    """One thing a clocked policy did (a draft prepared, a violation, a notification).

    ``key`` is unique: running the clock twice, or in two processes, never does it twice."""

    __tablename__ = "policy_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    policy: Mapped[str] = mapped_column(String(32))
    incident_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cleared_at: Mapped[datetime | None]


class JobLease(Base):
    """Who runs a singleton job (the policy clock) now, and until when.

    Claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so among many processes one runs
    the job and the others stand by; a lapsed lease, or a holder that died, is taken over."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    lease_until: Mapped[datetime]
