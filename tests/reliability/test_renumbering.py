"""UIDVALIDITY changed under the service (``doveadm mailbox update --uid-validity``): known
messages are re-linked by Message-ID, history stays history, new mail is answered once,
and the warning shows in ``codered check``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from codered.check import run_checks
from codered.embedded import SmtpSink
from tests.e2e.helpers import inbound, processed
from tests.support import mail
from tests.support.dovecot import DovecotServer
from tests.support.service import RunningService, make_settings, wait_until

pytestmark = [pytest.mark.dovecot, pytest.mark.slow]


def test_renumbered_mailbox_answers_only_new_mail_and_warns(
    dovecot: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    for number in range(2):  # history: there before codered first connected
        dovecot.append(mail.outage_complaint(sender=f"Old {number} <old{number}@x.example>")[1])
    settings = make_settings(
        tmp_path, dovecot.port, smtp_sink.port, username=dovecot.username, password=dovecot.password
    )
    with RunningService(settings) as service:
        service.wait_for_baseline()
        dovecot.append(mail.outage_complaint()[1])
        smtp_sink.wait_for(1, timeout=15)
        wait_until(lambda: processed(settings, 1), 10, "first complaint processed")

    dovecot.doveadm("mailbox", "update", "-u", dovecot.username, "--uid-validity", "4242", "INBOX")
    time.sleep(1.1)  # INTERNALDATE has one-second resolution
    dovecot.append(mail.billing_complaint(sender="New <new@contoso.example>")[1])
    with RunningService(settings):
        smtp_sink.wait_for(2, timeout=20)
        wait_until(lambda: processed(settings, 2), 10, "new complaint processed")
        time.sleep(1.5)  # anything wrongly treated as new would be answered by now

    recipients = sorted(r for m in smtp_sink.messages for r in m.recipients)
    assert recipients == ["dana@northwind.example", "new@contoso.example"]
    rows = inbound(settings)
    assert len(rows) == 2 and {r.uidvalidity for r in rows} == {4242}
    checks = asyncio.run(run_checks(settings))
    [sync] = [c for c in checks if c.name == "sync support"]
    assert sync.warning and "UIDVALIDITY changed" in sync.detail and "4242" in sync.detail
