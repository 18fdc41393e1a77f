"""Recording decisions: the write side of the pipeline, one transaction per chunk of a batch.

Everything here is synchronous and runs inside ``Database.run_write``: on SQLite on one
worker thread with the standard driver, so that the dozen small statements of each
decision do not each pay a round trip to aiosqlite's thread. What a transaction needs for
all of its messages (their rows, which Message-IDs were already processed, how many
acknowledgements went where) is read once at its start and kept current as it goes.
Each message is recorded under its own savepoint: one that fails rolls back alone.
Rows are read and written with Core statements (:mod:`codered.db.core`), not the ORM.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from codered import audit
from codered.db.core import update_row
from codered.db.models import InboundMessage
from codered.facts import AckCounts, gather_facts, read_ack_counts
from codered.incident_opening import InboundRow, IncidentOpener
from codered.settings import Settings
from inbox.message import InboundEmail
from policies.model import Action, Classification, Decision, RuleHit
from policies.table import decide

__all__ = ["TRANSACTION_SECONDS", "Chunk", "DecisionRecorder", "Item", "Outcome"]

log = logging.getLogger(__name__)

TRANSACTION_SECONDS = 0.1
"""How long one transaction of decisions may grow before it commits and lets others write."""

Item = tuple[int, InboundEmail, Decision | None, Classification | None, str | None]
"""An inbound row id, its parsed mail, a decision made beforehand (or None: decide while
recording), the classification to decide with, and the language detected for it (or None:
detect it here if an incident is opened)."""


@dataclass(frozen=True)
class Outcome:
    inbound_id: int
    action: str
    rule: str
    reason: str
    incident_reference: str | None = None


@dataclass
class Chunk:
    """One transaction's share of a batch: where it started, how far it got, what came of it."""

    start: int
    end: int = -1
    outcomes: list[Outcome] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.end < 0:
            self.end = self.start


@dataclass
class _Known:
    """What one transaction read once for all its messages."""

    rows: dict[int, InboundRow]
    """The batch's rows still pending (another worker may have recorded the rest)."""
    processed_message_ids: dict[str, int]
    """Message-ID → an inbound row already processed with it (the duplicate guard)."""
    counts: AckCounts


