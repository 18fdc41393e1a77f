"""One and then two ``codered run`` processes sharing a PostgreSQL database and a config.

What it proves besides the throughput of each: no acknowledgement leaves twice (per
recipient at the sink, and per outbox row), and each mailbox is watched by one process
at a time. The latter is read from PostgreSQL itself: a sampler thread lists the granted
advisory locks (``pg_locks`` joined to ``pg_stat_activity``, whose application name
carries the holder's PID) every 50 ms for the whole run, and the service logs are
searched for each process taking a mailbox.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator

from codered.mailbox_lock import lock_key
from tests.bench.harness import DbProbe, Mailbox, ServiceProcess, wait_for_watchers
from tests.bench.live import (
    Run,
    ack_audit,
    append_parallel,
    decisions,
    finish_profile,
    log_problems,
    maybe_profile,
    milestones,
    outbox_stats,
    settle,
)
from tests.bench.messages import flood_mix, run_token
from tests.bench.results import Result
from tests.bench.scenarios import FLOOD_STORAGE, Options
from tests.bench.servers import BenchError
from tests.support.postgres import PostgresUnusableError, scratch_database

__all__ = ["fresh_database", "workers"]

ALL_MAILBOXES = (
    Mailbox("support", "support@acme.example", "INBOX"),
    Mailbox("billing", "billing@acme.example", "Billing"),
    Mailbox("sales", "sales@acme.example", "Sales"),
    Mailbox("ops", "ops@acme.example", "Ops"),
)

_LOCKS_SQL = (
    "SELECT l.classid::bigint, l.objid::bigint, a.application_name FROM pg_locks l "
    "JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
)


@contextlib.contextmanager
def fresh_database(base_url: str) -> Iterator[str]:
    """A new database for one phase on the server of ``base_url``, dropped afterwards; a
    server that cannot be used fails the benchmark (a test would skip)."""
    try:
        with scratch_database(base_url, "codered_bench") as url:
            yield url
    except PostgresUnusableError as exc:
        raise BenchError(str(exc)) from exc


class LockSampler:
    """Samples who holds each mailbox's advisory lock until stopped."""

    def __init__(self, url: str, mailboxes: tuple[Mailbox, ...]) -> None:
        self._url = url
        self._names = {_signed(lock_key(b.name)): b.name for b in mailboxes}
        self.max_holders: dict[str, int] = dict.fromkeys(self._names.values(), 0)
        self.holders: dict[str, set[int]] = defaultdict(set)
        self.samples = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="lock-sampler", daemon=True)

    def start(self) -> LockSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        if self.error is not None:
            raise BenchError(f"sampling pg_locks failed: {self.error!r}")

    def _main(self) -> None:
        probe = DbProbe(self._url)
        try:
            while not self._stop.wait(0.05):
                self._sample(probe.rows(_LOCKS_SQL))
        except BaseException as exc:
            self.error = exc
        finally:
            probe.close()

    def _sample(self, rows: list[tuple[object, ...]]) -> None:
        now: Counter[str] = Counter()
        for classid, objid, application in rows:
            mailbox = self._names.get(_signed((int(str(classid)) << 32) | int(str(objid))))
            if mailbox is None:
                continue
            now[mailbox] += 1
            with contextlib.suppress(ValueError, IndexError):
                self.holders[mailbox].add(int(str(application).rsplit(" ", 1)[1]))
        for mailbox, n in now.items():
            self.max_holders[mailbox] = max(self.max_holders[mailbox], n)
        self.samples += 1


def _signed(key: int) -> int:
    key &= 2**64 - 1
    return key - 2**64 if key >= 2**63 else key


def _takeovers(services: list[ServiceProcess]) -> dict[str, list[int]]:
    """Which process logged that it now watches each mailbox (one entry per take), in the
    order of the log timestamps: the last one is the holder at the end."""
    taken: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for service in services:
        for entry in service.log_lines():
            message = str(entry.get("message", ""))
            if message.endswith(": this process now watches the mailbox"):
                taken[message.split(":", 1)[0]].append((str(entry.get("ts", "")), service.pid))
    return {mailbox: [pid for _, pid in sorted(takes)] for mailbox, takes in taken.items()}


def _senders_by_pid(probe: DbProbe) -> dict[str, int]:
    rows = probe.rows("SELECT lease_owner, count(*) FROM outbox GROUP BY 1")
    return {str(owner).split(":")[1] if owner else "-": int(n) for owner, n in rows}


