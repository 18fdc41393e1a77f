"""The benchmarks still run, and what they check still holds, at their smallest sizes.

These run ``python -m tests.bench.bench SUBCOMMAND --quick --json`` as a user would and
read its JSON lines. They assert that the output is well-formed and that the
correctness fields hold (every complaint answered once, nothing answered that is not a
complaint), never a timing: speed depends on the machine, and the benchmark itself
prints PASS or FAIL against its targets for a person to read.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from typing import Any

import pytest

from tests.support.cli import CHECKOUT, cli_env
from tests.support.dovecot import DOVECOT_BINARY

pytestmark = pytest.mark.slow

needs_dovecot = [
    pytest.mark.dovecot,
    pytest.mark.skipif(not DOVECOT_BINARY.exists(), reason=f"{DOVECOT_BINARY} not found"),
]


def _bench(*args: str, timeout: float = 60) -> tuple[int, dict[str, dict[str, Any]]]:
    """Run the benchmark CLI; return its exit code and its JSON lines keyed by ``bench``."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench", *args, "--quick", "--json"],
        capture_output=True,
        text=True,
        cwd=CHECKOUT,
        env=cli_env(),
        timeout=timeout,
        check=False,
    )
    assert done.returncode in (0, 1), f"the benchmark could not run:\n{done.stderr[-3000:]}"
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert all(isinstance(line, dict) and "bench" in line for line in lines), done.stdout
    results = {line["bench"]: line for line in lines}
    assert {"cpu", "cores", "python"} <= set(results["machine"])
    for result in results.values():
        for check in result.get("checks", []):
            assert {"name", "kind", "measured", "op", "limit", "pass"} <= set(check)
            assert check["kind"] in ("target", "correctness")
    return done.returncode, results


@cache
def _classify() -> dict[str, dict[str, Any]]:
    return _bench("classify")[1]


def _failed_correctness(result: dict[str, Any]) -> list[str]:
    return [c["name"] for c in result["checks"] if c["kind"] == "correctness" and not c["pass"]]


def test_classify_reports_parse_and_classification_rates() -> None:
    result = _classify()["classify"]
    assert result["samples_messages"] > 0 and result["samples_parse_failures"] == 0
    assert result["classify_msgs_per_s"] > 0 and result["parse_msgs_per_s"] > 0
    assert _failed_correctness(result) == []


def test_classify_sizes_the_prompt_of_every_draft_kind() -> None:
    result = _classify()["prompt_tokens"]
    for kind in ("summary", "update", "delay", "recap", "rewrite"):
        assert 0 < result[f"{kind}_p50_tokens"] <= result[f"{kind}_max_tokens"]
    assert isinstance(result["prompts_over_budget"], int)


def test_every_prompt_stays_within_max_input_tokens() -> None:
    assert _classify()["prompt_tokens"]["prompts_over_budget"] == 0


def test_latency_reports_codered_against_the_floor() -> None:
    code, results = _bench("latency", "--server", "pymap", timeout=120)
    assert code == 0
    latency = results["latency"]
    assert latency["acks_missing"] == 0
    for q in ("p50", "p95", "p99"):
        codered, floor = latency[f"codered_{q}_ms"], latency[f"floor_{q}_ms"]
        assert floor > 0 and codered > 0
        assert latency[f"ratio_{q}"] == round(codered / floor, 2)
        assert latency[f"overhead_{q}_ms"] == round(codered - floor, 2)


def test_startup_reaches_idle_every_time() -> None:
    code, results = _bench("startup", "--server", "pymap")
    result = results["startup"]
    assert result["help_median_ms"] > 0 and result["first_start_to_idle_median_s"] > 0
    assert _failed_correctness(result) == [] and code == 0


@pytest.mark.parametrize("server", [pytest.param("dovecot", marks=needs_dovecot)])
def test_flood_answers_every_complaint_once_and_nothing_else(server: str) -> None:
    code, results = _bench("flood", "--count", "60", "--server", server)
    result = results["flood"]
    assert result["count"] == 60 and result["acks_expected"] == 42
    assert result["acks_missing"] == 0
    assert result["acks_duplicate"] == 0
    assert result["acks_to_non_complaints"] == 0
    assert result["outbox_rows"] == result["outbox_distinct_recipients"] == 42
    assert result["log_problems"] == {"warning": 0, "error": 0}
    assert _failed_correctness(result) == [] and code == 0
