"""What a benchmark reports: measured values, targets and correctness checks, and the machine.

Why targets and checks are separate: a missed target is information (the numbers are
printed as measured, PASS or FAIL beside them), while a failed correctness check (an
acknowledgement to a machine, a duplicate) means the run itself found a bug, so only
checks decide the exit status and only checks are asserted by the smoke tests.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Check", "Result", "machine_info", "percentile", "summary_ms"]


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(prefix: str, seconds: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of ``seconds`` in milliseconds, keys starting with ``prefix``."""
    return {
        f"{prefix}p50_ms": round(percentile(seconds, 50) * 1000, 2),
        f"{prefix}p95_ms": round(percentile(seconds, 95) * 1000, 2),
        f"{prefix}p99_ms": round(percentile(seconds, 99) * 1000, 2),
        f"{prefix}max_ms": round(max(seconds, default=math.nan) * 1000, 2),
    }


@dataclass(frozen=True)
class Check:
    """One comparison: a performance ``target`` or a ``correctness`` condition."""

    name: str
    kind: str
    measured: Any
    op: str
    limit: Any

    @property
    def passed(self) -> bool:
        if self.measured is None or (
            isinstance(self.measured, float) and math.isnan(self.measured)
        ):
            return False
        if self.op == "<=":
            return bool(self.measured <= self.limit)
        if self.op == ">=":
            return bool(self.measured >= self.limit)
        return bool(self.measured == self.limit)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "measured": self.measured,
            "op": self.op,
            "limit": self.limit,
            "pass": self.passed,
        }


@dataclass
class Result:
    """One line of output: ``bench`` plus flat values, then the checks against them."""

    bench: str
    values: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def target(self, name: str, key: str, op: str, limit: float) -> None:
        self.checks.append(Check(name, "target", self.values.get(key), op, limit))

    def correct(self, name: str, key: str, op: str = "==", limit: Any = 0) -> None:
        self.checks.append(Check(name, "correctness", self.values.get(key), op, limit))

    @property
    def correct_ok(self) -> bool:
        return all(c.passed for c in self.checks if c.kind == "correctness")

    def as_json(self) -> dict[str, Any]:
        return {
            "bench": self.bench,
            **self.values,
            "checks": [c.as_json() for c in self.checks],
            "correct": self.correct_ok,
            "notes": self.notes,
        }

    def json_line(self) -> str:
        return json.dumps(_no_nan(self.as_json()), default=str, allow_nan=False)

    def table(self) -> str:
        width = max((len(k) for k in self.values), default=10) + 2
        label = self.values.get("server") or self.values.get("variant")
        lines = [f"== {self.bench}" + (f" ({label})" if label else "") + " =="]
        for key, value in self.values.items():
            lines.append(f"  {key:<{width}}{_shown(value)}")
        for check in self.checks:
            mark = "PASS" if check.passed else "FAIL"
            lines.append(
                f"  [{mark}] {check.kind:<11} {check.name}: {_shown(check.measured)} "
                f"(want {check.op} {_shown(check.limit)})"
            )
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_shown(v)}" for k, v in value.items()) or "-"
    return str(value)


def _no_nan(value: Any) -> Any:
    """NaN (a percentile of nothing) becomes null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "-"


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, Python and Dovecot versions: enough to compare two runs."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = math.nan
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": ram_gib,
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "kernel": platform.release(),
        "dovecot": _first_line(["dovecot", "--version"]),
        "code": _code_version(),
    }


def _code_version() -> str:
    """The commit measured, and whether the service's packages had uncommitted changes
    (other people edit them while benchmarks run, so a number must say what it measured)."""
    checkout = Path(__file__).resolve().parents[2]
    commit = _first_line(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"])
    packages = ["codered", "inbox", "policies", "drafting", "mailer", "prompts"]
    try:
        dirty = subprocess.run(
            ["git", "-C", str(checkout), "status", "--porcelain", "--", *packages],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        dirty = ""
    return f"{commit} + uncommitted changes" if dirty else commit
