"""How long the command takes to answer, and how long the service takes to be watching.

``codered --help`` is timed as a whole subprocess (interpreter start and imports
included), because that is what a person typing it waits for. Service start is timed
from spawning ``codered run`` to the database saying the watcher's first IDLE is under
way (``mailbox_state.state = 'idle'``, polled every 5 ms): from then on new mail is
seen. A first start (new database: migrations and the baseline) and a restart (the
same database again) are timed separately.
"""

from __future__ import annotations

import statistics
import subprocess
import time

from tests.bench.harness import DEFAULT_MAILBOXES, wait_for_watchers
from tests.bench.live import Run
from tests.bench.results import Result
from tests.bench.scenarios import Options
from tests.support.cli import cli_env, codered_command

__all__ = ["startup"]


def _help_seconds(runs: int) -> list[float]:
    command = [*codered_command(), "--help"]
    env = cli_env()
    timings = []
    for _ in range(runs):
        began = time.perf_counter()
        done = subprocess.run(command, capture_output=True, env=env, timeout=60, check=False)
        timings.append(time.perf_counter() - began)
        if done.returncode != 0:
            raise RuntimeError(f"codered --help failed: {done.stderr.decode()[-500:]}")
    return timings


def _start_seconds(run: Run, name: str, *, fresh: bool, options: Options) -> float:
    """Spawn, wait for IDLE, stop; returns spawn-to-IDLE seconds."""
    config, url = run.config(name if fresh else "restart", file_sent=options.file_sent)
    service = run.service(config, name)
    probe = run.probe(url)
    try:
        idle_at = wait_for_watchers(service, probe, DEFAULT_MAILBOXES, timeout=60, interval=0.005)
    finally:
        probe.close()
        service.stop()
    return idle_at - service.spawned_at


def startup(server: str, help_runs: int, start_runs: int, options: Options) -> Result:
    result = Result("startup", {"server": server})
    helps = _help_seconds(help_runs)
    with Run(server, keep=options.keep) as run:
        first = [
            _start_seconds(run, f"first{n}", fresh=True, options=options) for n in range(start_runs)
        ]
        _start_seconds(run, "restart-prepare", fresh=False, options=options)
        again = [
            _start_seconds(run, f"again{n}", fresh=False, options=options)
            for n in range(start_runs)
        ]
    values = result.values
    values["help_runs"] = help_runs
    values["help_median_ms"] = round(statistics.median(helps) * 1000, 1)
    values["help_min_ms"] = round(min(helps) * 1000, 1)
    values["start_runs"] = start_runs
    values["first_start_to_idle_median_s"] = round(statistics.median(first), 3)
    values["first_start_to_idle_max_s"] = round(max(first), 3)
    values["restart_to_idle_median_s"] = round(statistics.median(again), 3)
    values["restart_to_idle_max_s"] = round(max(again), 3)
    result.target("codered --help (ms, median)", "help_median_ms", "<=", 300)
    result.target("first start to IDLE (s, median)", "first_start_to_idle_median_s", "<=", 2.0)
    result.target("restart to IDLE (s, median)", "restart_to_idle_median_s", "<=", 2.0)
    values["started"] = len(first) + len(again)
    result.correct("every start reached IDLE", "started", "==", 2 * start_runs)
    return result
