"""The single-process service benchmarks: latency (against a floor), flood, and catch-up.

Timing method, for all three: the benchmark process takes ``time.monotonic()`` right
after an IMAP APPEND returns (or just before the first APPEND of a flood), and the SMTP
sink, which runs in this same process, takes ``time.monotonic()`` the moment the
acknowledgement's DATA completes. Same clock, same process, no wall-clock steps, and
no polling delay in between (the sink records as it receives).

Latency runs the floor (``tests/bench/floor.py``) and then codered against the same
server and sink, never both at once, with a few unmeasured warm-up complaints for each
and a short gap between complaints (:data:`GAP_SECONDS`). ``codered_stages`` splits
codered's time by its own database timestamps; ``floor_unannounced`` counts messages
the server never announced in IDLE (the floor found them when it renewed its IDLE).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from codered.service import WARMED_UP
from tests.bench.floor import FloorRelay
from tests.bench.harness import DEFAULT_MAILBOXES, ServiceProcess, wait_for_watchers
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
    stages,
)
from tests.bench.messages import Planned, complaints, flood_mix, history, run_token
from tests.bench.results import Result, summary_ms
from tests.bench.servers import Appender, BenchError, TimedSink

__all__ = ["Options", "catchup", "flood", "latency"]

ACK_TIMEOUT = 30.0
"""One acknowledgement, one at a time, must not take longer than this."""
GAP_SECONDS = 0.25
"""Pause between an acknowledgement and the next complaint, so that each responder is
back in IDLE when the next one arrives (complaints come independently). Without it a
responder still finishing its last search can catch the next message without waiting
for the server's IDLE notification (Dovecot delays those by about 0.5 s), which makes
whoever answers fastest look faster still."""


@dataclass(frozen=True)
class Options:
    """Switches every service benchmark understands."""

    profile: bool = False
    keep: bool = False
    file_sent: bool = True


def _one_by_one(
    appender: Appender,
    sink: TimedSink,
    planned: list[Planned],
    alive: Callable[[], None],
    walls: dict[str, float] | None = None,
) -> list[float]:
    """Append each complaint and wait for its acknowledgement before the next one;
    ``alive`` raises as soon as the responder under test has died."""
    latencies: list[float] = []
    for item in planned:
        time.sleep(GAP_SECONDS)
        appender.append(item.raw)
        appended = time.monotonic()
        if walls is not None:
            walls[item.sender] = time.time()
        deadline = appended + ACK_TIMEOUT
        arrived = None
        while arrived is None:
            alive()
            arrived = sink.first_arrival(item.sender)
            if arrived is None:
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"no acknowledgement to {item.sender} within {ACK_TIMEOUT:g} s "
                        f"(message {len(latencies) + 1} of {len(planned)})"
                    )
                sink.wait_for_change(0.5)
        latencies.append(arrived - appended)
    return latencies


def _latency_floor(run: Run, count: int, warmup: int, token: str) -> tuple[list[float], int]:
    """The floor's latencies, and how many messages its IDLE never announced."""
    relay = FloorRelay(run.imap, run.sink.port).start()
    appender = Appender(run.imap)
    try:
        _one_by_one(appender, run.sink, complaints(warmup, token + "fw"), relay.check)
        measured = _one_by_one(appender, run.sink, complaints(count, token + "f"), relay.check)
    finally:
        appender.close()
        relay.stop()
    return measured, relay.unannounced


