"""The IMAP watcher against real servers: pymap in-process, and a private Dovecot.

The store is an in-memory implementation of our own ``MailboxStore`` Protocol
(not a mock of IMAP): it keeps what a database would and records every call,
so the tests can assert "stored once, cursor advanced, nothing else".
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pytest
from imapclient import IMAPClient

from codered.embedded import EmbeddedImapServer
from inbox.imap import message_id_of
from inbox.ports import (
    Cursor,
    FetchedMessage,
    ImapAccount,
    MailboxStore,
    WatcherState,
    WatcherStatus,
)
from inbox.watcher import ImapCheckError, MailboxWatcher, check_imap, fetch_one
from tests.support.dovecot import DovecotServer

FAST: dict[str, Any] = {
    "backoff_initial_seconds": 0.2,
    "backoff_max_seconds": 1.0,
    "connect_timeout_seconds": 5.0,
}


class MemoryStore(MailboxStore):
    """A thread-safe, in-memory MailboxStore that remembers every call."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.cursors: dict[str, Cursor] = {}
        self.baselines: dict[str, Cursor] = {}
        self.messages: dict[tuple[str, int, int], FetchedMessage] = {}
        self.batches: list[tuple[int, list[int]]] = []
        self.relinks: list[dict[str, int]] = []
        self.renumberings: list[tuple[Cursor, int, int]] = []
        self.reports: list[WatcherStatus] = []
        self.fail_store_batches = 0

    def load_cursor(self, mailbox: str) -> Cursor | None:
        with self.lock:
            return self.cursors.get(mailbox)

    def save_baseline(self, mailbox: str, cursor: Cursor) -> None:
        with self.lock:
            self.cursors.setdefault(mailbox, cursor)
            self.baselines[mailbox] = cursor
            self.lock.notify_all()

    def store_batch(
        self, mailbox: str, uidvalidity: int, messages: Sequence[FetchedMessage]
    ) -> None:
        with self.lock:
            if self.fail_store_batches:
                self.fail_store_batches -= 1
                raise RuntimeError("database is locked")
            self.batches.append((uidvalidity, [m.uid for m in messages]))
            for message in messages:
                self.messages.setdefault((mailbox, uidvalidity, message.uid), message)
            cursor = self.cursors[mailbox]
            if cursor.uidvalidity == uidvalidity:
                highest = max(m.uid for m in messages)
                self.cursors[mailbox] = Cursor(uidvalidity, max(highest, cursor.last_uid))
            self.lock.notify_all()

    def known_message_ids(self, mailbox: str, message_ids: Iterable[str]) -> set[str]:
        with self.lock:
            stored = {
                self._message_id(m) for (box, _, _), m in self.messages.items() if box == mailbox
            }
        return {mid for mid in message_ids if mid in stored}

    def uidvalidity_changed(
        self, mailbox: str, old: Cursor, new_uidvalidity: int, relinked: int
    ) -> None:
        with self.lock:
            self.renumberings.append((old, new_uidvalidity, relinked))
            self.cursors[mailbox] = Cursor(new_uidvalidity, 0)

    def relink(self, mailbox: str, uidvalidity: int, uid_by_message_id: dict[str, int]) -> None:
        with self.lock:
            self.relinks.append(dict(uid_by_message_id))
            for key, message in list(self.messages.items()):
                new_uid = uid_by_message_id.get(self._message_id(message) or "")
                if key[0] == mailbox and new_uid is not None:
                    del self.messages[key]
                    self.messages[(mailbox, uidvalidity, new_uid)] = message

    def report(self, status: WatcherStatus) -> None:
        with self.lock:
            self.reports.append(status)
            self.lock.notify_all()

    # --- for assertions ---------------------------------------------------------------------

    @staticmethod
    def _message_id(message: FetchedMessage) -> str | None:
        if message.raw is None:
            return None
        return message_id_of(
            {b"BODY[HEADER.FIELDS (MESSAGE-ID)]": message.raw.split(b"\r\n\r\n")[0]}
        )

    def wait(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not (value := condition()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
                self.lock.wait(min(remaining, 0.1))
            return value

    def stored_ids(self) -> list[str | None]:
        with self.lock:
            ordered = sorted(self.messages.items(), key=lambda item: item[0][2])
            return [self._message_id(m) for _, m in ordered]

    def states(self) -> list[WatcherState]:
        with self.lock:
            return [r.state for r in self.reports]


def make_message(tag: str, body_bytes: int = 0) -> tuple[str, bytes]:
    message_id = f"<{tag}.{uuid.uuid4().hex[:12]}@customer.example>"
    body = b"We have a problem with the service.\r\n" + b"x" * body_bytes
    raw = (
        f"From: Customer <c@customer.example>\r\nTo: support@acme.example\r\n"
        f"Subject: {tag}\r\nMessage-ID: {message_id}\r\n"
        "Date: Mon, 02 Jun 2025 09:00:00 +0000\r\n\r\n"
    ).encode() + body
    return message_id, raw


@pytest.fixture(params=["pymap", "dovecot"])
def server(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("pymap_server" if request.param == "pymap" else "dovecot")


@pytest.fixture
def running() -> Iterator[Callable[..., MailboxWatcher]]:
    """Start watchers; whatever a test leaves running is stopped afterwards."""
    watchers: list[MailboxWatcher] = []

    def start(account: ImapAccount, store: MemoryStore, **kwargs: Any) -> MailboxWatcher:
        watcher = MailboxWatcher(account, store, **kwargs)
        watcher.start()
        watchers.append(watcher)
        return watcher

    yield start
    for watcher in watchers:
        watcher.stop()


def flags_of(server: Any, uid: int) -> tuple[bytes, ...]:
    with IMAPClient(server.host, port=server.port, ssl=False, timeout=5) as client:
        client.login(server.username, server.password)
        client.select_folder("INBOX", readonly=True)
        flags: tuple[bytes, ...] = client.get_flags([uid])[uid]
        return flags


def wait_idle(store: MemoryStore, timeout: float = 10.0, *, after: int = 0) -> None:
    """Wait for an IDLE report, ignoring the first ``after`` reports."""
    store.wait(lambda: WatcherState.IDLE in store.states()[after:], timeout, "the watcher to IDLE")


def test_first_connect_baselines_then_idle_delivers_new_mail(
    server: Any, running: Callable[..., MailboxWatcher]
) -> None:
    history = [make_message(f"history-{n}") for n in range(3)]
    for _, raw in history:
        server.append(raw)
    store = MemoryStore()
    stored_events: list[float] = []
    running(server.account(**FAST), store, on_stored=lambda: stored_events.append(time.monotonic()))
    wait_idle(store)

    baseline = store.baselines["support"]
    assert store.messages == {}, "history must never be stored"
    assert baseline.last_uid > 0

    new_id, raw = make_message("complaint")
    server.append(raw)
    appended = time.monotonic()
    store.wait(lambda: store.messages, 3.0, "the new message via IDLE")
    assert time.monotonic() - appended < 3.0
    assert store.stored_ids() == [new_id]
    [(uidvalidity, uid)] = [(k[1], k[2]) for k in store.messages]
    assert uid > baseline.last_uid
    assert store.cursors["support"] == Cursor(uidvalidity, uid)
    assert len(stored_events) == 1
    assert b"\\Seen" not in flags_of(server, uid), "the watcher must never change flags"


def test_oversized_message_is_recorded_unfetched_and_the_next_one_still_flows(
    pymap_server: EmbeddedImapServer, running: Callable[..., MailboxWatcher]
) -> None:
    store = MemoryStore()
    running(pymap_server.account(max_message_bytes=2_000, **FAST), store)
    wait_idle(store)
    _, big = make_message("huge", body_bytes=10_000)
    small_id, small = make_message("small")
    pymap_server.append(big)
    pymap_server.append(small)
    store.wait(lambda: len(store.messages) == 2, 5.0, "both messages")

    first, second = (store.messages[k] for k in sorted(store.messages, key=lambda k: k[2]))
    assert first.oversized and first.raw is None and first.size > 2_000
    assert not second.oversized and second.raw is not None and small_id in second.raw.decode()
    assert store.cursors["support"].last_uid == second.uid


def test_restart_catches_up_what_arrived_while_stopped_exactly_once(
    server: Any, running: Callable[..., MailboxWatcher]
) -> None:
    store = MemoryStore()
    first = running(server.account(**FAST), store)
    wait_idle(store)
    before_id, raw = make_message("before")
    server.append(raw)
    store.wait(lambda: store.messages, 5.0, "the first message")
    first.stop()

    missed = [make_message(f"while-stopped-{n}") for n in range(3)]
    for _, raw in missed:
        server.append(raw)
    running(server.account(**FAST), store)
    store.wait(lambda: len(store.messages) == 4, 5.0, "the catch-up")

    assert store.stored_ids() == [before_id, *(mid for mid, _ in missed)]
    every_uid = [uid for _, uids in store.batches for uid in uids]
    assert len(every_uid) == len(set(every_uid)) == 4, "nothing may be stored twice"


def test_polling_without_idle(
    pymap_server: EmbeddedImapServer, running: Callable[..., MailboxWatcher]
) -> None:
    store = MemoryStore()
    running(pymap_server.account(poll_interval_seconds=0.3, **FAST), store, use_idle=False)
    store.wait(lambda: WatcherState.POLLING in store.states(), 5.0, "polling")
    message_id, raw = make_message("polled")
    pymap_server.append(raw)
    store.wait(lambda: store.messages, 3.0, "the polled message")
    assert store.stored_ids() == [message_id]
    assert WatcherState.IDLE not in store.states()


def test_stop_returns_promptly_mid_idle(server: Any) -> None:
    store = MemoryStore()
    watcher = MailboxWatcher(server.account(**FAST), store)
    watcher.start()
    wait_idle(store)
    started = time.monotonic()
    watcher.stop()
    assert time.monotonic() - started < 3.0
    assert not watcher.running
    assert watcher.status.state is WatcherState.STOPPED
    assert store.reports[-1].state is WatcherState.STOPPED


def test_wrong_password_is_reported_and_retried_with_backoff(
    pymap_server: EmbeddedImapServer, running: Callable[..., MailboxWatcher]
) -> None:
    store = MemoryStore()
    account = pymap_server.account(password="wrong", **FAST)
    watcher = running(account, store)
    time.sleep(3.0)

    assert watcher.running, "a login failure must not end the thread"
    status = store.wait(
        lambda: (s := watcher.status).state is WatcherState.DISCONNECTED and s, 3.0, "a failure"
    )
    assert status.last_error is not None
    assert status.last_error.startswith("login failed for demouser:")
    assert "\n" not in status.last_error
    attempts = store.states().count(WatcherState.CONNECTING)
    # backoff 0.2 s doubling to 1 s (with jitter): a handful of attempts, never a busy loop
    assert 3 <= attempts <= 10, attempts
    assert store.cursors == {}


def test_store_failure_advances_nothing_and_is_retried(
    pymap_server: EmbeddedImapServer, running: Callable[..., MailboxWatcher]
) -> None:
    store = MemoryStore()
    running(pymap_server.account(**FAST), store)
    wait_idle(store)
    store.fail_store_batches = 1
    message_id, raw = make_message("retried")
    pymap_server.append(raw)
    store.wait(lambda: store.messages, 5.0, "the retried message")
    errors = [r.last_error for r in store.reports if r.state is WatcherState.DISCONNECTED]
    assert errors and "storage failed in store_batch" in (errors[0] or "")
    assert store.stored_ids() == [message_id]


def test_check_imap_summarises_or_explains(pymap_server: EmbeddedImapServer) -> None:
    summary = check_imap(pymap_server.account())
    assert summary.startswith("INBOX: 0 messages, UIDVALIDITY ")
    assert summary.endswith("IDLE supported")
    with pytest.raises(ImapCheckError, match="login failed for demouser"):
        check_imap(pymap_server.account(password="nope"))
    closed = pymap_server.port
    pymap_server.stop()
    with pytest.raises(ImapCheckError, match=f"connection refused by 127.0.0.1:{closed}"):
        check_imap(ImapAccount("x", "127.0.0.1", closed, "none", "u", "p"))


def test_fetch_one_downloads_an_oversized_message_on_request(
    pymap_server: EmbeddedImapServer,
) -> None:
    account = pymap_server.account(max_message_bytes=100)
    store = MemoryStore()
    MailboxWatcher(account, store).run_once_for_tests()  # baseline
    _, raw = make_message("huge", body_bytes=5_000)
    pymap_server.append(raw)
    assert MailboxWatcher(account, store).run_once_for_tests() == 1
    [(_, uidvalidity, uid)] = store.messages
    assert store.messages[("support", uidvalidity, uid)].oversized
    assert fetch_one(account, uidvalidity, uid).endswith(b"x" * 5_000)
    with pytest.raises(LookupError, match="renumbered"):
        fetch_one(account, uidvalidity + 1, uid)
    with pytest.raises(LookupError, match="no longer in INBOX"):
        fetch_one(account, uidvalidity, uid + 1)


def test_uidvalidity_change_relinks_known_messages(
    dovecot: DovecotServer, running: Callable[..., MailboxWatcher]
) -> None:
    store = MemoryStore()
    first = running(dovecot.account(**FAST), store)
    wait_idle(store)
    known = [make_message(f"known-{n}") for n in range(2)]
    for _, raw in known:
        dovecot.append(raw)
    store.wait(lambda: len(store.messages) == 2, 5.0, "the known messages")
    first.stop()
    old = store.cursors["support"]

    dovecot.doveadm("mailbox", "update", "-u", dovecot.username, "--uid-validity", "777", "INBOX")
    fresh_id, raw = make_message("after-renumbering")
    dovecot.append(raw)
    running(dovecot.account(**FAST), store)
    store.wait(lambda: len(store.messages) == 3, 5.0, "the new message")

    assert store.renumberings == [(old, 777, 2)]
    assert set(store.relinks[0]) == {mid for mid, _ in known}
    assert {k[1] for k in store.messages} == {777}
    assert store.batches[-1][0] == 777
    assert [uids for validity, uids in store.batches if validity == 777] == [[old.last_uid + 1]]
    assert store.stored_ids()[-1] == fresh_id


@pytest.mark.slow
def test_dovecot_crash_reconnects_and_catches_up(
    dovecot: DovecotServer, running: Callable[..., MailboxWatcher]
) -> None:
    store = MemoryStore()
    watcher = running(dovecot.account(**FAST), store)
    wait_idle(store)
    dovecot.kill()
    store.wait(
        lambda: watcher.status.state is WatcherState.DISCONNECTED, 5.0, "DISCONNECTED after kill"
    )
    cpu_before, wall_before = time.process_time(), time.monotonic()
    time.sleep(2.0)
    cpu_share = (time.process_time() - cpu_before) / (time.monotonic() - wall_before)
    assert cpu_share < 0.05, f"backing off must not spin (CPU {cpu_share:.1%})"
    assert watcher.status.last_error

    message_id, raw = make_message("during-outage")
    dovecot.deliver_offline(raw)
    reports_before = len(store.reports)
    dovecot.start()
    store.wait(lambda: store.messages, 10.0, "the message delivered during the outage")
    assert store.stored_ids() == [message_id]
    wait_idle(store, after=reports_before)
    assert WatcherState.CONNECTING in store.states()[reports_before:]


class AppendingStore(MemoryStore):
    """Delivers one more message to the server while the watcher stores the first batch:
    the moment at which pymap announces new mail only alongside an empty SEARCH."""

    def __init__(self, server: Any, raw: bytes) -> None:
        super().__init__()
        self.server, self.raw = server, raw

    def store_batch(
        self, mailbox: str, uidvalidity: int, messages: Sequence[FetchedMessage]
    ) -> None:
        super().store_batch(mailbox, uidvalidity, messages)
        if len(self.batches) == 1:
            self.server.append(self.raw)


def test_mail_announced_with_an_empty_search_is_fetched_before_idling(
    server: Any, running: Callable[..., MailboxWatcher]
) -> None:
    second_id, second = make_message("second")
    store = AppendingStore(server, second)
    running(server.account(**FAST), store)
    wait_idle(store)
    first_id, first = make_message("first")
    server.append(first)
    # Without a second SEARCH the watcher would IDLE past the second message until renewal.
    store.wait(lambda: len(store.messages) == 2, 5.0, "both messages")
    assert store.stored_ids() == [first_id, second_id]
