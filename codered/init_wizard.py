"""``codered init``: the first-run wizard that writes (or edits) the configuration file.

It asks for the company, the mailbox and the SMTP server, tests each connection as soon
as its answers are in, and writes a commented TOML file with exactly the keys
:mod:`codered.settings` expects. Passwords are asked only to test the connection and are
never written: the file names the environment variable that holds each one.

Run again on an existing file, every current value is the default answer, and every
section the wizard does not ask about (``[llm]``, ``[policies]``, ``[[team]]`` ...) is
kept; the previous file is saved as ``<name>.bak`` first. Every answer is read from
standard input, so the wizard can be driven line by line by a script or a test.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import typer
from rich.console import Console
from rich.markup import escape

from codered.init_answers import (
    IMAP_PORTS,
    SMTP_PORTS,
    T,
    default_of,
    machine_timezone,
    model_defaults,
    parse_address,
    parse_business_days,
    parse_business_hours,
    parse_env_name,
    parse_holidays,
    parse_mailbox_name,
    parse_optional,
    parse_port,
    parse_security,
    parse_text,
    parse_timezone,
    try_imap,
    try_smtp,
)
from codered.init_toml import render_config, toml_value
from codered.settings import (
    CompanySettings,
    ConfigError,
    LimitsSettings,
    LlmSettings,
    MailboxSettings,
    PolicySettings,
    SmtpSettings,
    TimelineSettings,
    WebSettings,
    load_settings,
)

__all__ = [
    "Prompter",
    "WizardResult",
    "machine_timezone",
    "next_steps",
    "parse_address",
    "parse_business_days",
    "parse_business_hours",
    "parse_env_name",
    "parse_holidays",
    "parse_mailbox_name",
    "parse_port",
    "parse_security",
    "parse_timezone",
    "print_outcome",
    "read_existing",
    "render_config",
    "run_wizard",
    "toml_value",
    "try_imap",
    "try_smtp",
]

# --- the existing file ---------------------------------------------------------------------


def read_existing(path: Path) -> dict[str, Any]:
    """The current file's data, ``{}`` when there is none; :class:`ConfigError` when it is
    not TOML the wizard can edit (it is then left alone)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML ({exc}); fix it or move it away, then run init again"
        ) from None
    for section in ("database", "company", "smtp"):
        if not isinstance(data.get(section, {}), dict):
            raise ConfigError(f"{path}: [{section}] is not a table; fix it and run init again")
    boxes = data.get("mailboxes", [])
    if not isinstance(boxes, list) or not all(isinstance(b, dict) for b in boxes):
        raise ConfigError(f"{path}: mailboxes is not a list of [[mailboxes]] tables")
    return data


