"""Promises: every time we tell a customer "you will hear from us by ...", and whether we did.

A promise is recorded in the same transaction as the message that states it
(the acknowledgement, or an approved draft with a time). When a human reply
to that customer is sent, every earlier open promise of the incident is
settled: kept if the reply left by its time, missed otherwise. The policy
clock marks promises missed when their time passes with nothing sent.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from codered import audit
from codered.db.core import insert_row
from codered.db.models import OutboxMessage, Promise

__all__ = ["promises_by_owner", "record_promise", "record_promise_sync", "settle_promises"]


async def record_promise(
    session: AsyncSession,
    *,
    incident_id: int,
    due_at: datetime,
    stated_at: datetime,
    source: str,
    outbox_id: int | None,
) -> int:
    """Record a promise in the caller's transaction; see :func:`record_promise_sync`."""

    def record(sync_session: Session) -> int:
        return record_promise_sync(
            sync_session,
            incident_id=incident_id,
            due_at=due_at,
            stated_at=stated_at,
            source=source,
            outbox_id=outbox_id,
        )

    return await session.run_sync(record)


def record_promise_sync(
    session: Session,
    *,
    incident_id: int,
    due_at: datetime,
    stated_at: datetime,
    source: str,
    outbox_id: int | None,
) -> int:
    """The promise "you will hear from us by ``due_at``", stated at ``stated_at``, audited;
    returns its id. Written at once (Core): the incident and outbox row it names must be
    in the database already, not pending in the session."""
    promise_id = insert_row(
        session,
        Promise,
        {
            "incident_id": incident_id,
            "due_at": due_at,
            "stated_at": stated_at,
            "source": source,
            "outbox_id": outbox_id,
            "status": "open",
        },
    )
    audit.append_sync(
        session,
        "promise.stated",
        {"promise_id": promise_id, "due_at": due_at.isoformat(), "source": source},
        incident_id=incident_id,
    )
    return promise_id


def settle_promises(session: Session, sent: OutboxMessage) -> list[Promise]:
    """``sent`` (a human reply) has just gone out: settle the promises it answers.

    Synchronous: it runs in the outbox's transaction on a worker thread."""
    if sent.incident_id is None or not sent.kind.startswith("reply.") or sent.sent_at is None:
        return []
    rows = (
        session.scalars(
            select(Promise)
            .where(
                Promise.incident_id == sent.incident_id,
                Promise.status == "open",
                Promise.stated_at <= sent.created_at,
            )
            .order_by(Promise.id)
        )
    ).all()
    settled = []
    for promise in rows:
        if promise.outbox_id == sent.id:
            continue  # the promise this very message makes stays open
        promise.status = "kept" if sent.sent_at <= promise.due_at else "missed"
        promise.settled_at = sent.sent_at
        promise.settled_by_outbox_id = sent.id
        settled.append(promise)
        audit.append_sync(
            session,
            f"promise.{promise.status}",
            {
                "promise_id": promise.id,
                "due_at": promise.due_at.isoformat(),
                "settled_by": sent.message_id,
            },
            incident_id=sent.incident_id,
        )
    return settled


async def promises_by_owner(
    session: AsyncSession, *, since: datetime, until: datetime
) -> list[dict[str, object]]:
    """Promises stated in ``[since, until)``, kept / missed / open, per incident owner."""
    from codered.db.models import Incident

    rows = (
        await session.execute(
            select(Incident.owner, Promise.status)
            .join(Incident, Incident.id == Promise.incident_id)
            .where(Promise.stated_at >= since, Promise.stated_at < until)
        )
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for owner, status in rows:
        bucket = counts.setdefault(owner or "nobody", {"kept": 0, "missed": 0, "open": 0})
        if status in bucket:
            bucket[status] += 1
    return [{"owner": owner, **bucket} for owner, bucket in sorted(counts.items())]
