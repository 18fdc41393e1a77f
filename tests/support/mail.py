"""Realistic test messages as raw bytes: complaints, and everything that must not be answered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

SUPPORT = "support@acme.example"


def message(
    subject: str,
    body: str,
    *,
    sender: str = "Dana Whitfield <dana@northwind.example>",
    to: str = SUPPORT,
    headers: dict[str, str] | None = None,
    in_reply_to: str | None = None,
    utc_offset_hours: float = -5,
    message_id: str | None = None,
) -> tuple[str, bytes]:
    """Returns ``(message_id, raw)``."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(
        datetime.now(UTC).astimezone(timezone(timedelta(hours=utc_offset_hours)))
    )
    msg_id = message_id or make_msgid(domain="northwind.example")
    msg["Message-ID"] = msg_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg_id, bytes(msg)


def outage_complaint(**kw: object) -> tuple[str, bytes]:
    return message(
        "URGENT: production API down for all our users",
        "Our production API has been failing with 503 errors for 40 minutes. None of our\n"
        "customers can log in. This is unacceptable, we are losing money every minute.",
        **kw,  # type: ignore[arg-type]
    )


def billing_complaint(**kw: object) -> tuple[str, bytes]:
    return message(
        "Charged twice for our invoice",
        "We were charged twice for invoice INV-2231 and nobody has refunded the duplicate\n"
        "payment yet. This is the second time this happened and I am very frustrated.",
        **kw,  # type: ignore[arg-type]
    )


def question(**kw: object) -> tuple[str, bytes]:
    return message(
        "How do I rotate an API key?",
        "Hello, how do I rotate an API key? The docs mention error 401 after rotation,\n"
        "what does that mean for old clients? Thanks!",
        **kw,  # type: ignore[arg-type]
    )


def out_of_office(**kw: object) -> tuple[str, bytes]:
    return message(
        "Automatic reply: production API down",
        "I am out of the office until Monday and will reply when I am back.",
        headers={"Auto-Submitted": "auto-replied"},
        **kw,  # type: ignore[arg-type]
    )


def newsletter(**kw: object) -> tuple[str, bytes]:
    return message(
        "This week: 10 outages that made headlines",
        "Our top stories this week. The service was down and customers were angry!",
        sender="Cloud Weekly <news@cloudweekly.example>",
        headers={
            "List-Id": "<weekly.cloudweekly.example>",
            "List-Unsubscribe": "<mailto:unsubscribe@cloudweekly.example>",
            "Precedence": "bulk",
        },
        **kw,  # type: ignore[arg-type]
    )


def bounce(to: str = SUPPORT) -> tuple[str, bytes]:
    msg_id = make_msgid(domain="mx.northwind.example")
    raw = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.northwind.example>\r\n"
        f"To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {msg_id}\r\n"
        f"Date: {format_datetime(datetime.now(UTC))}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
        "Your message could not be delivered. This is a permanent error; it failed.\r\n"
        "\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.northwind.example\r\n\r\n"
        "Final-Recipient: rfc822; gone@northwind.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "\r\n--b1--\r\n"
    )
    return msg_id, raw.encode()
