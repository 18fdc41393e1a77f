"""Many mailboxes in one process, and no thread per mailbox: IDLE waits share one selector."""

from __future__ import annotations

import email
import threading
from email import policy
from pathlib import Path

import pytest

from codered.embedded import SmtpSink
from codered.service import IMAP_POOL_MAX
from inbox.ports import WatcherState
from tests.support import mail
from tests.support.dovecot import DovecotServer
from tests.support.service import RunningService, make_settings, wait_until

MAILBOXES = 16

pytestmark = [pytest.mark.dovecot, pytest.mark.slow]


def _imap_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("imap")]


def test_sixteen_mailboxes_idle_on_a_few_threads_and_each_answers(
    dovecot: DovecotServer, tmp_path: Path
) -> None:
    folders = [f"Team{n:02d}" for n in range(MAILBOXES)]
    with SmtpSink() as sink:
        settings = make_settings(
            tmp_path,
            dovecot.port,
            sink.port,
            username=dovecot.username,
            password=dovecot.password,
            mailboxes=dovecot.folder_mailboxes(folders),
        )
        with RunningService(settings) as running:
            service = running.service
            assert service is not None

            def all_idle() -> bool:
                states = [w.status.state for w in service.watchers]
                return len(states) == MAILBOXES and all(s is WatcherState.IDLE for s in states)

            wait_until(all_idle, 60, "every mailbox in IDLE")
            idle_threads = _imap_threads()
            for n, folder in enumerate(folders):
                _, raw = mail.outage_complaint(
                    sender=f"Customer {n} <customer{n}@northwind.example>",
                    to=f"{folder.lower()}@acme.example",
                    message_id=f"<many-{n}@northwind.example>",
                )
                dovecot.append(raw, folder=folder)
            acks = sink.wait_for(MAILBOXES, timeout=60)
    # Sixteen mailboxes waited in IDLE on at most the pool's threads, none of their own.
    assert len(idle_threads) <= IMAP_POOL_MAX < MAILBOXES
    names = {folder.lower() for folder in folders}
    assert not [name for name in idle_threads if name.removeprefix("imap-") in names]
    senders = {}
    for ack in acks:
        parsed = email.message_from_bytes(ack.raw, policy=policy.default)
        senders[ack.recipients[0]] = ack.envelope_from
        assert parsed["From"].addresses[0].addr_spec == ack.envelope_from
    assert senders == {
        f"customer{n}@northwind.example": f"{folder.lower()}@acme.example"
        for n, folder in enumerate(folders)
    }