def _phase(
    processes: int, count: int, boxes: tuple[Mailbox, ...], base_url: str, options: Options
) -> Result:
    result = Result(
        "workers",
        {
            "variant": f"{processes} process(es)",
            "processes": processes,
            "mailboxes": len(boxes),
            "count": count,
        },
    )
    folder = {b.address: b.folder for b in boxes}
    planned = flood_mix(count, run_token(), recipients=tuple(folder))
    expected = {p.sender for p in planned if p.complaint}
    with (
        Run("dovecot", keep=options.keep, storage=FLOOD_STORAGE) as run,
        fresh_database(base_url) as url,
    ):
        run.imap.create_folders([b.folder for b in boxes])
        config, _ = run.config("workers", url, mailboxes=boxes, file_sent=options.file_sent)
        services = [run.service(config, f"worker{n}") for n in range(processes)]
        probe = run.probe(url)
        wait_for_watchers(services, probe, boxes, timeout=90)
        sampler = LockSampler(url, boxes).start()
        profiler = maybe_profile(options.profile, services[0], "workers")

        def alive() -> None:
            for service in services:
                service.check_alive()

        try:
            first, _ = append_parallel(run.imap, planned, folder_of=lambda p: folder[p.to])
            timeout = max(300.0, count * 2.0)
            last_ack = run.sink.wait_for_all(expected, timeout, "workers flood")
            settle(probe, count, timeout, alive)
            time.sleep(1.0)
        finally:
            finish_profile(profiler, result.notes)
            sampler.stop()
        values = result.values
        values["seconds_to_last_ack"] = round(last_ack - first, 3)
        values["throughput_msgs_per_s"] = round(count / max(last_ack - first, 1e-9), 1)
        values.update(milestones(probe, first))
        values["peak_rss_mb"] = {str(s.pid): s.sample_rss() for s in services}
        values.update(ack_audit(run.sink, expected))
        values.update(outbox_stats(probe))
        values["sent_by_pid"] = _senders_by_pid(probe)
        values["decisions"] = decisions(probe)
        values["lock_samples"] = sampler.samples
        values["max_lock_holders"] = max(sampler.max_holders.values(), default=0)
        values["lock_holder_pids"] = {m: sorted(p) for m, p in sampler.holders.items()}
        takes = _takeovers(services)
        values["mailbox_takes"] = {m: len(p) for m, p in takes.items()}
        # A process that joins later is handed mailboxes (codered/worker_share.py): at most
        # one hand-over per mailbox, and at the end nobody holds more than its share.
        values["extra_takes"] = sum(max(0, len(p) - 1) for p in takes.values())
        held = Counter(p[-1] for p in takes.values() if p)
        values["held_at_end"] = {str(pid): n for pid, n in sorted(held.items())}
        values["most_held_at_end"] = max(held.values(), default=0)
        for service in services:
            service.stop()
        values["log_problems"] = log_problems(*services)
    values["outbox_duplicates"] = values["outbox_rows"] - values["outbox_distinct_recipients"]
    result.correct("no acknowledgement to a non-complaint", "acks_to_non_complaints")
    result.correct("no duplicate at the sink", "acks_duplicate")
    result.correct("no duplicate outbox row", "outbox_duplicates")
    result.correct("every complaint acknowledged", "acks_missing")
    result.correct("one lock holder per mailbox at a time", "max_lock_holders", "<=", 1)
    share = math.ceil(len(boxes) / processes)
    result.correct("at most one hand-over per mailbox", "extra_takes", "<=", len(boxes))
    result.correct("mailboxes shared: none holds over its share", "most_held_at_end", "<=", share)
    return result


def workers(count: int, base_url: str | None, mailboxes: int, options: Options) -> list[Result]:
    """The flood with one process, then with two; the second result carries the speed-up."""
    if not base_url:
        skipped = Result("workers", {"skipped": "no PostgreSQL URL"})
        skipped.notes.append(
            "set CODERED_TEST_POSTGRES_URL or pass --postgres-url "
            "(e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test)"
        )
        return [skipped]
    boxes = ALL_MAILBOXES[: max(1, min(mailboxes, len(ALL_MAILBOXES)))]
    one = _phase(1, count, boxes, base_url, options)
    two = _phase(2, count, boxes, base_url, options)
    base = one.values["throughput_msgs_per_s"]
    two.values["speedup_vs_one"] = round(two.values["throughput_msgs_per_s"] / base, 2)
    return [one, two]
