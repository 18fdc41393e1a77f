"""Re-running a dead letter once its cause is fixed (``codered deadletters retry ID``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from codered import audit
from codered.db.engine import Database
from codered.db.models import DeadLetter, InboundMessage, utcnow
from codered.pipeline import Outcome, Pipeline

__all__ = ["RawFetcher", "retry_dead_letter"]

RawFetcher = Callable[[str, int, int], bytes]
"""(mailbox, uidvalidity, uid) → raw bytes, for messages that were never fetched (over the cap)."""


async def retry_dead_letter(
    db: Database, pipeline: Pipeline, dead_letter_id: int, fetch_raw: RawFetcher | None = None
) -> Outcome:
    """Put the message back to ``pending`` and run it through the pipeline now.

    If it fails again, a new dead letter with the new reason is written; the old
    one stays as ``retried`` so the history of attempts is kept.
    """
    async with db.read() as session:
        dead = await session.get(DeadLetter, dead_letter_id)
        if dead is None:
            raise LookupError(f"no dead letter with id {dead_letter_id}")
        if dead.status != "open":
            raise ValueError(
                f"dead letter {dead_letter_id} was already retried at {dead.retried_at}"
            )
        message = await session.get(InboundMessage, dead.inbound_id)
        assert message is not None
        mailbox, uidvalidity, uid, has_raw = (
            message.mailbox,
            message.uidvalidity,
            message.uid,
            message.raw is not None,
        )
    raw: bytes | None = None
    if not has_raw:
        if fetch_raw is None:
            raise ValueError("this message was never fetched; a mailbox connection is needed")
        raw = await asyncio.to_thread(fetch_raw, mailbox, uidvalidity, uid)
    async with db.write() as session:
        dead = await session.get(DeadLetter, dead_letter_id)
        message = await session.get(InboundMessage, dead.inbound_id if dead else -1)
        assert dead is not None and message is not None
        if raw is not None:
            message.raw = raw
            message.size = len(raw)
        message.status = "pending"
        dead.status = "retried"
        dead.retried_at = utcnow()
        await audit.append(
            session,
            "dead_letter.retry",
            {"dead_letter_id": dead.id, "inbound_id": message.id, "previous_reason": dead.reason},
            actor="operator",
        )
    outcome = await pipeline.process(message.id)
    if outcome is None:
        raise RuntimeError(f"inbound message {message.id} was processed by another worker")
    return outcome
