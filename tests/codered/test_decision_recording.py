"""Decisions recorded many to a transaction behave exactly as if each had been recorded alone.

The pipeline reads what a transaction needs once (rows, earlier Message-IDs, acknowledgement
counts) and keeps it current as it records; these tests put the cases where that could go
wrong into one batch: a repeated Message-ID, a sender over the limit, a message whose
recording fails, on SQLite (the worker-thread path) and PostgreSQL (the async path).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from codered import audit
from codered.db.engine import Database
from codered.db.migrate import upgrade
from codered.db.models import DeadLetter, InboundMessage, OutboxMessage
from codered.decision_recording import decision_record
from codered.pipeline import Pipeline
from codered.settings import Settings
from policies.model import Action, Decision, RuleHit
from tests.support import mail
from tests.support.postgres import postgres_database
from tests.support.service import make_settings


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    limits = {"acknowledgements_per_sender_24h": 2}
    if request.param == "sqlite":
        yield make_settings(tmp_path, 1, 2, limits=limits)
    else:
        with postgres_database() as url:
            yield make_settings(tmp_path, 1, 2, database_url=url, limits=limits)


async def _pending(db: Database, raws: list[bytes]) -> list[int]:
    async with db.write() as session:
        rows = [
            InboundMessage(mailbox="support", uidvalidity=1, uid=n + 1, size=len(raw), raw=raw)
            for n, raw in enumerate(raws)
        ]
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]


async def _decisions(db: Database) -> dict[int, tuple[str, str | None]]:
    async with db.read() as session:
        rows = await session.execute(
            select(InboundMessage.id, InboundMessage.status, InboundMessage.deciding_rule)
        )
        return {row[0]: (row[1], row[2]) for row in rows}


async def test_one_batch_keeps_every_guard_and_isolates_a_failure(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(settings.database.url)
    try:
        await upgrade(db)
        repeated_id, repeated = mail.outage_complaint(sender="Ann <ann@contoso.example>")
        raws = [
            repeated,
            repeated,  # the same message delivered twice: answered once
            mail.billing_complaint(sender="Bo <bo@contoso.example>")[1],
            mail.outage_complaint(sender="Bo <bo@contoso.example>")[1],
            mail.billing_complaint(sender="Bo <bo@contoso.example>")[1],  # third to Bo
            mail.outage_complaint(sender="Cy <cy@contoso.example>")[1],  # fails to record
            mail.billing_complaint(sender="Di <di@contoso.example>")[1],
        ]
        ids = await _pending(db, raws)
        pipeline = Pipeline(db, settings)
        real_apply = pipeline.recorder.opener.apply

        def failing_for_cy(session: Any, row: InboundMessage, *args: Any) -> Any:
            if row.id == ids[5]:
                raise RuntimeError("disk full (injected)")
            return real_apply(session, row, *args)

        monkeypatch.setattr(pipeline.recorder.opener, "apply", failing_for_cy)
        outcomes = await pipeline.process_pending()

        decided = await _decisions(db)
        assert decided[ids[0]] == ("processed", "complaint")
        assert decided[ids[1]] == ("processed", "duplicate_message_id")
        assert [decided[i] for i in ids[2:4]] == [("processed", "complaint")] * 2
        assert decided[ids[4]] == ("processed", "sender_rate_limit")
        assert decided[ids[5]][0] == "dead"
        assert decided[ids[6]] == ("processed", "complaint")
        assert len(outcomes) == len(ids)
        async with db.read() as session:
            recipients = sorted(
                r
                for row in (await session.scalars(select(OutboxMessage))).all()
                for r in row.recipients
            )
            dead = (await session.scalars(select(DeadLetter))).all()
            chain = await audit.verify(session)
        assert recipients == [
            "ann@contoso.example",
            "bo@contoso.example",
            "bo@contoso.example",
            "di@contoso.example",
        ]
        assert [d.inbound_id for d in dead] == [ids[5]]
        assert "disk full (injected)" in dead[0].reason
        # The failed message's savepoint took its audit entries back; the chain is whole.
        assert chain.ok, chain.problem
        assert repeated_id  # the repeated message really carried a Message-ID
    finally:
        await db.dispose()


async def test_a_batch_whose_commit_fails_is_recorded_one_by_one(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the transaction itself cannot commit (twice: together, then again with a
    savepoint per message), nothing of it is kept, and each message is recorded again on
    its own: the good ones are answered, none twice."""
    db = Database(settings.database.url)
    try:
        await upgrade(db)
        senders = ("Eve <eve@contoso.example>", "Fay <fay@contoso.example>")
        ids = await _pending(db, [mail.outage_complaint(sender=s)[1] for s in senders])
        pipeline = Pipeline(db, settings)
        real_run_write = db.run_write
        calls: list[int] = []

        async def first_commits_fail(work: Any, **kw: Any) -> Any:
            calls.append(1)
            if len(calls) > 2:
                return await real_run_write(work, **kw)

            def work_then_fail(session: Any) -> None:
                work(session)  # everything recorded, then the transaction is lost
                raise RuntimeError("commit failed (injected)")

            return await real_run_write(work_then_fail, **kw)

        monkeypatch.setattr(db, "run_write", first_commits_fail)
        outcomes = await pipeline.process_pending()
        decided = await _decisions(db)
        async with db.read() as session:
            sent_to = [
                r
                for row in (await session.scalars(select(OutboxMessage))).all()
                for r in row.recipients
            ]
            chain = await audit.verify(session)
        assert len(calls) == 4  # the batch, again with savepoints, then each on its own
        assert [decided[i] for i in ids] == [("processed", "complaint")] * 2
        assert sorted(sent_to) == ["eve@contoso.example", "fay@contoso.example"]
        assert sorted(o.action for o in outcomes) == ["acknowledge", "acknowledge"]
        assert chain.ok, chain.problem
    finally:
        await db.dispose()


def test_the_recorded_hits_hold_every_field_of_a_rule_hit() -> None:
    """decision_record writes each hit's fields by hand (asdict is slow); a field added to
    RuleHit must be added there too, or it would silently go unrecorded."""
    hits = (RuleHit("complaint", "scored 3.5"), RuleHit("sender_rate_limit", "third today"))
    record = decision_record(Decision(Action.HOLD, hits, None))
    assert record["hits"] == [dataclasses.asdict(hit) for hit in hits]
