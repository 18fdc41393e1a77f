"""Read-only listings behind the CLI (and later the web UI): plain dicts, JSON-ready."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from codered.db.models import DeadLetter, InboundMessage, Incident, MailboxState, OutboxMessage

__all__ = [
    "find_incident",
    "incident_dict",
    "iso",
    "list_dead_letters",
    "list_incidents",
    "list_mailboxes",
    "list_outbox",
]


def iso(value: datetime | None) -> str | None:
    """A stored time as JSON shows it (ISO 8601, UTC offset included)."""
    return value.isoformat() if value else None


async def find_incident(session: AsyncSession, reference: str) -> Incident:
    incident = await session.scalar(
        select(Incident).where(Incident.reference == reference.strip().upper())
    )
    if incident is None:
        raise LookupError(f"no incident {reference!r} (see `codered incidents list`)")
    return incident


def incident_dict(i: Incident) -> dict[str, Any]:
    """One incident's own fields, as every listing and page shows them."""
    return {
        "reference": i.reference,
        "customer": i.customer_email,
        "customer_name": i.customer_name,
        "subject": i.subject,
        "category": i.category,
        "severity": i.severity,
        "status": i.status,
        "confidence": round(i.confidence, 3),
        "language": i.language,
        "opened_at": iso(i.opened_at),
        "acknowledged_at": iso(i.acknowledged_at),
        "reply_by": iso(i.reply_by),
        "held_reason": i.held_reason,
    }


async def list_incidents(session: AsyncSession, limit: int = 100) -> list[dict[str, Any]]:
    rows = await session.scalars(select(Incident).order_by(Incident.id.desc()).limit(limit))
    return [incident_dict(i) for i in rows]


async def list_outbox(
    session: AsyncSession, limit: int = 100, status: str | None = None
) -> list[dict[str, Any]]:
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if status:
        query = query.where(OutboxMessage.status == status)
    rows = await session.scalars(query)
    return [
        {
            "id": o.id,
            "message_id": o.message_id,
            "to": list(o.recipients),
            "subject": o.subject,
            "kind": o.kind,
            "status": o.status,
            "attempts": o.attempts,
            "created_at": iso(o.created_at),
            "sent_at": iso(o.sent_at),
            "last_error": o.last_error,
            "smtp_reply": o.smtp_reply,
        }
        for o in rows
    ]


async def list_dead_letters(
    session: AsyncSession, limit: int = 100, include_retried: bool = False
) -> list[dict[str, Any]]:
    query = (
        select(DeadLetter, InboundMessage)
        .join(InboundMessage, InboundMessage.id == DeadLetter.inbound_id)
        .order_by(DeadLetter.id.desc())
        .limit(limit)
    )
    if not include_retried:
        query = query.where(DeadLetter.status == "open")
    rows = (await session.execute(query)).all()
    return [
        {
            "id": d.id,
            "reason": d.reason,
            "when": iso(d.created_at),
            "mailbox": d.mailbox,
            "status": d.status,
            "uid": m.uid,
            "size": m.size,
            "inbound_id": m.id,
        }
        for d, m in rows
    ]


async def list_mailboxes(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.scalars(select(MailboxState).order_by(MailboxState.mailbox))
    return [
        {
            "mailbox": s.mailbox,
            "uidvalidity": s.uidvalidity,
            "last_uid": s.last_uid,
            "baseline_uid": s.baseline_uid,
            "state": s.state,
            "state_at": iso(s.state_at),
            "last_sync_at": iso(s.last_sync_at),
            "last_error": s.last_error,
            "warning": s.warning,
        }
        for s in rows
    ]
