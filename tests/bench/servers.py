"""The mail servers a benchmark talks to: an IMAP server to deliver into, an SMTP sink to
catch the acknowledgements, and IMAP connections that append as an MDA would.

Why our own wrappers around the test helpers: a benchmark needs the same handful of
operations on Dovecot and on pymap (append on a kept-open connection, create folders,
find the maildir), and it needs the *monotonic* time at which each acknowledgement
arrived, which :class:`codered.embedded.SmtpSink` does not keep.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from imapclient import IMAPClient

from codered.embedded import EmbeddedImapServer, ReceivedMail, SmtpSink
from tests.support.dovecot import DOVECOT_BINARY, DovecotServer

PROGRESS_SECONDS = 30.0
"""How often a long wait prints how far it got (on standard error)."""

__all__ = ["Appender", "BenchError", "ImapServer", "TimedSink", "dovecot_available"]


class BenchError(Exception):
    """A benchmark could not run or a wait timed out; the message says which and why."""


def dovecot_available() -> str | None:
    """None when a private Dovecot can start here, else the reason it cannot."""
    if not DOVECOT_BINARY.exists():
        return f"{DOVECOT_BINARY} not found (install Debian package dovecot-imapd)"
    if os.geteuid() != 0:
        return "the private Dovecot must be started as root"
    return None


class ImapServer:
    """Dovecot (a private instance) or pymap (in this process), behind one small interface."""

    def __init__(self, kind: str, *, storage: str = "maildir") -> None:
        """``storage`` is Dovecot's mail storage (see :class:`DovecotServer`); pymap's is
        in memory."""
        self.kind = kind
        self.storage = storage
        self.dovecot: DovecotServer | None = None
        self.pymap: EmbeddedImapServer | None = None
        if kind == "dovecot":
            reason = dovecot_available()
            if reason:
                raise BenchError(f"cannot use Dovecot: {reason}")
            self.dovecot = DovecotServer(storage=storage).start()
            self.host, self.port = self.dovecot.host, self.dovecot.port
            self.username, self.password = self.dovecot.username, self.dovecot.password
        elif kind == "pymap":
            self.pymap = EmbeddedImapServer().start()
            self.host, self.port = self.pymap.host, self.pymap.port
            self.username, self.password = self.pymap.username, self.pymap.password
        else:
            raise BenchError(f"unknown IMAP server {kind!r} (dovecot or pymap)")

    def connect(self, timeout: float = 30.0) -> IMAPClient:
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=timeout)
        client.login(self.username, self.password)
        return client

    def create_folders(self, folders: list[str]) -> None:
        """Create every folder but INBOX (which always exists) before the service starts."""
        with contextlib.closing(_Logout(self.connect())) as session:
            for folder in folders:
                if folder.upper() != "INBOX" and not session.client.folder_exists(folder):
                    session.client.create_folder(folder)

    def maildir(self) -> Path:
        """The INBOX maildir of the Dovecot account (only Dovecot keeps one on disk)."""
        if self.dovecot is None or self.storage != "maildir":
            raise BenchError("only Dovecot with maildir storage can be filled directly")
        return self.dovecot.root / "home" / self.dovecot.username / "Maildir"

    def doveadm(self, *args: str) -> str:
        if self.dovecot is None:
            raise BenchError("doveadm needs Dovecot")
        return self.dovecot.doveadm(*args)

    def close(self) -> None:
        if self.dovecot is not None:
            self.dovecot.cleanup()
        if self.pymap is not None:
            self.pymap.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Logout:
    """``contextlib.closing`` adapter: log out quietly, whatever state the session is in."""

    def __init__(self, client: IMAPClient) -> None:
        self.client = client

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.logout()


class Appender:
    """One kept-open IMAP connection that APPENDs, so a login is not part of each delivery."""

    def __init__(self, server: ImapServer, folder: str = "INBOX") -> None:
        self.folder = folder
        self._client = server.connect()

    def append(self, raw: bytes, folder: str | None = None) -> None:
        self._client.append(folder or self.folder, raw)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.logout()


@dataclass(frozen=True)
class Arrival:
    """One message at the sink and the monotonic time its DATA completed."""

    at: float
    mail: ReceivedMail


class TimedSink(SmtpSink):
    """:class:`SmtpSink` that also notes ``time.monotonic()`` as each message arrives.

    The note is taken inside the SMTP handler, on the sink's thread, the moment DATA
    ends: the clock the benchmark's appends are timed on, in the same process, so no
    wall-clock step or cross-process clock can distort a latency.
    """

    def __init__(self) -> None:
        super().__init__()
        self._arrivals: list[Arrival] = []
        self._by_recipient: dict[str, list[float]] = defaultdict(list)
        self._changed = threading.Condition()

    def _record(self, mail: ReceivedMail) -> None:
        now = time.monotonic()
        with self._changed:
            self._arrivals.append(Arrival(now, mail))
            for recipient in mail.recipients:
                self._by_recipient[recipient.lower()].append(now)
            self._changed.notify_all()
        super()._record(mail)

    def arrivals(self) -> list[Arrival]:
        with self._changed:
            return list(self._arrivals)

    def counts_by_recipient(self) -> dict[str, int]:
        with self._changed:
            return {r: len(times) for r, times in self._by_recipient.items()}

    def first_arrival(self, recipient: str) -> float | None:
        with self._changed:
            times = self._by_recipient.get(recipient.lower())
            return times[0] if times else None

    def wait_for_change(self, timeout: float) -> None:
        """Sleep until the next message arrives or ``timeout`` passes."""
        with self._changed:
            self._changed.wait(timeout)

    def wait_for_recipient(self, recipient: str, timeout: float) -> float:
        """The arrival time of the first message to ``recipient``; BenchError on timeout."""
        recipient = recipient.lower()
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self._by_recipient.get(recipient):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BenchError(
                        f"no acknowledgement to {recipient} within {timeout:g} s "
                        f"({len(self._arrivals)} messages at the sink so far)"
                    )
                self._changed.wait(remaining)
            return self._by_recipient[recipient][0]

    def wait_for_all(self, recipients: set[str], timeout: float, what: str) -> float:
        """Wait until every recipient has at least one message; returns the latest first
        arrival among them. BenchError naming how many are missing on timeout."""
        wanted = {r.lower() for r in recipients}
        began = time.monotonic()
        deadline, report = began + timeout, began + PROGRESS_SECONDS
        with self._changed:
            while True:
                missing = [r for r in wanted if not self._by_recipient.get(r)]
                if time.monotonic() >= report:  # long runs: show that they move
                    report += PROGRESS_SECONDS
                    done, elapsed = len(wanted) - len(missing), time.monotonic() - began
                    print(
                        f"  ... {what}: {done}/{len(wanted)} acknowledged after {elapsed:.0f} s",
                        file=sys.stderr,
                        flush=True,
                    )
                if not missing:
                    return max((self._by_recipient[r][0] for r in wanted), default=time.monotonic())
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BenchError(
                        f"{what}: {len(missing)} of {len(wanted)} acknowledgements missing "
                        f"after {timeout:g} s (e.g. {sorted(missing)[:3]})"
                    )
                self._changed.wait(min(remaining, 1.0))
