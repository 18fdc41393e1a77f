"""The watcher's storage, implemented on the database.

Watchers run in threads (imapclient blocks); the database lives on the
service's event loop. Each call here runs a coroutine on that loop and blocks
the watcher thread until it has committed, which is exactly the guarantee the
cursor needs: nothing is advanced that is not durably stored.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Coroutine, Iterable, Sequence
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from codered import audit
from codered.crashpoints import crashpoint
from codered.db.core import table_of
from codered.db.engine import Database
from codered.db.models import DeadLetter, InboundMessage, MailboxState, utcnow
from inbox.ports import Cursor, FetchedMessage, MailboxStore, WatcherStatus

__all__ = ["DatabaseMailboxStore"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class DatabaseMailboxStore(MailboxStore):
    """Thread-safe bridge from watcher threads to the database on ``loop``."""

    def __init__(
        self,
        db: Database,
        loop: asyncio.AbstractEventLoop,
        *,
        on_status: Callable[[WatcherStatus], None] | None = None,
        timeout_seconds: float = 120.0,
    ) -> None:
        self.db = db
        self.loop = loop
        self.timeout = timeout_seconds
        self.on_status = on_status
        self.statuses: dict[str, WatcherStatus] = {}

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(self.timeout)

    # --- cursor -----------------------------------------------------------------------------

    def load_cursor(self, mailbox: str) -> Cursor | None:
        return self._run(self._load_cursor(mailbox))

    async def _load_cursor(self, mailbox: str) -> Cursor | None:
        async with self.db.read() as session:
            state = await session.get(MailboxState, mailbox)
            if state is None:
                return None
            return Cursor(state.uidvalidity, state.last_uid, state.last_sync_at)

    def save_baseline(self, mailbox: str, cursor: Cursor) -> None:
        self._run(self._save_baseline(mailbox, cursor))

    async def _save_baseline(self, mailbox: str, cursor: Cursor) -> None:
        async with self.db.write(urgent=True) as session:
            state = await session.get(MailboxState, mailbox)
            if state is not None:
                return
            now = utcnow()
            session.add(
                MailboxState(
                    mailbox=mailbox,
                    uidvalidity=cursor.uidvalidity,
                    last_uid=cursor.last_uid,
                    baseline_uid=cursor.last_uid,
                    baselined_at=now,
                    state="connected",
                    state_at=now,
                    last_sync_at=now,
                )
            )
            await audit.append(
                session,
                "mailbox.baselined",
                {
                    "mailbox": mailbox,
                    "uidvalidity": cursor.uidvalidity,
                    "last_uid": cursor.last_uid,
                    "note": "existing mail is history and is not acknowledged",
                },
            )

    # --- messages ---------------------------------------------------------------------------

    def store_batch(
        self, mailbox: str, uidvalidity: int, messages: Sequence[FetchedMessage]
    ) -> None:
        if messages:
            self._run(self._store_batch(mailbox, uidvalidity, messages))

    async def _store_batch(
        self, mailbox: str, uidvalidity: int, messages: Sequence[FetchedMessage]
    ) -> None:
        crashpoint("after_fetch")
        await self.db.run_write(
            partial(_store_in, mailbox, uidvalidity, list(messages)), urgent=True
        )
        crashpoint("after_raw_commit")
        crashpoint("after_cursor_advance")

    def known_message_ids(self, mailbox: str, message_ids: Iterable[str]) -> set[str]:
        return self._run(self._known(mailbox, list(message_ids)))

    async def _known(self, mailbox: str, ids: list[str]) -> set[str]:
        found: set[str] = set()
        async with self.db.read() as session:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = await session.scalars(
                    select(InboundMessage.message_id).where(
                        InboundMessage.mailbox == mailbox, InboundMessage.message_id.in_(chunk)
                    )
                )
                found.update(r for r in rows if r)
        return found

    def relink(self, mailbox: str, uidvalidity: int, uid_by_message_id: dict[str, int]) -> None:
        self._run(self._relink(mailbox, uidvalidity, uid_by_message_id))

    async def _relink(self, mailbox: str, uidvalidity: int, mapping: dict[str, int]) -> None:
        async with self.db.write(urgent=True) as session:
            for message_id, uid in mapping.items():
                await session.execute(
                    update(InboundMessage)
                    .where(
                        InboundMessage.mailbox == mailbox, InboundMessage.message_id == message_id
                    )
                    .values(uidvalidity=uidvalidity, uid=uid)
                )

    def uidvalidity_changed(
        self, mailbox: str, old: Cursor, new_uidvalidity: int, relinked: int
    ) -> None:
        self._run(self._uidvalidity_changed(mailbox, old, new_uidvalidity, relinked))

    async def _uidvalidity_changed(
        self, mailbox: str, old: Cursor, new_uidvalidity: int, relinked: int
    ) -> None:
        warning = (
            f"UIDVALIDITY changed from {old.uidvalidity} to {new_uidvalidity}: the server "
            f"renumbered the folder; {relinked} known messages were re-linked by Message-ID"
        )
        async with self.db.write(urgent=True) as session:
            state = await session.get(MailboxState, mailbox)
            if state is None:
                return
            state.uidvalidity = new_uidvalidity
            state.last_uid = 0
            state.warning = warning
            await audit.append(
                session,
                "mailbox.uidvalidity_changed",
                {
                    "mailbox": mailbox,
                    "old": old.uidvalidity,
                    "new": new_uidvalidity,
                    "relinked": relinked,
                },
            )
        log.warning("%s: %s", mailbox, warning)

    # --- health -----------------------------------------------------------------------------

    def report(self, status: WatcherStatus) -> None:
        self.statuses[status.mailbox] = status
        if self.on_status is not None:
            try:
                self.on_status(status)
            except Exception:
                log.exception("status observer failed")
        # Not waited for: health reporting must never hold up (or take down) the watcher,
        # which at start would otherwise wait for the other loops' first writes before it
        # even connects. Reports of one mailbox still commit in order (the lock is FIFO).
        try:
            future = asyncio.run_coroutine_threadsafe(self._report(status), self.loop)
        except RuntimeError as exc:  # the loop is closed: the service is gone
            log.warning("could not record status of %s: %s", status.mailbox, exc)
            return
        future.add_done_callback(partial(_log_report_failure, status.mailbox))

    async def _report(self, status: WatcherStatus) -> None:
        async with self.db.write(urgent=True) as session:
            state = await session.get(MailboxState, status.mailbox)
            if state is None:
                return
            state.state = status.state.value
            state.state_at = status.at
            if status.last_sync_at is not None:
                state.last_sync_at = status.last_sync_at
            if status.last_error is not None:
                state.last_error = status.last_error


def _log_report_failure(mailbox: str, future: concurrent.futures.Future[None]) -> None:
    if future.cancelled():
        return
    exc = future.exception()
    if exc is not None:
        log.warning("could not record status of %s: %s", mailbox, exc)


def _store_in(
    mailbox: str, uidvalidity: int, messages: list[FetchedMessage], session: Session
) -> None:
    """Store the new messages of a fetched batch and advance the cursor, in one transaction.

    One multi-row INSERT (Core, see :mod:`codered.db.core`), in arrival order: in a flood
    the watcher stores a few dozen messages per batch. A message over the size cap is
    stored dead, without its bytes, and dead-lettered with its reason."""
    existing = set(
        session.scalars(
            select(InboundMessage.uid).where(
                InboundMessage.mailbox == mailbox,
                InboundMessage.uidvalidity == uidvalidity,
                InboundMessage.uid.in_([m.uid for m in messages]),
            )
        ).all()
    )
    now = utcnow()
    fresh = [m for m in messages if m.uid not in existing]
    oversized = {m.uid: _oversized_reason(m) for m in fresh if m.oversized or m.raw is None}
    if fresh:
        session.connection().execute(
            table_of(InboundMessage).insert(),
            [
                {
                    "mailbox": mailbox,
                    "uidvalidity": uidvalidity,
                    "uid": m.uid,
                    "size": m.size,
                    "raw": None if m.uid in oversized else m.raw,
                    "fetched_at": now,
                    "status": "dead" if m.uid in oversized else "pending",
                    "reason": oversized.get(m.uid),
                    "processed_at": now if m.uid in oversized else None,
                }
                for m in fresh
            ],
        )
    if oversized:
        _dead_letter_oversized(session, mailbox, uidvalidity, oversized)
    state = session.get(MailboxState, mailbox)
    highest = max(m.uid for m in messages)
    if state is None:
        raise RuntimeError(f"mailbox {mailbox} has no cursor; it must be baselined first")
    if state.uidvalidity == uidvalidity and highest > state.last_uid:
        state.last_uid = highest
    state.last_sync_at = now


def _oversized_reason(message: FetchedMessage) -> str:
    return f"message is {message.size:,} bytes, over the size cap; not fetched"


def _dead_letter_oversized(
    session: Session, mailbox: str, uidvalidity: int, reasons: dict[int, str]
) -> None:
    rows = session.execute(
        select(InboundMessage.id, InboundMessage.uid)
        .where(
            InboundMessage.mailbox == mailbox,
            InboundMessage.uidvalidity == uidvalidity,
            InboundMessage.uid.in_(list(reasons)),
        )
        .order_by(InboundMessage.id)
    ).all()
    for inbound_id, uid in rows:
        session.add(DeadLetter(mailbox=mailbox, inbound_id=inbound_id, reason=reasons[uid]))
        audit.append_sync(
            session,
            "dead_letter",
            {"inbound_id": inbound_id, "mailbox": mailbox, "uid": uid, "reason": reasons[uid]},
        )
