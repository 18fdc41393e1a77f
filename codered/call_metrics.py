"""How many calls were followed by an email in time (the "email after every call" habit)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from codered.db.models import Call, Incident, OutboxMessage
from codered.policy_clock import due_after
from codered.settings import Settings
from policies.timeline import Target

__all__ = ["call_followups"]


async def call_followups(
    session: AsyncSession, settings: Settings, *, since: datetime, until: datetime
) -> dict[str, Any]:
    """Calls that started in ``[since, until)``: how many got a human reply to the customer
    within ``[policies] call_followup`` of their end, and the share."""
    calls = (
        await session.execute(
            select(Call, Incident.mailbox)
            .join(Incident, Incident.id == Call.incident_id)
            .where(Call.started_at >= since, Call.started_at < until)
        )
    ).all()
    in_time = 0
    for call, mailbox in calls:
        local = settings.for_mailbox(mailbox)
        target = Target.parse(local.policies.call_followup)
        ended = call.started_at + timedelta(minutes=call.duration_minutes)
        first = await session.scalar(
            select(func.min(OutboxMessage.sent_at)).where(
                OutboxMessage.incident_id == call.incident_id,
                OutboxMessage.kind.like("reply.%"),
                OutboxMessage.status == "sent",
                OutboxMessage.sent_at >= ended,
            )
        )
        if first is not None and first <= due_after(ended, target, local):
            in_time += 1
    share = round(in_time / len(calls), 3) if calls else None
    return {"calls": len(calls), "followed_in_time": in_time, "share": share}
