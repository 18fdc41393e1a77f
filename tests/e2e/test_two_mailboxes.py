"""Two mailboxes in one process: each acknowledged from its own address and name, the second
through an SMTP server of its own."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

from codered.embedded import EmbeddedImapServer, SmtpSink
from tests.support import mail
from tests.support.service import RunningService, make_settings, wait_until


def test_each_mailbox_answers_from_its_own_identity(tmp_path: Path) -> None:
    with (
        EmbeddedImapServer() as support,
        EmbeddedImapServer() as billing,
        SmtpSink() as main_sink,
        SmtpSink() as billing_sink,
    ):
        base = make_settings(
            tmp_path,
            support.port,
            main_sink.port,
            username=support.username,
            password=support.password,
        )
        [first] = base.mailboxes
        second = first.model_copy(
            update={
                "name": "billing",
                "address": "billing@acme.example",
                "imap_port": billing.port,
                "from_name": "Acme Billing",
                "smtp_host": "127.0.0.1",
                "smtp_port": billing_sink.port,
                "smtp_security": "none",
            }
        )
        settings = base.model_copy(
            update={"mailboxes": [first.model_copy(update={"from_name": "Acme Support"}), second]}
        )
        with RunningService(settings) as service:
            service.wait_for_baseline("support")
            service.wait_for_baseline("billing")
            support.append(mail.outage_complaint()[1])
            billing.append(
                mail.billing_complaint(
                    sender="Marcus Lee <marcus@contoso.example>", to="billing@acme.example"
                )[1]
            )
            [ack_support] = main_sink.wait_for(1, timeout=20)
            [ack_billing] = billing_sink.wait_for(1, timeout=20)
            wait_until(lambda: len(main_sink.messages) == 1, 2, "nothing else on the main sink")
    first_ack = email.message_from_bytes(ack_support.raw, policy=policy.default)
    second_ack = email.message_from_bytes(ack_billing.raw, policy=policy.default)
    assert first_ack["From"] == "Acme Support <support@acme.example>"
    assert ack_support.envelope_from == "support@acme.example"
    assert ack_support.recipients == ("dana@northwind.example",)
    assert second_ack["From"] == "Acme Billing <billing@acme.example>"
    assert ack_billing.envelope_from == "billing@acme.example"
    assert ack_billing.recipients == ("marcus@contoso.example",)
