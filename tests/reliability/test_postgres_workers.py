"""Two ``codered run`` processes on one PostgreSQL database: no outbox row is sent twice,
only one process watches the mailbox, and the other takes over when that one is killed."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from codered.db.engine import Database
from codered.db.models import MailboxState
from codered.embedded import EmbeddedImapServer, SmtpSink
from codered.mailbox_lock import lock_key
from tests.e2e.helpers import outbox
from tests.support import mail
from tests.support.cli import cli_env, codered_command, write_config
from tests.support.dovecot import DovecotServer
from tests.support.postgres import postgres_database
from tests.support.service import make_settings, query, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [*codered_command(), "run", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=cli_env(),
        )


def _reap(processes: list[subprocess.Popen[bytes]]) -> None:
    """Kill whatever still runs and wait for every process, so no test leaves one behind."""
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def _logs_without_tracebacks(folder: Path) -> str:
    logs = "".join(p.read_text() for p in folder.glob("run*.log"))
    assert "Traceback" not in logs, logs[-3000:]
    return logs


def _lock_holder_pid(settings: object, mailbox: str = "support") -> int | None:
    """The OS pid of the codered process holding the mailbox lock (from application_name)."""

    async def work(db: Database) -> int | None:
        async with db.read() as session:
            name = await session.scalar(
                text(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                    "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                    "AND ((l.classid::bigint << 32) | l.objid::bigint) = :key"
                ),
                {"key": lock_key(mailbox)},
            )
        return int(name.rsplit(" ", 1)[1]) if name else None

    return query(settings, work)  # type: ignore[arg-type]


def _baselined(settings: object) -> bool:
    async def work(db: Database) -> bool:
        async with db.read() as session:
            return await session.get(MailboxState, "support") is not None

    return query(settings, work)  # type: ignore[arg-type]


def test_two_processes_share_the_work_and_take_over_the_mailbox(
    pymap_server: EmbeddedImapServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    with postgres_database() as url:
        settings = make_settings(tmp_path, pymap_server.port, smtp_sink.port, database_url=url)
        config = write_config(tmp_path / "codered.toml", settings)
        processes = [_start(config, tmp_path / f"run{n}.log") for n in range(2)]
        try:
            holder = wait_until(lambda: _lock_holder_pid(settings), 30, "a process holds the lock")
            assert holder in {p.pid for p in processes}
            # Mail appended before the baseline would be history, never acknowledged.
            wait_until(lambda: _baselined(settings), 30, "the mailbox baselined")
            for number in range(12):
                pymap_server.append(
                    mail.billing_complaint(sender=f"C{number} <c{number}@contoso.example>")[1]
                )
            smtp_sink.wait_for(12, timeout=40)

            # Kill the watching process outright; the other must take the mailbox over.
            os.kill(holder, signal.SIGKILL)
            victim = next(p for p in processes if p.pid == holder)
            victim.wait(10)  # reaped, as an init system would: its leases may be taken at once
            survivor = next(p for p in processes if p.pid != holder)
            wait_until(
                lambda: _lock_holder_pid(settings) == survivor.pid, 30, "the survivor takes over"
            )
            for number in range(12, 15):
                pymap_server.append(
                    mail.billing_complaint(sender=f"C{number} <c{number}@contoso.example>")[1]
                )
            smtp_sink.wait_for(15, timeout=40)
            # The sink may count a permitted duplicate, so wait on the rows themselves.
            wait_until(
                lambda: [r.status for r in outbox(settings)] == ["sent"] * 15,
                40,
                "fifteen rows, every one sent",
            )
            survivor.send_signal(signal.SIGTERM)
            assert survivor.wait(20) == 0
        finally:
            _reap(processes)
        _logs_without_tracebacks(tmp_path)
        ids = Counter(
            m.raw.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0] for m in smtp_sink.messages
        )
        rows = outbox(settings)
        assert len(rows) == 15 and all(r.status == "sent" for r in rows)
        # A copy may repeat only for a row that was in flight when its process was killed.
        repeated = {i for i, n in ids.items() if n > 1}
        in_flight = {r.message_id.encode() for r in rows if r.attempts > 1}
        assert repeated <= in_flight, (repeated, in_flight)
        assert len(ids) == 15


def test_lock_keys_are_stable_and_distinct() -> None:
    assert lock_key("support") == lock_key("support")
    assert lock_key("support") != lock_key("billing")
    assert -(2**63) <= lock_key("support") < 2**63


@pytest.mark.dovecot
def test_a_second_process_is_handed_its_share_of_the_mailboxes_and_gives_it_back(
    dovecot: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """The first process watches both mailboxes; a second one that starts is handed one
    (each then decides its own mailbox's mail); when it stops, the first takes it back."""
    folders = ["Support", "Billing"]
    with postgres_database() as url:
        settings = make_settings(
            tmp_path,
            dovecot.port,
            smtp_sink.port,
            database_url=url,
            mailboxes=dovecot.folder_mailboxes(folders),
        )
        config = write_config(tmp_path / "codered.toml", settings)

        def holders() -> list[int | None]:
            return [_lock_holder_pid(settings, folder.lower()) for folder in folders]

        first = _start(config, tmp_path / "run0.log")
        processes = [first]
        try:
            wait_until(lambda: holders() == [first.pid] * 2, 30, "the first watches both")
            second = _start(config, tmp_path / "run1.log")
            processes.append(second)
            wait_until(
                lambda: sorted(map(str, holders())) == sorted([str(first.pid), str(second.pid)]),
                40,
                "one mailbox each",
            )
            for n, folder in enumerate(folders):
                _, raw = mail.outage_complaint(
                    sender=f"C{n} <c{n}@contoso.example>", to=f"{folder.lower()}@acme.example"
                )
                dovecot.append(raw, folder=folder)
            received = smtp_sink.wait_for(2, timeout=40)
            assert sorted(r for m in received for r in m.recipients) == [
                "c0@contoso.example",
                "c1@contoso.example",
            ]
            second.send_signal(signal.SIGTERM)
            assert second.wait(20) == 0
            wait_until(lambda: holders() == [first.pid] * 2, 40, "the first takes both back")
            first.send_signal(signal.SIGTERM)
            assert first.wait(20) == 0
        finally:
            _reap(processes)
        logs = _logs_without_tracebacks(tmp_path)
        assert "to share the mailboxes with other workers" in logs
        rows = outbox(settings)
        assert sorted(r.status for r in rows) == ["sent", "sent"]
