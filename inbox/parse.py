"""Raw RFC 5322 bytes in, one typed :class:`~inbox.message.InboundEmail` out.

This is the only place in codered that touches MIME. It has to survive
anything a stranger can put in a mailbox, so it follows three rules:

* Bounded work. Bytes are fed to the parser in chunks with the clock checked
  in between, the MIME tree is measured before it is walked, and every text
  handed to a library is capped first (see ``inbox.text``).
* One failure type. Whatever goes wrong ends as :class:`ParseError` with a
  one-sentence reason, because the caller dead-letters exactly that.
* Lenient decoding. Unknown charsets, broken boundaries and bad base64 are
  normal in the wild; they degrade the text, they do not reject the message.

The stdlib ``compat32`` policy is used on purpose: it keeps header values raw
(we decode them ourselves in ``inbox.headers``), never raises on a malformed
header when it is read, and parses many-part messages several times faster
than ``policy.default``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.feedparser import BytesFeedParser
from email.message import Message
from email.utils import parsedate_to_datetime

from inbox.headers import (
    MAX_VALUE_CHARS,
    decode_text,
    fix_8bit,
    parse_mailboxes,
    parse_message_ids,
    sanitize,
)
from inbox.message import AttachmentInfo, EmailAddress, InboundEmail, ParseError, ParseLimits
from inbox.text import clean_body, decode_bytes, extract_new_text, html_to_text

__all__ = ["parse_email"]

FEED_CHUNK = 4 * 1024
"""Small enough that the clock is checked often even when each line costs a lot to parse."""
MAX_REFERENCES = 50
MAX_RECIPIENTS = 100
MAX_DEFECTS = 20
MAX_SUBJECT_CHARS = 998
"""RFC 5322 line limit; a longer subject can only be an attack or an accident."""

_MESSAGE_HEADERS = frozenset(
    {
        "from", "sender", "to", "cc", "subject", "date", "message-id", "received",
        "return-path", "reply-to", "mime-version", "content-type", "delivered-to",
        "in-reply-to", "references", "x-original-to",
    }
)  # fmt: skip
_BODY_TYPES = frozenset({"text/plain", "text/html"})


def parse_email(raw: bytes, limits: ParseLimits = ParseLimits()) -> InboundEmail:  # noqa: B008
    """Parse ``raw`` into an :class:`InboundEmail` or raise :class:`ParseError`.

    >>> parse_email(b"From: Ann <ANN@example.test>\\r\\n\\r\\nBroken again.").sender
    EmailAddress(email='ann@example.test', name='Ann')

    Any other exception would bypass the dead-letter path and stall the
    mailbox, so everything unexpected is translated here, naming its class.
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise ParseError(f"Expected raw message bytes, got {type(raw).__name__}.")
    deadline = time.monotonic() + limits.max_seconds
    try:
        return _Parser(bytes(raw), limits, deadline).parse()
    except ParseError:
        raise
    except RecursionError as exc:
        raise ParseError("The MIME structure is nested too deeply to parse.") from exc
    except MemoryError as exc:
        raise ParseError("The message is too large to parse in memory.") from exc
    except Exception as exc:
        detail = sanitize(str(exc), 200)
        raise ParseError(f"Unexpected {type(exc).__name__} while parsing: {detail}") from exc


@dataclass
class _Body:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[AttachmentInfo] = field(default_factory=list)
    chars: int = 0
    language: str | None = None


