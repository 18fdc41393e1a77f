"""Turning raw header values into strings that are safe to show and to reuse.

Everything read from a header ends up somewhere that matters: in the subject of
our reply, in the audit trail, in the web UI. So every value is decoded
(RFC 2047 encoded words, raw 8-bit bytes), unfolded, stripped of line breaks and
NUL, and capped here, once, before any other code sees it. Header injection
through a decoded ``=0A`` (CVE-2024-6923) is the reason :func:`sanitize` runs
*after* decoding as well as before it.
"""

from __future__ import annotations

import re
from email.header import decode_header

from inbox.message import EmailAddress
from inbox.text import decode_bytes

__all__ = [
    "MAX_VALUE_CHARS",
    "decode_text",
    "fix_8bit",
    "parse_mailboxes",
    "parse_message_ids",
    "sanitize",
]

MAX_VALUE_CHARS = 8192
"""Longest single decoded header value kept; long enough for DKIM and Received."""

MAX_NAME_CHARS = 256
MAX_ADDRESS_CHARS = 254
"""RFC 5321 path limit: nothing longer can be a deliverable address."""

MAX_MSG_ID_CHARS = 250

# C0 controls (CR, LF, NUL and friends), DEL, the Unicode line separators that
# str.splitlines() honours, and bidi overrides used to disguise names.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029\u202a-\u202e\u2066-\u2069]+")
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_MSG_ID = re.compile(r"<([!-;=?-~]+@[!-;=?-~]+)>")
_BARE_MSG_ID = re.compile(r"[!-;=?-~]+@[!-;=?-~]+")
_DOMAIN = re.compile(r"(?:[^\W_](?:[\w-]*[^\W_])?\.)*[^\W_](?:[\w-]*[^\W_])?|\[[^\[\]\\\s]+\]")
_LOCAL_FORBIDDEN = re.compile(r"[\s<>()\[\],;:\\\"@]")
_LOOKS_LIKE_ADDRESS = re.compile(r"[^\s@<>]+@[^\s@<>]+")


def sanitize(value: str, limit: int = MAX_VALUE_CHARS) -> str:
    """Replace line breaks, NUL and other controls by spaces, collapse whitespace, cap length.

    Collapsing whitespace also unfolds folded headers, so callers never need a
    separate unfolding step.
    """
    cleaned = " ".join(_UNSAFE.sub(" ", value).split())
    return cleaned[:limit].rstrip()


def fix_8bit(value: str) -> str:
    """Recover raw 8-bit header bytes that the parser kept as surrogate escapes.

    Modern clients send UTF-8 in headers without encoding it (RFC 6532); older
    ones send Latin-1. Try UTF-8 first, because Latin-1 never fails and would
    turn valid UTF-8 into mojibake.
    """
    if not _SURROGATES.search(value):
        return value
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeError:
        return _SURROGATES.sub("\ufffd", value)
    return decode_bytes(data, None)


def _decode_word(word: str) -> str:
    try:
        ((data, charset),) = decode_header(word)
    except Exception:
        # Broken base64 or an odd split: showing the word undecoded beats losing it.
        return word
    if isinstance(data, str):
        return data
    return decode_bytes(data, charset.split("*", 1)[0] if charset else None)


def decode_text(value: str, limit: int = MAX_VALUE_CHARS) -> str:
    """Decode an unstructured header value (RFC 2047) into a sanitized string.

    Each encoded word is decoded on its own so unknown charsets fall back per
    word instead of failing the whole header, and whitespace between two
    adjacent encoded words is dropped as RFC 2047 section 6.2 requires.
    """
    text = _UNSAFE.sub(" ", fix_8bit(value[: limit * 4]))
    pieces: list[str] = []
    position = 0
    after_word = False
    for match in _ENCODED_WORD.finditer(text):
        gap = text[position : match.start()]
        if not (after_word and gap.isspace()):
            pieces.append(gap)
        pieces.append(_decode_word(match.group(0)))
        position = match.end()
        after_word = True
    pieces.append(text[position:])
    return sanitize("".join(pieces), limit)


