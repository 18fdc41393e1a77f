"""The outbox sends a few messages at once, over kept connections, never two of one incident
together, and each exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from codered.connections import smtp_server
from codered.db.engine import Database
from codered.db.migrate import upgrade
from codered.db.models import InboundMessage, Incident, OutboxMessage
from codered.embedded import SmtpSink
from codered.notifications import queue_internal_mail
from codered.outbox import OutboxWorker, side_by_side
from codered.pipeline import Pipeline
from tests.support import mail
from tests.support.service import make_settings


def test_groups_are_narrow_enough_and_keep_an_incidents_rows_apart() -> None:
    claimed = [(1, 10), (2, 11), (3, 10), (4, None), (5, None), (6, 12), (7, 13)]
    groups = side_by_side(claimed, 3)
    assert [row for group in groups for row, _ in group] == [1, 2, 3, 4, 5, 6, 7]
    assert all(len(group) <= 3 for group in groups)
    for group in groups:
        incidents = [incident for _, incident in group if incident is not None]
        assert len(incidents) == len(set(incidents))
    assert groups[0] == [(1, 10), (2, 11)]  # row 3 is incident 10's second: next group


async def test_parallel_sends_deliver_each_row_once_in_incident_order(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    settings = make_settings(tmp_path, 1, smtp_sink.port)
    db = Database(settings.database.url)
    try:
        await upgrade(db)
        senders = [f"Customer {n} <c{n}@contoso.example>" for n in range(7)]
        async with db.write() as session:
            session.add_all(
                InboundMessage(mailbox="support", uidvalidity=1, uid=n + 1, size=len(raw), raw=raw)
                for n, (_, raw) in enumerate(mail.outage_complaint(sender=s) for s in senders)
            )
        await Pipeline(db, settings).process_pending()
        async with db.write() as session:
            first = (await session.scalars(select(Incident).order_by(Incident.id))).first()
            assert first is not None
            # A second row of the first incident, queued right behind its acknowledgement.
            await queue_internal_mail(
                session,
                settings,
                first,
                key=f"test:{first.reference}",
                subject="internal note",
                lines=["for the team"],
                to=[("csm@acme.example", "CSM")],
            )
        worker = OutboxWorker(db, smtp_server(settings), parallel=3)
        results = await worker.send_due()
        worker.close()

        assert [r.status for r in results] == ["sent"] * 8
        received = smtp_sink.wait_for(8)
        recipients = [rcpt for m in received for rcpt in m.recipients]
        assert sorted(recipients) == sorted(
            [f"c{n}@contoso.example" for n in range(7)] + ["csm@acme.example"]
        )
        # Sent side by side over more than one connection, but never more than asked.
        assert 2 <= worker.pool.opened <= 3
        # The internal mail did not overtake the acknowledgement of its incident.
        assert recipients.index("c0@contoso.example") < recipients.index("csm@acme.example")
        async with db.read() as session:
            statuses = (await session.scalars(select(OutboxMessage.status))).all()
        assert statuses == ["sent"] * 8
    finally:
        await db.dispose()


async def test_a_row_whose_lease_ran_out_before_its_turn_is_read_again_and_skipped(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    """Sending from what the claim read is safe only while our lease runs; after it ran out
    another worker may hold the row, and then this one must not send it."""
    settings = make_settings(tmp_path, 1, smtp_sink.port)
    db = Database(settings.database.url)
    try:
        await upgrade(db)
        _, raw = mail.outage_complaint(sender="Ann <ann@contoso.example>")
        async with db.write() as session:
            session.add(InboundMessage(mailbox="support", uidvalidity=1, uid=1, size=1, raw=raw))
        await Pipeline(db, settings).process_pending()
        now = [datetime.now(UTC)]
        slow = OutboxWorker(
            db, smtp_server(settings), lease_seconds=60, identity="host-a:1:a", clock=lambda: now[0]
        )
        [claimed] = await slow._claim(1)
        now[0] += timedelta(seconds=61)  # our lease ran out while the row waited its turn
        other = OutboxWorker(
            db, smtp_server(settings), lease_seconds=60, identity="host-b:2:b", clock=lambda: now[0]
        )
        assert [c.outbox_id for c in await other._claim(1)] == [claimed.outbox_id]

        result = await slow._send(claimed.outbox_id, claimed)
        slow.close()
        other.close()
        assert result.status == "skipped" and "host-b:2:b" in result.detail
        assert smtp_sink.messages == []
    finally:
        await db.dispose()
