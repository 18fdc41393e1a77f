"""Test helpers for the policies package: build InboundEmail values without a parser.

``make_email`` builds one by hand; ``email_from_bytes`` is a deliberately small
stand-in for ``inbox.parse`` (stdlib only) so the policy tests can run real mail
from the shared corpora without depending on the parser under construction.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import Message
from email.utils import parseaddr
from pathlib import Path

from inbox.message import AttachmentInfo, EmailAddress, InboundEmail
from policies.model import Facts

CORPORA = Path(__file__).resolve().parents[2].parent / "shared" / "corpora"
OUR_ADDRESS = "support@example.com"
FACTS = Facts(own_addresses=frozenset({OUR_ADDRESS, "billing@example.com"}))


def make_email(
    *,
    sender: str | None = "alice@customer.example",
    subject: str = "Question",
    text: str = "Hello, I have a question.",
    headers: Mapping[str, str | tuple[str, ...]] | None = None,
    content_type: str = "text/plain",
    return_path: str | None = "alice@customer.example",
    attachments: tuple[AttachmentInfo, ...] = (),
) -> InboundEmail:
    """An InboundEmail with human defaults; override only what a test is about."""
    normalised: dict[str, tuple[str, ...]] = {}
    for name, value in (headers or {}).items():
        normalised[name.lower()] = (value,) if isinstance(value, str) else value
    return InboundEmail(
        message_id="<1@customer.example>",
        sender=EmailAddress(sender) if sender is not None else None,
        reply_to=None,
        to=(EmailAddress(OUR_ADDRESS),),
        cc=(),
        subject=subject,
        date=datetime(2025, 3, 3, 10, 0, tzinfo=UTC),
        in_reply_to=None,
        references=(),
        new_text=text,
        full_text=text,
        headers=normalised,
        content_type=content_type,
        return_path=return_path,
        attachments=attachments,
    )


def _text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                charset = part.get_content_charset() or "utf-8"
                try:
                    return payload.decode(charset, errors="replace")
                except LookupError:
                    return payload.decode("utf-8", errors="replace")
    return ""


def email_from_bytes(raw: bytes) -> InboundEmail:
    """Parse real mail just well enough for the guards and the detector."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    headers: dict[str, tuple[str, ...]] = {}
    for name, value in message.items():
        text = str(value).replace("\r", " ").replace("\n", " ").replace("\0", "")
        headers[name.lower()] = (*headers.get(name.lower(), ()), text.strip())
    _, address = parseaddr(headers.get("from", ("",))[0])
    sender = EmailAddress(address.lower()) if address else None
    return_path: str | None = None
    if "return-path" in headers:
        return_path = headers["return-path"][0].strip().strip("<>").strip()
    attachments = tuple(
        AttachmentInfo(part.get_filename() or "", part.get_content_type(), 0)
        for part in message.walk()
        if not part.is_multipart() and part is not message
    )
    subject = str(email.header.make_header(email.header.decode_header(message["subject"] or "")))
    text = _text_of(message)
    return InboundEmail(
        message_id=headers.get("message-id", (None,))[0],
        sender=sender,
        reply_to=None,
        to=(),
        cc=(),
        subject=subject.replace("\r", " ").replace("\n", " "),
        date=None,
        in_reply_to=None,
        references=(),
        new_text=text,
        full_text=text,
        headers=headers,
        content_type=message.get_content_type(),
        return_path=return_path,
        attachments=attachments,
    )
