"""Singleton jobs among many processes: a lease row claimed with ``SKIP LOCKED``.

Why: the policy clock's actions are idempotent (each has a unique key), but two
processes running every pass side by side would race on those keys and do all the
reading twice. One holder at a time runs the job and renews its lease each pass; the
others skip without waiting (``FOR UPDATE SKIP LOCKED``), and take over when the lease
lapses or when its holder, on this host, no longer exists. On SQLite there is one
writer anyway, and the write transaction makes the claim atomic.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from codered.db.engine import Database
from codered.db.models import JobLease
from codered.leaseholders import holder_is_dead

__all__ = ["claim_lease", "release_lease"]


async def claim_lease(
    db: Database, name: str, holder: str, *, now: datetime, seconds: float
) -> bool:
    """Hold ``name`` until ``now + seconds``; False when another live holder has it."""
    until = now + timedelta(seconds=seconds)
    try:
        async with db.write() as session:
            query = select(JobLease).where(JobLease.name == name)
            if not db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            lease = await session.scalar(query)
            if lease is None:
                if await session.get(JobLease, name) is not None:
                    return False  # locked: another process is claiming it this moment
                session.add(JobLease(name=name, holder=holder, lease_until=until))
                await session.flush()
                return True
            current = lease.holder == holder
            if not current and lease.lease_until > now and not holder_is_dead(lease.holder):
                return False
            lease.holder, lease.lease_until = holder, until
            return True
    except IntegrityError:  # two first claims at once: the other one won
        return False


async def release_lease(db: Database, name: str, holder: str) -> None:
    """Let another process take over at once (a clean stop); only our own lease."""
    async with db.write() as session:
        lease = await session.get(JobLease, name)
        if lease is not None and lease.holder == holder:
            await session.delete(lease)
