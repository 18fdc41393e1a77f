"""Finding the incident a message belongs to: by threading headers, then by our reference tag."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from codered.db.models import InboundMessage, Incident, OutboxMessage
from inbox.message import InboundEmail

__all__ = ["find_thread_incident", "find_thread_incident_sync", "reference_in_subject"]

_REFERENCE_TAG = re.compile(r"\[([A-Z]{1,8}-\d{1,12})\]")


def reference_in_subject(subject: str) -> str | None:
    """``Re: Outage [CR-1042]`` → ``CR-1042``: customers' clients often drop threading headers."""
    match = _REFERENCE_TAG.search(subject)
    return match.group(1) if match else None


async def find_thread_incident(session: AsyncSession, email: InboundEmail) -> Incident | None:
    """The incident this message continues, or None; see :func:`find_thread_incident_sync`."""
    return await session.run_sync(find_thread_incident_sync, email)


def find_thread_incident_sync(session: Session, email: InboundEmail) -> Incident | None:
    """The incident this message continues, or None for a new conversation."""
    refs = [r for r in (email.in_reply_to, *email.references) if r]
    if refs:
        incident_id = session.scalar(
            select(InboundMessage.incident_id)
            .where(InboundMessage.message_id.in_(refs), InboundMessage.incident_id.is_not(None))
            .limit(1)
        )
        if incident_id is None:
            incident_id = session.scalar(
                select(OutboxMessage.incident_id)
                .where(OutboxMessage.message_id.in_(refs), OutboxMessage.incident_id.is_not(None))
                .limit(1)
            )
        if incident_id is not None:
            return session.get(Incident, incident_id)
    tagged = reference_in_subject(email.subject)
    if tagged and email.sender is not None:
        incident = session.scalar(select(Incident).where(Incident.reference == tagged))
        # Only the customer of that incident may continue it by subject tag; anyone else
        # quoting a reference starts their own conversation.
        if incident is not None and incident.customer_email == email.sender.email:
            return incident
    return None
