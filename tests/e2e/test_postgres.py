"""The same product on PostgreSQL: migrations, acknowledgement once, restart safety, audit chain."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from codered import audit
from codered.db.engine import Database
from codered.embedded import EmbeddedImapServer, SmtpSink
from tests.e2e.helpers import inbound, incidents, outbox, processed
from tests.support import mail
from tests.support.postgres import postgres_database
from tests.support.service import RunningService, make_settings, query, wait_until

pytestmark = pytest.mark.postgres


def test_acknowledges_once_across_a_restart_on_postgresql(
    pymap_server: EmbeddedImapServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    with postgres_database() as url:
        settings = make_settings(tmp_path, pymap_server.port, smtp_sink.port, database_url=url)
        with RunningService(settings) as service:
            service.wait_for_baseline()
            complaint_id, raw = mail.outage_complaint()
            pymap_server.append(raw)
            pymap_server.append(mail.question(sender="Sam <sam@wingtip.example>")[1])
            smtp_sink.wait_for(1, timeout=20)
            wait_until(lambda: processed(settings, 2), 15, "both processed")
        pymap_server.append(mail.message("Re: outage", "Still down!!", in_reply_to=complaint_id)[1])
        with RunningService(settings):
            wait_until(lambda: processed(settings, 3), 15, "follow-up processed")
            time.sleep(0.5)

        assert len(smtp_sink.messages) == 1
        [incident] = incidents(settings)
        [row] = outbox(settings)
        assert row.status == "sent" and row.incident_id == incident.id
        assert [m.action for m in inbound(settings)] == ["acknowledge", "ignore", "attach"]
        assert incident.reply_by.tzinfo is not None

        async def verify(db: Database) -> audit.VerifyResult:
            async with db.read() as session:
                return await audit.verify(session)

        result = query(settings, verify)
        assert result.ok and result.entries >= 5
