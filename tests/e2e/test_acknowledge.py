"""End to end against real servers: IMAP (pymap and Dovecot) in, SMTP (aiosmtpd) out."""

from __future__ import annotations

import email
import time
from datetime import timedelta, timezone
from email import policy
from pathlib import Path
from typing import Any

from codered.embedded import SmtpSink
from tests.e2e.helpers import dead_letters, inbound, incidents, outbox, processed
from tests.support import mail
from tests.support.service import RunningService, make_settings, wait_until


def _settings(tmp_path: Path, imap: Any, sink: SmtpSink, **overrides: Any) -> Any:
    return make_settings(
        tmp_path, imap.port, sink.port, username=imap.username, password=imap.password, **overrides
    )


def test_complaint_is_acknowledged_once_with_threading_and_timeline(
    imap: Any, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, imap, smtp_sink)
    with RunningService(settings) as service:
        service.wait_for_baseline()
        complaint_id, raw = mail.outage_complaint()
        imap.append(raw)
        [received] = smtp_sink.wait_for(1, timeout=15)

        ack = email.message_from_bytes(received.raw, policy=policy.default)
        [incident] = incidents(settings)
        [row] = outbox(settings)
        assert list(received.recipients) == ["dana@northwind.example"]
        assert received.envelope_from == "support@acme.example"
        assert ack["To"].addresses[0].addr_spec == "dana@northwind.example"
        assert ack["In-Reply-To"] == complaint_id
        assert complaint_id in ack["References"]
        assert ack["Subject"].startswith("Re: URGENT: production API down")
        assert f"[{incident.reference}]" in ack["Subject"]
        assert ack["Auto-Submitted"] == "auto-replied"
        assert ack["X-Auto-Response-Suppress"] == "All"
        assert ack["Message-ID"] == row.message_id
        body = ack.get_body(("plain",)).get_content()
        assert incident.reference in body
        # The promise is stated in the customer's own zone (their Date header said -05:00).
        local = incident.reply_by.astimezone(timezone(timedelta(hours=-5)))
        assert local.strftime("%H:%M") in body
        assert incident.reply_by > incident.opened_at
        assert incident.severity == "critical"
        assert incident.category == "service_outage"

        # Mail that must never be answered, and a follow-up in the same thread.
        for _, other in (
            mail.question(sender="Sam Rivera <sam@wingtip.example>"),
            mail.out_of_office(sender="Chris <chris@woodgrove.example>"),
            mail.bounce(),
            mail.newsletter(),
            mail.message(
                "Re: URGENT: production API down",
                "Still down! Any update?",
                in_reply_to=complaint_id,
            ),
        ):
            imap.append(other)
        wait_until(lambda: processed(settings, 6), 20, "six messages processed")
        time.sleep(0.5)  # anything wrongly queued would reach the sink by now

    assert len(smtp_sink.messages) == 1
    actions = {m.subject: (m.action, m.deciding_rule) for m in inbound(settings)}
    assert actions["How do I rotate an API key?"][0] == "ignore"
    assert actions["Automatic reply: production API down"][0] == "ignore"
    assert actions["Undelivered Mail Returned to Sender"][0] == "ignore"
    assert actions["This week: 10 outages that made headlines"][0] == "ignore"
    assert actions["Re: URGENT: production API down"] == ("attach", "existing_thread")
    assert [o.status for o in outbox(settings)] == ["sent"]
    follow_up = [m for m in inbound(settings) if m.subject == "Re: URGENT: production API down"]
    assert follow_up[0].incident_id == incidents(settings)[0].id


def test_restart_does_not_acknowledge_anything_twice(
    imap: Any, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, imap, smtp_sink)
    with RunningService(settings) as service:
        service.wait_for_baseline()
        imap.append(mail.outage_complaint()[1])
        smtp_sink.wait_for(1, timeout=15)
    # Mail that arrives while the service is down is picked up on restart, exactly once.
    imap.append(mail.billing_complaint(sender="Marcus <marcus@contoso.example>")[1])
    with RunningService(settings):
        smtp_sink.wait_for(2, timeout=15)
        wait_until(lambda: processed(settings, 2), 10, "both processed")
        time.sleep(1.0)
    assert len(smtp_sink.messages) == 2
    assert sorted(r for m in smtp_sink.messages for r in m.recipients) == [
        "dana@northwind.example",
        "marcus@contoso.example",
    ]
    assert len(inbound(settings)) == 2
    assert len(incidents(settings)) == 2


def test_first_start_acknowledges_no_history(
    imap: Any, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    for number in range(3):
        imap.append(
            mail.outage_complaint(sender=f"Old {number} <old{number}@northwind.example>")[1]
        )
    settings = _settings(tmp_path, imap, smtp_sink)
    with RunningService(settings) as service:
        service.wait_for_baseline()
        imap.append(mail.billing_complaint(sender="New <new@contoso.example>")[1])
        [only] = smtp_sink.wait_for(1, timeout=15)
        time.sleep(1.0)
    assert list(only.recipients) == ["new@contoso.example"]
    assert len(smtp_sink.messages) == 1
    assert len(inbound(settings)) == 1


def _mime_bomb(parts: int) -> bytes:
    chunks = [
        "From: Bomb <bomb@evil.example>\r\nTo: support@acme.example\r\n"
        "Subject: everything is broken and down\r\nMessage-ID: <bomb@evil.example>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n'
    ]
    chunks.extend("--x\r\nContent-Type: text/plain\r\n\r\npart\r\n" for _ in range(parts))
    chunks.append("--x--\r\n")
    return "".join(chunks).encode()


def test_malformed_and_oversized_mail_become_dead_letters_and_watching_goes_on(
    imap: Any, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, imap, smtp_sink)
    settings = settings.model_copy(
        update={"mailboxes": [settings.mailboxes[0].model_copy(update={"max_message_mb": 0.1})]}
    )
    big_id, big = mail.message("Huge attachment", "x" * 200_000, sender="Big <big@contoso.example>")
    with RunningService(settings) as service:
        service.wait_for_baseline()
        imap.append(_mime_bomb(1500))
        imap.append(big)
        imap.append(mail.outage_complaint()[1])
        [ack] = smtp_sink.wait_for(1, timeout=20)
        wait_until(lambda: processed(settings, 3), 15, "three processed")
    assert list(ack.recipients) == ["dana@northwind.example"]
    reasons = sorted(d.reason for d in dead_letters(settings))
    assert len(reasons) == 2
    assert any("size cap" in r for r in reasons)
    assert any("cannot parse" in r for r in reasons)
    oversized = [m for m in inbound(settings) if m.raw is None]
    assert len(oversized) == 1 and oversized[0].size > 150_000
    assert big_id  # the oversized message was never fetched, so its id is unknown to us
