"""``codered demo`` as a person runs it: a real subprocess, its output, and what it leaves behind.

The demo starts an embedded IMAP server and SMTP sink, the real service, and a
dozen sample emails. Afterwards ``--data-dir`` holds a configuration file that
the listing commands read, so the tests check the outcome through the CLI too.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import pytest

from codered.demo_samples import build_samples
from tests.support.cli import cli_env, codered_command

pytestmark = pytest.mark.slow

CHECKOUT = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(r"\bCR-10\d\d\b")

# The samples that must never be answered: a question, thanks, an out-of-office reply,
# a bounce and a newsletter (codered/demo_samples.py).
NEVER_ANSWERED = {
    "sam@wingtip.example",
    "ana@proseware.example",
    "chris@woodgrove.example",
    "mailer-daemon@mx.customer.example",
    "news@cloudweekly.example",
}


def listing(kind: str, config: Path) -> list[dict[str, Any]]:
    completed = subprocess.run(
        [*codered_command(), kind, "list", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    rows: list[dict[str, Any]] = json.loads(completed.stdout)
    return rows


def test_the_never_answered_senders_are_the_demo_samples_that_are_not_complaints() -> None:
    """Keeps the list above honest if the samples change."""
    others = {
        parseaddr(s.sender)[1].lower()
        for s in build_samples("support@acme.example")
        if not s.label.startswith(("complaint", "follow-up"))
    }
    assert others == NEVER_ANSWERED


def test_demo_acknowledges_the_complaints_and_leaves_the_rest_alone(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    started = time.monotonic()
    completed = subprocess.run(
        [*codered_command(), "demo", "--duration", "20", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=90,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "Traceback" not in output
    assert time.monotonic() - started >= 20  # it ran for the duration it was given
    assert "acknowledged" in output
    shown = set(REFERENCE.findall(output))
    assert len(shown) >= 5, output

    config = data / "codered.toml"
    assert config.is_file() and (data / "codered.db").is_file()

    incidents = listing("incidents", config)
    assert len(incidents) >= 5
    customers = [i["customer"].lower() for i in incidents]
    assert not NEVER_ANSWERED & set(customers)
    # The follow-up in the outage thread was attached, not opened as a second incident.
    assert customers.count("dana@northwind.example") == 1
    assert shown <= {i["reference"] for i in incidents}

    # The second act: facts, a template draft of the four-question summary, its findings.
    assert "four-question summary of CR-" in output and "missing_answer" in output
    [draft] = listing("drafts", config)
    assert draft["kind"] == "summary" and draft["status"] == "pending"
    assert draft["model"] == "offline-template" and draft["blocking"] == 1

    outbox = listing("outbox", config)
    assert len(outbox) == len(incidents)
    assert all(row["status"] == "sent" for row in outbox), outbox
    recipients = {address.lower() for row in outbox for address in row["to"]}
    assert not NEVER_ANSWERED & recipients
    assert recipients == set(customers)


class _Output:
    """Collects a process's output on a thread, so the test can wait for a line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._chunks: list[str] = []
        self._lock = threading.Lock()
        assert process.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._lock:
                self._chunks.append(line)

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self._chunks)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not pattern.search(self.text):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{pattern.pattern!r} not seen within {timeout:g} s:\n{self.text}"
                )
            time.sleep(0.1)

    def close(self) -> str:
        self._thread.join(10)
        return self.text


def test_ctrl_c_stops_a_running_demo_cleanly(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*codered_command(), "demo", "--data-dir", str(tmp_path / "demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(),
    )
    output = _Output(process)
    try:
        output.wait_for(re.compile(r"acknowledgement CR-10\d\d"), timeout=60)
        assert process.poll() is None  # without --duration it keeps running
        process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        code = process.wait(timeout=15)
        took = time.monotonic() - interrupted
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = output.close()
    assert code == 0, text
    assert took < 10, f"stopping took {took:.1f} s"
    assert "Traceback" not in text
