"""Building the acknowledgement as the exact bytes we will hand to SMTP.

Composition is a pure function of the incident's facts and the clock reading
passed in: the same facts give the same bytes. That is what lets the outbox
store ``raw`` in the same transaction as the decision and lets every retry
send the identical message, with the identical Message-ID, so a receiving
system can drop a duplicate (DESIGN invariant 2).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from email.header import Header
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.policy import SMTP
from email.quoprimime import body_encode
from email.utils import format_datetime

from inbox.message import EmailAddress
from policies.model import Category, Severity

from .acknowledgement import default_subject, render_acknowledgement
from .headers import (
    ENCODED_WORD_START,
    MSG_ID,
    mailbox,
    references_chain,
    sanitize_header_value,
    sanitize_message_id,
)

__all__ = [
    "LOOP_HEADER",
    "REFERENCE_HEADER",
    "AcknowledgementFacts",
    "ComposedMessage",
    "acknowledgement_message_id",
    "compose_acknowledgement",
    "loop_marker",
    "reply_subject",
]

LOOP_HEADER = "X-Codered-Loop"
REFERENCE_HEADER = "X-Codered-Reference"


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, except that each header's class is made once.

    Why: ``HeaderRegistry.__getitem__`` builds a new class with ``type()`` for every header
    of every message; in an outage flood that alone was 2% of the service's CPU. The
    classes it builds hold no state, so one per header name serves every message."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


_POLICY = SMTP.clone(refold_source="none", header_factory=_HeaderClasses())
"""CRLF line endings; ``refold_source="none"`` keeps our pre-encoded raw headers as built."""

_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DOMAIN_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_REPLY_PREFIX = re.compile(r"(?:re|aw|antw|sv|rif|res)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)
_MAX_SUBJECT = 200


@dataclass(frozen=True)
class AcknowledgementFacts:
    """Everything the acknowledgement says, decided before composing starts."""

    reference: str
    """Incident reference, e.g. ``CR-1042``; also the seed of the Message-ID."""
    customer: EmailAddress
    original_subject: str
    original_message_id: str | None
    original_references: tuple[str, ...]
    category: Category | None
    severity: Severity
    """Carried for the caller's records; the wording is deliberately the same at every severity."""
    reply_by: datetime
    """Timezone-aware deadline for our next reply."""
    display_tz: tzinfo
    """The customer's zone where known (their Date header's offset), else the company's."""
    language: str
    """``en``, ``de``, ``fr`` or ``es``; anything else falls back to ``en``."""
    company_name: str
    from_address: EmailAddress
    """Our mailbox: ``email`` is the envelope sender, ``name`` the From display name."""
    template: str | None = None
    """The mailbox's own template for ``language``; None for the built-in one."""


@dataclass(frozen=True)
class ComposedMessage:
    """A message ready to send; ``raw`` is stored in the outbox and re-sent unchanged."""

    message_id: str
    envelope_from: str
    recipients: tuple[str, ...]
    subject: str
    text: str
    """The body as plain text, for display in the UI and the audit trail."""
    raw: bytes


def _checked_reference(reference: str) -> str:
    if not _REFERENCE.fullmatch(reference):
        raise ValueError(f"not a usable incident reference: {reference!r}")
    return reference


def _checked_domain(domain: str) -> str:
    try:
        ascii_domain = domain.strip().rstrip(".").lower().encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"not a usable domain: {domain!r}") from exc
    labels = ascii_domain.split(".")
    if not ascii_domain or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"not a usable domain: {domain!r}")
    return ascii_domain


def acknowledgement_message_id(reference: str, domain: str) -> str:
    """The Message-ID of the acknowledgement for incident ``reference``.

    Derived only from the incident, never from the clock or a random source,
    so composing again after a crash yields the same id and the receiving
    side can recognise the duplicate. The hash keeps ids distinct even if two
    references differ only in case.

    >>> acknowledgement_message_id("CR-1042", "support.example.com")
    '<codered.ack.cr-1042.966183c42c2e6c33@support.example.com>'
    """
    ref = _checked_reference(reference)
    host = _checked_domain(domain)
    digest = hashlib.sha256(f"codered-ack\0{ref}\0{host}".encode()).hexdigest()[:16]
    return f"<codered.ack.{ref.lower()}.{digest}@{host}>"


def loop_marker(address: str) -> str:
    """Value of ``X-Codered-Loop`` for mail sent from ``address``.

    The first 32 hex digits of the SHA-256 of the lower-cased address: a guard
    that knows our own addresses recognises our mail without the header
    revealing which mailbox sent it, and the value fits on one header line.
    """
    return hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()[:32]


