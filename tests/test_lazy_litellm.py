"""litellm takes seconds to import: ``codered --help`` and the service's modules never pay it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.cli import cli_env

PROBE = """
import sys
sys.argv = {argv!r}
try:
    {run}
except SystemExit:
    pass
print("LITELLM", any(name == "litellm" or name.startswith("litellm.") for name in sys.modules))
"""


@pytest.mark.parametrize(
    ("argv", "run"),
    [
        (["codered", "--help"], "from codered.cli import main; main()"),
        (["codered", "drafts", "--help"], "from codered.cli import main; main()"),
        (["x"], "import codered.service, codered.drafts, codered.approval, drafting.drafter"),
    ],
)
def test_litellm_is_not_imported(argv: list[str], run: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv, run=run)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "LITELLM False" in completed.stdout, completed.stdout + completed.stderr
    if "--help" in argv:
        assert "Usage" in completed.stdout
