"""What the rules need to know from storage about one message, looked up before deciding.

The rules in ``policies`` are pure; everything they need from the database (the thread's
incident, how many acknowledgements went where recently) is gathered here into
:class:`~policies.model.Facts`.

Synchronous, because it runs inside the pipeline's batch transaction on a worker thread
(see ``Database.run_write``); async callers use ``session.run_sync``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from codered.db.models import Incident, OutboxMessage
from codered.settings import Settings
from codered.threads import find_thread_incident_sync
from inbox.message import InboundEmail
from policies.model import Facts

__all__ = ["AckCounts", "gather_facts", "read_ack_counts"]

SENDER_WINDOW = timedelta(hours=24)
GLOBAL_WINDOW = timedelta(minutes=1)


@dataclass
class AckCounts:
    """Acknowledgements queued recently, read once per transaction and then kept current.

    Why: counting them with two queries per message was a fifth of the cost of a
    decision in a flood. A transaction of decisions holds the write lock for at most a
    fraction of a second, so counts read at its start and increased by each
    acknowledgement it queues stay within that fraction of a second of a fresh count
    (an acknowledgement that leaves the one-minute window meanwhile still counts, which
    errs on the side of the circuit breaker)."""

    last_minute: int
    per_sender_24h: dict[str, int] = field(default_factory=dict)

    def for_sender(self, address: str) -> int:
        return self.per_sender_24h.get(address, 0)

    def queued(self, address: str) -> None:
        """One more acknowledgement to ``address`` was queued in this transaction."""
        self.last_minute += 1
        self.per_sender_24h[address] = self.for_sender(address) + 1


def read_ack_counts(session: Session, addresses: Iterable[str], now: datetime) -> AckCounts:
    """Counts as of ``now``: across all mailboxes in the last minute, and per address (of
    ``addresses``) in the last 24 hours; one query each."""
    wanted = sorted(set(addresses))
    last_minute = session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(
            OutboxMessage.kind == "acknowledgement",
            OutboxMessage.created_at >= now - GLOBAL_WINDOW,
        )
    )
    per_sender: dict[str, int] = {}
    if wanted:
        rows = session.execute(
            select(Incident.customer_email, func.count())
            .select_from(OutboxMessage)
            .join(Incident, Incident.id == OutboxMessage.incident_id)
            .where(
                OutboxMessage.kind == "acknowledgement",
                Incident.customer_email.in_(wanted),
                OutboxMessage.created_at >= now - SENDER_WINDOW,
            )
            .group_by(Incident.customer_email)
        ).all()
        per_sender = {address: count for address, count in rows}
    return AckCounts(last_minute or 0, per_sender)


def gather_facts(
    session: Session, settings: Settings, mailbox: str, email: InboundEmail, counts: AckCounts
) -> Facts:
    """Facts for deciding ``email``, which arrived in ``mailbox``; ``counts`` must cover
    its reply address (see :func:`read_ack_counts`)."""
    incident = find_thread_incident_sync(session, email)
    acks = counts.for_sender(email.reply_address.email) if email.reply_address else 0
    authserv_id = settings.mailbox(mailbox).authserv_id
    return Facts(
        own_addresses=settings.own_addresses,
        acknowledgements_to_sender_24h=acks,
        sender_limit_24h=settings.limits.acknowledgements_per_sender_24h,
        existing_incident=incident.reference if incident else None,
        trusted_authserv_ids=frozenset({authserv_id.lower()}) if authserv_id else frozenset(),
        acknowledgements_last_minute=counts.last_minute,
        global_limit_per_minute=settings.limits.acknowledgements_per_minute,
    )