def reply_subject(original: str, reference: str, language: str) -> str:
    """``Re: <original> [CR-1042]``, without doubling ``Re:`` or the reference tag.

    Localized reply prefixes (``AW:``, ``SV:``, ``RE:``) count as already
    present. An empty subject becomes a localized default.
    """
    base = sanitize_header_value(original, max_length=_MAX_SUBJECT)
    if not base:
        base = default_subject(language)
    if not _REPLY_PREFIX.match(base):
        base = f"Re: {base}"
    tag = f"[{reference}]"
    if tag not in base:
        base = f"{base} {tag}"
    return sanitize_header_value(base)


def compose_acknowledgement(facts: AcknowledgementFacts, *, now: datetime) -> ComposedMessage:
    """Build the acknowledgement for one incident.

    ``now`` becomes the Date header; pass the time the outbox row is written
    so the stored bytes are final. Every inbound value (subject, display name,
    ids) is sanitized, and the header block of the result is checked against
    the list we meant to write: should any library misbehave, this raises
    ValueError rather than send a message with an injected header.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    reference = _checked_reference(facts.reference)
    message_id = acknowledgement_message_id(reference, facts.from_address.domain)
    subject = reply_subject(facts.original_subject, reference, facts.language)
    body = render_acknowledgement(
        language=facts.language,
        display_name=facts.customer.name,
        email=facts.customer.email,
        subject=facts.original_subject,
        category=facts.category,
        reply_by=facts.reply_by,
        display_tz=facts.display_tz,
        reference=reference,
        company_name=facts.company_name,
        template=facts.template,
    )
    sender = mailbox(facts.from_address.email, facts.from_address.name)
    recipient = mailbox(facts.customer.email, facts.customer.name)
    in_reply_to = sanitize_message_id(facts.original_message_id)
    references = references_chain(facts.original_message_id, facts.original_references)

    raw = build_message(
        sender=sender,
        recipient=recipient,
        subject=subject,
        now=now,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        reference=reference,
        text=body.text,
        language=body.language,
        automatic=True,
    )
    return ComposedMessage(
        message_id=message_id,
        envelope_from=sender.addr_spec,
        recipients=(recipient.addr_spec,),
        subject=subject,
        text=body.text,
        raw=raw,
    )


def build_message(
    *,
    sender: Address,
    recipient: Address,
    subject: str,
    now: datetime,
    message_id: str,
    in_reply_to: str | None,
    references: Sequence[str],
    reference: str,
    text: str,
    language: str,
    automatic: bool,
) -> bytes:
    """The bytes of one message of ours, from parts already sanitized by the caller.

    ``automatic`` adds ``Auto-Submitted: auto-replied`` (RFC 3834), which only mail sent
    without a person's decision carries. The header block is verified before returning.

    Written field by field rather than through an ``EmailMessage``, which parses every
    value it is given and folds it again on output: in an outage flood that was the
    largest single cost of acknowledging. The bytes are the ones ``EmailMessage`` with
    this module's policy writes (a test holds the two to the same output): a field whose
    value is short plain ASCII is written as is, and any other goes through the policy's
    own header classes, exactly as the ``email`` package would fold and encode it.
    """
    fields: list[tuple[str, str]] = [
        ("From", _address_field("From", sender)),
        ("To", _address_field("To", recipient)),
        ("Subject", _subject_field(subject)),
        ("Date", f"Date: {format_datetime(now)}\r\n"),
        ("Message-ID", _plain_field("Message-ID", message_id)),
    ]
    if in_reply_to is not None:
        fields.append(("In-Reply-To", _id_field("In-Reply-To", [in_reply_to])))
    if references:
        fields.append(("References", _id_field("References", references)))
    if automatic:
        fields.append(("Auto-Submitted", "Auto-Submitted: auto-replied\r\n"))
    fields += [
        ("X-Auto-Response-Suppress", "X-Auto-Response-Suppress: All\r\n"),
        (LOOP_HEADER, f"{LOOP_HEADER}: {loop_marker(sender.addr_spec)}\r\n"),
        (REFERENCE_HEADER, _plain_field(REFERENCE_HEADER, reference)),
        ("Content-Type", 'Content-Type: text/plain; charset="utf-8"\r\n'),
        ("Content-Transfer-Encoding", "Content-Transfer-Encoding: quoted-printable\r\n"),
        ("MIME-Version", "MIME-Version: 1.0\r\n"),
        ("Content-Language", _plain_field("Content-Language", language)),
    ]
    head = "".join(line for _, line in fields).encode("ascii", "surrogateescape")
    raw = head + b"\r\n" + _quoted_printable_body(text)
    _verify_header_block(raw, [name for name, _ in fields])
    return raw


_PLAIN_NAME = re.compile(r"[A-Za-z0-9 '_-]*")
"""Display names the ``email`` package writes exactly as given (no quoting, no encoding)."""
_PRINTABLE = re.compile(r"[ -~]*")
_LINE = 78
"""The policy's line length: a longer field is folded (by the policy's header class)."""


def _folded(name: str, value: object) -> str:
    """The field as the policy's header class folds and encodes it, CRLF-terminated."""
    header = _POLICY.header_factory(name, value)
    return str(header.fold(policy=_POLICY))


