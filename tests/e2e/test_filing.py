"""What codered sent is visible in the mailbox: a copy in Sent, and the customer's message
flagged ``\\Answered`` and ``$Acknowledged``, checked over IMAP on pymap and Dovecot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

from codered.embedded import EmbeddedImapServer, SmtpSink
from tests.support import mail
from tests.support.dovecot import DovecotServer
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


def _sent_ids(server: Any) -> set[str]:
    with IMAPClient(server.host, port=server.port, ssl=False, timeout=10) as client:
        client.login(server.username, server.password)
        if not client.folder_exists("Sent"):
            return set()
        client.select_folder("Sent", readonly=True)
        uids = client.search("ALL")
        fetched = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if uids else {}
        return {
            data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().split(":", 1)[1].strip()
            for data in fetched.values()
        }


@pytest.mark.dovecot
def test_filing_reuses_one_connection_and_survives_the_server_dropping_it(
    dovecot: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path,
        dovecot.port,
        smtp_sink.port,
        username=dovecot.username,
        password=dovecot.password,
    )
    with RunningService(settings) as running:
        assert running.service is not None
        running.wait_for_baseline()
        for n in range(3):
            dovecot.append(mail.outage_complaint(sender=f"c{n} <c{n}@northwind.example>")[1])
        acks = smtp_sink.wait_for(3, timeout=30)
        ids = {_message_id(a.raw) for a in acks}
        wait_until(lambda: ids <= _sent_ids(dovecot), 20, "three copies in Sent")
        connection = running.service.filer.connections["support"]
        assert connection.logins == 1  # three messages filed over one sign-in

        dovecot.kill()  # the server drops every connection, the filing one included
        dovecot.start()
        dovecot.append(mail.outage_complaint(sender="c9 <c9@northwind.example>")[1])
        acks = smtp_sink.wait_for(4, timeout=40)
        last = {_message_id(a.raw) for a in acks} - ids
        wait_until(lambda: last <= _sent_ids(dovecot), 20, "the fourth copy in Sent")
        assert connection.logins == 2
    assert len(_sent_ids(dovecot)) == 4  # none filed twice by the reconnect


def _message_id(raw: bytes) -> str:
    return raw.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()
