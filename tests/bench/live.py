"""What the service benchmarks share: the servers of one run, delivering in parallel, and
telling, from the sink and the database, whether every complaint got exactly one answer.

Why "settled" is read from the database and not guessed with a sleep: a run is over
when every delivered message has been decided and nothing waits in the outbox, and only
then can we say that no acknowledgement went to a non-complaint.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.bench.harness import (
    DEFAULT_MAILBOXES,
    DbProbe,
    Mailbox,
    ServiceProcess,
    wait_for_watchers,
    wait_until,
    write_config,
)
from tests.bench.messages import Planned
from tests.bench.results import percentile
from tests.bench.servers import Appender, BenchError, ImapServer, TimedSink
from tests.bench.spy import Profiler

__all__ = ["Run", "ack_audit", "append_parallel", "decisions", "settle"]


FAILED_LOGS = Path(tempfile.gettempdir()) / "codered-bench-failed"
"""Where the service logs of a run that failed are kept (the rest of the run is removed)."""


class Run:
    """A temporary folder, an IMAP server of ``kind`` and an SMTP sink, for one benchmark."""

    def __init__(self, kind: str, *, keep: bool = False, storage: str = "maildir") -> None:
        self.keep = keep
        self.tmp = Path(tempfile.mkdtemp(prefix="codered-bench-"))
        self.sink = TimedSink().start()
        try:
            self.imap = ImapServer(kind, storage=storage)
        except BaseException:
            self.sink.stop()
            raise
        self.services: list[ServiceProcess] = []
        self.probes: list[DbProbe] = []

    def config(
        self,
        name: str,
        database_url: str | None = None,
        *,
        mailboxes: tuple[Mailbox, ...] = DEFAULT_MAILBOXES,
        file_sent: bool = True,
    ) -> tuple[Path, str]:
        """Write ``NAME.toml`` (SQLite file ``NAME.db`` unless a URL is given)."""
        url = database_url or f"sqlite+aiosqlite:///{self.tmp / (name + '.db')}"
        path = write_config(
            self.tmp / f"{name}.toml",
            database_url=url,
            imap=self.imap,
            smtp_port=self.sink.port,
            mailboxes=mailboxes,
            file_sent=file_sent,
        )
        return path, url

    def service(self, config: Path, name: str) -> ServiceProcess:
        service = ServiceProcess(config, self.tmp / f"{name}.log")
        self.services.append(service)
        return service.start()

    def probe(self, url: str) -> DbProbe:
        probe = DbProbe(url)
        self.probes.append(probe)
        return probe

    def start_ready(
        self,
        name: str,
        *,
        mailboxes: tuple[Mailbox, ...] = DEFAULT_MAILBOXES,
        file_sent: bool = True,
        database_url: str | None = None,
        timeout: float = 60.0,
    ) -> tuple[ServiceProcess, DbProbe]:
        """Configure and start one service; return once every watcher idles."""
        config, url = self.config(name, database_url, mailboxes=mailboxes, file_sent=file_sent)
        service = self.service(config, name)
        probe = self.probe(url)
        wait_for_watchers(service, probe, mailboxes, timeout=timeout)
        return service, probe

    def close(self) -> None:
        for probe in self.probes:
            probe.close()
        for service in self.services:
            service.kill()
        self.imap.close()
        self.sink.stop()
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None and not self.keep:
            self.keep_logs()
        self.close()

    def keep_logs(self) -> list[Path]:
        """Copy the services' logs out of the temporary folder (which is removed) into
        FAILED_LOGS, and say where: a failed run's log is what explains it."""
        kept: list[Path] = []
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for service in self.services:
            if service.log.exists():
                FAILED_LOGS.mkdir(parents=True, exist_ok=True)
                target = FAILED_LOGS / f"{stamp}-{os.getpid()}-{service.log.name}"
                shutil.copyfile(service.log, target)
                kept.append(target)
        if kept:
            names = ", ".join(str(path) for path in kept)
            print(f"  the failed run's service logs are kept: {names}", file=sys.stderr)
        return kept


