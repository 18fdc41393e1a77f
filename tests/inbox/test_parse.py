"""parse_email on realistic messages: the fields every later stage relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from inbox.headers import decode_text, parse_mailboxes, parse_message_ids
from inbox.message import EmailAddress, ParseError
from inbox.parse import parse_email

PLUS_ONE = timezone(timedelta(hours=1))


def message(*headers: str, body: str = "Hello.\n", charset: str = "utf-8") -> bytes:
    """Build raw bytes with CRLF line endings, as they arrive from IMAP."""
    head = list(headers)
    if not any(h.lower().startswith("content-type:") for h in head):
        head.append(f"Content-Type: text/plain; charset={charset}")
    text = "\r\n".join(head) + "\r\n\r\n" + body.replace("\n", "\r\n")
    return text.encode(charset)


def no_breaks(value: str) -> bool:
    return not any(char in value for char in "\r\n\x00")


def test_plain_message_fields() -> None:
    raw = message(
        "Return-Path: <ann@example.test>",
        "From: Ann Example <Ann@Example.TEST>",
        "To: Support <support@shop.test>, sales@shop.test",
        "Cc: boss@example.test",
        "Reply-To: Ann Private <ann.private@example.test>",
        "Subject: My order #1234 never arrived",
        "Date: Tue, 04 Mar 2025 09:15:00 +0100",
        "Message-ID: <CAF1234@mail.example.test>",
        "Content-Language: en-GB",
        body="Hi,\n\nmy order #1234 never arrived and nobody answers the phone.\n",
    )
    email = parse_email(raw)
    assert email.sender == EmailAddress("ann@example.test", "Ann Example")
    assert email.reply_to == EmailAddress("ann.private@example.test", "Ann Private")
    assert email.reply_address == email.reply_to
    assert [a.email for a in email.to] == ["support@shop.test", "sales@shop.test"]
    assert [a.email for a in email.cc] == ["boss@example.test"]
    assert email.subject == "My order #1234 never arrived"
    assert email.message_id == "<CAF1234@mail.example.test>"
    assert email.date == datetime(2025, 3, 4, 8, 15, tzinfo=UTC)
    assert email.return_path == "ann@example.test"
    assert email.content_type == "text/plain"
    assert email.language_hint == "en-gb"
    assert email.size == len(raw)
    assert "never arrived" in email.new_text
    assert email.header("SUBJECT") == email.subject
    assert email.headers["to"] == ("Support <support@shop.test>, sales@shop.test",)


def test_html_only_message_is_converted_to_text() -> None:
    html = (
        "<html><head><style>p{color:red}</style></head><body>"
        "<p>The <b>blender</b> broke after two days.</p><ul><li>one</li><li>two</li></ul>"
        "</body></html>"
    )
    email = parse_email(message("From: a@example.test", "Content-Type: text/html", body=html))
    assert "The blender broke after two days." in email.full_text
    assert "<b>" not in email.full_text
    assert "color:red" not in email.full_text
    assert "blender" in email.new_text


def test_multipart_alternative_prefers_plain_text() -> None:
    body = (
        "--ALT\n"
        "Content-Type: text/plain; charset=utf-8\n\n"
        "Plain words from the customer.\n"
        "--ALT\n"
        "Content-Type: text/html; charset=utf-8\n\n"
        "<p>HTML words from the customer.</p>\n"
        "--ALT--\n"
    )
    raw = message(
        "From: a@example.test",
        "MIME-Version: 1.0",
        'Content-Type: multipart/alternative; boundary="ALT"',
        body=body,
    )
    email = parse_email(raw)
    assert email.content_type == "multipart/alternative"
    assert "Plain words" in email.full_text
    assert "HTML words" not in email.full_text


def test_attachment_is_recorded_not_read() -> None:
    body = (
        "--MIX\n"
        "Content-Type: text/plain\n\n"
        "See the photo of the damage.\n"
        "--MIX\n"
        'Content-Type: image/jpeg; name="damage.jpg"\n'
        'Content-Disposition: attachment; filename="../../damage.jpg"\n'
        "Content-Transfer-Encoding: base64\n\n"
        "/9j/4AAQSkZJRgABAQ==\n"
        "--MIX--\n"
    )
    raw = message(
        "From: a@example.test", 'Content-Type: multipart/mixed; boundary="MIX"', body=body
    )
    email = parse_email(raw)
    assert email.full_text.strip() == "See the photo of the damage."
    (attachment,) = email.attachments
    assert attachment.filename == "damage.jpg"
    assert attachment.content_type == "image/jpeg"
    assert attachment.size == 13


def test_multipart_report_content_type_is_reported() -> None:
    body = (
        "--R\n"
        "Content-Type: text/plain\n\n"
        "Delivery failed.\n"
        "--R\n"
        "Content-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.example.test\n\n"
        "Final-Recipient: rfc822; gone@example.test\n"
        "Action: failed\n"
        "Status: 5.1.1\n"
        "--R--\n"
    )
    raw = message(
        "From: MAILER-DAEMON@mx.example.test",
        "Return-Path: <>",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"',
        body=body,
    )
    email = parse_email(raw)
    assert email.content_type == "multipart/report"
    assert email.return_path == ""
    assert "Delivery failed." in email.full_text
    assert [a.content_type for a in email.attachments] == ["message/delivery-status"]


def test_return_path_absent_is_none() -> None:
    assert parse_email(message("From: a@example.test")).return_path is None


def test_english_quoted_reply_is_removed() -> None:
    body = (
        "This is the third time I write about this.\n"
        "\n"
        "On Mon, 3 Mar 2025 at 10:00, Shop Support <support@shop.test> wrote:\n"
        "> Thank you for contacting us.\n"
        "> We will get back to you.\n"
    )
    email = parse_email(message("From: a@example.test", body=body))
    assert email.new_text == "This is the third time I write about this."
    assert "Thank you for contacting us" in email.full_text


def test_outlook_german_reply_is_removed() -> None:
    body = (
        "Guten Tag,\n"
        "die Lieferung ist immer noch nicht da.\n"
        "\n"
        "Von: Kundenservice <service@shop.test>\n"
        "Gesendet: Montag, 3. März 2025 10:00\n"
        "An: Hans Muster <hans@example.test>\n"
        "Betreff: AW: Lieferung\n"
        "\n"
        "Sehr geehrter Herr Muster, wir kümmern uns darum.\n"
    )
    email = parse_email(message("From: hans@example.test", body=body))
    assert "die Lieferung ist immer noch nicht da." in email.new_text
    assert "kümmern" not in email.new_text
    assert "Gesendet" not in email.new_text


def test_signature_is_removed() -> None:
    body = (
        "The invoice charges me twice.\n"
        "- line one of the problem\n"
        "- line two of the problem\n"
        "\n"
        "Best regards,\n"
        "Ann Example\n"
        "Example Ltd, 1 Road, Town\n"
    )
    email = parse_email(message("From: a@example.test", body=body))
    assert "charges me twice" in email.new_text
    assert "- line two of the problem" in email.new_text  # hyphen lists are not signatures
    assert "Example Ltd" not in email.new_text
    assert "Example Ltd" in email.full_text


def test_quote_only_message_falls_back_to_full_text() -> None:
    email = parse_email(message("From: a@example.test", body="> only a quote\n> nothing new\n"))
    assert email.new_text == email.full_text.strip()


def test_encoded_word_subjects_and_names() -> None:
    raw = message(
        "From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <joerg@example.test>",
        "Subject: =?UTF-8?B?UmVrbGFtYXRpb246IEdlcsOkdA==?= =?UTF-8?Q?_kaputt?= now",
    )
    email = parse_email(raw)
    assert email.sender == EmailAddress("joerg@example.test", "Jörg Müller")
    assert email.subject == "Reklamation: Gerät kaputt now"


def test_raw_utf8_and_unknown_charset_in_headers() -> None:
    raw = ("From: Zoë <zoe@example.test>\r\nSubject: Café =?x-unknown?Q?caf=E9?=\r\n\r\nx").encode()
    email = parse_email(raw)
    assert email.sender is not None and email.sender.name == "Zoë"
    assert email.subject.startswith("Café caf")


def test_cve_2024_6923_encoded_newline_never_reaches_a_header() -> None:
    raw = message(
        "From: =?UTF-8?Q?Eve=0D=0ABcc:_x@evil.test?= <eve@evil.test>",
        "Subject: =?UTF-8?Q?x=0ABcc:_attacker@evil.test?=",
        "X-Note: =?UTF-8?Q?a=00b=0Dc?=",
    )
    email = parse_email(raw)
    assert email.subject == "x Bcc: attacker@evil.test"
    assert email.sender is not None and no_breaks(email.sender.name)
    for values in email.headers.values():
        assert all(no_breaks(value) for value in values)


@pytest.mark.parametrize(
    "header",
    [
        'From: "ceo@bank.test" <attacker@evil.test>',
        "From: ceo@bank.test <attacker@evil.test>",
        'From: "CEO <ceo@bank.test>" <attacker@evil.test>',
        "From: =?utf-8?q?ceo=40bank.test?= <attacker@evil.test>",
    ],
)
def test_display_name_spoofing_yields_the_real_address(header: str) -> None:
    email = parse_email(message(header))
    assert email.sender == EmailAddress("attacker@evil.test", "")


@pytest.mark.parametrize("header", [None, "From: ", "From: not an address", "From: <@>"])
def test_missing_or_garbage_from_gives_no_sender(header: str | None) -> None:
    headers = ["Subject: hi"] + ([header] if header else [])
    assert parse_email(message(*headers)).sender is None


def test_references_and_in_reply_to() -> None:
    many = " ".join(f"<id{i}@example.test>" for i in range(80))
    raw = message(
        "From: a@example.test",
        "In-Reply-To: <parent@example.test> (Ann's message of Monday)",
        f"References: <root@example.test>\r\n <a@x.test> garbage <bad id@x> <b@x.test> {many}",
    )
    email = parse_email(raw)
    assert email.in_reply_to == "<parent@example.test>"
    assert len(email.references) == 50
    assert email.references[0] == "<root@example.test>"
    assert email.references[-1] == "<id79@example.test>"
    assert "<bad id@x>" not in email.references
    assert all(no_breaks(ref) and " " not in ref for ref in email.references)


def test_message_id_without_brackets_is_normalised() -> None:
    assert parse_message_ids("abc.123@host.test", 1) == ("<abc.123@host.test>",)
    assert parse_message_ids("not an id", 1) == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tue, 04 Mar 2025 09:15:00 +0100", datetime(2025, 3, 4, 9, 15, tzinfo=PLUS_ONE)),
        ("4 Mar 2025 09:15 -0000", datetime(2025, 3, 4, 9, 15, tzinfo=UTC)),
        ("yesterday", None),
        ("Tue, 99 Foo 2025 99:99:99 +9999", None),
    ],
)  # fmt: skip
def test_date_parsing(value: str, expected: datetime | None) -> None:
    parsed = parse_email(message("From: a@example.test", f"Date: {value}")).date
    assert parsed == expected
    assert parsed is None or parsed.tzinfo is not None


def test_group_syntax_and_duplicates_in_recipients() -> None:
    email = parse_email(
        message(
            "From: a@example.test",
            "To: undisclosed-recipients:;",
            "Cc: Team: x@example.test, Y <y@example.test>;, x@example.test",
        )
    )
    assert email.to == ()
    assert [a.email for a in email.cc] == ["x@example.test", "y@example.test"]


def test_unit_helpers() -> None:
    assert decode_text("=?utf-8?q?a?=  \t =?utf-8?q?b?= c") == "ab c"
    assert decode_text("=?utf-8?b?A?=") == "=?utf-8?b?A?="  # undecodable: kept as written
    assert parse_mailboxes("<@relay.test:user@host.test>", 5) == (EmailAddress("user@host.test"),)
    assert parse_mailboxes('"a, b" <ab@x.test>, c@x.test (comment)', 5) == (
        EmailAddress("ab@x.test", "a, b"),
        EmailAddress("c@x.test"),
    )


def test_not_an_email_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="Not an email"):
        parse_email(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(ParseError, match="empty"):
        parse_email(b"  \r\n")
