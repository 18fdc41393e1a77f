"""Internal notifications: exact header block, no injection, stable ids, every recipient."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage

import pytest

from inbox.message import EmailAddress
from mailer import LOOP_HEADER, loop_marker
from mailer.headers import header_names
from mailer.internal import NOTICE_HEADERS, compose_internal_notification, notice_message_id

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
FROM = EmailAddress("support@support.example.com", "Codered")
TEAM = (
    EmailAddress("csm@example.com", "Casey CSM"),
    EmailAddress("manager@example.com", "Morgan Manager"),
    EmailAddress("accounts@example.com"),
)

EXPECTED_HEADERS = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "X-Auto-Response-Suppress",
    "X-Codered-Loop",
    "X-Codered-Reference",
    "Content-Type",
    "Content-Transfer-Encoding",
    "MIME-Version",
]


def compose(
    *,
    subject: str = "Escalated CR-1042: Payments failing",
    lines: tuple[str, ...] = ("Severity critical.", "Reply by 10:00 UTC."),
    to: tuple[EmailAddress, ...] = TEAM,
    key: str = "escalation:CR-1042:critical_severity",
    now: datetime = NOW,
) -> tuple[bytes, EmailMessage]:
    composed = compose_internal_notification(
        subject=subject,
        lines=lines,
        to=to,
        from_address=FROM,
        reference="CR-1042",
        key=key,
        now=now,
    )
    parsed = email.message_from_bytes(composed.raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return composed.raw, parsed


def test_header_names_exactly_as_expected() -> None:
    raw, parsed = compose()
    assert header_names(raw) == EXPECTED_HEADERS
    assert list(NOTICE_HEADERS) == EXPECTED_HEADERS
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert parsed["X-Codered-Reference"] == "CR-1042"
    assert parsed[LOOP_HEADER] == loop_marker(FROM.email)
    assert parsed["In-Reply-To"] is None and parsed["References"] is None
    assert parsed["From"] == "Codered <support@support.example.com>"


def test_body_lines_are_the_text() -> None:
    composed = compose_internal_notification(
        subject="s",
        lines=["First line", "Customer wrote:\r\n> broken\x00 again"],
        to=TEAM[:1],
        from_address=FROM,
        reference="CR-1042",
        key="k",
        now=NOW,
    )
    assert composed.text == "First line\nCustomer wrote:\n> broken again\n"
    parsed = email.message_from_bytes(composed.raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body()
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == composed.text


@pytest.mark.parametrize(
    "subject",
    [
        "Escalated: broken\r\nBcc: attacker@evil.test",
        "Escalated: broken\nBcc: attacker@evil.test",
        "Escalated: broken\rBcc: attacker@evil.test\x00",
        "Escalated: =?UTF-8?Q?x=0D=0ABcc:_attacker@evil.test?=",
    ],
)
def test_subject_injection_yields_no_extra_header(subject: str) -> None:
    raw, parsed = compose(subject=subject)
    assert header_names(raw) == EXPECTED_HEADERS
    assert b"\nBcc:" not in raw
    assert "\n" not in parsed["Subject"] and "\r" not in parsed["Subject"]
    assert "attacker@evil.test" in parsed["Subject"]  # kept as visible text, not as a header


def test_message_id_is_stable_for_the_same_key() -> None:
    first, _ = compose()
    again, _ = compose()
    assert first == again
    _, later = compose(now=NOW + timedelta(hours=1), lines=("other text",))
    _, other = compose(key="escalation:CR-1042:legal_or_cancellation")
    expected = notice_message_id("escalation:CR-1042:critical_severity", "support.example.com")
    assert later["Message-ID"] == expected
    assert other["Message-ID"] != expected
    assert expected.startswith("<codered.notice.") and expected.endswith("@support.example.com>")


def test_all_recipients_in_header_and_envelope_each_once() -> None:
    composed = compose_internal_notification(
        subject="Overdue follow-up CR-1042",
        lines=["The promised update is 2 hours late."],
        to=(*TEAM, EmailAddress("CSM@example.com", "Casey again")),
        from_address=FROM,
        reference="CR-1042",
        key="overdue:CR-1042:1",
        now=NOW,
    )
    assert composed.recipients == ("csm@example.com", "manager@example.com", "accounts@example.com")
    assert composed.envelope_from == "support@support.example.com"
    parsed = email.message_from_bytes(composed.raw, policy=policy.default)
    to = parsed["To"]
    assert [a.addr_spec for a in to.addresses] == list(composed.recipients)


def test_hostile_display_name_stays_in_its_header() -> None:
    raw, parsed = compose(to=(EmailAddress("csm@example.com", "Casey\r\nBcc: attacker@evil.test"),))
    assert header_names(raw) == EXPECTED_HEADERS
    assert [a.addr_spec for a in parsed["To"].addresses] == ["csm@example.com"]


def test_empty_subject_falls_back_to_the_reference() -> None:
    _, parsed = compose(subject=" \r\n ")
    assert parsed["Subject"] == "codered notice CR-1042"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"to": ()}, "recipient"),
        ({"key": ""}, "key"),
        ({"now": datetime(2025, 3, 3, 9, 0)}, "timezone"),
        ({"to": (EmailAddress("not an address"),)}, "address"),
    ],
)
def test_refuses_unusable_input(changes: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "subject": "s",
        "lines": ["x"],
        "to": TEAM,
        "from_address": FROM,
        "reference": "CR-1042",
        "key": "k",
        "now": NOW,
    }
    arguments.update(changes)
    with pytest.raises(ValueError, match=message):
        compose_internal_notification(**arguments)  # type: ignore[arg-type]


def test_refuses_an_unusable_reference() -> None:
    with pytest.raises(ValueError, match="reference"):
        compose_internal_notification(
            subject="s",
            lines=["x"],
            to=TEAM,
            from_address=FROM,
            reference="CR 1042\r\nBcc: x@evil.test",
            key="k",
            now=NOW,
        )
