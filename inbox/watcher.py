"""Watch one IMAP folder and hand every new message to storage, durably and once.

How it works (imapclient blocks, so each step runs on a thread: the watcher's own
thread with :meth:`MailboxWatcher.start`, or, in the service, a small shared pool
while the IDLE waits of every mailbox share the event loop's selector; see
:mod:`inbox.multiplex`):

1. Connect, log in, ``SELECT`` the folder read-only (``EXAMINE``, RFC 3501
   section 6.3.2) and fetch only with ``BODY.PEEK[]``, so we never set ``\\Seen``
   or any other flag: the humans sharing the mailbox see it untouched.
2. The cursor ``(UIDVALIDITY, last UID)`` comes from the store. On the very
   first connect it is *baselined* at ``UIDNEXT - 1``: mail already in the
   folder is history and is never acknowledged (DESIGN.md invariant 4).
3. Catch-up: ``UID SEARCH UID n:*`` with ``n = last_uid + 1``. A range ending
   in ``*`` always matches the highest UID even when that is below ``n``
   (RFC 3501 section 6.4.8), so results are filtered to ``> last_uid``. Sizes
   come first (``RFC822.SIZE``); messages over ``max_message_bytes`` are never
   downloaded and are stored as oversize dead letters. The rest is fetched in
   ascending UID order, in batches bounded by count and by bytes, and each batch
   is committed with ``store.store_batch`` *before* the cursor moves
   (invariant 1). A message expunged between SEARCH and FETCH is skipped.
4. Wait: IDLE (RFC 2177) when offered, renewed every ``idle_renew_seconds``.
   We watch the socket in one-second ticks (so :meth:`MailboxWatcher.stop` is
   prompt) and leave IDLE with ``DONE`` as soon as the server sends anything:
   new mail (``EXISTS``), a keep-alive, or EOF when the server died, which then
   fails the ``DONE`` and leads to a reconnect. A catch-up follows every wake.
   Without IDLE we poll with ``NOOP`` plus a catch-up every ``poll_interval_seconds``.
5. Any failure (network, TLS, login, protocol, or the store itself) is reported
   as ``DISCONNECTED`` with one line of text, then we reconnect with exponential
   backoff and jitter. Nothing is advanced on failure, so the catch-up after
   reconnecting fetches exactly what was missed.

UIDVALIDITY change (the server renumbered the folder, e.g. after a restore):
UIDs under the old value mean nothing any more. We read the Message-ID of every
message in the folder, re-link the ones the store already knows to their new
UIDs, record the change (the cursor restarts at 0 under the new UIDVALIDITY), and
treat the rest as new mail. Re-linked messages are skipped by later catch-ups in
this session; after a restart they would be fetched again and the store's
``(mailbox, UIDVALIDITY, UID)`` dedupe makes that a no-op. Messages without a
Message-ID cannot be matched and count as new. Caveat: mail that predates the
first baseline was never stored, so after a renumbering it is unknown and is
handed over as new; downstream must not treat it as fresh (e.g. by its date).
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from imapclient.exceptions import IMAPClientError

from inbox.imap import (
    ImapCheckError,
    ImapLoginError,
    StoreError,
    check_imap,
    close_quietly,
    connect,
    describe_error,
    fetch_messages,
    fetch_one,
    input_pending,
    internal_dates,
    message_ids_in_folder,
    socket_readable,
    supports_idle,
    take_exists_reports,
    uidnext,
)
from inbox.ports import Cursor, ImapAccount, MailboxStore, WatcherState, WatcherStatus

__all__ = ["ImapCheckError", "MailboxWatcher", "check_imap", "fetch_one"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_MAX_ANNOUNCED_ROUNDS = 5
"""Extra SEARCHes per catch-up when the server announced new mail with an empty answer."""

_IDLE_TICK_SECONDS = 1.0
"""How often an IDLE wait looks at the stop flag; bounds how long ``stop()`` takes."""
_STATUS_HEARTBEAT_SECONDS = 60.0
_BATCH_BYTES = 32 * 1024 * 1024
"""At most this much message data is held in memory for one store batch."""
_HEADER_CHUNK = 500
_EXPECTED = (OSError, IMAPClientError, ImapLoginError, StoreError)


class _StopRequestedError(Exception):
    """Unwinds a session when ``stop()`` was requested."""


class MailboxWatcher:
    """Keeps one mailbox's new mail flowing into ``store``; see the module docstring.

    ``on_stored`` is called (on the watcher thread) after each committed batch,
    so the pipeline can wake without polling the database. ``use_idle=False``
    forces polling even when the server offers IDLE (for servers whose IDLE is
    broken, and for tests).
    """

    def __init__(
        self,
        account: ImapAccount,
        store: MailboxStore,
        *,
        on_stored: Callable[[], None] | None = None,
        use_idle: bool = True,
    ) -> None:
        self.account = account
        self._store = store
        self._on_stored = on_stored
        self._use_idle = use_idle
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._attempt = 0
        self._stored_count = 0
        self._last_sync_at: datetime | None = None
        self._last_report = 0.0
        self._relinked: dict[int, frozenset[int]] = {}
        self._status = WatcherStatus(account.name, WatcherState.STOPPED, _now())

    # --- public API -------------------------------------------------------------------------

    @property
    def status(self) -> WatcherStatus:
        with self._lock:
            return self._status

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Watch in a daemon thread until :meth:`stop`; errors never end the thread."""
        if self.running:
            raise RuntimeError(f"watcher for {self.account.name} is already running")
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"imap-{self.account.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to log out and end; returns within ``timeout`` seconds.

        An IDLE wait notices within about a second. If the thread is blocked
        in a network read instead, its socket is shut down under it after
        1.5 s, which turns the read into an error the thread exits on.
        """
        self._stopping.set()
        thread = self._thread
        if thread is None:
            return
        deadline = time.monotonic() + timeout
        thread.join(min(timeout, 1.5))
        if thread.is_alive():
            self._abort_connection()
            thread.join(max(0.0, deadline - time.monotonic()))
        if not thread.is_alive():
            self._thread = None

    def run_once_for_tests(self) -> int:
        """Connect, baseline or catch up once, log out; return how many messages were
        stored. Errors propagate instead of being retried."""
        if self.running:
            raise RuntimeError("run_once_for_tests() cannot run beside the watcher thread")
        before = self._stored_count
        client, cursor = self._open()
        try:
            self._catch_up(client, cursor)
        finally:
            self._detach(client)
        return self._stored_count - before

    # --- the thread -------------------------------------------------------------------------

    def _run(self) -> None:
        name = self.account.name
        while not self._stopping.is_set():
            try:
                self._session()
            except _StopRequestedError:
                break
            except Exception as exc:
                if self._stopping.is_set():
                    break
                self._stopping.wait(self._failed(exc))
        self._set_state(WatcherState.STOPPED)
        log.info("mailbox %s: watcher stopped", name)

    def _session(self) -> None:
        client, cursor = self._open()
        try:
            idle = self._use_idle and supports_idle(client)
            cursor = self._catch_up(client, cursor)
            self._attempt = 0  # a healthy session resets the backoff
            while not self._stopping.is_set():
                if idle:
                    self._wait_idle(client)
                else:
                    self._wait_poll(client)
                if self._stopping.is_set():
                    break
                cursor = self._catch_up(client, cursor)
        finally:
            self._detach(client)

    def _failed(self, exc: Exception) -> float:
        """Report and log a failed session; return how long to back off."""
        try:
            text = describe_error(exc, self.account)
            self._set_state(WatcherState.DISCONNECTED, error=text)
            delay = self._next_backoff()
            expected = isinstance(exc, _EXPECTED)
            log.warning(
                "mailbox %s: %s; retrying in %.1fs", self.account.name, text, delay,
                exc_info=not expected,
            )  # fmt: skip
            return delay
        except Exception:  # the thread must survive even a bug in its own error path
            log.exception("mailbox %s: error while handling an error", self.account.name)
            return max(1.0, self.account.backoff_max_seconds)

    def _next_backoff(self) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, so many
        watchers of one server do not reconnect in lockstep after it restarts."""
        initial = max(0.05, self.account.backoff_initial_seconds)
        base = min(self.account.backoff_max_seconds, initial * 2 ** min(self._attempt, 30))
        self._attempt += 1
        return random.uniform(base / 2, base)

    # --- connecting and the cursor ----------------------------------------------------------

    def _open(self) -> tuple[Any, Cursor]:
        self._set_state(WatcherState.CONNECTING, error=self.status.last_error)
        client = connect(self.account)
        with self._lock:
            self._client = client
        try:
            if self._stopping.is_set():
                raise _StopRequestedError
            info = client.select_folder(self.account.folder, readonly=True)
            if b"UIDVALIDITY" not in info:
                raise IMAPClientError(f"no UIDVALIDITY for {self.account.folder}")
            cursor = self._establish_cursor(client, int(info[b"UIDVALIDITY"]), info)
        except BaseException:
            self._detach(client)
            raise
        log.info("mailbox %s: connected, cursor at UID %d", self.account.name, cursor.last_uid)
        return client, cursor

    def _establish_cursor(self, client: Any, uidvalidity: int, info: dict[bytes, Any]) -> Cursor:
        name = self.account.name
        stored = self._call_store("load_cursor", self._store.load_cursor, name)
        if stored is None:
            baseline = Cursor(uidvalidity, uidnext(client, self.account.folder, info) - 1)
            self._call_store("save_baseline", self._store.save_baseline, name, baseline)
            log.info(
                "mailbox %s: first connect, baselined at UID %d (UIDVALIDITY %d); "
                "the %d messages already there are history and will not be acknowledged",
                name, baseline.last_uid, uidvalidity, info.get(b"EXISTS", 0),
            )  # fmt: skip
            return baseline
        if stored.uidvalidity != uidvalidity:
            return self._renumbered(client, stored, uidvalidity)
        return stored

    def _renumbered(self, client: Any, old: Cursor, uidvalidity: int) -> Cursor:
        """Re-link known messages by Message-ID after a UIDVALIDITY change (RFC 3501 2.3.1.1)."""
        name = self.account.name
        log.warning(
            "mailbox %s: UIDVALIDITY changed from %d to %d; re-linking by Message-ID",
            name, old.uidvalidity, uidvalidity,
        )  # fmt: skip
        uids_by_id = message_ids_in_folder(client, _HEADER_CHUNK)
        known = self._call_store(
            "known_message_ids", self._store.known_message_ids, name, list(uids_by_id)
        )
        relink = {mid: uids[0] for mid, uids in uids_by_id.items() if mid in known}
        if relink:
            self._call_store("relink", self._store.relink, name, uidvalidity, relink)
        skip = {uid for mid in relink for uid in uids_by_id[mid]}
        history = self._history(client, old, skip)
        self._call_store(
            "uidvalidity_changed", self._store.uidvalidity_changed, name, old, uidvalidity,
            len(relink),
        )  # fmt: skip
        if history:
            log.warning(
                "mailbox %s: %d unknown messages date from before the last sync: history, "
                "not acknowledged", name, len(history),
            )  # fmt: skip
        self._relinked = {uidvalidity: frozenset(skip | history)}
        return Cursor(uidvalidity, 0)

    def _history(self, client: Any, old: Cursor, known: set[int]) -> set[int]:
        """Unknown messages the server dates before our last sync: they were there when we
        baselined (invariant 4), so a renumbering must not make them look new."""
        if old.history_before is None:
            return set()
        unknown = sorted(set(client.search("ALL")) - known)
        dates = internal_dates(client, unknown, _HEADER_CHUNK)
        return {uid for uid, arrived in dates.items() if arrived < old.history_before}

    # --- catching up ------------------------------------------------------------------------

    def _catch_up(self, client: Any, cursor: Cursor) -> Cursor:
        """Store everything above the cursor; repeat until a SEARCH finds nothing,
        so mail that arrived while we were fetching is not left for the next wake."""
        skip = self._relinked.get(cursor.uidvalidity, frozenset())
        take_exists_reports(client)  # reports from before this SEARCH are covered by it
        announced_rounds = 0
        while True:
            found = client.search(["UID", f"{cursor.last_uid + 1}:*"])
            new = sorted(u for u in found if u > cursor.last_uid and u not in skip)
            if not new:
                # New mail announced alongside an empty answer is in the view only now;
                # search once more (bounded: a server that keeps announcing nothing new
                # must not keep us from IDLE).
                if take_exists_reports(client) and announced_rounds < _MAX_ANNOUNCED_ROUNDS:
                    announced_rounds += 1
                    continue
                break
            self._set_state(WatcherState.SYNCING)
            log.debug("mailbox %s: %d new messages", self.account.name, len(new))
            for chunk in _chunks(new, max(1, self.account.fetch_batch_size)):
                if self._stopping.is_set():
                    raise _StopRequestedError
                for batch in fetch_messages(client, chunk, self.account, _BATCH_BYTES):
                    if not batch:  # every message in it was expunged meanwhile
                        continue
                    if self._stopping.is_set():
                        raise _StopRequestedError
                    self._call_store(
                        "store_batch", self._store.store_batch, self.account.name,
                        cursor.uidvalidity, batch,
                    )  # fmt: skip
                    cursor = Cursor(cursor.uidvalidity, batch[-1].uid)
                    self._stored_count += len(batch)
                    self._notify_stored()
            skip = frozenset(u for u in skip if u > cursor.last_uid)
        self._last_sync_at = _now()
        return cursor

    # --- waiting ----------------------------------------------------------------------------

    def _wait_idle(self, client: Any) -> None:
        """IDLE until the server says anything, the renewal is due, or we must stop.

        We only watch the socket and leave IDLE with ``DONE`` as soon as it is
        readable; ``idle_done`` then reads the server's lines *blocking* (bounded
        by the socket timeout). imapclient's ``idle_check`` reads without
        blocking and raises "unterminated line" when a response arrives split
        across TCP segments (pymap does that), which would cost a reconnect.
        A dead server shows up here too: readable at EOF, so ``DONE`` fails.
        Whatever woke us, the caller then runs a catch-up (one cheap SEARCH).
        """
        woken = self.begin_idle(client)
        deadline = time.monotonic() + self.account.idle_renew_seconds
        while not woken and not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            woken = socket_readable(client.socket(), min(_IDLE_TICK_SECONDS, remaining))
        client.idle_done()

    def _wait_poll(self, client: Any) -> None:
        self._set_state(WatcherState.POLLING)
        if self._stopping.wait(self.account.poll_interval_seconds):
            return
        client.noop()  # lets the server report new mail, and keeps the session alive

    # --- the steps, for a driver that is not the watcher's own thread -----------------------

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def request_stop(self) -> None:
        """Ask a driver (:mod:`inbox.multiplex`) to end the session at its next step."""
        self._stopping.set()

    def abort_connection(self) -> None:
        """Shut the socket under a step that is stuck in a network read."""
        self._abort_connection()

    def open_session(self) -> tuple[Any, Cursor, bool]:
        """Connect, select, establish the cursor; also say whether IDLE is offered."""
        client, cursor = self._open()
        try:
            idle = self._use_idle and supports_idle(client)
        except BaseException:
            self._detach(client)
            raise
        return client, cursor, idle

    def catch_up(self, client: Any, cursor: Cursor) -> Cursor:
        """One catch-up; a session that gets this far is healthy, so the backoff resets."""
        cursor = self._catch_up(client, cursor)
        self._attempt = 0
        return cursor

    def begin_idle(self, client: Any) -> bool:
        """Enter IDLE; True when the server's answer already carried news."""
        self._set_state(WatcherState.IDLE)
        client.idle()
        return input_pending(client)  # lines that came in with "+ idling"

    def begin_poll(self) -> None:
        self._set_state(WatcherState.POLLING)

    def failed(self, exc: Exception) -> float:
        """Report a failed session (it is not raised further); return the backoff."""
        return self._failed(exc)

    def end_session(self, client: Any) -> None:
        self._detach(client)

    def stopped(self) -> None:
        self._set_state(WatcherState.STOPPED)
        log.info("mailbox %s: watcher stopped", self.account.name)

    # --- helpers ----------------------------------------------------------------------------

    def _call_store(self, what: str, method: Callable[..., T], *args: Any) -> T:
        try:
            return method(*args)
        except Exception as exc:
            detail = " ".join(str(exc).split())[:200]
            raise StoreError(f"storage failed in {what}: {type(exc).__name__}: {detail}") from exc

    def _notify_stored(self) -> None:
        if self._on_stored is None:
            return
        try:
            self._on_stored()
        except Exception:
            log.exception("mailbox %s: on_stored callback failed", self.account.name)

    def _set_state(self, state: WatcherState, *, error: str | None = None) -> None:
        with self._lock:
            previous = self._status
            status = WatcherStatus(self.account.name, state, _now(), self._last_sync_at, error)
            self._status = status
        now = time.monotonic()
        if (
            state == previous.state
            and error == previous.last_error
            and now - self._last_report < _STATUS_HEARTBEAT_SECONDS
        ):
            return
        self._last_report = now
        try:
            self._store.report(status)
        except Exception as exc:  # report() must not raise; if it does, we carry on
            log.debug("mailbox %s: status report failed: %s", self.account.name, exc)

    def _detach(self, client: Any) -> None:
        with self._lock:
            if self._client is client:
                self._client = None
        close_quietly(client)

    def _abort_connection(self) -> None:
        with self._lock:
            client = self._client
        if client is None:
            return
        with contextlib.suppress(OSError, AttributeError):
            client.socket().shutdown(socket.SHUT_RDWR)


def _now() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
