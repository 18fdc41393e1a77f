"""Hostile input: each case either parses or raises ParseError, quickly, and never anything else.

The mailbox is open to the world, so the parser sees whatever an attacker or a
broken mailer can produce. A crash would stall the watcher and a slow parse
would starve it; both are worse than a dead letter.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbox.message import InboundEmail, ParseError, ParseLimits
from inbox.parse import parse_email

BOUND_SECONDS = 5.0
FROM = b"From: Ann <ann@example.test>\r\nSubject: test\r\n"


def nested_multiparts(depth: int) -> bytes:
    opening = b"".join(
        b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % (i - 1, i)
        for i in range(1, depth + 1)
    )
    closing = b"".join(b"--b%d--\r\n" % i for i in range(depth, -1, -1))
    return (
        FROM
        + b'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n'
        + opening
        + b"--b%d\r\nContent-Type: text/plain\r\n\r\nhello\r\n" % depth
        + closing
    )


def many_parts(count: int) -> bytes:
    parts = b"".join(
        b"--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(count)
    )
    return FROM + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + parts + b"--b--\r\n"


BROKEN_BOUNDARY = (
    FROM
    + b'Content-Type: multipart/mixed; boundary="declared"\r\n\r\n'
    + b"--other\r\nContent-Type: text/plain\r\n\r\nMy words survive.\r\n--other--\r\n"
)
UNKNOWN_CHARSET = (
    FROM
    + b"Content-Type: text/plain; charset=x-unknown\r\n\r\nPreis: 10 \xe2\x82\xac, sch\xc3\xb6n\r\n"
)
LATIN1_AS_UTF8 = FROM + b"Content-Type: text/plain; charset=utf-8\r\n\r\nsch\xf6n \x80\r\n"
UTF7_HTML = (
    FROM
    + b"Content-Type: text/html; charset=utf-7\r\n\r\n"
    + b"+ADw-html+AD4-+ADw-body+AD4-Hello+ACE-+ADw-script+AD4-alert(1)+ADw-/script+AD4-"
    + b"+ADw-/body+AD4-+ADw-/html+AD4-\r\n"
)
NUL_BYTES = (
    b"From: Ann <ann@exa\x00mple.test>\r\nSubject: a\x00b\r\nX-Y: \x00\x00\r\n\r\nbo\x00dy\r\n"
)
BAD_BASE64 = FROM + b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64 at all===\r\n"


def _check(raw: bytes) -> InboundEmail | ParseError:
    started = time.monotonic()
    try:
        result: InboundEmail | ParseError = parse_email(raw)
    except ParseError as error:
        result = error
    elapsed = time.monotonic() - started
    assert elapsed < BOUND_SECONDS, f"took {elapsed:.2f} s"
    return result


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("broken boundary", lambda: BROKEN_BOUNDARY),
        ("unknown charset", lambda: UNKNOWN_CHARSET),
        ("utf-7 html", lambda: UTF7_HTML),
        ("nul bytes", lambda: NUL_BYTES),
        ("bad base64", lambda: BAD_BASE64),
        ("10,000 parts", lambda: many_parts(10_000)),
        ("500 nested multiparts", lambda: nested_multiparts(500)),
        ("5,000 nested multiparts", lambda: nested_multiparts(5_000)),
        ("2,000-character subject", lambda: b"From: a@example.test\r\nSubject: " + b"s" * 2000),
        ("missing From", lambda: b"Subject: no sender\r\n\r\nbody"),
        ("garbage bytes", lambda: bytes(range(256)) * 64),
        ("header without body", lambda: b"From: a@example.test"),
        ("5 MB header", lambda: FROM + b"X-Big: " + b"a" * 5_000_000 + b"\r\n\r\nx"),
        ("100k quotes in To", lambda: FROM + b"To: " + b'"' * 100_000 + b"\r\n\r\nx"),
        ("long On-lines", lambda: FROM + b"\r\n" + (b"On " + b"x " * 400 + b"\r\n") * 500),
        ("100k blank lines", lambda: FROM + b"\r\nhi" + b"\r\n" * 100_000 + b"there"),
        ("huge html table", lambda: FROM + b"Content-Type: text/html\r\n\r\n<table>"
            + (b"<tr>" + b"<td>x</td>" * 50 + b"</tr>") * 5_000),
    ],
)  # fmt: skip
def test_hostile_input_is_bounded(name: str, make: Callable[[], bytes]) -> None:
    _check(make())


def test_limits_are_reported_as_parse_errors() -> None:
    with pytest.raises(ParseError, match="more than 1000 MIME parts"):
        parse_email(many_parts(10_000))
    with pytest.raises(ParseError, match="nested more than 50 levels"):
        parse_email(nested_multiparts(500))
    with pytest.raises(ParseError, match="longer than"):
        parse_email(nested_multiparts(60), ParseLimits(max_seconds=0.0))


def test_degraded_input_still_yields_the_words() -> None:
    broken = _check(BROKEN_BOUNDARY)
    assert isinstance(broken, InboundEmail)
    assert "My words survive." in broken.full_text
    assert broken.defects  # the email package noticed, and we pass that on
    unknown = _check(UNKNOWN_CHARSET)
    assert isinstance(unknown, InboundEmail)
    assert "Preis: 10 €, schön" in unknown.full_text
    mislabelled = _check(LATIN1_AS_UTF8)
    assert isinstance(mislabelled, InboundEmail)
    assert mislabelled.full_text.startswith("sch\ufffdn")  # declared charset, with replacement
    utf7 = _check(UTF7_HTML)
    assert isinstance(utf7, InboundEmail)
    assert "Hello!" in utf7.full_text
    nul = _check(NUL_BYTES)
    assert isinstance(nul, InboundEmail)
    assert "\x00" not in nul.full_text and "\x00" not in nul.subject
    long_subject = _check(b"From: a@example.test\r\nSubject: " + b"s" * 2000)
    assert isinstance(long_subject, InboundEmail)
    assert 0 < len(long_subject.subject) <= 998


def header_derived(email: InboundEmail) -> list[str]:
    """Every string that came from a header and could be copied into a reply."""
    values = [email.subject, email.content_type, *email.references, *email.defects]
    values += [v for v in (email.message_id, email.in_reply_to, email.return_path) if v]
    values += [email.language_hint or ""]
    for address in (email.sender, email.reply_to, *email.to, *email.cc):
        if address is not None:
            values += [address.email, address.name]
    for name, items in email.headers.items():
        values += [name, *items]
    for attachment in email.attachments:
        values += [attachment.filename, attachment.content_type]
    return values


def _assert_clean(raw: bytes) -> None:
    result = _check(raw)
    if isinstance(result, InboundEmail):
        for value in header_derived(result):
            assert not any(char in value for char in "\r\n\x00"), repr(value)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2_000))
def test_arbitrary_bytes_only_ever_raise_parse_error(raw: bytes) -> None:
    _assert_clean(raw)


encoded_words = st.builds(
    lambda charset, kind, text: f"=?{charset}?{kind}?{text}?=",
    st.sampled_from(["utf-8", "UTF-8", "iso-8859-1", "x-unknown", "utf-7", "base64"]),
    st.sampled_from(["q", "Q", "b", "B"]),
    st.text(alphabet='=0AD_x@:<>,"abcXYZ+/ ', max_size=30),
)
header_values = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.lists(st.one_of(encoded_words, st.text(max_size=20)), max_size=6).map(
        lambda parts: " ".join(parts).encode("utf-8", "surrogatepass")
    ),
)
FIELDS = (
    b"From", b"Reply-To", b"To", b"Cc", b"Subject", b"Message-ID", b"In-Reply-To",
    b"References", b"Return-Path", b"Date", b"Content-Language", b"Content-Type",
    b"Content-Disposition", b"X-Anything",
)  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(FIELDS), header_values), min_size=1, max_size=8))
def test_arbitrary_header_values_never_leak_line_breaks(fields: list[tuple[bytes, bytes]]) -> None:
    head = b"".join(name + b": " + value + b"\r\n" for name, value in fields)
    _assert_clean(b"From: a@example.test\r\n" + head + b"\r\nbody\r\n")
