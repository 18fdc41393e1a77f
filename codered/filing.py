"""After a message is sent: its copy in the mailbox's Sent folder, and the customer's message
marked ``\\Answered`` and ``$Acknowledged``, so the shared mailbox shows what happened.

Filing happens after the send, off the sending path (a slow IMAP server never holds up the
next acknowledgement), and each outcome is audited; a failure is logged and audited, and
the message itself has been delivered all the same. Each mailbox files over one kept-open
connection, one message at a time (:class:`inbox.filing.FilingConnection`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from codered import audit
from codered.db.engine import Database
from codered.db.models import InboundMessage, OutboxMessage
from codered.settings import Settings
from inbox.filing import FilingConnection, FilingError

if TYPE_CHECKING:
    from codered.oauth import AccessTokens

__all__ = ["MailboxFiler"]

log = logging.getLogger(__name__)


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
        self._turns: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def sent(self, outbox_id: int) -> None:
        """Called by the outbox loop for each sent row: file it in the background."""
        task = asyncio.create_task(self.file(outbox_id), name=f"file-{outbox_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, seconds: float) -> None:
        """Finish what is being filed (bounded), then log out of every mailbox."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=seconds)
        for connection in self.connections.values():
            await asyncio.to_thread(connection.close)

    async def close_idle(self) -> None:
        """Log out of mailboxes that filed nothing for a while (servers drop idle sessions)."""
        for connection in self.connections.values():
            await asyncio.to_thread(connection.close_if_idle)

    def _connection(self, name: str) -> FilingConnection:
        from codered.service import imap_account  # the service builds IMAP accounts

        if name not in self.connections:
            box = self.settings.mailbox(name)
            self.connections[name] = FilingConnection(imap_account(box, self.tokens))
            self._turns[name] = asyncio.Lock()
        return self.connections[name]

    async def file(self, outbox_id: int) -> None:
        async with self.db.read() as session:
            row = await session.get(OutboxMessage, outbox_id)
            if row is None or row.status != "sent" or row.kind.startswith("internal."):
                return
            box = self.settings.mailbox(row.mailbox)
            if not box.file_sent:
                return
            target = await self._answered(session, row)
            raw, sent_at, message_id = row.raw, row.sent_at or row.created_at, row.message_id
        connection = self._connection(box.name)
        result: dict[str, object] = {"outbox_id": outbox_id, "message_id": message_id}
        async with self._turns[box.name]:  # one at a time on the mailbox's connection
            try:
                filed = await asyncio.to_thread(
                    connection.file,
                    raw,
                    sent_folder=box.sent_folder,
                    when=sent_at,
                    answered=target,
                    keyword=box.answered_keyword,
                )
                result["sent_folder"] = filed.sent_folder
                if target is not None:
                    result["marked_uid"] = target[1]
                    result["marked"] = filed.marked
                kind = "mailbox.filed"
            except FilingError as exc:
                result["error"] = str(exc)
                kind = "mailbox.filing_failed"
                log.warning("outbox %s sent but not filed in %s: %s", outbox_id, box.name, exc)
        incident_id = row.incident_id
        await self.db.run_write(
            lambda session: audit.append_sync(session, kind, result, incident_id=incident_id)
        )

    async def _answered(self, session: AsyncSession, row: OutboxMessage) -> tuple[int, int] | None:
        """The customer's message this one answers: their latest before we wrote it."""
        if row.incident_id is None:
            return None
        found = (
            await session.execute(
                select(InboundMessage.uidvalidity, InboundMessage.uid)
                .where(
                    InboundMessage.incident_id == row.incident_id,
                    InboundMessage.mailbox == row.mailbox,
                    InboundMessage.fetched_at <= row.created_at,
                )
                .order_by(InboundMessage.id.desc())
                .limit(1)
            )
        ).first()
        return None if found is None else (int(found[0]), int(found[1]))
