"""Crash the real ``codered run`` and check that nothing is lost and nothing is sent twice.

DESIGN.md invariants 1 and 2 (README: "How a message flows") are promises about
what survives a crash. These tests run the real command as a subprocess
against a private Dovecot and an aiosmtpd sink, kill it, restart it, and then
read the end state from the database and the sink:

* every appended message is stored exactly once and processed;
* each complaint has exactly one incident and one acknowledgement outbox row,
  which is ``sent``; nothing else is answered;
* every acknowledgement reached the sink; all copies of one carry the same
  Message-ID and the same bytes, and there is exactly one copy, except where
  the process died between the server's ``250`` and our commit of ``sent``.

The first test dies at each named crash point (``codered.crashpoints``, armed
with ``CODERED_CRASH_AT``); the second SIGKILLs the service at random moments
during a burst of 200 messages.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path

import pytest

from codered.crashpoints import CRASH_POINTS, ENV_VAR, EXIT_CODE
from codered.db.engine import Database
from codered.db.models import MailboxState, OutboxMessage
from codered.embedded import ReceivedMail, SmtpSink
from codered.settings import Settings
from tests.e2e.helpers import inbound, incidents, outbox
from tests.support import mail
from tests.support.cli import codered_command, write_config
from tests.support.dovecot import DovecotServer
from tests.support.service import make_settings, query

pytestmark = [pytest.mark.slow, pytest.mark.dovecot]

MAILBOX = "support"
SMTP_TIMEOUT_SECONDS = 5
LEASE_SECONDS = SMTP_TIMEOUT_SECONDS * 3 + 30
"""The outbox lease ``codered.service`` derives from the SMTP timeout. Work left by a dead
process must be picked up long before it expires: the holder's pid is gone."""
READY_LINE = "connected, cursor at UID"
"""What ``inbox.watcher`` logs once a session is open (the service is doing real work)."""


# --- the codered process ------------------------------------------------------------------------


class Codered:
    """One ``codered run --config`` subprocess; its stdout and stderr go to ``log``."""

    def __init__(self, config: Path, log: Path, *, crash_at: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CODERED_")}
        env["COLUMNS"] = "250"  # rich wraps log lines at the terminal width
        if crash_at is not None:
            env[ENV_VAR] = crash_at
        self.log = log
        self.started = time.monotonic()
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [*codered_command(), "run", "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def exit_code(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None if still running after ``timeout`` seconds."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, as systemd stops it; the exit status, or None if it did not stop in time."""
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL and reap it. Reaping matters: a zombie still answers ``kill(pid, 0)``."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        text = "\n".join(line.rstrip() for line in self.output().splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log.name} (pid {self.pid}) ---\n{text}"

    def wait_ready(self, timeout: float = 20.0) -> bool:
        """Until the watcher has opened its IMAP session; False if that did not show in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY_LINE in self.output():
                return True
            if self.exit_code() is not None:
                pytest.fail(f"codered exited with {self.exit_code()} at start\n{self.tail()}")
            time.sleep(0.05)
        return False


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Codered]]:
    """Start ``codered run`` processes; any still running at the end are killed."""
    started: list[Codered] = []

    def start(config: Path, *, crash_at: str | None = None) -> Codered:
        log = tmp_path / f"run{len(started) + 1}.log"
        process = Codered(config, log, crash_at=crash_at)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.exit_code() is None:
            process.kill()


# --- configuration and state ----------------------------------------------------------------------


def configure(tmp_path: Path, dovecot: DovecotServer, sink: SmtpSink) -> tuple[Path, Settings]:
    """Write ``codered.toml`` for the subprocess; the same settings for reading its database."""
    settings = make_settings(
        tmp_path,
        dovecot.port,
        sink.port,
        username=dovecot.username,
        password=dovecot.password,
        smtp={"timeout_seconds": SMTP_TIMEOUT_SECONDS},
    )
    return write_config(tmp_path / "codered.toml", settings), settings


def cursor(settings: Settings) -> MailboxState | None:
    async def work(db: Database) -> MailboxState | None:
        async with db.read() as session:
            return await session.get(MailboxState, MAILBOX)

    if not Path(settings.database.url.split("///", 1)[1]).exists():
        return None
    try:
        return query(settings, work)
    except Exception:  # the schema is not there yet while the first process migrates
        return None


def wait_until(
    condition: Callable[[], object], timeout: float, what: str, *processes: Codered
) -> float:
    """Poll ``condition``; fail with the processes' output on timeout or if one exits.

    Returns the seconds it took.
    """
    start = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - start
        for process in processes:
            if process.exit_code() is not None:
                pytest.fail(
                    f"codered exited with {process.exit_code()} while waiting for {what}\n"
                    f"{process.tail()}"
                )
        if time.monotonic() - start > timeout:
            tails = "\n".join(p.tail() for p in processes)
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")
        time.sleep(0.2)


