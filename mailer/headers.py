"""Turning untrusted values into header content that cannot grow extra header lines.

Everything a customer controls (subject, display name, Message-IDs) reaches
our outgoing headers through this module (DESIGN invariant 6). Stripping CR
and LF is not enough on its own: Python's ``email`` package *decodes* RFC 2047
encoded-words it finds in a value we assign, so a subject that reads
``=?UTF-8?Q?x=0ABcc:_attacker@evil.test?=`` turns back into ``x\\nBcc: ...``
inside the library and, on Python versions without the CVE-2024-6923 fix, is
written out as a separate ``Bcc:`` line. Hence the helpers below encode such
values themselves, and :func:`header_names` lets the composer prove the result.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from email.errors import HeaderParseError
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import compat32
from functools import lru_cache

__all__ = [
    "ENCODED_WORD_START",
    "MSG_ID",
    "header_names",
    "mailbox",
    "references_chain",
    "sanitize_header_value",
    "sanitize_message_id",
    "set_message_ids",
    "set_unstructured",
]

_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Embedding and override marks: invisible, and used to make text read backwards."""

MSG_ID = re.compile(r"<[!-;=?-~]{1,250}>")
"""``<`` + printable ASCII without space, ``<`` or ``>`` + ``>``; RFC 5322 ``msg-id``, leniently."""

ENCODED_WORD_START = "=?"

MAX_REFERENCES = 20
"""RFC 5322 3.6.4 lets a reply trim References; keep the root and the latest ids."""


def sanitize_header_value(value: str, max_length: int = 998) -> str:
    """Make ``value`` safe to place in one header field.

    Control characters (C0 including CR, LF and NUL, DEL, C1) and Unicode line
    and paragraph separators become spaces, because each of them is a line break
    to *some* mail software; runs of whitespace collapse to one space; bidi
    override marks and lone surrogates are removed. The result is cut to
    ``max_length`` characters (998 is RFC 5322's hard line limit), ending in
    ``…`` when something was cut, so the reader can tell.

    >>> sanitize_header_value("x\\r\\nBcc: attacker@evil.test")
    'x Bcc: attacker@evil.test'
    """
    if max_length < 1:
        raise ValueError("max_length must be at least 1")
    if value.isascii() and value.isprintable():  # nothing to replace or remove: C loops only
        cleaned = " ".join(value.split())
    else:
        kept: list[str] = []
        for char in value:
            category = unicodedata.category(char)
            if category in ("Cc", "Zl", "Zp"):
                kept.append(" ")
            elif category == "Cs" or char in _BIDI_CONTROLS:
                continue
            else:
                kept.append(char)
        cleaned = " ".join("".join(kept).split())
    if len(cleaned) <= max_length:
        return cleaned
    return cleaned[: max_length - 1].rstrip() + "…"


def sanitize_message_id(value: str | None) -> str | None:
    """Return ``value`` as a clean ``<id>`` token, or None when it is not one.

    Ids are copied into In-Reply-To and References, so anything that does not
    look exactly like a message id (spaces, nested brackets, non-ASCII, too
    long) is dropped rather than repaired: threading is a nicety, injection is not.
    """
    if value is None:
        return None
    candidate = sanitize_header_value(value, max_length=300)
    return candidate if MSG_ID.fullmatch(candidate) else None


def references_chain(
    original_message_id: str | None,
    original_references: Iterable[str],
    max_count: int = MAX_REFERENCES,
) -> tuple[str, ...]:
    """Build a reply's References: the original's References plus its own id.

    Invalid ids are dropped and duplicates removed (first occurrence wins).
    When more than ``max_count`` remain, the first (thread root) and the most
    recent ones are kept, as RFC 5322 section 3.6.4 suggests.
    """
    chain: list[str] = []
    for raw in (*original_references, original_message_id):
        msg_id = sanitize_message_id(raw)
        if msg_id is not None and msg_id not in chain:
            chain.append(msg_id)
    if len(chain) > max_count:
        chain = [chain[0], *chain[len(chain) - max_count + 1 :]]
    return tuple(chain)


@lru_cache(maxsize=256)
def mailbox(email: str, display_name: str = "") -> Address:
    """Build an :class:`~email.headerregistry.Address` from untrusted parts.

    Cached (an ``Address`` never changes): every acknowledgement of a mailbox is sent from
    the same address, and building one parses it with the ``email`` package's own parser.

    The display name is sanitized; if it still contains encoded-word syntax
    (``=?``) it is dropped, because the ``email`` package would decode it back
    into raw characters (line breaks included) when rendering the header.
    An internationalized domain is converted to its ASCII (IDNA) form, since
    the ``email`` package would otherwise put an encoded-word inside the
    address, which no server accepts. A non-ASCII local part would need
    SMTPUTF8 end to end, so it raises ValueError, as does any unusable address.
    """
    addr_spec = sanitize_header_value(email, max_length=320)
    if not addr_spec or " " in addr_spec or addr_spec.count("@") != 1:
        raise ValueError(f"not a usable email address: {email!r}")
    local, _, domain = addr_spec.partition("@")
    if not local or not domain:
        raise ValueError(f"not a usable email address: {email!r}")
    try:
        addr_spec = f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError as exc:
        raise ValueError(f"not a usable email domain: {email!r}") from exc
    if not addr_spec.isascii():
        raise ValueError(f"non-ASCII local part needs SMTPUTF8: {email!r}")
    name = sanitize_header_value(display_name, max_length=200)
    if ENCODED_WORD_START in name:
        name = ""
    try:
        return Address(display_name=name, addr_spec=addr_spec)
    except (ValueError, IndexError, TypeError, HeaderParseError) as exc:
        raise ValueError(f"not a usable email address: {email!r}") from exc


def set_unstructured(message: EmailMessage, name: str, value: str) -> None:
    """Set a free-text header (Subject) so that it renders as exactly one field.

    Plain values go through the ``email`` package as usual. A value that
    contains ``=?`` is RFC 2047-encoded here in full, so recipients see the
    literal text and the library never gets a chance to decode it. The
    message's policy must use ``refold_source="none"`` so the pre-folded
    value is written as given.
    """
    clean = sanitize_header_value(value)
    if ENCODED_WORD_START not in clean:
        message[name] = clean
        return
    encoded = Header(clean, charset="utf-8", header_name=name).encode(linesep="\n")
    message.set_raw(name, encoded)


def set_message_ids(message: EmailMessage, name: str, ids: Iterable[str]) -> None:
    """Set In-Reply-To or References from ids already checked by :func:`sanitize_message_id`.

    These fields are written raw, one id per folded line: the ``email``
    package treats them as free text and RFC 2047-encodes any id longer than
    a line, which breaks threading in every mail client.
    """
    checked = [msg_id for msg_id in ids if MSG_ID.fullmatch(msg_id)]
    if checked:
        message.set_raw(name, "\n ".join(checked))


def header_names(raw: bytes) -> list[str]:
    """Names of the header fields in ``raw``, in order, as a receiving server would see them.

    Parsed with the lenient ``compat32`` policy and no decoding at all, so an
    injected line shows up here exactly as it would on the wire.
    """
    parsed = BytesHeaderParser(policy=compat32).parsebytes(raw)
    return list(parsed.keys())
