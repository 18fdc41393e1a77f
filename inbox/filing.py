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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from imapclient.imapclient import SENT

from inbox.imap import close_quietly, connect, describe_error
from inbox.ports import ImapAccount

__all__ = ["FilingConnection", "FilingError", "FilingResult", "ToFile"]

DEFAULT_SENT = "Sent"
IDLE_CLOSE_SECONDS = 120.0
"""A connection unused this long is logged out (servers drop idle ones after minutes)."""


class FilingError(Exception):
    """One line for the operator: what could not be filed, and why."""


@dataclass(frozen=True)
class ToFile:
    """One sent message to file: its bytes, when it was sent, and what it answered."""

    raw: bytes
    when: datetime
    answered: tuple[int, int] | None = None
    """(UIDVALIDITY, UID) of the customer's message in the watched folder."""


@dataclass(frozen=True)
class FilingResult:
    sent_folder: str
    marked: bool | None
    """True when flagged, False when the message was gone or renumbered, None when not asked."""


def _text(detail: Any) -> str:
    """The server's words from an IMAP response's data, for an error message."""
    parts = detail if isinstance(detail, list) else [detail]
    return " ".join(p.decode(errors="replace") if isinstance(p, bytes) else str(p) for p in parts)


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
        [result] = self.file_many(
            [ToFile(raw, when, answered)], sent_folder=sent_folder, keyword=keyword
        )
        if isinstance(result, FilingError):
            raise result
        return result

    def file_many(
        self, items: Sequence[ToFile], *, sent_folder: str | None, keyword: str = ""
    ) -> list[FilingResult | FilingError]:
        """File ``items`` in order: APPENDed to Sent, then every answered message flagged
        with one UID STORE. One result per item, in order.

        Why together: in a flood every acknowledgement is filed, and a NOOP, an APPEND and a
        STORE per message were three round trips each. A server with MULTIAPPEND takes the
        whole batch in one APPEND; others get one per item."""
        with self._lock:
            try:
                client = self._ready()
            except FilingError as exc:
                return [exc for _ in items]
            try:
                folder = self._sent_folder or _find_sent_folder(client, sent_folder)
                self._sent_folder = folder
            except Exception as exc:
                self._drop()
                error = FilingError(f"cannot find Sent: {describe_error(exc, self.account)}")
                return [error for _ in items]
            if len(items) > 1 and client.has_capability("MULTIAPPEND"):
                results = self._append_together(client, folder, items)
            else:
                results = self._append_each(client, folder, items)
            self._mark_all(client, items, results, keyword)
            self._last_used = time.monotonic()
            return results

    def _append_together(
        self, client: Any, folder: str, items: Sequence[ToFile]
    ) -> list[FilingResult | FilingError]:
        """One APPEND of every item (RFC 3502 MULTIAPPEND): one round trip and one commit
        on the server, and all or nothing, so a failure leaves no copy to append twice."""
        try:
            # imapclient hands back the tagged status here instead of raising on NO.
            status, detail = client.multiappend(
                folder, [{"msg": i.raw, "flags": [b"\\Seen"], "date": i.when} for i in items]
            )
        except Exception as exc:
            self._drop()
            error = FilingError(f"cannot append to Sent: {describe_error(exc, self.account)}")
            return [error for _ in items]
        if status != "OK":
            self._drop()
            error = FilingError(f"cannot append to Sent: the server answered {_text(detail)}")
            return [error for _ in items]
        return [FilingResult(folder, None) for _ in items]

    def _append_each(
        self, client: Any, folder: str, items: Sequence[ToFile]
    ) -> list[FilingResult | FilingError]:
        """An APPEND per item; after one fails the connection is dropped and the rest are
        not tried (their error says so), so a retry can never append one twice."""
        results: list[FilingResult | FilingError] = []
        for item in items:
            if results and isinstance(results[-1], FilingError):
                results.append(FilingError(f"not filed after an earlier failure: {results[-1]}"))
                continue
            try:
                client.append(folder, item.raw, flags=[b"\\Seen"], msg_time=item.when)
            except Exception as exc:
                self._drop()
                results.append(
                    FilingError(f"cannot append to Sent: {describe_error(exc, self.account)}")
                )
                continue
            results.append(FilingResult(folder, None))
        return results

    def _mark_all(
        self,
        client: Any,
        items: Sequence[ToFile],
        results: list[FilingResult | FilingError],
        keyword: str,
    ) -> None:
        """Flag the answered message of every item that was filed, in place in ``results``."""
        wanted = [
            (index, item.answered)
            for index, item in enumerate(items)
            if item.answered is not None and isinstance(results[index], FilingResult)
        ]
        if not wanted:
            return
        try:
            if self._client is None:  # dropped after a failed APPEND; flagging is safe to redo
                client = self._ready()
            marked = self._mark(client, [answered for _, answered in wanted], keyword)
        except FilingError as exc:
            for index, _ in wanted:
                results[index] = exc
            return
        for index, answered in wanted:
            filed = results[index]
            assert isinstance(filed, FilingResult)
            results[index] = FilingResult(filed.sent_folder, answered in marked)

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

    def _mark(
        self, client: Any, answered: Sequence[tuple[int, int]], keyword: str
    ) -> set[tuple[int, int]]:
        """Flag each (UIDVALIDITY, UID) in one STORE; returns those flagged (a message gone,
        or of another UIDVALIDITY, is not)."""
        uids = sorted({uid for _, uid in answered})
        try:
            if self._selected_uidvalidity is None:
                info = client.select_folder(self.account.folder, readonly=False)
                self._selected_uidvalidity = int(info.get(b"UIDVALIDITY", 0))
            current = [uid for validity, uid in answered if validity == self._selected_uidvalidity]
            if not current:
                return set()
            flags = [b"\\Answered"] + ([keyword.encode("ascii")] if keyword else [])
            done = client.add_flags(sorted(set(current)), flags, silent=False)
        except Exception as exc:
            self._drop()
            listed = ",".join(str(uid) for uid in uids)
            raise FilingError(
                f"cannot flag UID {listed}: {describe_error(exc, self.account)}"
            ) from None
        return {(v, uid) for v, uid in answered if v == self._selected_uidvalidity and uid in done}

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
