"""The outbox's rows as the hot paths read and write them, apart from the sending itself.

:func:`outbox_row` and :func:`outbox_values` turn a composed message into a row (the ORM
object, or the columns for a Core INSERT); :class:`ToSend` is what sending one claimed row
needs, read with the claim. Kept apart from :mod:`codered.outbox` so that writers of rows
(the decision path, approvals, notifications) do not import the SMTP client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from codered.db.models import OutboxMessage
from mailer.compose import ComposedMessage

__all__ = ["MARK_COLUMNS", "SEND_COLUMNS", "Claimed", "ToSend", "outbox_row", "outbox_values"]


def outbox_row(
    composed: ComposedMessage, *, incident_id: int | None, kind: str, mailbox: str, due: datetime
) -> OutboxMessage:
    """The outbox row for ``composed``: its exact bytes, sent from ``due`` on."""
    return OutboxMessage(
        **outbox_values(composed, incident_id=incident_id, kind=kind, mailbox=mailbox, due=due)
    )


def outbox_values(
    composed: ComposedMessage, *, incident_id: int | None, kind: str, mailbox: str, due: datetime
) -> dict[str, Any]:
    """The columns of :func:`outbox_row`, for a Core INSERT (``codered.db.core``)."""
    return {
        "incident_id": incident_id,
        "kind": kind,
        "mailbox": mailbox,
        "message_id": composed.message_id,
        "envelope_from": composed.envelope_from,
        "recipients": list(composed.recipients),
        "subject": composed.subject,
        "body_text": composed.text,
        "raw": composed.raw,
        "next_attempt_at": due,
    }


Claimed = tuple[int, int | None]
"""A claimed outbox row: its id and its incident's."""


@dataclass(frozen=True)
class ToSend:
    """What sending one row needs, read when it was claimed (or again, when our lease ran
    out before its turn came)."""

    outbox_id: int
    incident_id: int | None
    lease_until: datetime
    kind: str
    mailbox: str
    envelope_from: str
    recipients: tuple[str, ...]
    raw: bytes

    @classmethod
    def of(cls, row: Any, lease_until: datetime) -> ToSend:
        """From a row of :data:`SEND_COLUMNS`, or a whole ``OutboxMessage``."""
        return cls(
            row.id,
            row.incident_id,
            lease_until,
            row.kind,
            row.mailbox,
            row.envelope_from,
            tuple(row.recipients),
            row.raw,
        )


SEND_COLUMNS = (
    OutboxMessage.id,
    OutboxMessage.incident_id,
    OutboxMessage.kind,
    OutboxMessage.mailbox,
    OutboxMessage.envelope_from,
    OutboxMessage.recipients,
    OutboxMessage.raw,
)


MARK_COLUMNS = (
    OutboxMessage.kind,
    OutboxMessage.incident_id,
    OutboxMessage.message_id,
    OutboxMessage.recipients,
    OutboxMessage.attempts,
)
"""What marking a row sent reads of it (not its bytes)."""
