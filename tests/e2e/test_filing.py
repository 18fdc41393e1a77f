"""What codered sent is visible in the mailbox: a copy in Sent, and the customer's message
flagged ``\\Answered`` and ``$Acknowledged``, checked over IMAP on pymap and Dovecot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imapclient import IMAPClient

from codered.embedded import EmbeddedImapServer, SmtpSink
from tests.support import mail
from tests.support.service import RunningService, make_settings, wait_until


def _state(server: Any, message_id: str, reply_id: str) -> tuple[set[bytes], bool] | None:
    with IMAPClient(server.host, port=server.port, ssl=False, timeout=10) as client:
        client.login(server.username, server.password)
        client.select_folder("INBOX", readonly=True)
        [uid] = client.search(["HEADER", "Message-ID", message_id]) or [None]
        if uid is None:
            return None
        flags = set(client.get_flags([uid])[uid])
        folders = [name for _, _, name in client.list_folders()]
        if "Sent" not in folders:
            return flags, False
        client.select_folder("Sent", readonly=True)
        copies = client.search(["HEADER", "Message-ID", reply_id])
        return flags, bool(copies)


def test_the_acknowledgement_is_in_sent_and_the_complaint_is_flagged(
    imap: Any, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path, imap.port, smtp_sink.port, username=imap.username, password=imap.password
    )
    with RunningService(settings) as service:
        service.wait_for_baseline()
        complaint_id, raw = mail.outage_complaint()
        imap.append(raw)
        [ack] = smtp_sink.wait_for(1, timeout=20)
        ack_id = ack.raw.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()
        done = wait_until(
            lambda: (
                (state := _state(imap, complaint_id, ack_id))
                and state[1]
                and b"\\Answered" in state[0]
                and state
            ),
            20,
            "the copy in Sent and the flags",
        )
    flags, copied = done
    assert copied
    assert b"\\Answered" in flags
    if not isinstance(imap, EmbeddedImapServer):  # pymap keeps no keywords (no \* flag)
        assert b"$Acknowledged" in flags
    assert b"\\Seen" not in flags, "the customer's message stays unread for the team"
