"""The typed shape of one inbound email, as every later stage sees it.

Parsing happens once (``inbox.parse``); guards, detection and composing a reply
read only these fields, so nothing downstream ever touches raw MIME again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["AttachmentInfo", "EmailAddress", "InboundEmail", "ParseError", "ParseLimits"]


class ParseError(Exception):
    """Raised when raw bytes cannot be turned into an :class:`InboundEmail`.

    ``reason`` is a short, human-readable sentence that ends up on the dead letter.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ParseLimits:
    """Bounds that keep hostile mail from costing unbounded time or memory."""

    max_parts: int = 1000
    max_depth: int = 50
    max_seconds: float = 5.0
    max_header_chars: int = 100_000
    max_text_chars: int = 200_000


@dataclass(frozen=True)
class EmailAddress:
    """One mailbox: ``email`` is lowercased and free of CR/LF/NUL; ``name`` may be empty."""

    email: str
    name: str = ""

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2]

    @property
    def local_part(self) -> str:
        return self.email.rpartition("@")[0]


@dataclass(frozen=True)
class AttachmentInfo:
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class InboundEmail:
    """Everything the rest of codered may know about one received message.

    All strings are decoded (RFC 2047), unfolded and stripped of CR, LF and NUL
    where they came from headers, so they are safe to reuse in a reply.
    """

    message_id: str | None
    """Normalised ``<id@host>`` form, or None when absent or unusable."""
    sender: EmailAddress | None
    """The From address; None when missing or unparseable."""
    reply_to: EmailAddress | None
    to: tuple[EmailAddress, ...]
    cc: tuple[EmailAddress, ...]
    subject: str
    date: datetime | None
    """Timezone-aware Date header, or None."""
    in_reply_to: str | None
    references: tuple[str, ...]
    new_text: str
    """The text the sender wrote in this message: quoted history and signature removed."""
    full_text: str
    """The whole text body (HTML converted to text), quotes included."""
    headers: Mapping[str, tuple[str, ...]]
    """Lower-cased header name to every decoded value, in order."""
    content_type: str
    """Top-level MIME type, for example ``multipart/report``."""
    return_path: str | None
    """None when the header is absent, ``""`` for a null ``<>`` path."""
    attachments: tuple[AttachmentInfo, ...] = ()
    defects: tuple[str, ...] = ()
    size: int = 0
    language_hint: str | None = field(default=None)
    """Content-Language header, if any (a hint only; detection decides)."""

    def header(self, name: str) -> str | None:
        """First value of header ``name`` (case-insensitive), or None."""
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def reply_address(self) -> EmailAddress | None:
        """Where a reply goes: Reply-To when present, else From."""
        return self.reply_to or self.sender
