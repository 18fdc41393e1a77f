"""The audit trail: append-only, each entry chained to the previous one by SHA-256.

Why a chain: a manager must be able to prove that nothing was changed after the
fact. Each entry's hash covers its own content and the previous entry's hash,
so editing or deleting any entry breaks every link after it, and
:func:`verify` names the first broken one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from codered.db.core import insert_row, insert_rows
from codered.db.engine import take_writers_lock
from codered.db.models import AuditEntry, utcnow

__all__ = [
    "GENESIS",
    "Appended",
    "VerifyResult",
    "append",
    "append_sync",
    "appending_together",
    "entry_hash",
    "verify",
]

GENESIS = "0" * 64
_HEAD = "codered.audit.head"
"""``session.info`` key of the chain's head while this transaction holds the lock."""
_WAITING = "codered.audit.waiting"
"""``session.info`` key of the entries chained but not INSERTed yet (appending together)."""


def _canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8")


class Appended(NamedTuple):
    """An entry just added to the chain."""

    id: int | None
    """None while it waits to be INSERTed with the others of :func:`appending_together`."""
    at: datetime
    hash: str


def entry_hash(
    prev_hash: str,
    at: datetime,
    actor: str,
    kind: str,
    incident_id: int | None,
    data: dict[str, Any],
) -> str:
    payload = {
        "prev": prev_hash,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "kind": kind,
        "incident_id": incident_id,
        "data": data,
    }
    return hashlib.sha256(_canonical(payload)).hexdigest()


async def append(
    session: AsyncSession,
    kind: str,
    data: dict[str, Any],
    *,
    actor: str = "codered",
    incident_id: int | None = None,
) -> Appended:
    """Add one entry inside the caller's transaction; see :func:`append_sync`."""
    return await session.run_sync(append_sync, kind, data, actor=actor, incident_id=incident_id)


def append_sync(
    session: Session,
    kind: str,
    data: dict[str, Any],
    *,
    actor: str = "codered",
    incident_id: int | None = None,
) -> Appended:
    """Add one entry inside the caller's transaction, so it commits with the change it records.

    The chain's head is read once per transaction and then kept in ``session.info``:
    while the transaction holds the appenders' lock nobody else can move it, and a
    batch of decisions appends several entries per message.

    The entry is INSERTed at once, as a Core statement (see :mod:`codered.db.core`), or
    with the others at the end of :func:`appending_together`; either way entries get their
    ids in the order they were appended, which is the chain's order."""
    prev_hash = session.info.get(_HEAD)
    waiting: list[dict[str, Any]] | None = session.info.get(_WAITING)
    if prev_hash is None and waiting:  # a savepoint rolled back; what waits is the head
        prev_hash = waiting[-1]["hash"]
    if prev_hash is None:
        # Serialise appenders across processes so the chain stays a line, not a tree
        # (Database.write took the lock already, first, for its own sessions).
        take_writers_lock(session)
        prev = session.scalar(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1))
        prev_hash = prev or GENESIS
    # Round-trip through JSON now so the hash covers exactly what the column will return.
    clean = json.loads(_canonical(data))
    at = utcnow()
    digest = entry_hash(prev_hash, at, actor, kind, incident_id, clean)
    row = {
        "at": at,
        "actor": actor,
        "kind": kind,
        "incident_id": incident_id,
        "data": clean,
        "prev_hash": prev_hash,
        "hash": digest,
    }
    session.info[_HEAD] = digest
    if waiting is not None and not session.in_nested_transaction():
        waiting.append(row)
        return Appended(None, at, digest)
    if waiting:  # a savepoint: what waits goes first, so that ids keep the chain's order
        _insert_waiting(session)
    return Appended(insert_row(session, AuditEntry, row), at, digest)


@contextmanager
def appending_together(session: Session) -> Iterator[None]:
    """Within this block, entries are chained at once but INSERTed together at its end,
    with one statement for all of them (SQLite; elsewhere each is INSERTed at once).

    Why: a flood writes three or four entries per message, and each INSERT on its own
    costs SQLAlchemy's statement overhead. One executemany INSERTs them in the order they
    were chained, so their ids still follow the chain (on PostgreSQL a multi-row INSERT
    does not promise that order, so there nothing waits). Nothing in the block may read
    the audit trail; an entry appended under a savepoint is INSERTed at once, after those
    waiting. An exception leaves the entries un-INSERTed: the transaction is rolled back."""
    if session.get_bind().dialect.name != "sqlite" or _WAITING in session.info:
        yield
        return
    session.info[_WAITING] = []
    try:
        yield
        _insert_waiting(session)
    finally:
        session.info.pop(_WAITING, None)


def _insert_waiting(session: Session) -> None:
    waiting: list[dict[str, Any]] = session.info[_WAITING]
    if waiting:
        insert_rows(session, AuditEntry, list(waiting))
        waiting.clear()


@event.listens_for(Session, "after_transaction_end")
def _forget_head(session: Session, transaction: Any) -> None:
    """The transaction ended: our lock is released and the head may move, so the next
    append reads it again."""
    if transaction.parent is None:
        session.info.pop(_HEAD, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back_head(session: Session, previous_transaction: Any) -> None:
    """A rollback, a savepoint's included, took back the entries it held: the kept head may
    be one of them, so the next append reads the head again."""
    session.info.pop(_HEAD, None)


@dataclass(frozen=True)
class VerifyResult:
    entries: int
    first_broken_id: int | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.first_broken_id is None


async def verify(session: AsyncSession, batch: int = 1000) -> VerifyResult:
    """Walk the chain in id order; report the first entry whose link or content does not match."""
    prev_hash = GENESIS
    count = 0
    last_id = 0
    while True:
        rows = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.id > last_id)
                .order_by(AuditEntry.id)
                .limit(batch)
            )
        ).all()
        if not rows:
            return VerifyResult(count, None, None)
        for entry in rows:
            count += 1
            last_id = entry.id
            if entry.prev_hash != prev_hash:
                return VerifyResult(count, entry.id, "previous-hash link does not match")
            expected = entry_hash(
                prev_hash, entry.at, entry.actor, entry.kind, entry.incident_id, entry.data
            )
            if expected != entry.hash:
                return VerifyResult(count, entry.id, "content does not match its hash")
            prev_hash = entry.hash
