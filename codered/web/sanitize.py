"""Inbound mail made safe to show: plain text always, sanitized HTML only in a locked frame.

A customer's HTML is hostile until proven otherwise (scripts, tracking pixels
that tell the sender when a CSM read the mail, phishing forms, charset tricks),
so three independent layers stand between it and the browser: the nh3
allowlist of :func:`sanitize_html`, the CSP of :func:`frame_document` and
:data:`CSP_FOR_MAIL_FRAME` (no scripts, no network loads), and the empty
:data:`IFRAME_SANDBOX`. The text view needs none of this: Jinja2 escapes it.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import html as htmllib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import Literal

import nh3

from inbox.text import clean_body, decode_bytes, html_to_text

__all__ = ["CSP_FOR_MAIL_FRAME", "IFRAME_SANDBOX", "DisplayMessage", "DisplayPart"]
__all__ += ["display_parts", "frame_document", "sanitize_html"]

MAX_PARTS = 200
MAX_DEPTH = 20
MAX_RAW_BYTES = 30_000_000
"""Bodies come before attachments, so the head of a huge message still holds the text."""
MAX_TEXT_CHARS = 500_000
REMOTE_IMAGE_MARKER = "[remote image blocked]"

ALLOWED_TAGS = frozenset(
    {"p", "br", "div", "span", "b", "strong", "i", "em", "u", "s", "ul", "ol", "li",
     "blockquote", "pre", "code", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead",
     "tbody", "tr", "th", "td", "a", "img", "hr", "font", "center", "small", "big", "sub", "sup"}
)  # fmt: skip
_CELL = frozenset({"colspan", "rowspan", "align"})
ALLOWED_ATTRIBUTES: Mapping[str, frozenset[str]] = {
    "*": frozenset({"dir", "lang", "title"}),
    "a": frozenset({"href", "title"}),
    "img": frozenset({"alt", "width", "height", "src"}),
    "td": _CELL,
    "th": _CELL,
    "table": frozenset({"border", "cellpadding", "cellspacing", "width"}),
    "font": frozenset({"color"}),
}
_COUNTED = frozenset({"style", "background", "srcset"})
"""Never kept: offered to nh3 only so that the attribute filter can count what they load."""
_OFFERED = {**ALLOWED_ATTRIBUTES, "*": ALLOWED_ATTRIBUTES["*"] | {"style", "background"}}
_OFFERED["img"] = ALLOWED_ATTRIBUTES["img"] | {"srcset"}
_DROPPED_WITH_CONTENT = frozenset(
    {"script", "style", "title", "template", "svg", "math", "iframe", "object", "noscript"}
)
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):")
_EMBEDDED_IMAGE = re.compile(r"cid:\S+|data:image/(?:png|gif|jpeg|webp);base64,[a-z0-9+/=\s]*")
# Possessive quantifiers: a plain lookahead after \s* backtracks quadratically on long blank runs.
_CSS_REMOTE = re.compile(r"""url\s*+\(\s*+(?!['"]?\s*+data:)|@import\s*+['"]""")
_BLOCKED_SRC = "cid:remote-image-blocked.codered.invalid"
_IMG_TAG = re.compile(r"<img\s[^>]*>")  # exact on nh3 output, which escapes < and > in values
_ALT = re.compile(r'\salt="([^"]*)"')
_C0_SPACE = "".join(map(chr, range(33)))
_UTF7 = frozenset({"utf-7", "utf7", "u7", "unicode-1-1-utf-7", "csunicode11utf7", "x-utf-7"})


@dataclass(frozen=True)
class DisplayPart:
    kind: Literal["text", "html"]
    content: str


@dataclass(frozen=True)
class DisplayMessage:
    """What the UI shows; ``notes`` are sentences for the CSM explaining what was held back.

    ``notes`` is a tuple, not a list, so that the frozen value is really immutable.
    """

    text: str
    html: str | None
    blocked_remote: int
    notes: tuple[str, ...] = ()

    @property
    def parts(self) -> tuple[DisplayPart, ...]:
        """The text, then the HTML when there is any: the order a template offers them."""
        text = DisplayPart("text", self.text)
        return (text,) if self.html is None else (text, DisplayPart("html", self.html))


def _normalize_url(value: str) -> str:
    """What a browser's URL parser starts from: tab and newline removed, ends stripped."""
    return value.replace("\t", "").replace("\n", "").replace("\r", "").strip(_C0_SPACE).lower()


def _is_remote(url: str) -> bool:
    """True when loading ``url`` means a request: http(s), scheme-relative or relative."""
    url = _normalize_url(url)
    scheme = _SCHEME.match(url)
    return bool(url) and not url.startswith("#") and (not scheme or scheme[1] in {"http", "https"})


def _count_remote(attr: str, value: str) -> int:
    if attr == "style":
        return len(_CSS_REMOTE.findall(value.lower()))
    if attr == "srcset":
        return int(bool(value.strip()) and not _normalize_url(value).startswith("data:"))
    return int(_is_remote(value))


def _attribute_filter(blocked: list[int]) -> Callable[[str, str, str], str | None]:
    """The second gate after nh3's own allowlist and scheme check; counts what it removes.

    nh3 also calls it for attributes of elements it is about to drop, hence the tag test.
    Everything not named here (alt, width, the ``rel`` nh3 adds) was already allowlisted.
    """

    def check(tag: str, attr: str, value: str) -> str | None:
        if tag not in ALLOWED_TAGS:
            return None
        if attr in _COUNTED:
            blocked[0] += _count_remote(attr, value)
            return None
        if attr == "href":
            scheme = _SCHEME.match(_normalize_url(value))
            return value if scheme and scheme[1] in LINK_SCHEMES else None
        if attr == "src":
            if _EMBEDDED_IMAGE.fullmatch(_normalize_url(value)):
                return value
            if _is_remote(value):
                blocked[0] += 1
                return _BLOCKED_SRC
            return None
        return value

    return check


def _unblock_image(match: re.Match[str]) -> str:
    tag = match[0]
    if f'src="{_BLOCKED_SRC}"' not in tag:
        return tag
    alt = _ALT.search(tag)
    label = " ".join(htmllib.unescape(alt[1]).split()) if alt else ""
    return htmllib.escape(f"[{label}]" if label else REMOTE_IMAGE_MARKER, quote=False)


def _count_style_blocks(html: str) -> int:
    """Remote loads inside ``<style>``, which nh3 drops whole; split, not regex, to stay linear."""
    lower = html.lower()
    chunks = lower.split("<style")[1:]
    return sum(len(_CSS_REMOTE.findall(chunk.split("</style", 1)[0])) for chunk in chunks)


def sanitize_html(html: str) -> tuple[str, int]:
    """Return ``(clean_html, blocked_remote)`` for an untrusted HTML body.

    All CSS goes (``style`` attributes and ``<style>``): filtering properties
    is a losing game (``url()``, ``expression()``, overlays), and mail reads
    fine without it. Links get ``rel="noopener noreferrer nofollow"`` and no
    ``target``: the frame's ``<base target="_blank">`` sets that for all of
    them at once. Relative URLs are refused, because inside our frame they
    would point at our own server. Remote images become their alt text.
    """
    blocked = [_count_style_blocks(html)]
    cleaner = nh3.Cleaner(
        tags=ALLOWED_TAGS,
        clean_content_tags=_DROPPED_WITH_CONTENT,
        attributes=_OFFERED,
        attribute_filter=_attribute_filter(blocked),
        strip_comments=True,
        link_rel="noopener noreferrer nofollow",
        url_schemes=LINK_SCHEMES | {"cid", "data"},  # cid and data only survive on img src
        url_relative="pass_through",  # so the filter sees, counts and removes them
    )
    try:
        clean = cleaner.clean(html)
    except UnicodeEncodeError:  # lone surrogates cannot cross into Rust
        clean = cleaner.clean(html.encode("utf-8", "replace").decode("utf-8"))
    return _IMG_TAG.sub(_unblock_image, clean), blocked[0]


_FRAME_STYLE = (
    "body{margin:0;padding:12px;font:14px/1.5 system-ui,sans-serif;overflow-wrap:anywhere}"
    "img{max-width:100%;height:auto}pre{white-space:pre-wrap}"
)
_STYLE_DIGEST = base64.b64encode(hashlib.sha256(_FRAME_STYLE.encode()).digest()).decode()
_POLICY = (
    "default-src 'none'",
    "img-src data: cid:",
    f"style-src 'sha256-{_STYLE_DIGEST}'",
    "base-uri 'none'",
    "form-action 'none'",
)
CSP_FOR_MAIL_FRAME = "; ".join((*_POLICY, "frame-ancestors 'self'", "sandbox"))
"""Header for the response that serves :func:`frame_document`.

No scripts and no network loads at all; only our own stylesheet, pinned by
hash, so even a ``style`` attribute that slipped past nh3 would not apply.
``sandbox`` keeps the document sandboxed when opened outside the iframe, and
``frame-ancestors`` stops other sites framing it. Browsers ignore both in a
``<meta>`` tag, so the copy inside the document omits them.
"""
IFRAME_SANDBOX = ""
"""``sandbox=""`` applies every restriction, and the mail needs no exception.

``allow-same-origin`` would give the frame our origin (cookies, storage, our
API), and with ``allow-scripts`` the mail could lift the sandbox itself.
``allow-popups`` would make links open tabs; without it a click is refused,
so no foreign page ever loads inside our UI. The URL shows on hover.
"""


def frame_document(clean_html: str) -> str:
    """Wrap **already sanitized** HTML (from :func:`sanitize_html`) in the frame's document.

    The CSP ``<meta>`` comes first in ``<head>``, so it governs everything after it.
    """
    policy = htmllib.escape("; ".join(_POLICY))
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="referrer" content="no-referrer"><base target="_blank">'
        f"<style>{_FRAME_STYLE}</style></head><body>{clean_html}</body></html>"
    )


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _describe(part: Message) -> tuple[str, str | None, bool]:
    """Content type, printable charset name and whether the part is an attachment."""
    try:
        ctype, charset = part.get_content_type().lower(), part.get_content_charset()
        disposition, filename = part.get_content_disposition(), part.get_filename()
    except Exception:  # compat32 rarely raises, but a display must not fail on one header
        return "text/plain", None, False
    name = "".join(c for c in (charset or "").strip("\"' ") if c.isprintable())[:40]
    return (
        ctype,
        name or None,
        disposition == "attachment" or (bool(filename) and disposition != "inline"),
    )


def _bodies(message: Message, notes: list[str]) -> Iterator[tuple[str, bytes, str | None]]:
    """Yield ``(content type, payload, charset)`` per inline body part, without recursion."""
    stack: list[tuple[Message, int]] = [(message, 0)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        ctype, charset, attached = _describe(part)
        payload = part.get_payload()
        if isinstance(payload, list):
            if depth >= MAX_DEPTH:
                notes.append(f"parts nested more than {MAX_DEPTH} levels deep were not read")
            elif ctype.startswith("multipart/"):  # attached messages (message/*) stay attachments
                stack.extend((c, depth + 1) for c in reversed(payload) if isinstance(c, Message))
        elif ctype.startswith("multipart/"):  # no boundary found: the whole body is one string
            notes.append("the MIME structure is broken; part of the message is shown as raw text")
            yield "text/plain", _payload(part), charset
        elif ctype in {"text/plain", "text/html"} and not attached:
            yield ctype, _payload(part), charset
    if stack:
        notes.append(f"the message has more than {MAX_PARTS} parts; only the first were read")


def _known_charset(charset: str) -> bool:
    """Not ``b"".decode(charset)``: CPython returns "" for empty input without a lookup."""
    try:
        return isinstance(codecs.decode(b"", charset), str)  # bytes for "base64", "hex"
    except Exception:
        return False


def _display(raw: bytes, max_html_bytes: int) -> DisplayMessage:
    notes: list[str] = []
    if len(raw) > MAX_RAW_BYTES:
        raw = raw[:MAX_RAW_BYTES]
        notes.append(f"the message is over {MAX_RAW_BYTES // 10**6} MB; the rest was not read")
    # compat32 as in inbox.parse: the parts the pipeline judged, and no raising on bad headers.
    message = BytesParser(policy=policy.compat32).parsebytes(raw)
    plain: list[str] = []
    html: list[str] = []
    refused: list[str] = []
    html_bytes = 0
    for ctype, data, charset in _bodies(message, notes):
        if ctype == "text/html" and charset and charset.lower().replace("_", "-") in _UTF7:
            # UTF-7 hides "<" as "+ADw-": its ASCII form shows the trick instead of running it.
            notes.append(f"the charset {charset} is not supported for HTML; shown as text")
            refused.append(data.decode("ascii", errors="replace"))
            continue
        if charset and not _known_charset(charset):
            notes.append(f"the charset {charset} is unknown; the text was decoded as best we could")
        html_bytes += len(data) if ctype == "text/html" else 0
        (html if ctype == "text/html" else plain).append(decode_bytes(data, charset))
    source = "\n".join(html)
    pieces = plain if any(p.strip() for p in plain) else [html_to_text(source), *refused]
    text = "\n\n".join(piece for piece in pieces if piece.strip())
    if len(text) > MAX_TEXT_CHARS:
        notes.append(f"the text is longer than {MAX_TEXT_CHARS:,} characters and was cut")
    clean, blocked = None, 0
    if html and html_bytes > max_html_bytes:
        size = f"{max_html_bytes / 1024:.0f} KB"
        notes.append(f"the HTML part was larger than {size} and is shown as text only")
    elif html:
        clean, blocked = sanitize_html(source)
    if blocked:
        notes.append(f"{blocked} remote image{' was' if blocked == 1 else 's were'} not loaded")
    notes_once = tuple(dict.fromkeys(notes))
    return DisplayMessage(clean_body(text, MAX_TEXT_CHARS), clean, blocked, notes_once)


def display_parts(raw: bytes, *, max_html_bytes: int = 512_000) -> DisplayMessage:
    """What to show for one stored message; never raises.

    The text is the text/plain body, or the HTML converted by inscriptis when
    there is none. ``html`` is the sanitized HTML body for :func:`frame_document`,
    or None. Mail that cannot be parsed at all is shown as its raw source.
    """
    data = bytes(raw) if isinstance(raw, bytes | bytearray | memoryview) else b""
    try:
        return _display(data, max_html_bytes)
    except Exception:  # RecursionError on absurd nesting, MemoryError, a library bug
        text = clean_body(decode_bytes(data[: MAX_TEXT_CHARS * 4], None), MAX_TEXT_CHARS)
        return DisplayMessage(text, None, 0, ("the message could not be read; shown as source",))