def append_parallel(
    imap: ImapServer,
    planned: Sequence[Planned],
    *,
    connections: int = 4,
    folder_of: Callable[[Planned], str] = lambda _p: "INBOX",
) -> tuple[float, float]:
    """APPEND everything over ``connections`` kept-open connections at once.

    Each thread logs in first and they all start together, so the returned start time
    is the first APPEND, not a login; returns ``(first_append_at, last_append_done_at)``.
    """
    connections = max(1, min(connections, len(planned)))
    started: list[float] = []
    barrier = threading.Barrier(connections, action=lambda: started.append(time.monotonic()))
    errors: list[BaseException] = []

    def worker(share: Sequence[Planned]) -> None:
        appender: Appender | None = None
        try:
            appender = Appender(imap)
            barrier.wait(30)
            for item in share:
                appender.append(item.raw, folder_of(item))
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            if appender is not None:
                appender.close()

    threads = [
        threading.Thread(target=worker, args=(planned[n::connections],), name=f"append-{n}")
        for n in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    if errors:
        raise BenchError(f"appending failed: {errors[0]!r}")
    if not started:
        raise BenchError("the appending threads never started together")
    return started[0], time.monotonic()


def settle(probe: DbProbe, inbound: int, timeout: float, alive: Callable[[], None]) -> float:
    """Wait until ``inbound`` messages are stored and decided and the outbox is empty."""

    def done() -> float | None:
        stored = probe.scalar("SELECT count(*) FROM inbound_messages")
        pending = probe.scalar("SELECT count(*) FROM inbound_messages WHERE status = 'pending'")
        queued = probe.scalar("SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')")
        if stored >= inbound and pending == 0 and queued == 0:
            return time.monotonic()
        return None

    return wait_until(
        done, timeout, f"{inbound} messages decided and the outbox empty", interval=0.2, alive=alive
    )


def decisions(probe: DbProbe) -> dict[str, int]:
    """How many messages each rule decided (``action/rule``): shows what was held or ignored."""
    rows = probe.rows(
        "SELECT coalesce(action, status), coalesce(deciding_rule, '-'), count(*) "
        "FROM inbound_messages GROUP BY 1, 2 ORDER BY 3 DESC"
    )
    return {f"{action}/{rule}": int(n) for action, rule, n in rows}


def ack_audit(sink: TimedSink, complainants: set[str]) -> dict[str, int]:
    """Count missing, duplicate and unwanted acknowledgements by envelope recipient."""
    counts = sink.counts_by_recipient()
    wanted = {c.lower() for c in complainants}
    return {
        "acks_expected": len(wanted),
        "acks_received": sum(counts.values()),
        "acks_missing": sum(1 for c in wanted if not counts.get(c)),
        "acks_duplicate": sum(n - 1 for n in counts.values() if n > 1),
        "acks_to_non_complaints": sum(n for r, n in counts.items() if r not in wanted),
    }


def _epoch(value: Any) -> float:
    """A naive-UTC timestamp from either database as seconds since the epoch."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC).timestamp()


def stages(probe: DbProbe, sink: TimedSink, appended: dict[str, float]) -> dict[str, float]:
    """Where one acknowledgement's time goes, from the service's own timestamps.

    ``appended`` maps a sender to the wall-clock time its APPEND returned. Stages:
    APPEND to raw bytes stored (server notification, watcher fetch, commit), stored to
    decided (parse, classify, incident, outbox row, audit: ``processed_at``), decided to
    the sink (outbox claim, SMTP). Wall clocks of one machine, so good to a millisecond
    or so; the end-to-end figures use the monotonic clock instead."""
    received = {
        r.lower(): a.mail.received_at.timestamp()
        for a in sink.arrivals()
        for r in a.mail.recipients
    }
    rows = probe.rows(
        "SELECT i.sender, i.fetched_at, i.processed_at FROM inbound_messages i "
        "WHERE i.action = 'acknowledge'"
    )
    spans: dict[str, list[float]] = {"to_stored": [], "to_decided": [], "to_sink": []}
    for sender, fetched, processed in rows:
        key = str(sender).lower()
        if key not in appended or key not in received or processed is None:
            continue
        spans["to_stored"].append(_epoch(fetched) - appended[key])
        spans["to_decided"].append(_epoch(processed) - _epoch(fetched))
        spans["to_sink"].append(received[key] - _epoch(processed))
    summary: dict[str, float] = {}
    for name, values in spans.items():
        summary[f"append_{name}_p50_ms" if name == "to_stored" else f"{name}_p50_ms"] = round(
            percentile(values, 50) * 1000, 1
        )
    return summary


def milestones(probe: DbProbe, started_monotonic: float) -> dict[str, float]:
    """Seconds from ``started_monotonic`` until the last message was stored, decided and
    sent, by the service's own timestamps: which stage a slow run waited on."""
    wall_start = time.time() - (time.monotonic() - started_monotonic)
    found = probe.rows(
        "SELECT (SELECT max(fetched_at) FROM inbound_messages), "
        "(SELECT max(processed_at) FROM inbound_messages), (SELECT max(sent_at) FROM outbox)"
    )
    names = ("seconds_to_all_stored", "seconds_to_all_decided", "seconds_to_all_sent")
    return {
        name: round(_epoch(value) - wall_start, 2)
        for name, value in zip(names, found[0], strict=True)
        if value is not None
    }


def outbox_stats(probe: DbProbe) -> dict[str, int]:
    """Outbox rows, distinct recipients among them, and rows that needed a retry."""
    rows = probe.rows("SELECT recipients, attempts, status FROM outbox")
    recipients = [str(r[0]) for r in rows]
    return {
        "outbox_rows": len(rows),
        "outbox_distinct_recipients": len(set(recipients)),
        "outbox_retried": sum(1 for r in rows if int(r[1]) > 1),
        "outbox_not_sent": sum(1 for r in rows if r[2] != "sent"),
    }


PROFILES = Path(tempfile.gettempdir()) / "codered-bench-profiles"
"""Where py-spy's raw stacks are kept (outside the run's folder, which is deleted)."""


def maybe_profile(enabled: bool, service: ServiceProcess, name: str) -> Profiler | None:
    """py-spy on ``service`` when ``enabled``; the raw file goes to :data:`PROFILES`."""
    if not enabled:
        return None
    PROFILES.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Profiler(service.pid, PROFILES / f"{name}-{stamp}-{service.pid}.txt")


def finish_profile(profiler: Profiler | None, notes: list[str]) -> None:
    if profiler is not None:
        notes.append(profiler.stop())


def log_problems(*services: ServiceProcess) -> dict[str, Any]:
    """Warnings and errors the service logged (a clean run logs none)."""
    levels: dict[str, int] = {"warning": 0, "error": 0}
    for service in services:
        counted = service.log_levels()
        levels["warning"] += counted.get("warning", 0)
        levels["error"] += counted.get("error", 0) + counted.get("critical", 0)
        levels["error"] += service.log_tail(10**9).count("Traceback")
    return levels
