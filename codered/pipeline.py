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
from collections.abc import Callable, Collection
from datetime import datetime
from functools import partial
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from codered import audit
from codered.crashpoints import crashpoint
from codered.db.engine import Database
from codered.db.models import DeadLetter, InboundMessage, utcnow
from codered.decision_recording import Chunk, DecisionRecorder, Item, Outcome
from codered.facts import gather_facts, read_ack_counts
from codered.parse_worker import Parsed, ParseWorker, parse_batch
from codered.recent_texts import RecentTexts
from codered.settings import Settings
from inbox.message import InboundEmail
from policies.model import Action, Classification, Decision, Facts
from policies.table import decide

__all__ = ["Classifier", "Outcome", "Pipeline"]

log = logging.getLogger(__name__)

BATCH_SIZE = 50
"""Messages read and parsed together while mail is waiting."""

# Rules after which a model's opinion could change the outcome; guards decide without one.
_MODEL_MATTERS = frozenset(
    {"not_a_complaint", "dmarc_failed", "sender_rate_limit", "global_circuit_breaker", "complaint"}
)


class Classifier(Protocol):
    """A language-model classifier; the offline scorer is always the fallback."""

    name: str

    async def prepare(self) -> None: ...

    async def classify(self, subject: str, text: str) -> Classification: ...


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
        mailboxes: Callable[[], Collection[str]] | None = None,
        texts: RecentTexts | None = None,
        parser: ParseWorker | None = None,
    ) -> None:
        self.db = db
        self.parser = parser
        """The parse worker process; None: parse on a thread of this process."""
        self.texts = texts or RecentTexts()
        """The new text of each message parsed here, for the escalation check."""
        self.mailboxes = mailboxes
        """Decide only mail of these mailboxes (the ones this process watches); None: all."""
        self.settings = settings
        self.classifier = classifier
        self.on_outbox = on_outbox or (lambda: None)
        self.clock = clock
        self.recorder = DecisionRecorder(settings, clock)

    async def process_pending(self, limit: int = 200) -> list[Outcome]:
        """Process up to ``limit`` pending messages in arrival order, in batches.

        Why batches: in an outage flood the cost per message is dominated by opening
        sessions and transactions, not by deciding. A batch is read in one query, parsed
        in one trip to the parse worker (or a thread), and recorded in one transaction; a
        message that fails to record is rolled back alone (the batch is recorded again
        with a savepoint per message) and dead-lettered, and the others commit together,
        each exactly as if it had been recorded alone. The next batch is read and sent to
        be parsed before this one is recorded, so that the worker parses while the service
        records."""
        outcomes: list[Outcome] = []
        taken = 0
        batch = await self._read_pending(0, min(BATCH_SIZE, limit))
        parsing = self._parse_soon(batch)
        while batch:
            taken += len(batch)
            following = []
            if taken < limit:
                following = await self._read_pending(batch[-1][0], min(BATCH_SIZE, limit - taken))
            parsing_following = self._parse_soon(following)
            try:
                parsed = await parsing
            except BaseException:
                parsing_following.cancel()
                raise
            outcomes += await self._process_batch(batch, parsed)
            batch, parsing = following, parsing_following
        return outcomes

    async def _read_pending(self, after: int, count: int) -> list[tuple[int, bytes | None, str]]:
        """Up to ``count`` pending rows with ids above ``after``, oldest first."""
        query = select(InboundMessage.id, InboundMessage.raw, InboundMessage.mailbox).where(
            InboundMessage.status == "pending", InboundMessage.id > after
        )
        if self.mailboxes is not None:
            names = sorted(self.mailboxes())
            if not names:
                return []
            query = query.where(InboundMessage.mailbox.in_(names))
        async with self.db.read() as session:
            rows = await session.execute(query.order_by(InboundMessage.id).limit(count))
            return [(r[0], r[1], r[2]) for r in rows]

    def _parse_soon(
        self, rows: list[tuple[int, bytes | None, str]]
    ) -> asyncio.Future[list[Parsed | str]]:
        """Start parsing ``rows`` (in the worker, or on a thread) and return the answer to come."""
        raws = [raw for _, raw, _ in rows]
        if not raws:  # the batch after the last one: nothing to send anywhere
            nothing: asyncio.Future[list[Parsed | str]] = asyncio.get_running_loop().create_future()
            nothing.set_result([])
            return nothing
        if self.parser is not None:
            return asyncio.ensure_future(self.parser.parse(raws))
        return asyncio.ensure_future(asyncio.to_thread(parse_batch, raws))

    async def _process_batch(
        self, rows: list[tuple[int, bytes | None, str]], parsed: list[Parsed | str]
    ) -> list[Outcome]:
        outcomes: list[Outcome] = []
        ready: list[Item] = []
        for (inbound_id, _, mailbox), one in zip(rows, parsed, strict=True):
            if isinstance(one, str):
                outcome = await self._dead_letter(inbound_id, one)
                if outcome is not None:
                    outcomes.append(outcome)
                continue
            email, classification = one.email, one.classification
            self.texts.remember(inbound_id, email.new_text)
            decision = None  # decided under the write transaction, with fresh facts
            if self.classifier is not None:
                decision = await self._decide(mailbox, email, classification)
                if decision.deciding_rule in _MODEL_MATTERS:
                    classification = await self._model_classification(email, classification)
                    decision = await self._decide(mailbox, email, classification)
            ready.append((inbound_id, email, decision, classification, one.language))
        return outcomes + await self._record_batch(ready)

    async def _record_batch(self, items: list[Item]) -> list[Outcome]:
        """Record ``items`` in as few transactions as possible, each held at most about
        TRANSACTION_SECONDS so that the writers that store mail and mark sends go between."""
        recorded: list[Outcome] = []
        failed: list[tuple[int, str]] = []
        start = 0
        while start < len(items):
            chunk = Chunk(start)
            try:
                await self.db.run_write_optimistic(
                    partial(self.recorder.record_chunk, items, chunk)
                )
            except Exception as exc:  # the commit itself failed
                end = max(chunk.end, start + 1)
                log.exception("recording %d decisions failed", end - start)
                if end - start == 1:
                    failed.append((items[start][0], f"cannot record decision: {exc!r}"))
                else:  # one at a time, so that only the culprit is dead-lettered
                    for inbound_id, *_ in items[start:end]:
                        outcome = await self.process(inbound_id)
                        if outcome is not None:
                            recorded.append(outcome)
                start = end
                continue
            self._committed(chunk.outcomes)
            recorded += chunk.outcomes
            failed += chunk.failed
            start = chunk.end
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
        (parsed,) = await self._parse_soon([(inbound_id, raw, mailbox)])
        if isinstance(parsed, str):
            return await self._dead_letter(inbound_id, parsed)
        email, classification = parsed.email, parsed.classification
        decision = await self._decide(mailbox, email, classification)
        if self.classifier is not None and decision.deciding_rule in _MODEL_MATTERS:
            classification = await self._model_classification(email, classification)
            decision = await self._decide(mailbox, email, classification)
        item = (inbound_id, email, decision, classification, parsed.language)
        outcomes = await self._record_batch([item])
        return outcomes[0] if outcomes else None

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
            facts = await session.run_sync(self._facts, mailbox, email)
        return decide(email, facts, classification)

    def _facts(self, session: Session, mailbox: str, email: InboundEmail) -> Facts:
        senders = [email.reply_address.email] if email.reply_address else []
        counts = read_ack_counts(session, senders, self.clock())
        return gather_facts(session, self.settings, mailbox, email, counts)

    def _committed(self, outcomes: list[Outcome]) -> None:
        """After decisions committed: wake the outbox when one of them is an acknowledgement."""
        crashpoint("after_decision_commit")
        if any(o.action == Action.ACKNOWLEDGE.value for o in outcomes):
            self.on_outbox()

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
