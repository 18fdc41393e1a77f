"""The direct field writer of ``mailer.compose.build_message`` against the ``email`` package.

``build_message`` writes its fields itself (the ``EmailMessage`` it used to build was the
largest cost of an acknowledgement in a flood). ``_through_email_package`` below is that
former composition, kept here as the oracle: for every input, plain or hostile, the two
must give the same bytes, so nothing a receiving server sees has changed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from mailer.compose import LOOP_HEADER, REFERENCE_HEADER, build_message, loop_marker
from mailer.headers import mailbox, set_message_ids, set_unstructured

_ORACLE_POLICY = SMTP.clone(refold_source="none")


def _through_email_package(
    *,
    sender_name: str,
    recipient_name: str,
    recipient: str,
    subject: str,
    now: datetime,
    in_reply_to: str | None,
    references: Sequence[str],
    text: str,
    language: str,
    automatic: bool,
) -> bytes:
    sender = mailbox("support@acme.example", sender_name)
    message = EmailMessage(policy=_ORACLE_POLICY)
    message["From"] = sender
    message["To"] = mailbox(recipient, recipient_name)
    set_unstructured(message, "Subject", subject)
    message["Date"] = now
    message["Message-ID"] = "<codered.ack.cr-1001.0123456789abcdef@acme.example>"
    if in_reply_to is not None:
        set_message_ids(message, "In-Reply-To", [in_reply_to])
    if references:
        set_message_ids(message, "References", references)
    if automatic:
        message["Auto-Submitted"] = "auto-replied"
    message["X-Auto-Response-Suppress"] = "All"
    message[LOOP_HEADER] = loop_marker(sender.addr_spec)
    message[REFERENCE_HEADER] = "CR-1001"
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message["Content-Language"] = language
    return message.as_bytes()


def _direct(**inputs: object) -> bytes:
    return build_message(
        sender=mailbox("support@acme.example", str(inputs["sender_name"])),
        recipient=mailbox(str(inputs["recipient"]), str(inputs["recipient_name"])),
        subject=str(inputs["subject"]),
        now=inputs["now"],  # type: ignore[arg-type]
        message_id="<codered.ack.cr-1001.0123456789abcdef@acme.example>",
        in_reply_to=inputs["in_reply_to"],  # type: ignore[arg-type]
        references=inputs["references"],  # type: ignore[arg-type]
        reference="CR-1001",
        text=str(inputs["text"]),
        language=str(inputs["language"]),
        automatic=bool(inputs["automatic"]),
    )


NAMES = [
    "",
    "Customer 12",
    "Ann O'Neil",
    "Doe, John",
    "J. R. Smith",
    'Jürgen "Ops" Müller, Ltd.',
    "José Álvarez",
    "李小龙",
    "back\\slash",
    "(parenthesised) name",
    "Name With Many Words That Makes The From Line Longer Than Seventy Eight Chars",
    "Ω" * 60,
    "tab\there",
    "x=?utf-8?q?y?=",
]
SUBJECTS = [
    "Re: Our site is down [CR-1001]",
    "",
    "Ausfall — bitte sofort!",
    "Re: " + "a very long subject line " * 8 + "[CR-1001]",
    "=?UTF-8?Q?x=0ABcc:_attacker@evil.test?=",
    "Überweisung doppelt abgebucht " * 5,
    "subject with trailing spaces   ",
    "100% down; can't log in: help!",
]
TEXTS = [
    "Hello,\n\nWe are on it.\n",
    "Hello José,\n\nWe are on it — really. " + "long line " * 20 + "\nBye\n",
    "no trailing newline",
    "trailing spaces   \nand tabs\t\n",
    "crlf\r\ninside\r\n",
    "=3D already looks encoded =\n",
    "",
    "日本語のテキスト。" * 30,
]
REFERENCES: list[tuple[str | None, tuple[str, ...]]] = [
    (None, ()),
    ("<a@b.example>", ("<a@b.example>",)),
    ("<x@y>", ("<root@y>", "<x@y>")),
    ("<" + "l" * 200 + "@long.example>", tuple(f"<r{n}@x.example>" for n in range(20))),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("subject", SUBJECTS)
def test_names_and_subjects_give_the_email_packages_bytes(name: str, subject: str) -> None:
    inputs = {
        "sender_name": name,
        "recipient_name": name,
        "recipient": "c1@contoso.example",
        "subject": subject,
        "now": datetime(2026, 12, 1, 15, 0, tzinfo=UTC),
        "in_reply_to": "<x@y>",
        "references": ("<root@y>", "<x@y>"),
        "text": "Hello,\n\nWe are on it.\n",
        "language": "en",
        "automatic": True,
    }
    assert _direct(**inputs) == _through_email_package(**inputs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "threading", "automatic"),
    list(itertools.product(TEXTS, REFERENCES, (True, False))),
)
def test_bodies_and_threading_give_the_email_packages_bytes(
    text: str, threading: tuple[str | None, tuple[str, ...]], automatic: bool
) -> None:
    in_reply_to, references = threading
    inputs = {
        "sender_name": "Acme Customer Success",
        "recipient_name": "Customer 7",
        "recipient": "someone.with.a.long.address@subdomain.contoso.example",
        "subject": "Re: Outage",
        "now": datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=-7))),
        "in_reply_to": in_reply_to,
        "references": references,
        "text": text,
        "language": "de-AT",
        "automatic": automatic,
    }
    assert _direct(**inputs) == _through_email_package(**inputs)  # type: ignore[arg-type]
