"""What we sent, visible in the mailbox itself: a copy in Sent, and flags on what we answered.

A person who opens the shared mailbox in their own mail client should see what
codered did: each message it sent sits in the Sent folder (found by the
``\\Sent`` special-use attribute of RFC 6154, or configured, or ``Sent``
created when the server has none), and the customer's message we answered
carries ``\\Answered`` and a keyword such as ``$Acknowledged``. These are the
only changes codered makes to a mailbox; the watcher itself stays read-only.

One connection per mailbox is kept open and reused (:class:`FilingConnection`):
during an outage flood every acknowledgement is filed, and a login per message
would cost the server more than the filing itself. A reused connection is checked
with ``NOOP`` before anything is written, so a connection the server dropped while
idle is replaced without ever sending an APPEND twice.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from imapclient.imapclient import SENT

from inbox.imap import close_quietly, connect, describe_error
from inbox.ports import ImapAccount

__all__ = ["FilingConnection", "FilingError", "FilingResult"]

DEFAULT_SENT = "Sent"
IDLE_CLOSE_SECONDS = 120.0
"""A connection unused this long is logged out (servers drop idle ones after minutes)."""


class FilingError(Exception):
    """One line for the operator: what could not be filed, and why."""


@dataclass(frozen=True)
class FilingResult:
    sent_folder: str
    marked: bool | None
    """True when flagged, False when the message was gone or renumbered, None when not asked."""


class FilingConnection:
    """A mailbox's kept-open IMAP connection for filing; safe to call from any thread."""

    def __init__(self, account: ImapAccount) -> None:
        self.account = account
        self._lock = threading.Lock()
        self._client: Any = None
        self._sent_folder: str | None = None
        self._selected_uidvalidity: int | None = None
        self._last_used = 0.0
        self.logins = 0
        """How many times we signed in (the tests and benchmarks read it)."""

    def file(
        self,
        raw: bytes,
        *,
        sent_folder: str | None,
        when: datetime,
        answered: tuple[int, int] | None = None,
        keyword: str = "",
    ) -> FilingResult:
        """APPEND ``raw`` to Sent (``\\Seen``), then flag ``answered`` = (UIDVALIDITY, UID)."""
        with self._lock:
            client = self._ready()
            try:
                folder = self._sent_folder or _find_sent_folder(client, sent_folder)
                self._sent_folder = folder
                client.append(folder, raw, flags=[b"\\Seen"], msg_time=when)
            except Exception as exc:
                self._drop()
                raise FilingError(
                    f"cannot append to Sent: {describe_error(exc, self.account)}"
                ) from None
            marked = None
            if answered is not None:
                marked = self._mark(client, *answered, keyword)
            self._last_used = time.monotonic()
            return FilingResult(folder, marked)

    def close_if_idle(self, seconds: float = IDLE_CLOSE_SECONDS) -> None:
        with self._lock:
            if self._client is not None and time.monotonic() - self._last_used > seconds:
                self._drop()

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _ready(self) -> Any:
        """The open connection if it still answers, else a new one."""
        if self._client is not None:
            try:
                self._client.noop()
                return self._client
            except Exception:  # dropped while idle: nothing was written on it yet
                self._drop()
        try:
            self._client = connect(self.account)
        except Exception as exc:
            raise FilingError(describe_error(exc, self.account)) from None
        self.logins += 1
        return self._client

    def _mark(self, client: Any, uidvalidity: int, uid: int, keyword: str) -> bool:
        try:
            if self._selected_uidvalidity is None:
                info = client.select_folder(self.account.folder, readonly=False)
                self._selected_uidvalidity = int(info.get(b"UIDVALIDITY", 0))
            if self._selected_uidvalidity != uidvalidity:
                return False
            flags = [b"\\Answered"] + ([keyword.encode("ascii")] if keyword else [])
            done = client.add_flags([uid], flags, silent=False)
            return uid in done
        except Exception as exc:
            self._drop()
            raise FilingError(
                f"cannot flag UID {uid}: {describe_error(exc, self.account)}"
            ) from None

    def _drop(self) -> None:
        if self._client is not None:
            close_quietly(self._client)
        self._client = None
        self._selected_uidvalidity = None


def _find_sent_folder(client: Any, configured: str | None) -> str:
    if configured:
        return configured
    found = client.find_special_folder(SENT)
    if found:
        return str(found)
    if not client.folder_exists(DEFAULT_SENT):
        client.create_folder(DEFAULT_SENT)
    return DEFAULT_SENT
