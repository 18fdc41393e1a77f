"""Backstops against answering the wrong mail: forged senders (DMARC), and the global
circuit breaker. Real servers: pymap in, aiosmtpd out."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from codered.db.engine import Database
from codered.db.models import AuditEntry
from codered.embedded import EmbeddedImapServer, SmtpSink
from tests.e2e.helpers import incidents, processed
from tests.support import mail
from tests.support.service import RunningService, make_settings, query, wait_until


def _audit_kinds(settings: object) -> list[str]:
    async def work(db: Database) -> list[str]:
        async with db.read() as session:
            return list((await session.scalars(select(AuditEntry.kind))).all())

    return query(settings, work)  # type: ignore[arg-type]


def test_a_complaint_failing_dmarc_at_our_server_is_held_without_backscatter(
    pymap_server: EmbeddedImapServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, pymap_server.port, smtp_sink.port)
    mailbox = settings.mailboxes[0].model_copy(update={"authserv_id": "mx.acme.example"})
    settings = settings.model_copy(update={"mailboxes": [mailbox]})
    forged = {"Authentication-Results": "mx.acme.example; spf=fail; dmarc=fail (p=reject)"}
    claimed = {"Authentication-Results": "elsewhere.example; dmarc=fail"}
    with RunningService(settings) as service:
        service.wait_for_baseline()
        pymap_server.append(
            mail.billing_complaint(sender="CEO <ceo@bank.example>", headers=forged)[1]
        )
        pymap_server.append(mail.outage_complaint(headers=claimed)[1])
        [ack] = smtp_sink.wait_for(1, timeout=15)
        wait_until(lambda: processed(settings, 2), 15, "both processed")
        time.sleep(0.5)
    assert list(ack.recipients) == ["dana@northwind.example"]
    assert len(smtp_sink.messages) == 1
    held = [i for i in incidents(settings) if i.status == "held"]
    assert [i.customer_email for i in held] == ["ceo@bank.example"]
    assert "DMARC fail" in (held[0].held_reason or "")


def test_the_circuit_breaker_stops_automatic_acknowledgements_and_alerts(
    pymap_server: EmbeddedImapServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path, pymap_server.port, smtp_sink.port, limits={"acknowledgements_per_minute": 2}
    )
    with RunningService(settings) as service:
        service.wait_for_baseline()
        for number in range(4):
            pymap_server.append(
                mail.billing_complaint(sender=f"Customer {number} <c{number}@contoso.example>")[1]
            )
        wait_until(lambda: processed(settings, 4), 20, "four processed")
        smtp_sink.wait_for(2, timeout=10)
        time.sleep(0.5)
    assert len(smtp_sink.messages) == 2
    statuses = sorted(i.status for i in incidents(settings))
    assert statuses == ["acknowledged", "acknowledged", "held", "held"]
    assert _audit_kinds(settings).count("alert.circuit_breaker") == 2