def latency(server: str, count: int, warmup: int, options: Options) -> Result:
    """Floor first, then codered, one after the other on the same server and sink."""
    result = Result(
        "latency",
        {"server": server, "count": count, "warmup": warmup, "gap_ms": GAP_SECONDS * 1000},
    )
    token = run_token()
    with Run(server, keep=options.keep) as run:
        floor, unannounced = _latency_floor(run, count, warmup, token)
        result.values["floor_unannounced"] = unannounced
        service, probe = run.start_ready("latency", file_sent=options.file_sent)
        profiler = maybe_profile(options.profile, service, "latency")
        appender = Appender(run.imap)
        walls: dict[str, float] = {}
        try:
            alive = service.check_alive
            warm = _one_by_one(appender, run.sink, complaints(warmup, token + "cw"), alive)
            measured = _one_by_one(appender, run.sink, complaints(count, token + "c"), alive, walls)
        finally:
            appender.close()
            finish_profile(profiler, result.notes)
        result.values["codered_warmup_max_ms"] = round(max(warm, default=0.0) * 1000, 2)
        result.values["peak_rss_mb"] = service.sample_rss()
        service.stop()
        result.values["log_problems"] = log_problems(service)
        result.values["decisions"] = decisions(probe)
        result.values["codered_stages"] = stages(probe, run.sink, walls)
    values = result.values
    values.update(summary_ms("floor_", floor))
    values.update(summary_ms("codered_", measured))
    for q in ("p50", "p95", "p99"):
        values[f"overhead_{q}_ms"] = round(values[f"codered_{q}_ms"] - values[f"floor_{q}_ms"], 2)
        values[f"ratio_{q}"] = round(
            values[f"codered_{q}_ms"] / max(values[f"floor_{q}_ms"], 1e-9), 2
        )
    result.target("overhead p50 over the floor", "overhead_p50_ms", "<=", 30)
    result.target("overhead p95 over the floor", "overhead_p95_ms", "<=", 100)
    result.target("overhead p99 over the floor", "overhead_p99_ms", "<=", 250)
    if server == "pymap":
        result.target("end-to-end p50 with pymap", "codered_p50_ms", "<=", 100)
    if server == "dovecot" and options.file_sent:
        result.notes.append(
            "codered files each acknowledgement in Sent over a kept-open connection with "
            "INBOX selected; its activity makes Dovecot announce new mail sooner than to a "
            "lone IDLE client, so codered can beat the floor here. For the pure overhead "
            "run again with --no-file-sent."
        )
    values["acks_missing"] = count - len(measured)
    result.correct("every complaint acknowledged", "acks_missing")
    return result


def _expected(planned: list[Planned]) -> set[str]:
    return {p.sender for p in planned if p.complaint}


FLOOD_STORAGE = "sdbox"
"""Dovecot's storage for the floods. With maildir, Dovecot's work per APPEND grows as the
folder fills, and on a 2-core machine its own APPENDs ran at 175-330 a second with nothing
else running: a flood would measure Dovecot, not codered. sdbox takes about 550 a second."""


def cpu_values(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, Any]:
    """What the service spent on the flood (not its start), all its processes together
    (the capacity figure), and the main process alone (the one that can be the limit:
    its work takes turns on one core)."""
    spent = {name: after[name] - before.get(name, 0.0) for name in after}
    total = sum(spent.values())
    main = spent.get("main", 0.0)
    return {
        "service_cpu_seconds": round(total, 2),
        "service_cpu_ms_per_msg": round(1000 * total / count, 2),
        "main_process_cpu_ms_per_msg": round(1000 * main / count, 2),
        "parse_worker_cpu_ms_per_msg": round(1000 * (total - main) / count, 2),
    }


def rss_parts(service: ServiceProcess) -> dict[str, Any]:
    """Each process's own peak beside the total (``peak_rss_mb`` is their sum)."""
    parts = service.peak_rss_parts
    workers = [value for name, value in parts.items() if name != "main"]
    return {
        "peak_rss_main_mb": round(parts.get("main", 0.0), 1),
        "peak_rss_parse_worker_mb": round(sum(workers), 1) if workers else None,
    }


def flood(server: str, count: int, connections: int, options: Options) -> Result:
    """70% complaints and the rest machine mail and questions, delivered all at once."""
    storage = FLOOD_STORAGE if server == "dovecot" else "memory"
    result = Result(
        "flood",
        {"server": server, "storage": storage, "count": count, "connections": connections},
    )
    planned = flood_mix(count, run_token())
    expected = _expected(planned)
    with Run(server, keep=options.keep, storage=FLOOD_STORAGE) as run:
        service, probe = run.start_ready("flood", file_sent=options.file_sent)
        # A flood meets a service that is up, not one still loading its language model.
        service.wait_for_log(WARMED_UP, 60)
        profiler = maybe_profile(options.profile, service, "flood")
        cpu_before = service.cpu_seconds()
        try:
            first, appended = append_parallel(run.imap, planned, connections=connections)
            timeout = max(300.0, count * 2.0)
            last_ack = run.sink.wait_for_all(expected, timeout, "flood")
            settled = settle(probe, count, timeout, service.check_alive)
            cpu_after = service.cpu_seconds()
            time.sleep(1.0)  # anything sent late (to a machine, twice) would show up now
        finally:
            finish_profile(profiler, result.notes)
        values = result.values
        values["append_seconds"] = round(appended - first, 3)
        values["append_msgs_per_s"] = round(count / max(appended - first, 1e-9), 1)
        values["seconds_to_last_ack"] = round(last_ack - first, 3)
        values["seconds_to_settled"] = round(settled - first, 3)
        values["throughput_msgs_per_s"] = round(count / max(last_ack - first, 1e-9), 1)
        if cpu_before is not None and cpu_after is not None:
            values.update(cpu_values(cpu_before, cpu_after, count))
        values.update(milestones(probe, first))
        values["peak_rss_mb"] = service.sample_rss()
        values.update(rss_parts(service))
        values.update(ack_audit(run.sink, expected))
        values.update(outbox_stats(probe))
        values["decisions"] = decisions(probe)
        service.stop()
        values["log_problems"] = log_problems(service)
    result.target("throughput with SQLite (msgs/s)", "throughput_msgs_per_s", ">=", 200)
    result.target("peak RSS (MiB)", "peak_rss_mb", "<=", 250)
    _flood_checks(result)
    return result