def parse_message_ids(value: str, max_count: int) -> tuple[str, ...]:
    """Extract ``<id@host>`` tokens, dropping anything that does not look like one.

    Whitespace, controls and brackets can never be inside a kept id, so ids are
    safe to copy into In-Reply-To/References of a reply. When more than
    ``max_count`` ids are present the first (the thread root) and the last ones
    (the nearest ancestors) are kept, as RFC 5322 section 3.6.4 suggests.
    """
    text = _UNSAFE.sub(" ", fix_8bit(value))
    ids = [f"<{token}>" for token in _MSG_ID.findall(text) if len(token) <= MAX_MSG_ID_CHARS]
    if not ids:
        bare = text.strip()
        if _BARE_MSG_ID.fullmatch(bare) and len(bare) <= MAX_MSG_ID_CHARS:
            ids = [f"<{bare}>"]
    unique = list(dict.fromkeys(ids))
    if len(unique) > max_count > 1:
        unique = unique[:1] + unique[-(max_count - 1) :]
    return tuple(unique[:max_count])


def _normalise_address(candidate: str) -> str | None:
    address = "".join(candidate.split()).lower()
    if not address or len(address) > MAX_ADDRESS_CHARS or _UNSAFE.search(address):
        return None
    local, at, domain = address.rpartition("@")
    if not at or not local or _LOCAL_FORBIDDEN.search(local):
        return None
    if not _DOMAIN.fullmatch(domain):
        return None
    return address


def _mailbox(phrase: str, angle: str | None) -> EmailAddress | None:
    if angle is None:
        address = _normalise_address(phrase)
        return EmailAddress(address) if address else None
    if angle.startswith("@") and ":" in angle:
        angle = angle.rpartition(":")[2]  # obsolete source route "<@relay:user@host>"
    address = _normalise_address(angle)
    if address is None:
        return None
    name = decode_text(phrase, MAX_NAME_CHARS)
    # A display name that is itself a different address exists to fool a human
    # reader ("ceo@bank.test" <attacker@evil.test>); it must not reach the UI.
    if _LOOKS_LIKE_ADDRESS.search(name) and name.lower() != address:
        name = ""
    return EmailAddress(address, name)


def _split_mailboxes(value: str) -> list[tuple[str, str | None]]:
    """Split an address list into ``(display phrase, angle address or None)`` pairs.

    This is a small single-pass scanner rather than ``email.utils.getaddresses``
    because Python 3.11's version lacks the CVE-2023-27043 fix, and neither it
    nor the header registry reads ``ceo@bank.test <attacker@evil.test>`` the
    way mail clients do: the angle address is where a reply goes, so the angle
    address wins. The scan is linear, which keeps hostile headers cheap.
    """
    result: list[tuple[str, str | None]] = []
    phrase: list[str] = []
    angle: list[str] | None = None
    angle_done = False
    in_quote = in_angle = escaped = False
    comment_depth = 0

    def emit() -> None:
        nonlocal phrase, angle, angle_done
        text = "".join(phrase).strip()
        if text or angle is not None:
            result.append((text, "".join(angle) if angle is not None else None))
        phrase, angle, angle_done = [], None, False

    for char in value:
        if escaped:
            escaped = False
            if comment_depth == 0:
                phrase.append(char)  # escapes occur only in quotes (kept) or comments (dropped)
        elif in_quote:
            if char == "\\":
                escaped = True
            elif char == '"':
                in_quote = False
            else:
                phrase.append(char)
        elif comment_depth:
            if char == "\\":
                escaped = True
            elif char == "(":
                comment_depth += 1
            elif char == ")":
                comment_depth -= 1
        elif in_angle:
            if char == ">":
                in_angle, angle_done = False, True
            elif angle is not None and not angle_done:
                angle.append(char)  # only the first angle address counts
        elif char == '"':
            in_quote = True
        elif char == "(":
            comment_depth = 1
        elif char == "<":
            in_angle = True
            if not angle_done:
                angle = []
        elif char in ",;":
            emit()
        elif char == ":" and angle is None and "@" not in "".join(phrase):
            phrase = []  # "Group name:" introduces a group; the name is not an address
        else:
            phrase.append(char)
    emit()
    return result


def parse_mailboxes(value: str, max_count: int) -> tuple[EmailAddress, ...]:
    """Parse an address-list header into at most ``max_count`` valid mailboxes.

    Invalid entries are dropped silently: a garbage From simply yields no
    sender, which the guards then treat as "do not answer".
    """
    text = _UNSAFE.sub(" ", fix_8bit(value))
    found: list[EmailAddress] = []
    seen: set[str] = set()
    for phrase, angle in _split_mailboxes(text):
        mailbox = _mailbox(phrase, angle)
        if mailbox is not None and mailbox.email not in seen:
            seen.add(mailbox.email)
            found.append(mailbox)
            if len(found) >= max_count:
                break
    return tuple(found)
