"""Delivering the outbox: claim due rows, send the stored bytes, record the server's answer.

A row is claimed with a lease (``status='sending'``, ``lease_until``); a worker
that dies leaves a lease that expires, so no row is ever stranded. On
PostgreSQL the claim uses ``FOR UPDATE SKIP LOCKED`` so several processes
never take the same row. The only window in which a message can be sent twice
is between the server's ``250`` and our commit of ``sent``; it is kept to one
UPDATE and documented in the README.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from codered import audit
from codered.crashpoints import crashpoint
from codered.db.core import update_rows
from codered.db.engine import Database
from codered.db.models import Incident, OutboxMessage, utcnow
from codered.group_commit import GroupCommit
from codered.leaseholders import holder_is_dead, worker_identity
from codered.outbox_rows import MARK_COLUMNS, SEND_COLUMNS, Claimed, ToSend
from codered.promises import settle_promises
from mailer.deliver import DeliveryError, SmtpServer, deliver
from mailer.smtp_pool import SmtpPool

__all__ = ["CLAIM_BATCH", "OutboxWorker", "SendResult", "side_by_side"]

log = logging.getLogger(__name__)


def _after_summary(session: Session, row: OutboxMessage) -> None:
    """The four-question summary of a resolved incident went out: it is now summarized."""
    if row.kind != "reply.summary" or row.incident_id is None:
        return
    incident = session.get(Incident, row.incident_id)
    if incident is not None and incident.status == "resolved":
        incident.status = "summarized"
        incident.status_changed_at = row.sent_at
        audit.append_sync(
            session,
            "incident.moved",
            {
                "from": "resolved",
                "to": "summarized",
                "because": "the four-question summary was sent",
            },
            incident_id=incident.id,
        )


@dataclass(frozen=True)
class SendResult:
    outbox_id: int
    status: str
    detail: str


CLAIM_BATCH = 10
"""Rows claimed per transaction while mail is waiting."""


class OutboxWorker:
    """Sends due outbox rows; one per process is enough, several are safe on PostgreSQL."""

    def __init__(
        self,
        db: Database,
        server: SmtpServer,
        *,
        servers: Mapping[str, SmtpServer] | None = None,
        max_attempts: int = 5,
        lease_seconds: float = 120.0,
        retry_base_seconds: float = 30.0,
        identity: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        parallel: int = 1,
    ) -> None:
        self.db = db
        self.server = server
        self.servers = dict(servers or {})
        """Mailboxes with an SMTP server of their own; the rest use ``server``."""
        self.max_attempts = max_attempts
        self.lease = timedelta(seconds=lease_seconds)
        self.retry_base = retry_base_seconds
        self.identity = identity or worker_identity()
        self.clock = clock
        self.parallel = max(1, parallel)
        """Messages sent at once, each on a connection of its own (``[smtp] connections``)."""
        self.pool = SmtpPool(per_server=self.parallel)
        """Connections kept between messages; closed by :meth:`close`."""
        self._marks = GroupCommit(db, self._sent_in, write_many=self._all_sent_in)
        """Each sent row's mark, committed as soon as the write lock allows."""

    def close(self) -> None:
        self.pool.close_all()

    async def send_due(
        self, limit: int = 20, stop: asyncio.Event | None = None
    ) -> list[SendResult]:
        """Send what is due now; returns what happened to each row.

        Rows are claimed a few at a time (one transaction for the batch, not one per
        message) and sent ``parallel`` at a time, never two of one incident together (a
        delay notice must not overtake the acknowledgement it follows). Each send commits
        on its own right after the server's 250, so a crash costs at most the rows in
        flight. A stopping service finishes the rows in flight and hands the rest of its
        batch back at once, rather than being cancelled between the 250 and our commit.
        """
        results: list[SendResult] = []
        marks: list[asyncio.Task[None]] = []
        try:
            while len(results) < limit and not (stop is not None and stop.is_set()):
                claimed = await self._claim(min(CLAIM_BATCH, limit - len(results)))
                if not claimed:
                    break
                by_id = {send.outbox_id: send for send in claimed}
                pairs = [(send.outbox_id, send.incident_id) for send in claimed]
                groups = side_by_side(pairs, self.parallel)
                for index, group in enumerate(groups):
                    if stop is not None and stop.is_set():
                        await self._hand_back([row for later in groups[index:] for row, _ in later])
                        return results
                    self._marks.announce(len(group))
                    try:
                        results += await asyncio.gather(
                            *(self._send_announced(row, by_id[row], marks) for row, _ in group)
                        )
                    finally:  # even if cancelled before a send began: nobody waits for it
                        self._marks.settle()
        finally:
            # Each group's marks commit while the next group is sent; all are committed
            # (or have failed, which raises here) before anything is reported as sent.
            await asyncio.gather(*marks)
        return results

    async def _hand_back(self, outbox_ids: list[int]) -> None:
        """Unsent rows of our batch go back to ``pending`` for whoever runs next."""
        async with self.db.write(urgent=True) as session:
            for outbox_id in outbox_ids:
                row = await session.get(OutboxMessage, outbox_id, with_for_update=True)
                if row is not None and row.status == "sending" and row.lease_owner == self.identity:
                    row.status, row.lease_owner, row.lease_until = "pending", None, None
                    row.attempts = max(0, row.attempts - 1)  # this claim made no attempt

    async def next_due_in(self) -> float | None:
        """Seconds until the next pending row is due (None when nothing waits)."""
        async with self.db.read() as session:
            due = await session.scalar(
                select(OutboxMessage.next_attempt_at)
                .where(OutboxMessage.status == "pending")
                .order_by(OutboxMessage.next_attempt_at)
                .limit(1)
            )
        if due is None:
            return None
        return max(0.0, (due - self.clock()).total_seconds())

    async def _claim(self, limit: int) -> list[ToSend]:
        return await self.db.run_write(partial(self._claim_in, limit, self.clock()), urgent=True)

    def _claim_in(self, limit: int, now: datetime, session: Session) -> list[ToSend]:
        """Claim up to ``limit`` due rows (and rows whose sender's lease lapsed) in ``session``;
        returns what sending each needs. Core statements (:mod:`codered.db.core`): this runs
        for every few messages of a flood, and only the claimed rows' bytes are read."""
        query = (
            select(
                OutboxMessage.id,
                OutboxMessage.status,
                OutboxMessage.lease_until,
                OutboxMessage.lease_owner,
                OutboxMessage.attempts,
            )
            .where(
                or_(
                    (OutboxMessage.status == "pending") & (OutboxMessage.next_attempt_at <= now),
                    OutboxMessage.status == "sending",
                )
            )
            .order_by(OutboxMessage.id)
            .limit(limit * 4)
        )
        if not self.db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        leases: dict[int, datetime] = {}
        claims: list[tuple[int, dict[str, object]]] = []
        for row in session.connection().execute(query).all():
            if row.status == "sending":
                expired = row.lease_until is None or row.lease_until <= now
                if not expired and not holder_is_dead(row.lease_owner):
                    continue
                log.warning(
                    "outbox %s: reclaiming from %s (lease expired or holder gone); it may "
                    "have been sent already, it will be re-sent with the same Message-ID",
                    row.id,
                    row.lease_owner,
                )
            # The k-th row of the batch may wait for k sends before its own (each bounded
            # by the delivery deadline), so its lease covers them.
            lease_until = now + self.lease * (len(leases) + 1)
            claims.append(
                (
                    row.id,
                    {
                        "status": "sending",
                        "lease_owner": self.identity,
                        "lease_until": lease_until,
                        "attempts": row.attempts + 1,
                    },
                )
            )
            leases[row.id] = lease_until
            if len(leases) >= limit:
                break
        if not leases:
            return []
        update_rows(session, OutboxMessage, claims)  # one statement for the batch
        found = session.connection().execute(
            select(*SEND_COLUMNS).where(OutboxMessage.id.in_(list(leases)))
        )
        claimed = [ToSend.of(row, leases[row.id]) for row in found]
        return sorted(claimed, key=lambda send: send.outbox_id)

    async def _send_announced(
        self, outbox_id: int, claimed: ToSend, marks: list[asyncio.Task[None]]
    ) -> SendResult:
        """:meth:`_send` of a row whose mark was announced to the group commit: a row that
        ends up not sent withdraws it, so that the others' commit need not wait for it."""
        try:
            result = await self._send(outbox_id, claimed, marks)
        except BaseException:
            self._marks.withdraw()
            raise
        if result.status != "sent":
            self._marks.withdraw()
        return result

    async def _send(
        self,
        outbox_id: int,
        claimed: ToSend | None = None,
        marks: list[asyncio.Task[None]] | None = None,
    ) -> SendResult:
        """Send one row we hold. Read again only when our lease ran out before its turn:
        while it runs, nobody else can have taken the row over.

        The server's 250 is marked at once; with ``marks``, the commit of that mark is
        added there to be awaited by the caller, so that the next send need not wait for
        it (the window between the 250 and the commit is the same either way)."""
        send = claimed
        if send is None or self.clock() >= send.lease_until:
            row = await self.db.run_read(lambda session: session.get(OutboxMessage, outbox_id))
            assert row is not None
            if row.status != "sending" or row.lease_owner != self.identity:
                # Taken over while it waited in our batch (our lease ran out): not ours.
                return SendResult(outbox_id, "skipped", f"held by {row.lease_owner}")
            assert row.lease_until is not None
            send = ToSend.of(row, row.lease_until)
        # Operational alerts go through the shared relay: the alert may be that this
        # mailbox's own (OAuth2) server can no longer be signed in to.
        server = (
            self.server
            if send.kind == "internal.alert"
            else self.servers.get(send.mailbox, self.server)
        )
        envelope_from, recipients, raw = send.envelope_from, list(send.recipients), send.raw
        crashpoint("before_smtp_data")
        try:
            result = await deliver(server, envelope_from, recipients, raw, pool=self.pool)
        except DeliveryError as exc:
            return await self._failed(outbox_id, exc)
        except Exception as exc:  # an unexpected bug must not strand the row
            log.exception("outbox %s: unexpected error while sending", outbox_id)
            return await self._failed(outbox_id, DeliveryError(f"{exc!r}", permanent=False))
        crashpoint("after_smtp_250")
        return await self._sent(outbox_id, result.reply, marks)

    async def _sent(
        self, outbox_id: int, reply: str, marks: list[asyncio.Task[None]] | None
    ) -> SendResult:
        mark = self._marks.submit((outbox_id, reply))
        if marks is None:
            await mark
        else:
            marks.append(asyncio.create_task(mark, name=f"mark-sent-{outbox_id}"))
        return SendResult(outbox_id, "sent", reply)

    def _sent_in(self, session: Session, sent: tuple[int, str]) -> None:
        """The server took the row: mark it sent, settle what it answers, audit it. Marks
        of rows sent side by side commit together (:class:`codered.group_commit.GroupCommit`),
        on a worker thread on SQLite (see ``Database.run_write``)."""
        self._all_sent_in(session, [sent])

    def _all_sent_in(self, session: Session, group: list[tuple[int, str]]) -> None:
        """:meth:`_sent_in` for a group: its rows read with one query, marked with one
        UPDATE (an executemany), then each settled and audited in the group's order."""
        found = session.connection().execute(
            select(OutboxMessage.id, *MARK_COLUMNS).where(
                OutboxMessage.id.in_([outbox_id for outbox_id, _ in group])
            )
        )
        rows: dict[int, Any] = {row.id: row for row in found}
        now = self.clock()
        update_rows(
            session,
            OutboxMessage,
            [
                (
                    outbox_id,
                    {
                        "status": "sent",
                        "sent_at": now,
                        "smtp_reply": reply[:1000],
                        "lease_until": None,
                        "last_error": None,
                    },
                )
                for outbox_id, reply in group
            ],
        )
        for outbox_id, reply in group:
            self._settle_and_audit(session, outbox_id, rows[outbox_id], reply[:1000])

    def _settle_and_audit(
        self, session: Session, outbox_id: int, row: Any, smtp_reply: str
    ) -> None:
        """What follows a row's mark (``row``: its MARK_COLUMNS): a person's reply settles
        promises; every send is audited."""
        if row.kind.startswith("reply."):
            # A person's reply settles promises and may complete a summary (on the ORM;
            # populate_existing: the row was just changed under the identity map).
            full = session.get(OutboxMessage, outbox_id, populate_existing=True)
            assert full is not None
            settle_promises(session, full)
            _after_summary(session, full)
        audit.append_sync(
            session,
            "mail.sent",
            {
                "outbox_id": outbox_id,
                "kind": row.kind,
                "message_id": row.message_id,
                "to": row.recipients,
                "smtp_reply": smtp_reply,
                "attempts": row.attempts,
            },
            incident_id=row.incident_id,
        )

    async def _failed(self, outbox_id: int, error: DeliveryError) -> SendResult:
        async with self.db.write(urgent=True) as session:
            row = await session.get(OutboxMessage, outbox_id)
            assert row is not None
            row.last_error = error.reply[:1000]
            row.lease_until = None
            if error.permanent or row.attempts >= self.max_attempts:
                row.status = "failed"
                kind = "mail.failed"
            else:
                row.status = "pending"
                delay = self.retry_base * (2 ** (row.attempts - 1)) * random.uniform(0.8, 1.2)
                row.next_attempt_at = self.clock() + timedelta(seconds=min(delay, 3600))
                kind = "mail.deferred"
            await audit.append(
                session,
                kind,
                {
                    "outbox_id": row.id,
                    "message_id": row.message_id,
                    "error": row.last_error,
                    "attempts": row.attempts,
                    "permanent": error.permanent,
                },
                incident_id=row.incident_id,
            )
            status = row.status
        log.warning("outbox %s: %s (%s)", outbox_id, status, error.reply)
        return SendResult(outbox_id, status, error.reply)


def side_by_side(claimed: list[Claimed], width: int) -> list[list[Claimed]]:
    """``claimed`` in order, cut into groups of at most ``width`` sent together, a new group
    starting wherever a row's incident already has a row in the current one."""
    groups: list[list[Claimed]] = []
    current: list[Claimed] = []
    incidents: set[int] = set()
    for row, incident in claimed:
        if len(current) >= width or (incident is not None and incident in incidents):
            groups.append(current)
            current, incidents = [], set()
        current.append((row, incident))
        if incident is not None:
            incidents.add(incident)
    if current:
        groups.append(current)
    return groups
