"""The dozen sample emails ``codered demo`` delivers: complaints of several kinds, and the
machine mail and friendly mail that must never get an acknowledgement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

__all__ = ["Sample", "build_samples"]


@dataclass(frozen=True)
class Sample:
    label: str
    """What a person should expect codered to do with it."""
    sender: str
    subject: str
    message_id: str
    raw: bytes


def _message(
    sender: str,
    to: str,
    subject: str,
    body: str,
    *,
    offset_hours: float = 0,
    headers: dict[str, str] | None = None,
    in_reply_to: str | None = None,
) -> tuple[str, EmailMessage]:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    zone = timezone(timedelta(hours=offset_hours))
    msg["Date"] = format_datetime(datetime.now(UTC).astimezone(zone))
    message_id = make_msgid(domain="customer.example")
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return message_id, msg


def _bounce(to: str) -> tuple[str, bytes]:
    message_id = make_msgid(domain="mx.acme.example")
    raw = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>\r\n"
        f"To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {message_id}\r\n"
        f"Date: {format_datetime(datetime.now(UTC))}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
        "This is the mail system at host mx.customer.example.\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "<old.employee@customer.example>: host mx said: 550 5.1.1 User unknown\r\n"
        "\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.example\r\n\r\n"
        "Final-Recipient: rfc822; old.employee@customer.example\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        "\r\n--b1--\r\n"
    )
    return message_id, raw.encode()


def build_samples(support: str) -> list[Sample]:
    """Fresh Message-IDs and dates on every call, so each demo run is a new conversation."""
    samples: list[Sample] = []

    def add(
        label: str,
        sender: str,
        subject: str,
        body: str,
        *,
        offset_hours: float = 0,
        headers: dict[str, str] | None = None,
        in_reply_to: str | None = None,
    ) -> str:
        message_id, msg = _message(
            sender,
            support,
            subject,
            body,
            offset_hours=offset_hours,
            headers=headers,
            in_reply_to=in_reply_to,
        )
        samples.append(Sample(label, sender, subject, message_id, bytes(msg)))
        return message_id

    outage = add(
        "complaint: outage, critical",
        "Dana Whitfield <dana@northwind.example>",
        "URGENT: production API down for all our users",
        "Our production API calls have been failing with 503 errors for the last 40 minutes.\n"
        "None of our customers can log in. This is completely unacceptable, we are losing\n"
        "money every minute. We need someone on this NOW.\n\nDana Whitfield\nCTO, Northwind",
        offset_hours=-5,
    )
    add(
        "complaint: billing",
        "Marcus Lee <marcus.lee@contoso.example>",
        "Charged twice for the November invoice",
        "Hi,\n\nI was charged twice for invoice INV-20931 this month and nobody has refunded\n"
        "the duplicate payment yet. Please fix this, it's the second time this has happened.\n\n"
        "Marcus",
    )
    add(
        "complaint: performance",
        "Priya Natarajan <priya@fabrikam.example>",
        "Dashboard unbearably slow since Monday",
        "Since Monday the analytics dashboard takes over 40 seconds to load and often times\n"
        "out. My team can't do their work. This is really frustrating.",
        offset_hours=5.5,
    )
    add(
        "complaint: technical issue",
        "Tom Becker <tom@litware.example>",
        "CSV export broken again",
        "The CSV export is broken again - third time this month. The file comes out empty.\n"
        "We rely on it for our month-end close. Very disappointed.",
    )
    add(
        "complaint: contract dispute",
        "Grace Okafor <grace.okafor@adatum.example>",
        "You are not honouring our SLA",
        "Our contract guarantees 99.9% uptime and a 4 hour response time. Neither has been\n"
        "met this quarter. We expect the service credits we are owed under the agreement,\n"
        "otherwise we will have to review the contract.",
    )
    add(
        "complaint: communication breakdown",
        "Liam Murphy <liam@tailspin.example>",
        "Still no answer after two weeks",
        "I opened a ticket two weeks ago and still have not heard back from anyone. I have\n"
        "emailed three times. Is anybody actually reading these? Extremely frustrating.",
        offset_hours=1,
    )
    add(
        "complaint: German, compliance",
        "Jana Schulz <j.schulz@kunde.example>",
        "Dringend: Datenschutzverletzung - wir sehen Daten eines anderen Kunden",
        "Guten Tag,\n\nseit heute Morgen sehen wir in unserem Konto die Rechnungen eines\n"
        "anderen Kunden. Das ist ein schwerwiegender Datenschutzverstoß und völlig\n"
        "inakzeptabel. Bitte melden Sie sich umgehend.\n\nJana Schulz",
        offset_hours=1,
    )
    add(
        "question: not a complaint",
        "Sam Rivera <sam@wingtip.example>",
        "How do I rotate an API key?",
        "Hello! How do I rotate an API key? The docs mention error 401 after rotation -\n"
        "what does that mean for clients that still use the old key? Thanks!",
    )
    add(
        "praise: not a complaint",
        "Ana Costa <ana@proseware.example>",
        "Thank you for the quick fix",
        "Just wanted to say thanks to your team for fixing the login issue so quickly\n"
        "yesterday. Great support as always!",
    )
    add(
        "out-of-office auto-reply",
        "Chris Vogel <chris@woodgrove.example>",
        "Automatic reply: Your support request",
        "I am out of the office until Monday with limited access to email.",
        headers={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"},
    )
    message_id, raw = _bounce(support)
    samples.append(
        Sample(
            "bounce",
            "MAILER-DAEMON@mx.customer.example",
            "Undelivered Mail Returned to Sender",
            message_id,
            raw,
        )
    )
    add(
        "newsletter",
        "Cloud Weekly <news@cloudweekly.example>",
        "This week in cloud: 10 outages that made headlines",
        "Our top stories this week: why outages happen, and how to stay up.\n"
        "Unsubscribe at any time.",
        headers={
            "List-Id": "Cloud Weekly <weekly.cloudweekly.example>",
            "List-Unsubscribe": "<mailto:unsubscribe@cloudweekly.example>",
            "Precedence": "bulk",
        },
    )
    add(
        "follow-up in the outage thread: attached, not acknowledged again",
        "Dana Whitfield <dana@northwind.example>",
        "Re: URGENT: production API down for all our users",
        "Still down. Any update?\n\n"
        "On Monday, Dana wrote:\n> Our production API calls have been failing",
        offset_hours=-5,
        in_reply_to=outage,
    )
    return samples
