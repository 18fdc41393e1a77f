"""Operator actions on one outbox row: re-send a failed one, send an approved one now."""

from __future__ import annotations

from codered import audit
from codered.db.models import OutboxMessage
from codered.leaseholders import holder_is_dead
from codered.outbox import OutboxWorker, SendResult

__all__ = ["retry_failed", "send_now"]


async def retry_failed(worker: OutboxWorker, outbox_id: int) -> SendResult:
    """Operator's re-send of one row (``codered outbox retry ID``): same bytes, same Message-ID."""
    async with worker.db.write(urgent=True) as session:
        row = await session.get(OutboxMessage, outbox_id)
        if row is None:
            raise LookupError(f"no outbox message with id {outbox_id}")
        if row.status == "sent":
            raise ValueError(f"outbox message {outbox_id} was already sent at {row.sent_at}")
        if row.status == "sending" and not holder_is_dead(row.lease_owner):
            raise ValueError(f"outbox message {outbox_id} is being sent right now")
        previous = row.status
        row.status = "sending"
        row.lease_owner = worker.identity
        row.lease_until = worker.clock() + worker.lease
        row.attempts += 1
        await audit.append(
            session,
            "mail.retry_requested",
            {"outbox_id": row.id, "message_id": row.message_id, "previous_status": previous},
            actor="operator",
            incident_id=row.incident_id,
        )
    return await worker._send(outbox_id)


async def send_now(worker: OutboxWorker, outbox_id: int) -> SendResult | None:
    """Send one pending row at once (``codered drafts approve``), unless a running service
    has already claimed it: then None, and that service delivers it."""
    now = worker.clock()
    async with worker.db.write(urgent=True) as session:
        row = await session.get(OutboxMessage, outbox_id, with_for_update=True)
        if row is None:
            raise LookupError(f"no outbox message with id {outbox_id}")
        if row.status != "pending" or row.next_attempt_at > now:
            return None
        row.status = "sending"
        row.lease_owner = worker.identity
        row.lease_until = now + worker.lease
        row.attempts += 1
    return await worker._send(outbox_id)
