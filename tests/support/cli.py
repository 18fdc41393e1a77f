"""Running the real ``codered`` command in tests, and writing the config file it reads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from codered.settings import MailboxSettings, Settings

CHECKOUT = Path(__file__).resolve().parents[2]


def codered_command() -> list[str]:
    """The installed console script beside this interpreter, else on PATH, else via -c."""
    beside = Path(sys.executable).parent / "codered"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("codered")
    if found:
        return [found]
    return [sys.executable, "-c", "from codered.cli import main; main()"]


def cli_env(**extra: str) -> dict[str, str]:
    """The test's environment without any CODERED_* variable, a wide terminal and no colour.

    ``PYTHONPATH`` starts with this checkout, so the command runs the code under test even
    when the editable install points at another copy.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODERED_")}
    path = [str(CHECKOUT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env.update(COLUMNS="200", TERM="dumb", PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join(path))
    env.update(extra)
    return env


def _s(value: str) -> str:
    """A TOML basic string (JSON's escapes are a subset of TOML's)."""
    return json.dumps(value)


def config_text(
    settings: Settings, *, smtp_port: int | None = None, imap_password: str | None = None
) -> str:
    """``settings`` as the TOML file an operator would write (plain SMTP)."""
    company, smtp = settings.company, settings.smtp
    mailboxes = "\n".join(_mailbox(box, imap_password) for box in settings.mailboxes)
    return f"""\
[database]
url = {_s(settings.database.url)}

[company]
name = {_s(company.name)}
timezone = {_s(company.timezone)}
business_hours = {_s(company.business_hours)}
business_days = {_s(company.business_days)}
holidays = {_s(company.holidays)}

{mailboxes}
[smtp]
host = {_s(smtp.host)}
port = {smtp.port if smtp_port is None else smtp_port}
security = "none"
from_name = {_s(smtp.from_name)}
timeout_seconds = {smtp.timeout_seconds}

{_llm(settings)}
[web]
enabled = {"true" if settings.web.enabled else "false"}
host = {_s(settings.web.host)}
port = {settings.web.port}
{_people(settings)}"""


def _mailbox(box: MailboxSettings, imap_password: str | None) -> str:
    return f"""\
[[mailboxes]]
name = {_s(box.name)}
address = {_s(box.address)}
imap_host = {_s(box.imap_host)}
imap_port = {box.imap_port}
imap_security = {_s(box.imap_security)}
imap_username = {_s(box.imap_username)}
imap_password = {_s(box.password() if imap_password is None else imap_password)}
folder = {_s(box.folder)}
poll_interval_seconds = {box.poll_interval_seconds}
file_sent = {"true" if box.file_sent else "false"}
"""


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)  # strings and lists of strings: JSON is valid TOML here


def _table(header: str, values: dict[str, Any]) -> str:
    lines = [header]
    lines += [f"{key} = {_value(v)}" for key, v in values.items() if v is not None]
    return "\n".join(lines) + "\n"


def _people(settings: Settings) -> str:
    """``[policies]``, ``[[team]]`` and ``[[accounts]]`` (escalation rules stay default)."""
    policies = settings.policies.model_dump(exclude={"escalation"})
    parts = [_table("[policies]", policies)]
    parts += [_table("[[team]]", m.model_dump()) for m in settings.team]
    parts += [_table("[[accounts]]", a.model_dump()) for a in settings.accounts]
    return "\n".join(parts)


def _llm(settings: Settings) -> str:
    llm = settings.llm
    lines = ["[llm]", f"model = {_s(llm.model)}"]
    if llm.api_base:
        lines.append(f"api_base = {_s(llm.api_base)}")
    if llm.api_key_env:
        lines.append(f"api_key_env = {_s(llm.api_key_env)}")
    lines += [
        f"timeout_seconds = {llm.timeout_seconds}",
        f"max_attempts = {llm.max_attempts}",
        f"retry_deadline_seconds = {llm.retry_deadline_seconds}",
        f"max_input_tokens = {llm.max_input_tokens}",
        f"classify = {'true' if llm.classify else 'false'}",
    ]
    return "\n".join(lines) + "\n"


def run_cli(
    *args: str | Path, config: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``codered ARGS --config CONFIG`` to its end; never a traceback."""
    completed = subprocess.run(
        [*codered_command(), *(str(a) for a in args), "--config", str(config)],
        capture_output=True,
        text=True,
        env=env or cli_env(),
        input=stdin,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in completed.stdout + completed.stderr, completed.stderr
    return completed


def write_config(path: Path, settings: Settings, **changes: Any) -> Path:
    path.write_text(config_text(settings, **changes), encoding="utf-8")
    return path
