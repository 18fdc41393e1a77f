"""Each policy action at most once: a unique key per action, checked and written in the
transaction of the action itself (see :mod:`codered.policy_clock`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from codered.db.core import insert_row, insert_rows
from codered.db.models import PolicyEvent

__all__ = ["EventsOnce", "once", "once_sync"]


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
    _insert(session, key, policy, incident_id, data)
    return True


def _insert(
    session: Session, key: str, policy: str, incident_id: int | None, data: Mapping[str, Any]
) -> None:
    """Written at once (Core; see :mod:`codered.db.core`), so a second use of ``key`` in the
    same transaction fails on the unique index rather than at some later flush."""
    insert_row(
        session,
        PolicyEvent,
        {"key": key, "policy": policy, "incident_id": incident_id, "data": dict(data)},
    )


class EventsOnce:
    """:func:`once_sync` for a transaction that records many events: the keys it may record
    are looked up in one query, not one each (an escalation pass checks a hundred incidents),
    and the events are INSERTed together by :meth:`write` (at the end of a ``with`` block),
    with one statement.

    Safe without a write per event because writers take turns (SQLite's write lock, the
    writers' lock on PostgreSQL): nobody else can record one of these keys meanwhile, and
    a key recorded twice here is refused from the set of keys recorded so far."""

    def __init__(self, session: Session, keys: Iterable[str]) -> None:
        self.session = session
        self._looked_up = set(keys)
        self._recorded = set(
            session.scalars(
                select(PolicyEvent.key).where(PolicyEvent.key.in_(sorted(self._looked_up)))
            ).all()
        )
        self._unwritten: list[dict[str, Any]] = []

    def once(self, key: str, policy: str, incident_id: int | None, data: Mapping[str, Any]) -> bool:
        """Record that ``key`` happened; False when it already had (then do nothing)."""
        if key not in self._looked_up:  # not announced up front: ask the database
            self._looked_up.add(key)
            if self.session.scalar(select(PolicyEvent.id).where(PolicyEvent.key == key)):
                self._recorded.add(key)
        if key in self._recorded:
            return False
        self._unwritten.append(
            {"key": key, "policy": policy, "incident_id": incident_id, "data": dict(data)}
        )
        self._recorded.add(key)
        return True

    def write(self) -> None:
        """INSERT the events recorded so far; it must run before the transaction commits,
        which the ``with`` form does on leaving the block."""
        insert_rows(self.session, PolicyEvent, self._unwritten)
        self._unwritten = []

    def __enter__(self) -> EventsOnce:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.write()
