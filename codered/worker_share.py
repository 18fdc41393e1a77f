"""How many mailboxes this process should watch when several share one PostgreSQL database.

Why: each mailbox is watched by whichever process holds its advisory lock, and the first
process to start took every lock, so a second one could only help with sending. Each
process now announces itself with a lease row (``worker:…`` in ``job_leases``) renewed
every few seconds; the live ones are counted, and a process watches at most its fair
share, ``ceil(mailboxes / live processes)``. One holding more lets one mailbox go per
pass, and a process below its share takes free ones. A process that stops removes its
row, so the others take its mailboxes at once; one that dies is no longer counted once
its lease lapses (at once on the same host).
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime

from sqlalchemy import select

from codered.db.engine import Database
from codered.db.models import JobLease
from codered.job_leases import claim_lease, release_lease
from codered.leaseholders import holder_is_dead

__all__ = ["HEARTBEAT_SECONDS", "WorkerShare", "fair_share"]

HEARTBEAT_SECONDS = 5.0
"""How often a process renews its row and looks at its share."""
LEASE_SECONDS = 3 * HEARTBEAT_SECONDS
"""A process not heard from for this long is no longer counted."""
_PREFIX = "worker:"


def fair_share(mailboxes: int, workers: int) -> int:
    """The most mailboxes one of ``workers`` live processes should watch."""
    return math.ceil(mailboxes / max(1, workers))


def _lease_name(identity: str) -> str:
    """A name that fits ``job_leases.name`` however long the host name is."""
    return _PREFIX + hashlib.sha256(identity.encode()).hexdigest()[:32]


class WorkerShare:
    """This process's row among the live workers, and the share that follows from them."""

    def __init__(self, db: Database, identity: str, mailboxes: int) -> None:
        self.db = db
        self.identity = identity
        self.mailboxes = mailboxes
        self.share = mailboxes
        """Until the first count: everything (alone, or on SQLite, which is one process)."""

    async def renew(self, now: datetime) -> int:
        """Renew our row, count the live workers, update and return :attr:`share`."""
        if self.db.is_sqlite:
            return self.share
        await claim_lease(
            self.db, _lease_name(self.identity), self.identity, now=now, seconds=LEASE_SECONDS
        )
        async with self.db.read() as session:
            rows = (
                await session.execute(
                    select(JobLease.holder).where(
                        JobLease.name.like(f"{_PREFIX}%"), JobLease.lease_until > now
                    )
                )
            ).all()
        live = {holder for (holder,) in rows if not holder_is_dead(holder)} | {self.identity}
        self.share = fair_share(self.mailboxes, len(live))
        return self.share

    async def leave(self) -> None:
        """A clean stop: the others take our mailboxes without waiting for the lease."""
        if not self.db.is_sqlite:
            await release_lease(self.db, _lease_name(self.identity), self.identity)
