"""After a message is sent: its copy in the mailbox's Sent folder, and the customer's message
marked ``\\Answered`` and ``$Acknowledged``, so the shared mailbox shows what happened.

Filing happens after the send, off the sending path (a slow IMAP server never holds up the
next acknowledgement), and each outcome is audited; a failure is logged and audited, and
the message itself has been delivered all the same. Each mailbox files over one kept-open
connection (:class:`inbox.filing.FilingConnection`); rows sent while a batch is being filed
are filed together in the next, in one trip to the server and one audit transaction.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from codered import audit
from codered.connections import imap_account
from codered.db.engine import Database
from codered.db.models import InboundMessage, OutboxMessage
from codered.settings import Settings
from inbox.filing import FilingConnection, FilingError, FilingResult, ToFile

if TYPE_CHECKING:
    from codered.oauth import AccessTokens

__all__ = ["FILE_BATCH", "MailboxFiler"]

log = logging.getLogger(__name__)

FILE_BATCH = 50
"""Sent rows filed in one trip to the server and audited in one transaction."""


class MailboxFiler:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        tokens: AccessTokens | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.tokens = tokens
        self.connections: dict[str, FilingConnection] = {}
        self._queued: list[int] = []
        self._worker: asyncio.Task[None] | None = None

    def sent(self, outbox_id: int) -> None:
        """Called by the outbox loop for each sent row: file it in the background.

        Rows sent while a batch is being filed wait and go together in the next one."""
        self._queued.append(outbox_id)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._file_queued(), name="filing")

    async def drain(self, seconds: float) -> None:
        """Finish what is being filed (bounded), then log out of every mailbox."""
        if self._worker is not None and not self._worker.done():
            await asyncio.wait([self._worker], timeout=seconds)
        for connection in self.connections.values():
            await asyncio.to_thread(connection.close)

    async def close_idle(self) -> None:
        """Log out of mailboxes that filed nothing for a while (servers drop idle sessions)."""
        for connection in self.connections.values():
            await asyncio.to_thread(connection.close_if_idle)

    def _connection(self, name: str) -> FilingConnection:
        if name not in self.connections:
            box = self.settings.mailbox(name)
            self.connections[name] = FilingConnection(imap_account(box, self.tokens))
        return self.connections[name]

    async def _file_queued(self) -> None:
        # Bounded: every round takes at least one row off the queue, and nothing else
        # touches the queue but ``sent``.
        while self._queued:
            batch, self._queued = self._queued[:FILE_BATCH], self._queued[FILE_BATCH:]
            try:
                await self.file(batch)
            except Exception:  # the rows were sent; a filing bug must not stop later ones
                log.exception("filing outbox rows %s failed", batch)

    async def file(self, outbox_ids: list[int]) -> None:
        """File these sent rows, each mailbox's over its connection in one trip to the
        server, and audit every outcome in one transaction."""
        rows = await self.db.run_read(partial(_to_file, self.settings, outbox_ids))
        by_mailbox: dict[str, list[_Row]] = {}
        for row in rows:
            by_mailbox.setdefault(row.mailbox, []).append(row)
        entries: list[tuple[str, dict[str, object], int | None]] = []
        for name, mailbox_rows in by_mailbox.items():
            box = self.settings.mailbox(name)
            connection = self._connection(name)
            outcomes = await asyncio.to_thread(
                connection.file_many,
                [ToFile(r.raw, r.sent_at, r.answered) for r in mailbox_rows],
                sent_folder=box.sent_folder,
                keyword=box.answered_keyword,
            )
            for row, outcome in zip(mailbox_rows, outcomes, strict=True):
                entries.append(_audit_entry(row, outcome, name))
        if entries:
            await self.db.run_write(partial(_audit_all, entries))


@dataclass(frozen=True)
class _Row:
    outbox_id: int
    mailbox: str
    incident_id: int | None
    message_id: str
    raw: bytes
    sent_at: datetime
    answered: tuple[int, int] | None


def _to_file(settings: Settings, outbox_ids: list[int], session: Session) -> list[_Row]:
    """The rows among ``outbox_ids`` to file (sent, customer-facing, of a mailbox that files
    copies), with the customer's message each one answers: two queries for the batch."""
    rows = [
        row
        for row in session.connection().execute(
            select(
                OutboxMessage.id,
                OutboxMessage.mailbox,
                OutboxMessage.incident_id,
                OutboxMessage.message_id,
                OutboxMessage.raw,
                OutboxMessage.status,
                OutboxMessage.kind,
                OutboxMessage.sent_at,
                OutboxMessage.created_at,
            )
            .where(OutboxMessage.id.in_(outbox_ids))
            .order_by(OutboxMessage.id)
        )
        if row.status == "sent"
        and not row.kind.startswith("internal.")
        and settings.mailbox(row.mailbox).file_sent
    ]
    answered = _answered(session, rows)
    return [
        _Row(
            row.id,
            row.mailbox,
            row.incident_id,
            row.message_id,
            row.raw,
            row.sent_at or row.created_at,
            answered.get(row.id),
        )
        for row in rows
    ]


def _answered(session: Session, rows: list[Any]) -> dict[int, tuple[int, int]]:
    """For each outbox row, the customer's message it answers: the latest of its incident's
    in its mailbox that arrived before we wrote it, as (UIDVALIDITY, UID)."""
    incidents = sorted({row.incident_id for row in rows if row.incident_id is not None})
    if not incidents:
        return {}
    candidates: dict[tuple[int, str], list[Any]] = {}
    for inbound in session.connection().execute(
        select(
            InboundMessage.incident_id,
            InboundMessage.mailbox,
            InboundMessage.uidvalidity,
            InboundMessage.uid,
            InboundMessage.fetched_at,
        )
        .where(InboundMessage.incident_id.in_(incidents))
        .order_by(InboundMessage.id.desc())
    ):
        candidates.setdefault((inbound.incident_id, inbound.mailbox), []).append(inbound)
    found: dict[int, tuple[int, int]] = {}
    for row in rows:
        for inbound in candidates.get((row.incident_id, row.mailbox), []):
            if inbound.fetched_at <= row.created_at:  # newest first: the first that fits
                found[row.id] = (int(inbound.uidvalidity), int(inbound.uid))
                break
    return found


def _audit_entry(
    row: _Row, outcome: FilingResult | FilingError, mailbox: str
) -> tuple[str, dict[str, object], int | None]:
    result: dict[str, object] = {"outbox_id": row.outbox_id, "message_id": row.message_id}
    if isinstance(outcome, FilingError):
        result["error"] = str(outcome)
        log.warning("outbox %s sent but not filed in %s: %s", row.outbox_id, mailbox, outcome)
        return "mailbox.filing_failed", result, row.incident_id
    result["sent_folder"] = outcome.sent_folder
    if row.answered is not None:
        result["marked_uid"] = row.answered[1]
        result["marked"] = outcome.marked
    return "mailbox.filed", result, row.incident_id


def _audit_all(entries: list[tuple[str, dict[str, object], int | None]], session: Session) -> None:
    for kind, data, incident_id in entries:
        audit.append_sync(session, kind, dict(data), incident_id=incident_id)
