"""One stored message, top to bottom: parse → decide → record (incident, outbox, audit).

Read this function by function to follow an email from IMAP to SMTP. The raw
bytes are already committed by the watcher; everything here is re-runnable: a
message stays ``pending`` until the transaction that records its decision
commits, so a crash anywhere before that simply processes it again, and the
acknowledgement's Message-ID is derived from the incident, never random.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from codered import audit
from codered.crashpoints import crashpoint
from codered.db.engine import Database
from codered.db.models import DeadLetter, InboundMessage, utcnow
from codered.facts import gather_facts
from codered.incident_opening import IncidentOpener
from codered.settings import Settings
from inbox.message import InboundEmail, ParseError
from inbox.parse import parse_email
from policies.detect import classify_offline
from policies.model import Action, Classification, Decision, Facts, RuleHit
from policies.table import decide

__all__ = ["Classifier", "Outcome", "Pipeline"]

log = logging.getLogger(__name__)

BATCH_SIZE = 50
"""Messages read and parsed together while mail is waiting."""
TRANSACTION_SECONDS = 0.1
"""How long one transaction of decisions may grow before it commits and lets others write."""

# Rules after which a model's opinion could change the outcome; guards decide without one.
_MODEL_MATTERS = frozenset(
    {"not_a_complaint", "dmarc_failed", "sender_rate_limit", "global_circuit_breaker", "complaint"}
)


class Classifier(Protocol):
    """A language-model classifier; the offline scorer is always the fallback."""

    name: str

    async def prepare(self) -> None: ...

    async def classify(self, subject: str, text: str) -> Classification: ...


@dataclass(frozen=True)
class Outcome:
    inbound_id: int
    action: str
    rule: str
    reason: str
    incident_reference: str | None = None


class Pipeline:
    """Turns pending inbound rows into decisions; safe to call concurrently with the watcher."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        classifier: Classifier | None = None,
        on_outbox: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.settings = settings
        self.classifier = classifier
        self.on_outbox = on_outbox or (lambda: None)
        self.clock = clock
        self.opener = IncidentOpener(settings, clock)

    async def process_pending(self, limit: int = 200) -> list[Outcome]:
        """Process up to ``limit`` pending messages in arrival order, in batches.

        Why batches: in an outage flood the cost per message is dominated by opening
        sessions and transactions, not by deciding. A batch is read in one query, parsed
        in one trip to a thread, and recorded in one transaction with a savepoint per
        message: a message that fails to record rolls back alone and is dead-lettered,
        and the others commit together, each exactly as if it had been recorded alone."""
        outcomes: list[Outcome] = []
        while len(outcomes) < limit:
            async with self.db.read() as session:
                rows = (
                    await session.execute(
                        select(InboundMessage.id, InboundMessage.raw, InboundMessage.mailbox)
                        .where(InboundMessage.status == "pending")
                        .order_by(InboundMessage.id)
                        .limit(min(BATCH_SIZE, limit - len(outcomes)))
                    )
                ).all()
            if not rows:
                break
            outcomes += await self._process_batch([(r[0], r[1], r[2]) for r in rows])
        return outcomes

    async def _process_batch(self, rows: list[tuple[int, bytes | None, str]]) -> list[Outcome]:
        parsed = await asyncio.to_thread(_parse_all, [raw for _, raw, _ in rows])
        outcomes: list[Outcome] = []
        ready: list[tuple[int, InboundEmail, Decision | None, Classification]] = []
        for (inbound_id, _, mailbox), email in zip(rows, parsed, strict=True):
            if isinstance(email, str):
                outcome = await self._dead_letter(inbound_id, email)
                if outcome is not None:
                    outcomes.append(outcome)
                continue
            classification = classify_offline(email.subject, email.new_text)
            decision = None  # decided under the write transaction, with fresh facts
            if self.classifier is not None:
                decision = await self._decide(mailbox, email, classification)
                if decision.deciding_rule in _MODEL_MATTERS:
                    classification = await self._model_classification(email, classification)
                    decision = await self._decide(mailbox, email, classification)
            ready.append((inbound_id, email, decision, classification))
        return outcomes + await self._record_batch(ready)

    async def _record_batch(
        self, items: list[tuple[int, InboundEmail, Decision | None, Classification]]
    ) -> list[Outcome]:
        """Record ``items`` in as few transactions as possible, each held at most about
        TRANSACTION_SECONDS so that the writers that store mail and mark sends go between."""
        recorded: list[Outcome] = []
        failed: list[tuple[int, str]] = []
        start = 0
        while start < len(items):
            chunk: list[Outcome] = []
            chunk_failed: list[tuple[int, str]] = []
            end = start
            try:
                async with self.db.write() as session:
                    began = time.monotonic()
                    while end < len(items) and (
                        end == start or time.monotonic() - began < TRANSACTION_SECONDS
                    ):
                        inbound_id, email, decision, classification = items[end]
                        end += 1
                        try:
                            async with session.begin_nested():
                                outcome = await self._record_in(
                                    session, inbound_id, email, decision, classification
                                )
                        except Exception as exc:
                            audit.forget_head(session)  # the savepoint took its entries back
                            log.exception("recording inbound message %s failed", inbound_id)
                            chunk_failed.append((inbound_id, f"cannot record decision: {exc!r}"))
                            continue
                        if outcome is not None:
                            chunk.append(outcome)
            except Exception:  # the commit itself failed: these one at a time, as before
                log.exception("recording %d decisions failed; one by one", end - start)
                for inbound_id, *_ in items[start:end]:
                    outcome = await self.process(inbound_id)
                    if outcome is not None:
                        recorded.append(outcome)
                start = end
                continue
            self._committed(chunk)
            recorded += chunk
            failed += chunk_failed
            start = end
        for inbound_id, reason in failed:
            outcome = await self._dead_letter(inbound_id, reason)
            if outcome is not None:
                recorded.append(outcome)
        return recorded

    async def process(self, inbound_id: int) -> Outcome | None:
        """Decide one message. Returns None when it was already processed elsewhere."""
        async with self.db.read() as session:
            row = await session.get(InboundMessage, inbound_id)
            if row is None or row.status != "pending" or row.raw is None:
                return None
            raw, mailbox = row.raw, row.mailbox
        try:
            email = await asyncio.to_thread(parse_email, raw)
        except ParseError as exc:
            return await self._dead_letter(inbound_id, f"cannot parse: {exc.reason}")
        classification = classify_offline(email.subject, email.new_text)
        decision = await self._decide(mailbox, email, classification)
        if self.classifier is not None and decision.deciding_rule in _MODEL_MATTERS:
            classification = await self._model_classification(email, classification)
            decision = await self._decide(mailbox, email, classification)
        try:
            return await self._record(inbound_id, email, decision)
        except Exception as exc:
            log.exception("recording the decision for inbound message %s failed", inbound_id)
            return await self._dead_letter(inbound_id, f"cannot record decision: {exc!r}")

    async def _model_classification(
        self, email: InboundEmail, fallback: Classification
    ) -> Classification:
        assert self.classifier is not None
        timeout = self.settings.llm.timeout_seconds
        try:
            await self.classifier.prepare()
            return await asyncio.wait_for(
                self.classifier.classify(email.subject, email.new_text), timeout
            )
        except Exception as exc:  # any model failure falls back; acknowledgements never wait
            problem = f"{type(exc).__name__}: {exc!s:.200}".rstrip(": ")
            log.warning("model classification failed, using the offline scorer: %s", problem)
            signals = (*fallback.signals, f"model {self.classifier.name} failed: {problem}")
            return Classification(
                fallback.is_complaint,
                fallback.category,
                fallback.severity,
                fallback.confidence,
                signals,
                "offline (model fallback)",
            )

    async def _decide(
        self, mailbox: str, email: InboundEmail, classification: Classification
    ) -> Decision:
        async with self.db.read() as session:
            facts = await self._facts(session, mailbox, email)
        return decide(email, facts, classification)

    async def _facts(self, session: AsyncSession, mailbox: str, email: InboundEmail) -> Facts:
        return await gather_facts(session, self.settings, mailbox, email, self.clock())

    async def _record(
        self, inbound_id: int, email: InboundEmail, decision: Decision
    ) -> Outcome | None:
        """Everything the decision implies, in one transaction with the status change."""
        assert decision.classification is not None or decision.action is not Action.ACKNOWLEDGE
        async with self.db.write() as session:
            outcome = await self._record_in(
                session, inbound_id, email, decision, decision.classification
            )
        self._committed([outcome] if outcome is not None else [])
        return outcome

    def _committed(self, outcomes: list[Outcome]) -> None:
        """After decisions committed: wake the outbox when one of them is an acknowledgement."""
        crashpoint("after_decision_commit")
        if any(o.action == Action.ACKNOWLEDGE.value for o in outcomes):
            self.on_outbox()

    async def _record_in(
        self,
        session: AsyncSession,
        inbound_id: int,
        email: InboundEmail,
        decision: Decision | None,
        classification: Classification | None,
    ) -> Outcome | None:
        """Record one message inside ``session``; ``decision`` None means decide here."""
        row = await session.get(InboundMessage, inbound_id, with_for_update=True)
        if row is None or row.status != "pending":
            return None
        row.message_id = email.message_id
        row.sender = email.sender.email if email.sender else None
        row.subject = email.subject[:2000]
        duplicate = await self._duplicate_of(session, row)
        if duplicate is not None:
            decision = Decision(Action.IGNORE, (_duplicate_hit(duplicate),), None)
        # Facts may have changed since deciding (a concurrent message in the same
        # thread); re-read them under the write transaction so one thread gets one ack.
        elif decision is None or decision.action in (Action.ACKNOWLEDGE, Action.HOLD):
            facts = await self._facts(session, row.mailbox, email)
            decision = decide(email, facts, classification)
        incident = await self.opener.apply(session, row, email, decision)
        row.status = "processed"
        row.processed_at = self.clock()
        row.action = decision.action.value
        row.deciding_rule = decision.deciding_rule
        row.reason = decision.reason
        row.decision = _decision_record(decision)
        row.incident_id = incident.id if incident else None
        await audit.append(
            session,
            "decision",
            {
                "inbound_id": row.id,
                "mailbox": row.mailbox,
                "uid": row.uid,
                "message_id": row.message_id,
                "from": row.sender,
                "subject": row.subject,
                **_decision_record(decision),
            },
            incident_id=row.incident_id,
        )
        return Outcome(
            inbound_id,
            decision.action.value,
            decision.deciding_rule,
            decision.reason,
            incident.reference if incident else None,
        )

    async def _duplicate_of(self, session: AsyncSession, row: InboundMessage) -> int | None:
        if not row.message_id:
            return None
        return await session.scalar(
            select(InboundMessage.id)
            .where(
                InboundMessage.message_id == row.message_id,
                InboundMessage.id != row.id,
                InboundMessage.status == "processed",
            )
            .limit(1)
        )

    async def _dead_letter(self, inbound_id: int, reason: str) -> Outcome | None:
        async with self.db.write() as session:
            row = await session.get(InboundMessage, inbound_id)
            if row is None or row.status != "pending":
                return None
            row.status = "dead"
            row.reason = reason
            row.processed_at = self.clock()
            dead = DeadLetter(mailbox=row.mailbox, inbound_id=row.id, reason=reason)
            session.add(dead)
            await session.flush()
            await audit.append(
                session,
                "dead_letter",
                {"inbound_id": row.id, "mailbox": row.mailbox, "uid": row.uid, "reason": reason},
            )
        log.warning("inbound message %s dead-lettered: %s", inbound_id, reason)
        return Outcome(inbound_id, "dead_letter", "dead_letter", reason)


def _parse_all(raws: list[bytes | None]) -> list[InboundEmail | str]:
    """Parse a batch on one worker thread; a message that cannot be parsed becomes the
    dead-letter reason in its place."""
    parsed: list[InboundEmail | str] = []
    for raw in raws:
        if raw is None:
            parsed.append("cannot parse: the message was not stored")
            continue
        try:
            parsed.append(parse_email(raw))
        except ParseError as exc:
            parsed.append(f"cannot parse: {exc.reason}")
    return parsed


def _duplicate_hit(duplicate_id: int) -> RuleHit:
    return RuleHit(
        "duplicate_message_id",
        f"same Message-ID as inbound message {duplicate_id}, which was already processed",
    )


def _decision_record(decision: Decision) -> dict[str, Any]:
    c = decision.classification
    return {
        "action": decision.action.value,
        "rule": decision.deciding_rule,
        "reason": decision.reason,
        "hits": [asdict(hit) for hit in decision.hits],
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
