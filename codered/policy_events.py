"""Each policy action at most once: a unique key per action, checked and written in the
transaction of the action itself (see :mod:`codered.policy_clock`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from codered.db.models import PolicyEvent

__all__ = ["once", "once_sync"]


async def once(
    session: AsyncSession, key: str, policy: str, incident_id: int | None, data: Mapping[str, Any]
) -> bool:
    """Record that ``key`` happened; False when it already had (then do nothing)."""
    return await session.run_sync(once_sync, key, policy, incident_id, data)


def once_sync(
    session: Session, key: str, policy: str, incident_id: int | None, data: Mapping[str, Any]
) -> bool:
    """:func:`once` for synchronous transactions (``Database.run_write``)."""
    if session.scalar(select(PolicyEvent.id).where(PolicyEvent.key == key)) is not None:
        return False
    session.add(PolicyEvent(key=key, policy=policy, incident_id=incident_id, data=dict(data)))
    session.flush()
    return True
