"""Composing an approved draft as the exact bytes of a reply in the customer's thread.

Approved drafts leave by the same path as acknowledgements (the outbox, then
:func:`~mailer.deliver.deliver`), and are built the same careful way: the
recipient is the incident's customer and nobody else, every header is built
from sanitized parts, the Message-ID is derived from the draft (a retry
re-sends the same message), and the header block is verified before the bytes
are returned. The text is the one a person approved; nothing a model wrote
reaches a header.

Unlike an acknowledgement, an approved reply carries no ``Auto-Submitted``:
a person decided to send it (RFC 3834 reserves the field for automatic
responses), and mail filters treat auto-submitted mail as ignorable. It keeps
``X-Auto-Response-Suppress`` (no out-of-office storms) and our loop marker.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from inbox.message import EmailAddress

from .compose import (
    ComposedMessage,
    _checked_domain,
    _checked_reference,
    build_message,
    reply_subject,
)
from .headers import MAX_REFERENCES, mailbox, sanitize_message_id

__all__ = ["ReplyFacts", "compose_reply", "draft_message_id"]


@dataclass(frozen=True)
class ReplyFacts:
    reference: str
    draft_id: int
    customer: EmailAddress
    """The incident's customer: the only recipient, whatever the text says."""
    original_subject: str
    in_reply_to: str | None
    """The customer's latest message in the thread."""
    thread_ids: tuple[str, ...]
    """Message-IDs of the thread so far, oldest first (References)."""
    text: str
    """The approved text, exactly as approved."""
    from_address: EmailAddress
    language: str = "en"


def draft_message_id(reference: str, draft_id: int, domain: str) -> str:
    """The Message-ID of approved draft ``draft_id`` of incident ``reference``.

    >>> draft_message_id("CR-1042", 7, "support.example.com")
    '<codered.reply.cr-1042.7.774f7bc4b665828f@support.example.com>'
    """
    ref = _checked_reference(reference)
    host = _checked_domain(domain)
    digest = hashlib.sha256(f"codered-reply\0{ref}\0{draft_id}\0{host}".encode()).hexdigest()[:16]
    return f"<codered.reply.{ref.lower()}.{int(draft_id)}.{digest}@{host}>"


def compose_reply(facts: ReplyFacts, *, now: datetime) -> ComposedMessage:
    """Build the reply; ``now`` becomes the Date header (pass the approval time)."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    reference = _checked_reference(facts.reference)
    message_id = draft_message_id(reference, facts.draft_id, facts.from_address.domain)
    sender = mailbox(facts.from_address.email, facts.from_address.name)
    recipient = mailbox(facts.customer.email, facts.customer.name)
    in_reply_to = sanitize_message_id(facts.in_reply_to)
    references: list[str] = []
    for candidate in facts.thread_ids:
        clean = sanitize_message_id(candidate)
        if clean is not None and clean not in references:
            references.append(clean)
    if in_reply_to is not None and in_reply_to not in references:
        references.append(in_reply_to)
    references = references[-MAX_REFERENCES:]

    subject = reply_subject(facts.original_subject, reference, facts.language)
    body = facts.text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    raw = build_message(
        sender=sender,
        recipient=recipient,
        subject=subject,
        now=now,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        reference=reference,
        text=body,
        language=facts.language,
        automatic=False,  # a person approved it
    )
    return ComposedMessage(
        message_id=message_id,
        envelope_from=sender.addr_spec,
        recipients=(recipient.addr_spec,),
        subject=subject,
        text=body,
        raw=raw,
    )