class DecisionRecorder:
    def __init__(self, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.clock = clock
        self.opener = IncidentOpener(settings, clock)

    def record_chunk(
        self, items: Sequence[Item], chunk: Chunk, session: Session, isolate: bool = True
    ) -> None:
        """Record items from ``chunk.start`` on, for about TRANSACTION_SECONDS, in ``session``.

        ``chunk.end`` moves past each item as it is attempted, so that the caller knows
        how far a transaction whose commit failed had got. With ``isolate``, each item is
        recorded under a savepoint and one that fails is rolled back alone and reported in
        ``chunk.failed``; without, a failing item raises, and the caller must roll back the
        whole transaction and record the chunk again, isolated (two statements fewer per
        message, for the common case where nothing fails)."""
        chunk.end, chunk.outcomes, chunk.failed = chunk.start, [], []  # a second attempt
        with audit.appending_together(session):
            self._record_from(items, chunk, session, isolate=isolate)

    def _record_from(
        self, items: Sequence[Item], chunk: Chunk, session: Session, *, isolate: bool
    ) -> None:
        began = time.monotonic()
        known = self._read_known(session, items[chunk.start :])
        while chunk.end < len(items) and (
            chunk.end == chunk.start or time.monotonic() - began < TRANSACTION_SECONDS
        ):
            inbound_id, email, decision, classification, language = items[chunk.end]
            chunk.end += 1
            try:
                with session.begin_nested() if isolate else nullcontext():
                    outcome = self._record_one(
                        session, known, inbound_id, email, decision, classification, language
                    )
            except Exception as exc:
                if not isolate:
                    raise
                log.exception("recording inbound message %s failed", inbound_id)
                chunk.failed.append((inbound_id, f"cannot record decision: {exc!r}"))
                continue
            if outcome is None:
                continue
            chunk.outcomes.append(outcome)
            if email.message_id:
                known.processed_message_ids.setdefault(email.message_id, inbound_id)
            if outcome.action == Action.ACKNOWLEDGE.value and email.reply_address is not None:
                known.counts.queued(email.reply_address.email)

    def _read_known(self, session: Session, items: Sequence[Item]) -> _Known:
        """The rows (locked on PostgreSQL), earlier uses of their Message-IDs, and the
        acknowledgement counts, in three queries however many messages follow."""
        ids = [inbound_id for inbound_id, *_ in items]
        rows = session.execute(
            select(
                InboundMessage.id,
                InboundMessage.mailbox,
                InboundMessage.uid,
                InboundMessage.status,
            )
            .where(InboundMessage.id.in_(ids))
            .with_for_update()
        ).all()
        message_ids = sorted({email.message_id for _, email, *_ in items if email.message_id})
        processed: dict[str, int] = {}
        if message_ids:
            found = session.execute(
                select(InboundMessage.message_id, func.min(InboundMessage.id))
                .where(
                    InboundMessage.message_id.in_(message_ids),
                    InboundMessage.status == "processed",
                )
                .group_by(InboundMessage.message_id)
            ).all()
            processed = {message_id: inbound_id for message_id, inbound_id in found if message_id}
        senders = [email.reply_address.email for _, email, *_ in items if email.reply_address]
        counts = read_ack_counts(session, senders, self.clock())
        pending = {
            row.id: InboundRow(row.id, row.mailbox, row.uid)
            for row in rows
            if row.status == "pending"
        }
        return _Known(pending, processed, counts)

    def _record_one(
        self,
        session: Session,
        known: _Known,
        inbound_id: int,
        email: InboundEmail,
        decision: Decision | None,
        classification: Classification | None,
        language: str | None,
    ) -> Outcome | None:
        """Record one message; ``decision`` None means decide here. None when the message
        was already recorded (by another worker)."""
        row = known.rows.pop(inbound_id, None)
        if row is None:
            return None
        duplicate = known.processed_message_ids.get(email.message_id or "")
        if duplicate is not None and duplicate != inbound_id:
            decision = Decision(Action.IGNORE, (_duplicate_hit(duplicate),), None)
        # Facts may have changed since deciding (a concurrent message in the same thread);
        # re-read them under the write transaction so one thread gets one acknowledgement.
        elif decision is None or decision.action in (Action.ACKNOWLEDGE, Action.HOLD):
            facts = gather_facts(session, self.settings, row.mailbox, email, known.counts)
            decision = decide(email, facts, classification)
        record = decision_record(decision)
        sender = email.sender.email if email.sender else None
        subject = email.subject[:2000]
        incident = self.opener.apply(session, row, email, decision, language)
        incident_id = incident.id if incident else None
        update_row(
            session,
            InboundMessage,
            row.id,
            {
                "message_id": email.message_id,
                "sender": sender,
                "subject": subject,
                "status": "processed",
                "processed_at": self.clock(),
                "action": decision.action.value,
                "deciding_rule": decision.deciding_rule,
                "reason": decision.reason,
                "decision": record,
                "incident_id": incident_id,
            },
        )
        audit.append_sync(
            session,
            "decision",
            {
                "inbound_id": row.id,
                "mailbox": row.mailbox,
                "uid": row.uid,
                "message_id": email.message_id,
                "from": sender,
                "subject": subject,
                **record,
            },
            incident_id=incident_id,
        )
        return Outcome(
            inbound_id,
            decision.action.value,
            decision.deciding_rule,
            decision.reason,
            incident.reference if incident else None,
        )


def _duplicate_hit(duplicate_id: int) -> RuleHit:
    return RuleHit(
        "duplicate_message_id",
        f"same Message-ID as inbound message {duplicate_id}, which was already processed",
    )


def decision_record(decision: Decision) -> dict[str, Any]:
    """The decision as stored on its row and in the audit trail."""
    c = decision.classification
    return {
        "action": decision.action.value,
        "rule": decision.deciding_rule,
        "reason": decision.reason,
        # Not dataclasses.asdict: it deep-copies, and this runs for every message.
        "hits": [{"rule": hit.rule, "reason": hit.reason} for hit in decision.hits],
        "classification": None
        if c is None
        else {
            "is_complaint": c.is_complaint,
            "category": c.category.value if c.category else None,
            "severity": c.severity.value,
            "confidence": round(c.confidence, 3),
            "signals": list(c.signals),
            "source": c.source,
        },
    }