# --- what the sink received -----------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    message_id: str
    in_reply_to: str
    recipients: tuple[str, ...]
    raw: bytes


_HEADERS = BytesHeaderParser(policy=default_policy)


def sent(mails: list[ReceivedMail]) -> list[Sent]:
    result = []
    for received in mails:
        headers = _HEADERS.parsebytes(received.raw)
        result.append(
            Sent(
                str(headers.get("Message-ID", "")).strip(),
                str(headers.get("In-Reply-To", "")).strip(),
                received.recipients,
                received.raw,
            )
        )
    return result


# --- the invariants -------------------------------------------------------------------------------


def settled(settings: Settings, sink: SmtpSink, messages: int, complaints: dict[str, str]) -> bool:
    """Every complaint answered at the sink, every message processed, the outbox drained."""
    answered = {s.in_reply_to for s in sent(sink.messages)}
    if not set(complaints) <= answered:
        return False
    rows = inbound(settings)
    if len(rows) < messages or any(r.status == "pending" for r in rows):
        return False
    return all(row.status in ("sent", "failed") for row in outbox(settings))


def check_invariants(
    settings: Settings,
    received: list[ReceivedMail],
    complaints: dict[str, str],
    others: set[str],
    max_copies: Callable[[OutboxMessage], int],
) -> dict[str, int]:
    """Assert invariants 1 and 2 on the end state; return copies per acknowledgement."""
    # 1. Nothing lost, nothing stored twice.
    rows = inbound(settings)
    by_uid = Counter((r.mailbox, r.uidvalidity, r.uid) for r in rows)
    assert [key for key, n in by_uid.items() if n > 1] == [], "a UID was stored twice"
    stored = Counter(r.message_id or "(none)" for r in rows)
    expected = Counter([*complaints, *others])
    assert stored == expected, (
        f"missing: {sorted((expected - stored).elements())}, "
        f"extra: {sorted((stored - expected).elements())}"
    )
    unfinished = [(r.uid, r.status, r.reason) for r in rows if r.status != "processed"]
    assert unfinished == [], "messages not processed"
    row_of = {r.message_id: r for r in rows}

    # 2. One incident and one sent acknowledgement per complaint; nothing for the rest.
    wrong = {mid: row_of[mid].action for mid in complaints if row_of[mid].action != "acknowledge"}
    assert wrong == {}, "complaints not acknowledged"
    incident_of = {mid: row_of[mid].incident_id or 0 for mid in complaints}
    assert 0 not in incident_of.values(), "an acknowledged complaint without an incident"
    assert len(set(incident_of.values())) == len(complaints), "two complaints share an incident"
    customers = {i.id: i.customer_email for i in incidents(settings)}
    assert len(customers) == len(complaints), "incidents beside one per complaint"
    assert {customers[incident_of[mid]] for mid in complaints} == set(complaints.values())
    answered_others = {mid: row_of[mid].action for mid in others if row_of[mid].incident_id}
    assert answered_others == {}, "a message that is not a complaint got an incident"

    rows_out = outbox(settings)
    assert {o.kind for o in rows_out} <= {"acknowledgement"}
    per_incident = Counter(o.incident_id for o in rows_out)
    assert per_incident == Counter(incident_of.values()), "not one outbox row per complaint"
    not_sent = [(o.id, o.status, o.attempts, o.last_error) for o in rows_out if o.status != "sent"]
    assert not_sent == [], "acknowledgements not sent"
    outbox_of = {o.incident_id: o for o in rows_out}

    # At the sink: every acknowledgement, same Message-ID and bytes for every copy.
    copies: dict[str, list[Sent]] = defaultdict(list)
    for mail_sent in sent(received):
        copies[mail_sent.in_reply_to].append(mail_sent)
    unexpected = sorted(set(copies) - set(complaints))
    assert unexpected == [], "mail sent in reply to something that is not one of our complaints"
    counts: dict[str, int] = {}
    too_many = []
    for mid, customer in complaints.items():
        row = outbox_of[incident_of[mid]]
        group = copies.get(mid, [])
        assert group, f"no acknowledgement of {mid} reached the sink"
        assert {s.message_id for s in group} == {row.message_id}, "copies differ in Message-ID"
        assert all(s.raw == group[0].raw for s in group), "copies differ in their bytes"
        assert all(s.recipients == (customer,) for s in group), "wrong envelope recipients"
        counts[row.message_id] = len(group)
        if len(group) > max_copies(row):
            too_many.append((row.message_id, len(group), row.attempts))
    assert too_many == [], "acknowledgements sent more often than allowed (id, copies, attempts)"
    return counts


