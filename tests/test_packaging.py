"""The wheel: built from the checkout, installed into a plain folder, run from elsewhere.

An editable install reads everything from the checkout, so it cannot show that package
data (prompts, templates, migrations) is actually shipped. These tests build a real
wheel, look inside it, install it with ``pip --target`` and use the installed copy.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from codered.db.migrate import head_revision

pytestmark = pytest.mark.slow

CHECKOUT = Path(__file__).resolve().parents[1]
LANGUAGES = ("en", "de", "fr", "es")
SHIPPED_DATA = [
    "prompts/classify.v1.txt",
    "prompts/drafting_rules.v1.md",
    "prompts/four_question_summary.v1.md",
    "prompts/progress_update.v1.md",
    "prompts/delay_notice.v1.md",
    "prompts/call_recap.v1.md",
    "prompts/blameless_rewrite.v1.md",
    *(f"mailer/templates/ack.{lang}.txt" for lang in LANGUAGES),
    "codered/migrations/env.py",
    "codered/migrations/script.py.mako",
    "codered/migrations/versions/0001_initial_schema.py",
    "codered/migrations/versions/0002_drafts_notes_model_calls.py",
    "codered/migrations/versions/0003_users_sessions_tokens_calls.py",
    "codered/migrations/versions/0004_lifecycle_promises_policy_events.py",
]


def _run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(
        args, capture_output=True, text=True, cwd=cwd, env=env, timeout=120, check=False
    )
    assert completed.returncode == 0, f"{args}\n{completed.stdout}\n{completed.stderr}"
    return completed.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel`` of the checkout: without build isolation where hatchling is importable
    (fast, offline), otherwise with it (pip fetches hatchling from the configured index)."""
    dist = tmp_path_factory.mktemp("dist")
    args = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist)]
    if importlib.util.find_spec("hatchling") is not None:
        args.append("--no-build-isolation")
    _run([*args, str(CHECKOUT)], cwd=dist)
    [built] = dist.glob("codered-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The wheel installed into a bare folder with ``pip --target``."""
    site = tmp_path_factory.mktemp("site")
    _run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), wheel],
        cwd=site,
    )
    yield site


def _env(site: Path) -> dict[str, str]:
    """Only the installed copy on the path: no checkout, no CODERED_* settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CODERED_") and k not in {"PYTHONPATH", "PYTHONSAFEPATH"}
    }
    env.update(PYTHONPATH=str(site), COLUMNS="200", TERM="dumb")
    return env


def test_the_wheel_ships_package_data_entry_point_and_license(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
        licenses = [n for n in names if ".dist-info/" in n and n.endswith("/LICENSE")]
        license_text = archive.read(licenses[0]).decode() if licenses else ""
    missing = [path for path in SHIPPED_DATA if path not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert "[console_scripts]" in scripts
    assert "codered = codered.cli:main" in scripts
    assert licenses, sorted(n for n in names if ".dist-info/" in n)
    assert "Apache License" in license_text
    # Only our packages, no tests or stray top-level modules.
    top = {name.split("/")[0] for name in names if not name.startswith("codered-")}
    assert top == {"codered", "inbox", "policies", "drafting", "mailer", "prompts"}


def test_the_installed_copy_imports_and_reads_its_own_data(installed: Path, tmp_path: Path) -> None:
    script = """
import json
from datetime import UTC, datetime
from importlib import resources
from zoneinfo import ZoneInfo

import codered, drafting, inbox, mailer, policies, prompts
from mailer.acknowledgement import render_acknowledgement

rendered = {
    lang: render_acknowledgement(
        language=lang, display_name="Dana Whitfield", email="dana@northwind.example",
        subject="API down", category=None, reply_by=datetime(2030, 1, 7, 15, 30, tzinfo=UTC),
        display_tz=ZoneInfo("Europe/Berlin"), reference="CR-4242", company_name="Acme Cloud",
    ).text
    for lang in ("en", "de", "fr", "es")
}
print(json.dumps({
    "modules": [m.__file__ for m in (codered, drafting, inbox, mailer, policies, prompts)],
    "prompt": prompts.load("classify.v1"),
    "templates": {
        lang: str(resources.files("mailer").joinpath("templates", f"ack.{lang}.txt"))
        for lang in ("en", "de", "fr", "es")
    },
    "rendered": rendered,
}))
"""
    report = json.loads(_run([sys.executable, "-c", script], cwd=tmp_path, env=_env(installed)))
    for module in report["modules"]:
        assert Path(module).is_relative_to(installed), module
    assert report["prompt"] == (CHECKOUT / "prompts" / "classify.v1.txt").read_text("utf-8")
    for lang in LANGUAGES:
        template = Path(report["templates"][lang])
        assert template.is_relative_to(installed)
        assert template.read_text("utf-8") == (
            CHECKOUT / "mailer" / "templates" / f"ack.{lang}.txt"
        ).read_text("utf-8")
        assert "CR-4242" in report["rendered"][lang]
        assert "Acme Cloud" in report["rendered"][lang]
    assert len(set(report["rendered"].values())) == len(LANGUAGES)  # four different texts


def test_the_installed_copy_creates_the_schema_with_its_shipped_migrations(
    installed: Path, tmp_path: Path
) -> None:
    database = tmp_path / "installed.db"
    config = tmp_path / "codered.toml"
    config.write_text(
        f"""\
[database]
url = "sqlite+aiosqlite:///{database}"

[company]
name = "Acme Cloud"

[[mailboxes]]
name = "support"
address = "support@acme.example"
imap_host = "127.0.0.1"
imap_username = "support@acme.example"
imap_password = "unused"

[smtp]
host = "127.0.0.1"
""",
        encoding="utf-8",
    )
    main = (
        "import sys, codered; print(codered.__file__, file=sys.stderr); "
        "from codered.cli import main; main()"
    )
    completed = subprocess.run(
        [sys.executable, "-c", main, "db", "upgrade", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(installed),
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert Path(completed.stderr.splitlines()[0]).is_relative_to(installed), completed.stderr
    assert f"schema is at revision {head_revision()}" in completed.stdout
    assert database.is_file()
