"""A benchmark run that fails keeps its service logs: they are what explains the failure.

The run's temporary folder (database, configuration, logs) is removed either way; before
that, the logs of a failed run are copied to ``FAILED_LOGS`` and their paths printed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench import live
from tests.bench.harness import ServiceProcess


def test_a_failed_run_keeps_its_service_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(live, "FAILED_LOGS", tmp_path / "failed")
    with pytest.raises(RuntimeError, match="no acknowledgement"), live.Run("pymap") as run:
        log = run.tmp / "latency.log"
        log.write_text('{"level": "error", "message": "socket.send() raised exception"}\n')
        run.services.append(ServiceProcess(run.tmp / "latency.toml", log))
        raise RuntimeError("no acknowledgement within 30 s")
    assert not run.tmp.exists()  # the rest of the run is gone, as always
    (kept,) = (tmp_path / "failed").iterdir()
    assert kept.name.endswith("-latency.log")
    assert "socket.send() raised exception" in kept.read_text()
    assert str(kept) in capsys.readouterr().err


def test_a_run_that_succeeds_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "FAILED_LOGS", tmp_path / "failed")
    with live.Run("pymap") as run:
        log = run.tmp / "flood.log"
        log.write_text("{}\n")
        run.services.append(ServiceProcess(run.tmp / "flood.toml", log))
    assert not run.tmp.exists()
    assert not (tmp_path / "failed").exists()