def complaint_mail(index: int) -> tuple[str, str, bytes]:
    """``(message_id, customer address, raw)``: a complaint from a customer of its own."""
    address = f"customer{index}@client{index}.example"
    make = mail.outage_complaint if index % 2 == 0 else mail.billing_complaint
    message_id, raw = make(sender=f"Customer {index} <{address}>")
    return message_id, address, raw


# --- crashing at each named point -----------------------------------------------------------------


def _state_at_crash(point: str, settings: Settings, sink: SmtpSink) -> str:
    """Check that the process died where the point says, not somewhere near it."""
    rows = inbound(settings)
    state = cursor(settings)
    rows_out = outbox(settings)
    received = sink.messages
    assert state is not None
    summary = (
        f"{len(rows)} stored ({Counter(r.status for r in rows)}), cursor at {state.last_uid}, "
        f"outbox {Counter(o.status for o in rows_out)}, {len(received)} at the sink"
    )
    if point == "after_fetch":
        assert rows == [] and state.last_uid == 0, summary
    elif point in ("after_raw_commit", "after_cursor_advance"):
        assert rows and all(r.status == "pending" for r in rows), summary
        # raw rows and cursor were committed together: the cursor covers exactly what is stored
        assert state.last_uid == max(r.uid for r in rows), summary
    elif point == "after_decision_commit":
        # The first batch of decisions committed, with their outbox rows, and nothing sent.
        assert [r.status for r in rows].count("processed") >= 1, summary
        assert rows_out and all(o.status == "pending" for o in rows_out), summary
        assert received == [], summary
    elif point == "before_smtp_data":
        assert any(o.status == "sending" for o in rows_out), summary
        assert received == [], summary
    elif point == "after_smtp_250":
        # The first server 250 crashed it; sends beside that one (the outbox sends up to
        # [smtp] connections at once) may have been accepted too, none marked sent yet.
        assert 1 <= len(received) <= settings.smtp.connections, summary
        for in_flight in sent(received):
            [row] = [o for o in rows_out if o.message_id == in_flight.message_id]
            assert row.status == "sending", summary
    if point != "after_smtp_250":
        assert received == [], summary
    return summary


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_at_each_point_then_restart_keeps_the_invariants(
    point: str,
    dovecot: DovecotServer,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    launch: Callable[..., Codered],
) -> None:
    config, settings = configure(tmp_path, dovecot, smtp_sink)
    first = launch(config, crash_at=f"{point}:1")
    wait_until(lambda: cursor(settings) is not None, 30, "the mailbox baseline", first)

    complaints: dict[str, str] = {}
    appended = []
    for index in range(3):
        message_id, address, raw = complaint_mail(index)
        complaints[message_id] = address
        appended.append(raw)
    question_id, question = mail.question(sender="Sam Rivera <sam@wingtip.example>")
    ooo_id, ooo = mail.out_of_office(sender="Chris Doe <chris@woodgrove.example>")
    appended += [question, ooo]
    others = {question_id, ooo_id}
    started = time.monotonic()
    for raw in appended:
        dovecot.append(raw)

    code = first.wait(30)
    if code is None:
        pytest.fail(f"codered did not reach crash point {point} within 30 s\n{first.tail()}")
    assert code == EXIT_CODE, f"expected exit {EXIT_CODE} at {point}, got {code}\n{first.tail()}"
    assert f"crash point {point} reached" in first.output()
    crashed_in = time.monotonic() - started
    at_crash = _state_at_crash(point, settings, smtp_sink)
    in_flight = {s.message_id for s in sent(smtp_sink.messages)}

    second = launch(config)
    restarted = time.monotonic()
    recovered_in = wait_until(
        lambda: settled(settings, smtp_sink, len(appended), complaints),
        30,
        "every complaint acknowledged after the restart",
        second,
    )
    # Work the dead process held (a lease on an outbox row) was taken over at once, because
    # its holder's pid is gone, not after the lease ran out.
    assert time.monotonic() - restarted < LEASE_SECONDS
    stopping = time.monotonic()
    code = second.terminate(10)
    assert code == 0, f"SIGTERM: expected exit 0 within 10 s, got {code}\n{second.tail()}"
    stopped_in = time.monotonic() - stopping

    def max_copies(row: OutboxMessage) -> int:
        # The documented window: the server said 250, we died before committing "sent".
        return 2 if row.message_id in in_flight else 1

    counts = check_invariants(settings, smtp_sink.messages, complaints, others, max_copies)
    if point == "after_smtp_250":
        assert in_flight and all(counts[mid] == 2 for mid in in_flight), (
            "each one in flight is re-sent once"
        )
    if point in ("before_smtp_data", "after_smtp_250"):
        assert "reclaiming from" in second.output(), second.tail()
    print(
        f"\n{point}: crashed {crashed_in:.2f} s after the mail was appended ({at_crash}); "
        f"restart settled in {recovered_in:.2f} s; SIGTERM took {stopped_in:.2f} s; "
        f"copies {sorted(counts.values())}"
    )


