"""The shipped systemd unit is valid (``systemd-analyze verify``, where available)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import CHECKOUT, codered_command

UNIT = CHECKOUT / "docs" / "codered.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    # The unit names /usr/local/bin/codered; verify it against the codered installed here.
    text = UNIT.read_text().replace("/usr/local/bin/codered", codered_command()[0])
    unit = tmp_path / "codered.service"
    unit.write_text(text)
    completed = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "codered.service:" not in completed.stderr, completed.stderr


def test_the_container_recipe_copies_every_package() -> None:
    recipe = (CHECKOUT / "docs" / "Containerfile").read_text()
    for package in ("inbox", "policies", "drafting", "mailer", "prompts", "codered"):
        assert f"COPY {package} {package}" in recipe
