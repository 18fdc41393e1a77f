"""Two mailboxes in one process: each acknowledged from its own address and name, the second
through an SMTP server of its own, with its own template, company name and owner team."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

from sqlalchemy import select

from codered.db.engine import Database
from codered.db.models import Incident
from codered.embedded import EmbeddedImapServer, SmtpSink
from codered.settings import Settings
from tests.support import mail
from tests.support.service import RunningService, make_settings, query, wait_until

BILLING_TEMPLATE = """{greeting}

Thank you for writing to Billing{about_subject}. A billing specialist replies by {reply_by}.

Your case: {reference}
{company_name}
"""


async def _owners(db: Database) -> dict[str, str | None]:
    async with db.read() as session:
        rows = (await session.execute(select(Incident.mailbox, Incident.owner))).all()
    return {mailbox: owner for mailbox, owner in rows}


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
        templates = tmp_path / "billing-templates"
        templates.mkdir()
        (templates / "ack.en.txt").write_text(BILLING_TEMPLATE, encoding="utf-8")
        data = base.model_dump(exclude_none=True)
        first = {**data["mailboxes"][0], "from_name": "Acme Support"}
        second = {
            **first,
            "name": "billing",
            "address": "billing@acme.example",
            "imap_port": billing.port,
            "from_name": "Acme Billing",
            "smtp_host": "127.0.0.1",
            "smtp_port": billing_sink.port,
            "smtp_security": "none",
            "templates": str(templates),
            "company": {"name": "Acme Billing GmbH"},
            "policies": {"csms": ["bea"]},
        }
        data["mailboxes"] = [first, second]
        data["policies"] = {**data["policies"], "csms": ["sam"]}
        settings = Settings.model_validate(data)
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
            owners = query(settings, _owners)
    first_ack = email.message_from_bytes(ack_support.raw, policy=policy.default)
    second_ack = email.message_from_bytes(ack_billing.raw, policy=policy.default)
    assert first_ack["From"] == "Acme Support <support@acme.example>"
    assert ack_support.envelope_from == "support@acme.example"
    assert ack_support.recipients == ("dana@northwind.example",)
    assert second_ack["From"] == "Acme Billing <billing@acme.example>"
    assert ack_billing.envelope_from == "billing@acme.example"
    assert ack_billing.recipients == ("marcus@contoso.example",)
    assert owners == {"support": "sam", "billing": "bea"}
    support_text = first_ack.get_content()
    billing_text = second_ack.get_content()
    assert "A billing specialist replies by" in billing_text
    assert "Acme Billing GmbH" in billing_text
    assert "A billing specialist" not in support_text
    assert "We will reply by" in support_text and "Acme Cloud" in support_text
