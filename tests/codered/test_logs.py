"""``codered run --log-format json``: one JSON object per line, and no secret in any line."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import time
from pathlib import Path

from codered.embedded import EmbeddedImapServer, SmtpSink
from codered.logs import JsonFormatter, RedactSecrets
from tests.support.cli import cli_env, codered_command, write_config
from tests.support.service import make_settings


def test_a_secret_in_a_message_or_a_traceback_is_redacted() -> None:
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "login with %s failed", ("hunter2-secret",), None
    )
    try:
        raise RuntimeError("password hunter2-secret rejected")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactSecrets(["hunter2-secret"]).filter(record)
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["message"] == "login with *** failed" and entry["level"] == "error"
    assert "hunter2-secret" not in line and "***" in entry["exception"]


def test_run_logs_json_lines_without_the_password(tmp_path: Path) -> None:
    with EmbeddedImapServer() as imap, SmtpSink() as sink:
        settings = make_settings(
            tmp_path, imap.port, sink.port, username=imap.username, password="wrong-but-secret-pass"
        )
        config = write_config(tmp_path / "codered.toml", settings)
        process = subprocess.Popen(
            [*codered_command(), "run", "--log-format", "json", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        time.sleep(6)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    lines = [line for line in (out + err).splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    assert any("login failed" in e["message"] for e in entries), lines
    assert all({"ts", "level", "logger", "message"} <= set(e) for e in entries)
    assert "wrong-but-secret-pass" not in out + err
