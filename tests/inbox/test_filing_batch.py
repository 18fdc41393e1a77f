"""Filing several sent messages in one trip, against a real Dovecot: each copy lands in Sent
once, every answered message is flagged, and after a failed APPEND nothing more is tried."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from imapclient import IMAPClient

from inbox.filing import FilingConnection, FilingError, FilingResult, ToFile
from tests.support import mail
from tests.support.dovecot import DovecotServer

pytestmark = pytest.mark.dovecot


def _inbox_uids(dovecot: DovecotServer) -> tuple[int, list[int]]:
    with IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=10) as client:
        client.login(dovecot.username, dovecot.password)
        info = client.select_folder("INBOX", readonly=True)
        return int(info[b"UIDVALIDITY"]), sorted(client.search("ALL"))


def _flags_and_sent(dovecot: DovecotServer) -> tuple[dict[int, set[bytes]], int]:
    with IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=10) as client:
        client.login(dovecot.username, dovecot.password)
        client.select_folder("INBOX", readonly=True)
        flags = {uid: set(f) for uid, f in client.get_flags(client.search("ALL")).items()}
        copies = 0
        if client.folder_exists("Sent"):
            client.select_folder("Sent", readonly=True)
            copies = len(client.search("ALL"))
        return flags, copies


def test_a_batch_files_every_copy_and_flags_every_answered_message(
    dovecot: DovecotServer,
) -> None:
    for n in range(3):
        dovecot.append(mail.outage_complaint(sender=f"c{n} <c{n}@northwind.example>")[1])
    validity, uids = _inbox_uids(dovecot)
    now = datetime.now(UTC)
    items = [ToFile(mail.question()[1], now, (validity, uid)) for uid in uids]
    items.append(ToFile(mail.question()[1], now, (validity + 1, uids[0])))  # renumbered since
    connection = FilingConnection(dovecot.account())
    try:
        results = connection.file_many(items, sent_folder=None, keyword="$Acknowledged")
    finally:
        connection.close()

    assert [r.marked for r in results if isinstance(r, FilingResult)] == [True] * 3 + [False]
    assert connection.logins == 1
    flags, copies = _flags_and_sent(dovecot)
    assert copies == 4
    assert all({b"\\Answered", b"$Acknowledged"} <= flags[uid] for uid in uids)


def test_after_a_failed_append_the_rest_is_not_tried(dovecot: DovecotServer) -> None:
    dovecot.append(mail.outage_complaint()[1])
    validity, [uid] = _inbox_uids(dovecot)
    now = datetime.now(UTC)
    items = [ToFile(mail.question()[1], now, (validity, uid)) for _ in range(3)]
    connection = FilingConnection(dovecot.account())
    try:
        # A configured folder that does not exist: the server refuses the first APPEND.
        results = connection.file_many(items, sent_folder="No Such Folder")
    finally:
        connection.close()

    assert all(isinstance(r, FilingError) for r in results)
    assert "cannot append to Sent" in str(results[0])
    assert all("not filed after an earlier failure" in str(r) for r in results[1:])
    flags, copies = _flags_and_sent(dovecot)
    assert b"\\Answered" not in flags[uid]  # nothing filed, so nothing is marked answered
    assert copies == 0
