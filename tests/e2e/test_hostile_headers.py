"""CVE-2024-6923: an encoded newline in an inbound Subject must never become a header line in
what we send. Asserted on the bytes the SMTP peer received."""

from __future__ import annotations

from pathlib import Path

from codered.embedded import EmbeddedImapServer, SmtpSink
from tests.support.service import RunningService, make_settings


def _header_block(raw: bytes) -> list[bytes]:
    head = raw.split(b"\r\n\r\n", 1)[0]
    return head.split(b"\r\n")


def test_encoded_newline_in_subject_and_name_never_adds_a_header(
    pymap_server: EmbeddedImapServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    raw = (
        b"From: =?UTF-8?Q?Mallory=0ABcc:_victim@evil.test?= <mallory@evil.test>\r\n"
        b"To: support@acme.example\r\n"
        b"Subject: =?UTF-8?Q?Outage_again=0ABcc:_attacker@evil.test=0D=0AX-Injected:_1?=\r\n"
        b"Message-ID: <cve-2024-6923@evil.test>\r\n"
        b"Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n"
        b"\r\n"
        b"Our production service is down again and nobody can log in. This is unacceptable!\r\n"
    )
    settings = make_settings(tmp_path, pymap_server.port, smtp_sink.port)
    with RunningService(settings) as service:
        service.wait_for_baseline()
        pymap_server.append(raw)
        [received] = smtp_sink.wait_for(1, timeout=15)

    assert list(received.recipients) == ["mallory@evil.test"]
    lines = _header_block(received.raw)
    names = [line.split(b":", 1)[0].lower() for line in lines if line and line[:1] not in b" \t"]
    assert b"bcc" not in names and b"x-injected" not in names
    assert names.count(b"to") == 1 and names.count(b"subject") == 1
    assert not any(
        b"attacker@evil.test" in line and line.lower().startswith(b"bcc") for line in lines
    )
    # No bare CR or LF anywhere in the header block: every line ends with CRLF.
    head = received.raw.split(b"\r\n\r\n", 1)[0]
    assert b"\n" not in head.replace(b"\r\n", b"") and b"\r" not in head.replace(b"\r\n", b"")