def _as_is(name: str, value: str) -> str | None:
    """The field as written when the ``email`` package would write it unchanged (short,
    printable, not empty), else None."""
    line = f"{name}: {value}"
    if value and len(line) <= _LINE and _PRINTABLE.fullmatch(value):
        return line + "\r\n"
    return None


def _plain_field(name: str, value: str) -> str:
    """A free-text field: as is when it can be, else folded by the policy."""
    return _as_is(name, value) or _folded(name, value)


def _address_field(name: str, address: Address) -> str:
    shown = address.display_name
    if _PLAIN_NAME.fullmatch(shown) and shown == shown.strip():
        value = f"{shown} <{address.addr_spec}>" if shown else address.addr_spec
        line = _as_is(name, value)
        if line is not None:
            return line
    return _folded(name, address)


def _subject_field(subject: str) -> str:
    """Subject as :func:`~mailer.headers.set_unstructured` sets it: a value with ``=?`` is
    RFC 2047-encoded in full, so that no reader decodes it into something else."""
    clean = sanitize_header_value(subject)
    if ENCODED_WORD_START in clean:
        encoded = Header(clean, charset="utf-8", header_name="Subject").encode(linesep="\r\n")
        return f"Subject: {encoded}\r\n"
    return _plain_field("Subject", clean)


def _id_field(name: str, ids: Sequence[str]) -> str:
    """In-Reply-To and References as :func:`~mailer.headers.set_message_ids` writes them:
    one checked id per folded line, never encoded."""
    checked = [msg_id for msg_id in ids if MSG_ID.fullmatch(msg_id)]
    return f"{name}: " + "\r\n ".join(checked) + "\r\n"


def _quoted_printable_body(text: str) -> bytes:
    """The body as ``set_content(text, charset="utf-8", cte="quoted-printable")`` encodes
    it: the UTF-8 lines, quoted-printable within the policy's line length, CRLF-ended."""
    lines = text.encode("utf-8").splitlines()
    encoded = body_encode((b"\n".join(lines) + b"\n").decode("latin-1"), _LINE)
    return encoded.replace("\n", "\r\n").encode("ascii")


def _verify_header_block(raw: bytes, expected: list[str]) -> None:
    """Refuse bytes whose header block is not exactly the fields we set, CRLF-terminated."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    if b"\r" in head.replace(b"\r\n", b"") or b"\n" in head.replace(b"\r\n", b""):
        raise ValueError("composed message has a bare CR or LF in its header block")
    found = _field_names(head)
    if [name.lower() for name in found] != [name.lower() for name in expected]:
        raise ValueError(f"composed message has unexpected header fields: {found}")


_FIELD_NAME = re.compile(rb"[!-9;-~]+")
"""RFC 5322 field names: printable US-ASCII but the colon."""


def _field_names(head: bytes) -> list[str]:
    """The field names of a header block as a receiving server splits it, stricter still:
    a line that begins with a space or tab continues the field before it; every other line
    must be ``name:`` and starts a field. Anything else refuses the message.

    Why not the ``email`` parser: this runs for every message composed, and parsing our own
    bytes again cost a third of composing them; ``tests/mailer`` still holds every composed
    message to :func:`mailer.headers.header_names` (the lenient ``compat32`` parser)."""
    names: list[str] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not names:
                raise ValueError("composed message begins with a continuation line")
            continue
        name, colon, _ = line.partition(b":")
        if not colon or not _FIELD_NAME.fullmatch(name):
            raise ValueError(f"composed message has a malformed header line: {line[:80]!r}")
        names.append(name.decode("ascii"))
    return names