def _flood_checks(result: Result) -> None:
    result.correct("no acknowledgement to a non-complaint", "acks_to_non_complaints")
    result.correct("no duplicate acknowledgement", "acks_duplicate")
    result.correct("every complaint acknowledged", "acks_missing")


def _fill_maildir(run: Run, planned: list[Planned], sub: str) -> None:
    """Write messages straight into the maildir (``tmp/`` then rename), as a local MDA
    does, owned by the mail user. Thousands per second, where APPEND manages hundreds."""
    maildir = run.imap.maildir()
    owner = os.stat(maildir)
    stamp = time.time_ns()
    for number, item in enumerate(planned):
        name = f"{stamp}.M{number}P{os.getpid()}.bench"
        staged = maildir / "tmp" / name
        staged.write_bytes(item.raw)
        os.chown(staged, owner.st_uid, owner.st_gid)
        staged.rename(maildir / sub / (name + (":2," if sub == "cur" else "")))


def _index(run: Run, expected: int) -> float:
    """Make Dovecot index the maildir now (not on the service's first SELECT)."""
    began = time.monotonic()
    status = run.imap.doveadm("mailbox", "status", "-u", run.imap.username, "messages", "INBOX")
    found = int(status.split("=", 1)[1]) if "=" in status else -1
    if found != expected:
        raise BenchError(f"the maildir should hold {expected} messages, Dovecot sees {found}")
    return time.monotonic() - began


def catchup(existing: int, backlog: int, options: Options) -> Result:
    """A full mailbox is baselined; a backlog arrives while codered is down; then catch-up."""
    result = Result("catchup", {"server": "dovecot", "existing": existing, "backlog": backlog})
    token = run_token()
    old = list(history(existing, token))
    new = complaints(backlog, token)
    with Run("dovecot", keep=options.keep) as run:
        began = time.monotonic()
        _fill_maildir(run, old, "cur")
        result.values["fill_seconds"] = round(time.monotonic() - began, 2)
        result.values["index_seconds"] = round(_index(run, existing), 2)
        config, url = run.config("catchup", file_sent=options.file_sent)
        first = run.service(config, "catchup-baseline")
        probe = run.probe(url)
        wait_for_watchers(first, probe, DEFAULT_MAILBOXES, timeout=120)
        result.values["baselined_at_uid"] = probe.scalar("SELECT baseline_uid FROM mailbox_state")
        first.stop()
        _fill_maildir(run, new, "new")
        _index(run, existing + backlog)
        second = run.service(config, "catchup")
        profiler = maybe_profile(options.profile, second, "catchup")
        try:
            timeout = max(600.0, backlog * 2.0)
            last_ack = run.sink.wait_for_all({p.sender for p in new}, timeout, "catch-up")
            settle(probe, backlog, timeout, second.check_alive)
            time.sleep(1.0)
        finally:
            finish_profile(profiler, result.notes)
        values = result.values
        arrivals = run.sink.arrivals()
        values["seconds_to_first_ack"] = round(arrivals[0].at - second.spawned_at, 3)
        values["seconds_to_last_ack"] = round(last_ack - second.spawned_at, 3)
        values["backlog_msgs_per_s"] = round(backlog / max(last_ack - second.spawned_at, 1e-9), 1)
        values.update(milestones(probe, second.spawned_at))
        values["peak_rss_mb"] = second.sample_rss()
        values["baseline_peak_rss_mb"] = first.peak_rss_mb
        values.update(ack_audit(run.sink, {p.sender for p in new}))
        values.update(outbox_stats(probe))
        values["history_acknowledged"] = sum(
            n for r, n in run.sink.counts_by_recipient().items() if f".h{token}@" in r
        )
        values["decisions"] = decisions(probe)
        second.stop()
        values["log_problems"] = log_problems(first, second)
    result.target("peak RSS (MiB)", "peak_rss_mb", "<=", 250)
    result.correct("baseline at the end of history", "baselined_at_uid", "==", existing)
    result.correct("nothing from history acknowledged", "history_acknowledged")
    _flood_checks(result)
    return result
