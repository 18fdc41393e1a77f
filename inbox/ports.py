"""What a mailbox watcher needs from storage, declared here so ``inbox`` never imports the app.

The application (``codered``) implements :class:`MailboxStore`; every method is
called from the watcher's own thread and must block until the change is durably
committed, because the watcher advances nothing it has not seen committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal, Protocol

__all__ = [
    "Cursor",
    "FetchedMessage",
    "ImapAccount",
    "MailboxStore",
    "WatcherState",
    "WatcherStatus",
]


@dataclass(frozen=True)
class ImapAccount:
    """Connection settings for one watched mailbox."""

    name: str
    host: str
    port: int
    security: Literal["tls", "starttls", "none"]
    username: str
    password: str
    folder: str = "INBOX"
    max_message_bytes: int = 25 * 1024 * 1024
    idle_renew_seconds: float = 540.0
    """Re-issue IDLE this often (RFC 2177 servers may drop an IDLE after 30 min)."""
    poll_interval_seconds: float = 15.0
    """Used only when the server does not offer IDLE."""
    connect_timeout_seconds: float = 15.0
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    fetch_batch_size: int = 50
    token_provider: Callable[[], str] | None = field(default=None, compare=False, repr=False)
    """When set, log in with SASL XOAUTH2 using the access token it returns (it may block
    to refresh, and raises when no token can be had); ``password`` is then unused."""


@dataclass(frozen=True)
class Cursor:
    """How far a mailbox has been durably read: all UIDs <= ``last_uid`` are stored."""

    uidvalidity: int
    last_uid: int
    history_before: datetime | None = None
    """When the mailbox was last in sync. After a renumbering (UIDVALIDITY change), a
    message we do not know whose server date (INTERNALDATE) is older than this was history
    when we baselined, so it is skipped rather than treated as new mail."""


@dataclass(frozen=True)
class FetchedMessage:
    """One message taken from the server; ``raw`` is None when it was over the size cap."""

    uid: int
    size: int
    raw: bytes | None
    oversized: bool = False


class WatcherState(StrEnum):
    CONNECTING = "connecting"
    IDLE = "idle"
    POLLING = "polling"
    SYNCING = "syncing"
    DISCONNECTED = "disconnected"
    STOPPED = "stopped"


@dataclass(frozen=True)
class WatcherStatus:
    mailbox: str
    state: WatcherState
    at: datetime
    last_sync_at: datetime | None = None
    last_error: str | None = None


class MailboxStore(Protocol):
    """Durable cursor and raw-message storage for the watcher."""

    def load_cursor(self, mailbox: str) -> Cursor | None:
        """The stored cursor, or None when this mailbox has never been connected."""
        ...

    def save_baseline(self, mailbox: str, cursor: Cursor) -> None:
        """First connect: remember where history ends so it is never acknowledged."""
        ...

    def store_batch(
        self, mailbox: str, uidvalidity: int, messages: Sequence[FetchedMessage]
    ) -> None:
        """Commit raw bytes (or an oversize dead letter) and advance the cursor to the
        highest UID in ``messages``, all in one transaction. Re-storing a UID is a no-op."""
        ...

    def known_message_ids(self, mailbox: str, message_ids: Iterable[str]) -> set[str]:
        """Which of these Message-IDs are already stored for this mailbox."""
        ...

    def uidvalidity_changed(
        self, mailbox: str, old: Cursor, new_uidvalidity: int, relinked: int
    ) -> None:
        """Record a warning that the server renumbered the folder, and the new cursor
        base (``last_uid`` 0 under the new UIDVALIDITY) after re-linking ``relinked``
        messages by Message-ID."""
        ...

    def relink(self, mailbox: str, uidvalidity: int, uid_by_message_id: dict[str, int]) -> None:
        """Attach new UIDs to already-stored messages after a UIDVALIDITY change."""
        ...

    def report(self, status: WatcherStatus) -> None:
        """Connection state for ``codered check`` and the demo; must never raise."""
        ...
