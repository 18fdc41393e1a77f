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


def test_a_refused_batch_leaves_nothing_to_append_twice(dovecot: DovecotServer) -> None:
    """Dovecot has MULTIAPPEND: the batch goes in one APPEND, and a refusal files none."""
    dovecot.append(mail.outage_complaint()[1])
    validity, [uid] = _inbox_uids(dovecot)
    now = datetime.now(UTC)
    items = [ToFile(mail.question()[1], now, (validity, uid)) for _ in range(3)]
    connection = FilingConnection(dovecot.account())
    try:
        # A configured folder that does not exist: the server refuses the APPEND.
        results = connection.file_many(items, sent_folder="No Such Folder")
    finally:
        connection.close()

    assert all(isinstance(r, FilingError) for r in results)
    assert all("cannot append to Sent" in str(r) for r in results)
    flags, copies = _flags_and_sent(dovecot)
    assert b"\\Answered" not in flags[uid]  # nothing filed, so nothing is marked answered
    assert copies == 0


def test_one_bad_message_refuses_the_whole_batch(dovecot: DovecotServer) -> None:
    """RFC 3502: all or nothing. Dovecot refuses an empty message, and with it the others."""
    now = datetime.now(UTC)
    items = [ToFile(mail.question()[1], now), ToFile(b"", now), ToFile(mail.question()[1], now)]
    connection = FilingConnection(dovecot.account())
    try:
        results = connection.file_many(items, sent_folder=None)
    finally:
        connection.close()

    assert all(isinstance(r, FilingError) for r in results)
    assert _flags_and_sent(dovecot)[1] == 0


def test_without_multiappend_the_rest_is_not_tried_after_a_failed_append(
    dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server without MULTIAPPEND gets an APPEND per message; after one fails, none
    follows (a retry then cannot append one twice). Dovecot is real; only its MULTIAPPEND
    capability is hidden from the client."""
    real = IMAPClient.has_capability
    monkeypatch.setattr(
        IMAPClient,
        "has_capability",
        lambda self, name: name.upper() != "MULTIAPPEND" and real(self, name),
    )
    dovecot.append(mail.outage_complaint()[1])
    validity, [uid] = _inbox_uids(dovecot)
    now = datetime.now(UTC)
    good = [ToFile(mail.question()[1], now, (validity, uid)) for _ in range(2)]
    connection = FilingConnection(dovecot.account())
    try:
        results = connection.file_many(
            [good[0], ToFile(b"", now), good[1]], sent_folder=None, keyword="$Acknowledged"
        )
    finally:
        connection.close()

    assert isinstance(results[0], FilingResult) and results[0].marked is True
    assert "cannot append to Sent" in str(results[1])
    assert "not filed after an earlier failure" in str(results[2])
    flags, copies = _flags_and_sent(dovecot)
    assert copies == 1
    assert b"\\Answered" in flags[uid]  # the one that was filed marks its answered message