# --- a burst with random kills --------------------------------------------------------------------


def _burst(rng: random.Random) -> tuple[dict[str, str], set[str], list[bytes]]:
    complaints: dict[str, str] = {}
    others: set[str] = set()
    raws: list[bytes] = []
    for index in range(140):
        message_id, address, raw = complaint_mail(index)
        complaints[message_id] = address
        raws.append(raw)
    makers: list[Callable[..., tuple[str, bytes]]] = [mail.question, mail.out_of_office]
    for index in range(60):
        if index % 3 == 2:
            message_id, raw = mail.newsletter()
        else:
            sender = f"Someone {index} <someone{index}@other{index}.example>"
            message_id, raw = makers[index % 3](sender=sender)
        others.add(message_id)
        raws.append(raw)
    rng.shuffle(raws)
    return complaints, others, raws


def _duplicate_window(rows: list[OutboxMessage], received: list[ReceivedMail]) -> list[float]:
    """Milliseconds from the sink's ``250`` to our ``sent_at``, sorted: the window in which a
    crash duplicates a message (``sent_at`` is taken inside the transaction that commits it)."""
    accepted: dict[str, float] = {}
    for mail_sent, raw in zip(sent(received), received, strict=True):
        accepted[mail_sent.message_id] = raw.received_at.timestamp()  # the last copy counts
    return sorted(
        (row.sent_at.timestamp() - accepted[row.message_id]) * 1000
        for row in rows
        if row.sent_at is not None and row.message_id in accepted
    )


def test_burst_with_random_kills_keeps_the_invariants(
    dovecot: DovecotServer,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    launch: Callable[..., Codered],
) -> None:
    rng = random.Random(3)
    config, settings = configure(tmp_path, dovecot, smtp_sink)
    complaints, others, raws = _burst(rng)
    run = launch(config)
    wait_until(lambda: cursor(settings) is not None, 30, "the mailbox baseline", run)

    failure: list[BaseException] = []

    def append_all() -> None:
        try:
            for raw in raws:
                dovecot.append(raw)
                time.sleep(0.02)
        except BaseException as exc:
            failure.append(exc)

    appender = threading.Thread(target=append_all, name="append", daemon=True)
    started = time.monotonic()
    appender.start()
    kills: list[str] = []
    for _ in range(5):
        if not run.wait_ready():
            pytest.fail(f"codered did not open its IMAP session within 20 s\n{run.tail()}")
        time.sleep(rng.uniform(0.5, 2.0))
        if run.exit_code() is not None:
            pytest.fail(f"codered exited with {run.exit_code()} on its own\n{run.tail()}")
        if not appender.is_alive() and settled(settings, smtp_sink, len(raws), complaints):
            break  # nothing left to interrupt
        run.kill()
        kills.append(
            f"{time.monotonic() - started:.1f}s: {len(inbound(settings))} stored, "
            f"{len(smtp_sink.messages)} at the sink"
        )
        run = launch(config)
    appender.join(60)
    assert not appender.is_alive(), "appending 200 messages took over a minute"
    assert failure == [], f"appending failed: {failure!r}"

    settled_in = wait_until(
        lambda: settled(settings, smtp_sink, len(raws), complaints),
        120,
        "all 140 acknowledgements after the last restart",
        run,
    )
    code = run.terminate(10)
    assert code == 0, f"SIGTERM: expected exit 0 within 10 s, got {code}\n{run.tail()}"

    rows_out = outbox(settings)
    attempts = {o.message_id: o.attempts for o in rows_out}

    def max_copies(row: OutboxMessage) -> int:
        # Only a row that was claimed by a process that then died can have gone out twice,
        # and every copy costs one attempt.
        return 1 if row.attempts <= 1 else row.attempts

    received = smtp_sink.messages
    counts = check_invariants(settings, received, complaints, others, max_copies)
    duplicated = {mid: n for mid, n in counts.items() if n > 1}
    retried = sum(1 for n in attempts.values() if n > 1)
    window = _duplicate_window(rows_out, received)
    print(
        f"\nburst: {len(kills)} kills ({'; '.join(kills)}); settled {settled_in:.1f} s after "
        f"the last restart, {time.monotonic() - started:.1f} s in all; {retried} rows claimed "
        f"more than once; {len(duplicated)} acknowledgements duplicated at the sink "
        f"{sorted(duplicated.values())} (allowed: all were in flight at a kill); "
        f"250 to 'sent' (ms): median {window[len(window) // 2]:.0f}, "
        f"90% {window[len(window) * 9 // 10]:.0f}, max {window[-1]:.0f}"
    )
    assert kills, "the burst was processed before the first kill; nothing was tested"
