"""Body text: charset decoding, HTML to text, and finding what the sender actually wrote.

Complaint detection must judge the customer's *new* words, not the history they
quoted (which usually contains our own previous reply) and not their signature.
Quote and signature recognition is done by ``mail-parser-reply``; this module
only prepares text so that library's regular expressions stay fast on hostile
input, because several of them backtrack quadratically on very long lines or
long runs of blank lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from html import unescape

from inscriptis import get_text
from mailparser_reply import EmailMessage

__all__ = [
    "MAX_HTML_CHARS",
    "REPLY_LANGUAGES",
    "clean_body",
    "decode_bytes",
    "extract_new_text",
    "html_to_text",
]

REPLY_LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es")
"""Languages whose reply headers ("On ... wrote:", "Von: ... Gesendet:") are recognised."""

MAX_HTML_CHARS = 500_000
"""HTML beyond this is cut before conversion: large tables cost inscriptis about 3 s per MB."""

REPLY_SCAN_CHARS = 30_000
"""Only the top of a body is searched for the reply; new text sits above the quoted history."""

WRAP_CHARS = 500
"""Longer lines are wrapped for the reply parser, whose header patterns are quadratic per line."""

# Decoders that are not real mail charsets and have had quadratic-time bugs.
_BLOCKED_CODECS = frozenset({"idna", "punycode"})
_ASCII_NAMES = frozenset({"ascii", "us-ascii", "us_ascii", "646"})
_BODY_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TAG = re.compile(r"<[^>]{0,10000}>")


def _usable_charset(charset: str | None) -> str | None:
    if not charset:
        return None
    name = charset.strip().strip("\"'").lower()
    if not name or name in _BLOCKED_CODECS or len(name) > 40:
        return None
    try:
        b"".decode(name)
    except (LookupError, UnicodeError, ValueError):
        # Unknown names ("x-unknown") and bytes-to-bytes codecs ("base64") land here.
        return None
    return name


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode ``data``; never raises, whatever the declared charset says.

    Order: the declared charset strictly, then UTF-8 strictly (mail mislabelled
    as ASCII or Latin-1 is very often UTF-8), then the declared charset with
    replacement characters, and finally Windows-1252/Latin-1, which decode any
    byte sequence. Losing a character beats losing the complaint.
    """
    declared = _usable_charset(charset)
    for name in (declared, "utf-8"):
        if name is not None:
            try:
                return data.decode(name)
            except (UnicodeError, LookupError, ValueError):
                pass
    if declared is not None and declared not in _ASCII_NAMES:
        try:
            return data.decode(declared, errors="replace")
        except (UnicodeError, LookupError, ValueError):
            pass
    return data.decode("cp1252", errors="replace")


def clean_body(text: str, limit: int) -> str:
    """Normalise line endings, drop NUL and other controls, and cap the length.

    NUL in particular must go: PostgreSQL refuses it in text columns.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _BODY_CONTROLS.sub("", text)[:limit]


def html_to_text(html: str) -> str:
    """Render HTML as plain text with inscriptis, which keeps the layout of tables and lists.

    A crude tag stripper is the fallback so that a document lxml cannot handle
    still yields the customer's words rather than an error.
    """
    html = _BODY_CONTROLS.sub("", html[:MAX_HTML_CHARS])
    if not html.strip():
        return ""
    try:
        return str(get_text(html))
    except Exception:
        return unescape(_TAG.sub(" ", html))


def _wrap(line: str, width: int) -> Iterator[str]:
    prefix = "> " if line.startswith(">") else ""
    while len(line) > width:
        cut = line.rfind(" ", 0, width)
        if cut <= width // 2:
            cut = width
        yield line[:cut]
        line = prefix + line[cut:].lstrip()
    yield line


def _prepare(text: str) -> str:
    """Bound what the reply parser sees: collapse blank runs and spaces, wrap long lines, cap size.

    Continuation lines of a wrapped quote keep their ``>`` so they are still
    recognised as quoted.
    """
    lines: list[str] = []
    size = 0
    blank = False
    for raw_line in text.split("\n"):
        line = " ".join(raw_line.split())
        if not line:
            if not blank and lines:
                lines.append("")
            blank = True
            continue
        blank = False
        for piece in _wrap(line, WRAP_CHARS):
            lines.append(piece)
            size += len(piece) + 1
        if size >= REPLY_SCAN_CHARS:
            break
    return "\n".join(lines)[:REPLY_SCAN_CHARS]


def _drop_quoted_lines(text: str) -> str:
    kept = [line for line in text.split("\n") if not line.lstrip().startswith(">")]
    return "\n".join(kept).strip()


def extract_new_text(text: str, languages: Sequence[str] = REPLY_LANGUAGES) -> str:
    """Return the part of ``text`` the sender wrote now, without quoted history or signature.

    ``EmailMessage`` is used rather than ``EmailReplyParser.parse_reply``
    because only the former lets us keep hyphen lists: customers list their
    problems as "- item" lines, which the default would cut as a signature.
    When nothing is left (a message that is only a quote) the whole text is
    returned, so detection always has something to judge.
    """
    prepared = _prepare(text)
    try:
        message = EmailMessage(text=prepared, languages=list(languages), keep_hyphen_lists=True)
        replies = message.read().replies
        reply = str(replies[0].body) if replies else prepared
    except Exception:
        reply = prepared
    reply = _drop_quoted_lines(reply)
    return reply if reply else text.strip()