def _shown(value: Any) -> str | None:
    """An existing value as a prompt default (None: no default, an answer is needed)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- the questions -------------------------------------------------------------------------


class Prompter:
    """Questions on the terminal. Every answer is read from standard input, so a script
    or test can answer line by line; hidden answers use the terminal's no-echo mode only
    when standard input is a terminal."""

    def text(self, question: str, default: str | None) -> str:
        return str(typer.prompt(question, default=default))

    def secret(self, question: str) -> str:
        if sys.stdin.isatty():
            answer = typer.prompt(question, default="", hide_input=True, show_default=False)
            return str(answer)
        typer.echo(f"{question}: ", nl=False)
        line = sys.stdin.readline()
        if not line:
            typer.echo()
            raise click.Abort
        return line.rstrip("\r\n")

    def confirm(self, question: str, default: bool) -> bool:
        return bool(typer.confirm(question, default=default))


@dataclass
class WizardResult:
    path: Path
    backup: Path | None
    env_names: dict[str, str] = field(default_factory=dict)
    """Environment variable → what it holds, for the next steps."""
    problem: str | None = None
    """Why the written file does not load (a kept section the operator must fix)."""
    edited: bool = False


@dataclass
class _Wizard:
    path: Path
    test_connections: bool
    console: Console
    prompter: Prompter
    environ: Mapping[str, str]

    def ask(self, question: str, default: Any, parse: Callable[[str], T]) -> T:
        """Ask until ``parse`` accepts the answer; Enter takes ``default``."""
        while True:
            answer = self.prompter.text(question, _shown(default))
            try:
                return parse(answer)
            except ValueError as exc:
                self.console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)

    def heading(self, text: str) -> None:
        self.console.print(f"\n[bold]{escape(text)}[/]", highlight=False)

    def report(self, ok: bool, name: str, detail: str) -> None:
        mark = "[green]OK[/]" if ok else "[red]FAIL[/]"
        self.console.print(f"{mark} {escape(name)}: {escape(detail)}", highlight=False)

    def note(self, text: str) -> None:
        self.console.print(f"[yellow]note:[/] {escape(text)}", highlight=False)

    # --- sections ------------------------------------------------------------------------

    def company(self, company: dict[str, Any]) -> None:
        self.heading("Company")
        company["name"] = self.ask(
            "Company name (signs the acknowledgements)", company.get("name"), parse_text
        )
        company["timezone"] = self.ask(
            "Time zone (IANA name)", company.get("timezone") or machine_timezone(), parse_timezone
        )
        company["business_hours"] = self.ask(
            "Business hours",
            company.get("business_hours", default_of(CompanySettings, "business_hours")),
            parse_business_hours,
        )
        company["business_days"] = self.ask(
            "Business days",
            company.get("business_days", default_of(CompanySettings, "business_days")),
            parse_business_days,
        )
        company["holidays"] = self.ask(
            'Public holidays: country code such as DE or US ("none" for none)',
            company.get("holidays") or "none",
            parse_holidays,
        )

    def database(self, database: dict[str, Any]) -> None:
        default = f"sqlite+aiosqlite:///{self.path.resolve().parent / 'codered.db'}"
        database["url"] = self.ask(
            "Database URL (SQLite file or postgresql+asyncpg://...)",
            database.get("url", default),
            parse_text,
        )

    def mailbox(self, box: dict[str, Any], index: int, count: int) -> None:
        self.heading("Mailbox" if count == 1 else f"Mailbox {index + 1} of {count}")
        box["name"] = self.ask(
            "Mailbox name", box.get("name", "support" if index == 0 else None), parse_mailbox_name
        )
        box["address"] = self.ask(
            "Its email address (never answered itself)", box.get("address"), parse_address
        )
        while True:
            self.imap_answers(box)
            if not self.test_connections:
                return
            password = self.prompter.secret(self.password_question(box["imap_password_env"]))
            if not password:
                password = self.environ.get(box["imap_password_env"], "")
            if not password:
                self.note("IMAP connection not tested (no password given)")
                return
            try:
                detail = try_imap(box, password)
            except RuntimeError as exc:
                self.report(False, f"imap {box['name']}", str(exc))
                if self.prompter.confirm("Re-enter the IMAP settings?", True):
                    continue
                self.note("kept as given; `codered check` tests it again later")
                return
            self.report(True, f"imap {box['name']}", detail)
            return

    def imap_answers(self, box: dict[str, Any]) -> None:
        box["imap_host"] = self.ask("IMAP host", box.get("imap_host"), parse_text)
        before = box.get("imap_security")
        security = self.ask("IMAP security (tls, starttls, none)", before or "tls", parse_security)
        box["imap_security"] = security
        port = box.get("imap_port") if before in (None, security) else None
        box["imap_port"] = self.ask("IMAP port", port or IMAP_PORTS[security], parse_port)
        box["imap_username"] = self.ask(
            "IMAP username", box.get("imap_username") or box["address"], parse_text
        )
        default_env = f"{re.sub(r'[^A-Za-z0-9_]', '_', box['name']).upper()}_IMAP_PASSWORD"
        box["imap_password_env"] = self.ask(
            "Environment variable holding the IMAP password",
            box.get("imap_password_env") or default_env,
            parse_env_name,
        )
        if box.pop("imap_password", None) is not None:
            self.note("the password written in the file is removed; the variable holds it now")

    def password_question(self, env_name: str) -> str:
        if self.environ.get(env_name):
            return f"Password, only to test the connection now (not saved; Enter: ${env_name})"
        return "Password, only to test the connection now (not saved; Enter: skip the test)"

    def smtp(self, smtp: dict[str, Any], first_box: Mapping[str, Any], company: str) -> None:
        self.heading("Sending mail (SMTP)")
        while True:
            self.smtp_answers(smtp, first_box, configured="host" in smtp)
            if not self.test_connections:
                break
            password: str | None = None
            if smtp.get("username"):
                password = self.prompter.secret(self.password_question(smtp["password_env"]))
                password = password or self.environ.get(smtp["password_env"], "")
                if not password:
                    self.note("SMTP connection not tested (no password given)")
                    break
            try:
                detail = try_smtp(smtp, password)
            except RuntimeError as exc:
                self.report(False, "smtp", str(exc))
                if self.prompter.confirm("Re-enter the SMTP settings?", True):
                    continue
                self.note("kept as given; `codered check` tests it again later")
                break
            self.report(True, "smtp", detail)
            break
        smtp["from_name"] = self.ask(
            "Sender name on acknowledgements",
            smtp.get("from_name") or f"{company} Customer Success",
            parse_text,
        )

    def smtp_answers(
        self, smtp: dict[str, Any], first_box: Mapping[str, Any], *, configured: bool
    ) -> None:
        """``configured``: [smtp] was answered before (the file, or a first try), so no
        username there means "no login" rather than "not asked yet"."""
        imap_host = str(first_box["imap_host"])
        guess = "smtp." + imap_host.removeprefix("imap.") if imap_host.startswith("imap.") else None
        smtp["host"] = self.ask("SMTP host", smtp.get("host") or guess or imap_host, parse_text)
        before = smtp.get("security")
        security = self.ask(
            "SMTP security (tls, starttls, none)", before or "starttls", parse_security
        )
        smtp["security"] = security
        port = smtp.get("port") if before in (None, security) else None
        smtp["port"] = self.ask("SMTP port", port or SMTP_PORTS[security], parse_port)
        if smtp.get("username"):
            default_user = str(smtp["username"])
        else:
            default_user = "none" if configured else str(first_box["imap_username"])
        username = self.ask('SMTP username ("none" for no login)', default_user, parse_optional)
        if username is None:
            for key in ("username", "password", "password_env"):
                smtp.pop(key, None)
            return
        smtp["username"] = username
        smtp["password_env"] = self.ask(
            "Environment variable holding the SMTP password",
            smtp.get("password_env") or "SMTP_PASSWORD",
            parse_env_name,
        )
        if smtp.pop("password", None) is not None:
            self.note("the password written in the file is removed; the variable holds it now")


def _fresh() -> dict[str, Any]:
    """What a new file starts from: the sections the wizard does not ask, at their defaults."""
    return {
        "database": {},
        "company": {},
        "mailboxes": [
            {
                "folder": default_of(MailboxSettings, "folder"),
                "max_message_mb": default_of(MailboxSettings, "max_message_mb"),
                "poll_interval_seconds": default_of(MailboxSettings, "poll_interval_seconds"),
            }
        ],
        "smtp": {
            "timeout_seconds": default_of(SmtpSettings, "timeout_seconds"),
            "max_attempts": default_of(SmtpSettings, "max_attempts"),
        },
        "llm": model_defaults(LlmSettings),
        "timeline": model_defaults(TimelineSettings),
        "limits": model_defaults(LimitsSettings),
        "web": model_defaults(WebSettings),
        "policies": model_defaults(PolicySettings),
    }


def _env_names(data: Mapping[str, Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for box in data.get("mailboxes", []):
        if box.get("imap_password_env"):
            names[box["imap_password_env"]] = f"the IMAP password of {box.get('address')}"
    smtp = data.get("smtp", {})
    if smtp.get("password_env"):
        names[smtp["password_env"]] = f"the SMTP password of {smtp.get('username')}"
    return names


def _write(path: Path, text: str) -> Path | None:
    """Save the old file as ``<name>.bak``, then replace it whole (never half-written)."""
    backup = None
    if path.exists():
        backup = path.with_name(path.name + ".bak")
        shutil.copy2(path, backup)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    if backup is not None:
        shutil.copymode(backup, partial)
    partial.replace(path)
    return backup


def run_wizard(
    path: Path,
    *,
    test_connections: bool = True,
    console: Console | None = None,
    prompter: Prompter | None = None,
    environ: Mapping[str, str] | None = None,
) -> WizardResult:
    """Ask, test, write ``path`` and check that it loads; see the module docstring.

    Raises :class:`ConfigError` when an existing file cannot be read (it is left alone)
    and :class:`click.Abort` when standard input ends before the last answer (nothing is
    written then)."""
    env = os.environ if environ is None else environ
    out = console or Console()
    existing = read_existing(path)
    data = existing or _fresh()
    wizard = _Wizard(path, test_connections, out, prompter or Prompter(), env)
    if existing:
        out.print(
            f"Editing {escape(str(path))}: press Enter to keep the value in brackets.",
            highlight=False,
        )
    else:
        out.print(f"Writing a new configuration to {escape(str(path))}.", highlight=False)

    company = data.setdefault("company", {})
    wizard.company(company)
    wizard.heading("Database")
    wizard.database(data.setdefault("database", {}))
    boxes: list[dict[str, Any]] = data.setdefault("mailboxes", [])
    if not boxes:
        boxes.append({})
    for index, box in enumerate(boxes):
        wizard.mailbox(box, index, len(boxes))
    smtp = data.setdefault("smtp", {})
    wizard.smtp(smtp, boxes[0], company["name"])

    backup = _write(path, render_config(data))
    names = _env_names(data)
    result = WizardResult(path, backup, names, edited=bool(existing))
    validation_env = {**dict.fromkeys(names, "x"), **env}
    try:
        load_settings(path, environ=validation_env)
    except ConfigError as exc:
        result.problem = str(exc)
    return result


def next_steps(result: WizardResult, environ: Mapping[str, str] | None = None) -> list[str]:
    """The commands to run after the wizard, one a line."""
    env = os.environ if environ is None else environ
    config = "" if result.path == Path("codered.toml") else f" --config {result.path}"
    lines = [
        f"export {name}=...{' ' * max(1, 24 - len(name))}# {what}"
        + (" (already set here)" if name in env else "")
        for name, what in result.env_names.items()
    ]
    lines += [
        f"codered check{config}",
        f"codered users add NAME --role admin{config}",
        f"codered run{config}",
    ]
    return lines


def print_outcome(result: WizardResult, console: Console) -> None:
    """What was written, whether it loads, and what to do next."""
    console.print()
    where = escape(str(result.path))
    if result.backup is not None:
        where += f" (the previous file is {escape(str(result.backup))})"
    console.print(f"Wrote {where}.", highlight=False)
    if result.problem is not None:
        console.print(
            "[bold red]error:[/] the file was written but does not load yet; "
            "fix what follows (a section the wizard keeps as it was):",
            highlight=False,
        )
        console.print(escape(result.problem), highlight=False)
        return
    console.print("\n[bold]Next steps[/]")
    for line in next_steps(result):
        console.print(f"  {escape(line)}", highlight=False)
