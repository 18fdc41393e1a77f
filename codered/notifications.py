"""Internal mail (to CSMs, managers, account teams) through the same outbox as customer mail."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from codered import audit
from codered.db.models import Incident, utcnow
from codered.outbox_rows import outbox_row
from codered.settings import Settings
from inbox.message import EmailAddress
from mailer.internal import compose_internal_notification

__all__ = ["IncidentRef", "queue_alert_mail", "queue_internal_mail", "queue_internal_mail_sync"]


class IncidentRef(Protocol):
    """What an internal notification needs of its incident (an ``Incident`` row has it)."""

    @property
    def id(self) -> int: ...

    @property
    def mailbox(self) -> str: ...

    @property
    def reference(self) -> str: ...


async def queue_internal_mail(
    session: AsyncSession,
    settings: Settings,
    incident: Incident,
    *,
    key: str,
    subject: str,
    lines: Sequence[str],
    to: Sequence[tuple[str, str]],
) -> int:
    """Write one internal notification to the outbox; see :func:`queue_internal_mail_sync`."""

    def queue(sync_session: Session) -> int:
        return queue_internal_mail_sync(
            sync_session, settings, incident, key=key, subject=subject, lines=lines, to=to
        )

    return await session.run_sync(queue)


def queue_internal_mail_sync(
    session: Session,
    settings: Settings,
    incident: IncidentRef,
    *,
    key: str,
    subject: str,
    lines: Sequence[str],
    to: Sequence[tuple[str, str]],
) -> int:
    """Write one internal notification to the outbox; ``key`` makes its Message-ID, so a
    retry can never send a second, different copy."""
    mailbox = settings.mailbox(incident.mailbox)
    now = utcnow()
    composed = compose_internal_notification(
        subject=subject,
        lines=lines,
        to=[EmailAddress(address.lower(), name) for address, name in to],
        from_address=EmailAddress(mailbox.address.lower(), settings.sender_name(mailbox.name)),
        reference=incident.reference,
        key=key,
        now=now,
    )
    row = outbox_row(
        composed,
        incident_id=incident.id,
        kind=f"internal.{key.split(':', 1)[0]}",
        mailbox=incident.mailbox,
        due=now,
    )
    session.add(row)
    session.flush()
    audit.append_sync(
        session,
        "notification.queued",
        {"key": key, "to": list(composed.recipients), "subject": composed.subject},
        incident_id=incident.id,
    )
    return row.id


async def queue_alert_mail(
    session: AsyncSession,
    settings: Settings,
    *,
    mailbox: str,
    key: str,
    to: str,
    subject: str,
    lines: Sequence[str],
) -> int:
    """An operational alert (no incident) to the admin, through the outbox."""
    box = settings.mailbox(mailbox)
    now = utcnow()
    composed = compose_internal_notification(
        subject=subject,
        lines=lines,
        to=[EmailAddress(to.lower(), "")],
        from_address=EmailAddress(box.address.lower(), settings.sender_name(box.name)),
        reference="ALERT",
        key=key,
        now=now,
    )
    row = outbox_row(composed, incident_id=None, kind="internal.alert", mailbox=mailbox, due=now)
    session.add(row)
    await session.flush()
    return row.id
