"""What the rules need to know from storage about one message, looked up before deciding.

The rules in ``policies`` are pure; everything they need from the database (the thread's
incident, how many acknowledgements went where recently) is gathered here into
:class:`~policies.model.Facts`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from codered.db.models import Incident, OutboxMessage
from codered.settings import Settings
from codered.threads import find_thread_incident
from inbox.message import InboundEmail
from policies.model import Facts

__all__ = ["gather_facts"]


async def gather_facts(
    session: AsyncSession, settings: Settings, mailbox: str, email: InboundEmail, now: datetime
) -> Facts:
    """Facts for deciding ``email``, which arrived in ``mailbox``, as of ``now``."""
    incident = await find_thread_incident(session, email)
    acks = 0
    if email.reply_address is not None:
        acks = (
            await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .join(Incident, Incident.id == OutboxMessage.incident_id)
                .where(
                    OutboxMessage.kind == "acknowledgement",
                    Incident.customer_email == email.reply_address.email,
                    OutboxMessage.created_at >= now - timedelta(hours=24),
                )
            )
            or 0
        )
    recent = await session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(
            OutboxMessage.kind == "acknowledgement",
            OutboxMessage.created_at >= now - timedelta(minutes=1),
        )
    )
    authserv_id = settings.mailbox(mailbox).authserv_id
    return Facts(
        own_addresses=settings.own_addresses,
        acknowledgements_to_sender_24h=acks,
        sender_limit_24h=settings.limits.acknowledgements_per_sender_24h,
        existing_incident=incident.reference if incident else None,
        trusted_authserv_ids=frozenset({authserv_id.lower()}) if authserv_id else frozenset(),
        acknowledgements_last_minute=recent or 0,
        global_limit_per_minute=settings.limits.acknowledgements_per_minute,
    )