class _Parser:
    """One parse: holds the limits and the deadline so helpers need not pass them around."""

    def __init__(self, raw: bytes, limits: ParseLimits, deadline: float) -> None:
        self.raw = raw
        self.limits = limits
        self.deadline = deadline

    def check_time(self, stage: str) -> None:
        if time.monotonic() > self.deadline:
            raise ParseError(
                f"Parsing took longer than {self.limits.max_seconds:g} s (while {stage})."
            )

    def parse(self) -> InboundEmail:
        if not self.raw or self.raw.isspace():
            raise ParseError("The message is empty.")
        message = self.feed()
        raw_headers = [(name.lower(), value) for name, value in message.raw_items()]
        if not any(name in _MESSAGE_HEADERS for name, _ in raw_headers):
            raise ParseError("Not an email: no standard header fields were found.")
        self.check_structure(message)
        body = _Body()
        self.collect(message, body)
        self.check_time("walking MIME parts")
        full_text = self.full_text(body)
        self.check_time("converting HTML")
        new_text = extract_new_text(full_text) if full_text.strip() else ""
        self.check_time("extracting the new reply text")
        return self.build(message, raw_headers, body, full_text, new_text)

    def feed(self) -> Message:
        parser = BytesFeedParser(policy=policy.compat32)
        for start in range(0, len(self.raw), FEED_CHUNK):
            parser.feed(self.raw[start : start + FEED_CHUNK])
            self.check_time("reading MIME structure")
        message = parser.close()
        if not isinstance(message, Message):
            raise ParseError("The email parser returned no message.")
        return message

    def check_structure(self, message: Message) -> None:
        """Measure part count and nesting depth before anything walks the tree recursively."""
        stack: list[tuple[Message, int]] = [(message, 0)]
        count = 0
        while stack:
            part, depth = stack.pop()
            count += 1
            if count > self.limits.max_parts:
                raise ParseError(f"The message has more than {self.limits.max_parts} MIME parts.")
            if depth > self.limits.max_depth:
                raise ParseError(
                    f"MIME parts are nested more than {self.limits.max_depth} levels deep."
                )
            payload = part.get_payload()
            if isinstance(payload, list):
                stack.extend((child, depth + 1) for child in payload if isinstance(child, Message))

    def collect(self, part: Message, body: _Body) -> None:
        """Gather body text and attachment facts; depth is already bounded by check_structure."""
        ctype = _content_type(part)
        payload = part.get_payload()
        children = (
            [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []
        )
        if ctype.startswith("multipart/") and isinstance(payload, list):
            if ctype == "multipart/alternative":
                best = _best_alternative(children)
                if best is not None:
                    self.collect(best, body)
            else:
                for child in children:
                    self.collect(child, body)
            return
        if isinstance(payload, list) or _is_attachment(part, ctype):
            body.attachments.append(_attachment(part, ctype))
            return
        if body.chars >= self.limits.max_text_chars:
            return
        # A multipart whose boundary never appears arrives as one string: read it as text
        # rather than lose what the customer wrote.
        text = _decode_payload(part)
        body.chars += len(text)
        if body.language is None:
            body.language = _language_tag(part.get("content-language"))
        (body.html if ctype == "text/html" else body.plain).append(text)

    def full_text(self, body: _Body) -> str:
        limit = self.limits.max_text_chars
        if any(text.strip() for text in body.plain):
            return clean_body("\n\n".join(body.plain), limit)
        converted = []
        for html in body.html:
            converted.append(html_to_text(html))
            self.check_time("converting HTML")
        return clean_body("\n\n".join(converted), limit)

    def build(
        self,
        message: Message,
        raw_headers: list[tuple[str, str]],
        body: _Body,
        full_text: str,
        new_text: str,
    ) -> InboundEmail:
        first: dict[str, str] = {}
        for name, value in raw_headers:
            first.setdefault(name, value)
        cap = self.limits.max_header_chars

        def addresses(name: str) -> tuple[EmailAddress, ...]:
            joined = ", ".join(value for key, value in raw_headers if key == name)
            return parse_mailboxes(joined[:cap], MAX_RECIPIENTS)

        sender = parse_mailboxes(first.get("from", "")[:cap], 1)
        reply_to = parse_mailboxes(first.get("reply-to", "")[:cap], 1)
        message_id = parse_message_ids(first.get("message-id", "")[:cap], 1)
        in_reply_to = parse_message_ids(first.get("in-reply-to", "")[:cap], 1)
        headers, truncated = _decoded_headers(raw_headers, cap)
        self.check_time("decoding headers")
        return InboundEmail(
            message_id=message_id[0] if message_id else None,
            sender=sender[0] if sender else None,
            reply_to=reply_to[0] if reply_to else None,
            to=addresses("to"),
            cc=addresses("cc"),
            subject=decode_text(first.get("subject", ""), MAX_SUBJECT_CHARS),
            date=_date(first.get("date")),
            in_reply_to=in_reply_to[0] if in_reply_to else None,
            references=parse_message_ids(first.get("references", "")[:cap], MAX_REFERENCES),
            new_text=new_text,
            full_text=full_text,
            headers=headers,
            content_type=_content_type(message),
            return_path=_return_path(first.get("return-path")),
            attachments=tuple(body.attachments[: self.limits.max_parts]),
            defects=_defects(message, truncated),
            size=len(self.raw),
            language_hint=_language_tag(first.get("content-language")) or body.language,
        )


def _content_type(part: Message) -> str:
    try:
        return sanitize(part.get_content_type(), 255).lower() or "text/plain"
    except Exception:
        return "text/plain"


def _is_attachment(part: Message, ctype: str) -> bool:
    if ctype not in _BODY_TYPES and not ctype.startswith("multipart/"):
        return True
    try:
        disposition = part.get_content_disposition()
        filename = part.get_filename()
    except Exception:
        return False
    return disposition == "attachment" or (bool(filename) and disposition != "inline")


def _best_alternative(children: list[Message]) -> Message | None:
    """Plain text is what the sender typed; HTML is a rendering of it, so plain wins."""
    for wanted in ("text/plain", "text/html"):
        for child in children:
            if _content_type(child) == wanted and not _is_attachment(child, wanted):
                return child
    nested = [child for child in children if _content_type(child).startswith("multipart/")]
    return nested[-1] if nested else None


def _decode_payload(part: Message) -> str:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if not isinstance(data, bytes):
        raw = part.get_payload()
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(data, charset)


def _attachment(part: Message, ctype: str) -> AttachmentInfo:
    try:
        filename = part.get_filename() or ""
    except Exception:
        filename = ""
    # Keep only the last path component: a name like "../../x" is for display, never a path.
    name = decode_text(fix_8bit(filename), 255).replace("\\", "/").rpartition("/")[2]
    try:
        data = part.get_payload(decode=True)
        size = len(data) if isinstance(data, bytes) else _encoded_size(part)
    except Exception:
        size = _encoded_size(part)
    return AttachmentInfo(filename=name, content_type=ctype, size=size)


def _encoded_size(part: Message) -> int:
    """Approximate size of a part whose payload is not a single decodable blob."""
    total = 0
    stack = [part]
    while stack:
        payload = stack.pop().get_payload()
        if isinstance(payload, str):
            total += len(payload)
        elif isinstance(payload, list):
            stack.extend(child for child in payload if isinstance(child, Message))
    return total


def _decoded_headers(
    raw_headers: list[tuple[str, str]], cap: int
) -> tuple[dict[str, tuple[str, ...]], bool]:
    """Decode every header into the public mapping, stopping once ``cap`` characters are used."""
    collected: dict[str, list[str]] = {}
    used = 0
    for name, value in raw_headers:
        key = sanitize(name, 200).lower()
        decoded = decode_text(value, min(MAX_VALUE_CHARS, cap))
        used += len(key) + len(decoded)
        if used > cap:
            return {k: tuple(v) for k, v in collected.items()}, True
        collected.setdefault(key, []).append(decoded)
    return {k: tuple(v) for k, v in collected.items()}, False


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(sanitize(fix_8bit(value), 200))
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if parsed.tzinfo is None:
        # "-0000" means UTC with the sender's zone unknown (RFC 5322 section 3.3).
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _return_path(value: str | None) -> str | None:
    if value is None:
        return None
    text = sanitize(fix_8bit(value), 300)
    found = parse_mailboxes(text, 1)
    if found:
        return found[0].email
    # "<>" is the null reverse-path of bounces; anything unparseable is kept visible.
    return text.strip("<> ")


def _language_tag(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    tag = sanitize(value, 100).split(",", 1)[0].strip().lower()
    if tag and len(tag) <= 35 and all(c.isascii() and (c.isalnum() or c == "-") for c in tag):
        return tag
    return None


def _defects(message: Message, headers_truncated: bool) -> tuple[str, ...]:
    names: list[str] = []
    stack = [message]
    while stack and len(names) < MAX_DEFECTS:
        part = stack.pop()
        names.extend(type(defect).__name__ for defect in getattr(part, "defects", ()))
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend(child for child in reversed(payload) if isinstance(child, Message))
    if headers_truncated:
        names.append("HeadersTruncated")
    return tuple(dict.fromkeys(names))[:MAX_DEFECTS]
