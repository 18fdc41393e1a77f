"""``codered --help`` imports only what defines the command tree, and still says everything.

The startup benchmark holds ``codered --help`` to 300 ms of wall time. Wall time is too
noisy to assert on a shared machine, so these tests hold what decides it: which modules
get imported. Building the command tree or printing any help must not import the
database layer, the model client, the web app, the service, asyncio or rich (typer's
rich help alone pulled in markdown-it, pygments and attrs, ~100 ms). The other half is
that the plain help that replaced rich's panels still lists every command with its whole
summary and every option of every command.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
import typer.main
from typer._click import Command
from typer.core import TyperGroup
from typer.testing import CliRunner

from codered.cli import app
from tests.support.cli import cli_env, codered_command

HEAVY_PACKAGES = frozenset(
    {
        "sqlalchemy",
        "aiosqlite",
        "asyncpg",
        "alembic",
        "litellm",
        "fastapi",
        "starlette",
        "uvicorn",
        "httpx",
        "pydantic",
        "pydantic_settings",
        "jinja2",
        "aiosmtplib",
        "imapclient",
        "asyncio",
        "rich",
        "markdown_it",
        "pygments",
        "inbox",
        "drafting",
        "mailer",
        "policies",
    }
)
"""Top-level packages that only running a command may import."""

HEAVY_CODERED = ("codered.service", "codered.pipeline", "codered.settings", "codered.db")
"""The application's own heavy modules (and everything below them)."""

PROBE = """
import json, sys
sys.argv = ["codered", *{argv!r}]
{run}
print("\\nLOADED " + json.dumps(sorted(sys.modules)))
"""

RUN_MAIN = """
from codered.cli import main
try:
    main()
except SystemExit as stop:
    assert stop.code in (0, None), stop.code
"""

BUILD_ONLY = """
import typer.main
from codered.cli import app
typer.main.get_command(app)
"""


def _heavy(modules: list[str]) -> list[str]:
    return sorted(
        name
        for name in modules
        if name.split(".")[0] in HEAVY_PACKAGES
        or any(name == m or name.startswith(m + ".") for m in HEAVY_CODERED)
    )


def _probe(argv: list[str], run: str) -> tuple[str, list[str]]:
    """Run ``run`` in a fresh interpreter; its output and the modules it left imported."""
    completed = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv, run=run)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    output, _, loaded = completed.stdout.rpartition("\nLOADED ")
    return output, json.loads(loaded)


def test_building_the_command_tree_imports_nothing_heavy() -> None:
    _, modules = _probe([], BUILD_ONLY)
    assert "codered.cli" in modules and "codered.cli_drafts" in modules
    assert _heavy(modules) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["drafts", "--help"],
        ["incidents", "report", "--help"],
        ["audit", "export", "--help"],
        ["run", "--help"],
    ],
    ids=" ".join,
)
def test_help_imports_nothing_heavy(argv: list[str]) -> None:
    output, modules = _probe(argv, RUN_MAIN)
    assert "Usage: codered" in output
    assert _heavy(modules) == []


def _commands(command: Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


ROOT = typer.main.get_command(app)
EVERY_PATH = list(_commands(ROOT))


def _command_at(path: tuple[str, ...]) -> Command:
    command = ROOT
    for name in path:
        assert isinstance(command, TyperGroup)
        command = command.commands[name]
    return command


def _flat(text: str) -> str:
    """Text with its wrapping undone (click may also wrap after a hyphen)."""
    return re.sub(r"-\s+", "-", " ".join(text.split()))


def _summary(command: Command) -> str:
    return _flat((command.help or "").split("\n\n")[0])


def test_the_installed_command_lists_every_command_with_its_whole_summary() -> None:
    completed = subprocess.run(
        [*codered_command(), "--help"],
        capture_output=True,
        text=True,
        env=cli_env(COLUMNS="80"),
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert out.startswith("Usage: codered [OPTIONS] COMMAND [ARGS]...")
    listed = out.split("\nCommands:\n", 1)[1]
    names = [line.split()[0] for line in listed.splitlines() if line[:3].strip()]
    assert isinstance(ROOT, TyperGroup)
    assert names == list(ROOT.commands)
    assert "..." not in listed
    for name, command in ROOT.commands.items():
        assert _summary(command) in _flat(listed), name


@pytest.mark.parametrize("argv", [[], ["drafts"]], ids=lambda argv: " ".join(argv) or "codered")
def test_a_group_without_a_command_prints_its_help_on_stdout(argv: list[str]) -> None:
    completed = subprocess.run(
        [*codered_command(), *argv],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stdout.startswith(" ".join(("Usage: codered", *argv)))
    assert "\nCommands:\n" in completed.stdout
    assert completed.stderr == ""


@pytest.mark.parametrize("path", EVERY_PATH, ids=lambda path: " ".join(path) or "codered")
def test_every_help_names_its_summary_options_and_subcommands(path: tuple[str, ...]) -> None:
    command = _command_at(path)
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith(" ".join(("Usage: codered", *path)))
    assert _summary(command) in _flat(out)
    for param in command.params:
        for opt in param.opts if param.param_type_name == "option" else [param.name or ""]:
            assert opt in out, (path, opt)
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            assert re.search(rf"^  {re.escape(name)}\s", out, re.MULTILINE), (path, name)
            assert _summary(sub) in _flat(out), (path, name)
