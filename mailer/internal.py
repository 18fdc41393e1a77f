"""Composing internal notifications: escalations and reminders for our own people.

These go to CSMs, managers and account teams, never to the customer, yet they
carry customer text (a subject, a quoted line), so they are built with the
same care as an acknowledgement (DESIGN invariant 6): every header is built
from sanitized parts, addresses through :func:`~mailer.headers.mailbox`, the
envelope is explicit, and the header block is verified before the bytes are
returned.

:func:`~mailer.compose.build_message` is not reused: it takes one recipient,
sets ``Auto-Submitted: auto-replied`` and threads into the customer's
conversation. A notification is none of those. It is generated, not a reply
(RFC 3834 section 5: ``auto-generated``), it starts its own thread, and it
may go to several people. It keeps ``X-Auto-Response-Suppress`` and our loop
marker, so neither an out-of-office answer nor a copy landing in a monitored
support mailbox can turn it into a new incident.

The Message-ID is derived from ``key`` (say ``"escalation:CR-1042:critical_severity"``),
so composing the same notification again after a crash, with the same ``now``
(the outbox row's time), gives the same bytes: a receiver can drop a duplicate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage

from inbox.message import EmailAddress

from .compose import (
    _POLICY,
    LOOP_HEADER,
    REFERENCE_HEADER,
    ComposedMessage,
    _checked_domain,
    _checked_reference,
    _verify_header_block,
    loop_marker,
)
from .headers import mailbox, sanitize_header_value, set_unstructured

__all__ = ["NOTICE_HEADERS", "compose_internal_notification", "notice_message_id"]

NOTICE_HEADERS: tuple[str, ...] = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "X-Auto-Response-Suppress",
    LOOP_HEADER,
    REFERENCE_HEADER,
    "Content-Type",
    "Content-Transfer-Encoding",
    "MIME-Version",
)
"""The header fields of every notification, in order; anything else is refused."""

_MAX_SUBJECT = 200


def notice_message_id(key: str, domain: str) -> str:
    """The Message-ID of the notification identified by ``key``.

    Only the key and our domain go into it, never the clock, so a retry is
    recognisable as the same message. The key itself stays out of the id (it
    may name a customer); the hash keeps ids of different keys apart.

    >>> notice_message_id("escalation:CR-1042:critical_severity", "support.example.com")
    '<codered.notice.ec0038b8fa01a375bddb@support.example.com>'
    """
    if not key:
        raise ValueError("a notification needs a non-empty key")
    host = _checked_domain(domain)
    digest = hashlib.sha256(f"codered-notice\0{key}".encode()).hexdigest()[:20]
    return f"<codered.notice.{digest}@{host}>"


def _recipients(to: Sequence[EmailAddress]) -> list[Address]:
    """Mailboxes for ``to``, each address once (case-insensitively), in the order given."""
    seen: set[str] = set()
    result: list[Address] = []
    for address in to:
        built = mailbox(address.email, address.name)
        if built.addr_spec.lower() in seen:
            continue
        seen.add(built.addr_spec.lower())
        result.append(built)
    if not result:
        raise ValueError("a notification needs at least one recipient")
    return result


def _body(lines: Sequence[str]) -> str:
    """Lines as text: any line ending becomes ``\\n`` and NUL goes, as in approved replies."""
    text = "\n".join(lines)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "") + "\n"


def compose_internal_notification(
    *,
    subject: str,
    lines: Sequence[str],
    to: Sequence[EmailAddress],
    from_address: EmailAddress,
    reference: str,
    key: str,
    now: datetime,
) -> ComposedMessage:
    """Build one internal notification about incident ``reference``.

    ``subject`` is made one line (CR, LF, NUL and other controls become
    spaces) and cut to 200 characters; an empty one becomes
    ``codered notice <reference>``. ``lines`` are the body. Every address in
    ``to`` is a header recipient and an envelope recipient, duplicates once.
    ``now`` becomes the Date header. Raises ValueError for an unusable
    address, reference, key or clock reading, or if the header block comes
    out other than :data:`NOTICE_HEADERS`.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    ref = _checked_reference(reference)
    message_id = notice_message_id(key, from_address.domain)
    sender = mailbox(from_address.email, from_address.name)
    recipients = _recipients(to)
    clean_subject = sanitize_header_value(subject, max_length=_MAX_SUBJECT) or (
        f"codered notice {ref}"
    )
    text = _body(lines)

    message = EmailMessage(policy=_POLICY)
    message["From"] = sender
    message["To"] = recipients
    set_unstructured(message, "Subject", clean_subject)
    message["Date"] = now
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message[LOOP_HEADER] = loop_marker(sender.addr_spec)
    message[REFERENCE_HEADER] = ref
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    names = [name for name, _ in message.raw_items()]
    if [name.lower() for name in names] != [name.lower() for name in NOTICE_HEADERS]:
        raise ValueError(f"notification has unexpected header fields: {names}")
    raw = message.as_bytes()
    _verify_header_block(raw, names)
    return ComposedMessage(
        message_id=message_id,
        envelope_from=sender.addr_spec,
        recipients=tuple(recipient.addr_spec for recipient in recipients),
        subject=clean_subject,
        text=text,
        raw=raw,
    )
