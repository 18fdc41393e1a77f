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

import math
import os
import re
import shutil
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape

from codered.settings import (
    AccountSettings,
    CompanySettings,
    ConfigError,
    DatabaseSettings,
    LimitsSettings,
    LlmSettings,
    MailboxSettings,
    PolicySettings,
    SmtpSettings,
    TeamMember,
    TimelineSettings,
    WebSettings,
    load_settings,
)

__all__ = [
    "Prompter",
    "WizardResult",
    "machine_timezone",
    "parse_address",
    "parse_business_days",
    "parse_business_hours",
    "parse_env_name",
    "parse_holidays",
    "parse_mailbox_name",
    "parse_port",
    "parse_security",
    "parse_timezone",
    "read_existing",
    "render_config",
    "run_wizard",
    "test_imap",
    "test_smtp",
    "toml_value",
]

T = TypeVar("T")

NONE_WORDS = frozenset({"", "-", "none"})
"""Answers that mean "no value" where a question offers "none"."""

SECURITIES = ("tls", "starttls", "none")
IMAP_PORTS = {"tls": 993, "starttls": 143, "none": 143}
SMTP_PORTS = {"tls": 465, "starttls": 587, "none": 25}


# --- checking answers ----------------------------------------------------------------------
# Each parser takes the answer as typed and returns the value to store, or raises
# ValueError with a message for the person at the keyboard.


def parse_timezone(answer: str) -> str:
    name = answer.strip()
    try:
        if not name:
            raise ValueError
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin, "
            "America/New_York or UTC"
        ) from None
    return name


def parse_holidays(answer: str) -> str:
    """A country code of the ``holidays`` package (``DE``, ``DE-BY``), or "" for none."""
    code = answer.strip().upper()
    if code.lower() in NONE_WORDS:
        return ""
    import holidays as holiday_tables

    country, _, subdivision = code.partition("-")
    try:
        holiday_tables.country_holidays(country)
    except NotImplementedError:
        raise ValueError(
            f"unknown holidays country {country!r}: use an ISO 3166 code such as DE, US "
            'or GB ("none" for no public holidays)'
        ) from None
    if subdivision:
        try:
            holiday_tables.country_holidays(country, subdiv=subdivision)
        except (NotImplementedError, ValueError):
            raise ValueError(
                f"unknown subdivision {subdivision!r} of holidays country {country!r} "
                f"(give just {country} for the national holidays)"
            ) from None
    return code


def parse_business_hours(answer: str) -> str:
    from policies.timeline import BusinessCalendar

    hours = answer.strip()
    BusinessCalendar.from_strings(hours=hours)
    return hours


def parse_business_days(answer: str) -> str:
    from policies.timeline import BusinessCalendar

    days = answer.strip().lower()
    BusinessCalendar.from_strings(days=days)
    return days


def parse_port(answer: str) -> int:
    text = answer.strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{text!r} is not a port: give a number from 1 to 65535")
    return int(text)


def parse_security(answer: str) -> str:
    value = answer.strip().lower()
    if value not in SECURITIES:
        raise ValueError(f"{answer.strip()!r}: answer tls, starttls or none")
    return value


_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")
_MAILBOX_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_address(answer: str) -> str:
    value = answer.strip()
    if not _ADDRESS.match(value):
        raise ValueError(f"{value!r} is not an email address (like support@acme.example)")
    return value


def parse_mailbox_name(answer: str) -> str:
    value = answer.strip()
    if not _MAILBOX_NAME.match(value):
        raise ValueError("a mailbox name has 1 to 64 letters, digits, '.', '_' or '-'")
    return value


def parse_env_name(answer: str) -> str:
    value = answer.strip().lstrip("$")
    if not _ENV_NAME.match(value):
        raise ValueError(
            f"{value!r} is not an environment variable name "
            "(letters, digits and '_', not starting with a digit)"
        )
    return value


def _parse_text(answer: str) -> str:
    value = answer.strip()
    if not value:
        raise ValueError("an answer is needed here")
    return value


def _parse_optional(answer: str) -> str | None:
    value = answer.strip()
    return None if value.lower() in NONE_WORDS else value


def machine_timezone() -> str:
    """This machine's IANA zone name ($TZ, /etc/timezone, /etc/localtime), else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    except OSError:
        pass
    try:
        target = os.readlink("/etc/localtime")
        candidates.append(target.partition("zoneinfo/")[2])
    except OSError:
        pass
    for name in candidates:
        if name and not name.startswith("/"):
            try:
                return parse_timezone(name)
            except ValueError:
                continue
    return "UTC"


# --- testing connections -------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def test_imap(box: Mapping[str, Any], password: str) -> str:
    """Log in to the mailbox described by ``box`` (``[[mailboxes]]`` keys) and select its
    folder; one line on success, :class:`RuntimeError` with one line on failure."""
    from inbox.ports import ImapAccount
    from inbox.watcher import check_imap

    folder = str(box.get("folder", MailboxSettings.model_fields["folder"].default))
    poll = box.get("poll_interval_seconds", MailboxSettings.model_fields["poll_interval_seconds"])
    account = ImapAccount(
        name=str(box["name"]),
        host=str(box["imap_host"]),
        port=int(box["imap_port"]),
        security=box["imap_security"],
        username=str(box["imap_username"]),
        password=password,
        folder=folder,
        poll_interval_seconds=float(poll) if isinstance(poll, int | float) else 15.0,
    )
    try:
        return check_imap(account)
    except Exception as exc:
        raise RuntimeError(_one_line(exc)) from None


def test_smtp(smtp: Mapping[str, Any], password: str | None) -> str:
    """Connect, secure and (with a username) log in as delivery would; send nothing."""
    import asyncio

    from mailer.deliver import SmtpServer, check_smtp

    timeout = smtp.get("timeout_seconds", SmtpSettings.model_fields["timeout_seconds"].default)
    server = SmtpServer(
        host=str(smtp["host"]),
        port=int(smtp["port"]),
        security=smtp["security"],
        username=smtp.get("username"),
        password=password,
        timeout_seconds=float(timeout) if isinstance(timeout, int | float) else 30.0,
    )
    try:
        return asyncio.run(check_smtp(server))
    except Exception as exc:
        raise RuntimeError(_one_line(exc)) from None


# --- writing TOML --------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else toml_string(key)


def _is_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def toml_value(value: Any, *, multiline: bool = True) -> str:
    """``value`` as TOML: str, bool, int, float, dates and times, lists, inline tables.

    Long lists and lists of tables span several lines (one item a line) when
    ``multiline``; inside inline tables everything stays on one line, as TOML requires.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = (f"{toml_key(k)} = {toml_value(v, multiline=False)}" for k, v in value.items())
        return "{ " + ", ".join(items) + " }"
    if isinstance(value, list):
        items = [toml_value(v, multiline=False) for v in value]
        one_line = "[" + ", ".join(items) + "]"
        if not multiline or (len(one_line) <= 60 and not _is_tables(value)):
            return one_line
        return "[\n" + "".join(f"  {item},\n" for item in items) + "]"
    raise TypeError(f"cannot write a {type(value).__name__} as TOML")


SECTION_MODELS: dict[str, type[BaseModel]] = {
    "database": DatabaseSettings,
    "company": CompanySettings,
    "mailboxes": MailboxSettings,
    "smtp": SmtpSettings,
    "llm": LlmSettings,
    "timeline": TimelineSettings,
    "limits": LimitsSettings,
    "web": WebSettings,
    "policies": PolicySettings,
    "team": TeamMember,
    "accounts": AccountSettings,
}
"""Every section in the order it is written; keys follow the model's field order."""

ARRAY_SECTIONS = frozenset({"mailboxes", "team", "accounts"})

SECTION_COMMENTS = {
    "database": "incidents, outbox and audit trail",
    "company": "who we are and when we work",
    "mailboxes": "one block per watched mailbox",
    "smtp": "how acknowledgements are sent",
    "llm": "the model that drafts (see Drafting in the README)",
    "timeline": "time to the next substantive update, per severity",
    "limits": "backstops against loops",
    "web": "the review desk and the JSON API",
    "policies": "policies on a clock (see the README)",
    "team": "who gets internal mail",
    "accounts": "what we know of a customer account",
}

KEY_COMMENTS = {
    ("database", "url"): "PostgreSQL: postgresql+asyncpg://user@host/db",
    ("company", "name"): "signs the acknowledgements",
    ("company", "timezone"): "IANA zone for business hours and promises",
    ("company", "business_hours"): "local time; cannot cross midnight",
    ("company", "business_days"): 'also "sun-thu" or "mon,tue,thu"',
    ("company", "holidays"): 'country code of the holidays package ("" for none)',
    ("mailboxes", "name"): "letters, digits, . _ -",
    ("mailboxes", "address"): "our own address on this mailbox (never answered)",
    ("mailboxes", "imap_security"): "tls | starttls | none",
    ("mailboxes", "imap_password"): "better: imap_password_env",
    ("mailboxes", "imap_password_env"): "the environment variable with the password",
    ("mailboxes", "max_message_mb"): "larger messages are dead-lettered, not fetched",
    ("mailboxes", "poll_interval_seconds"): "only for servers without IDLE",
    ("mailboxes", "authserv_id"): "our receiving server's Authentication-Results id",
    ("smtp", "security"): "tls | starttls | none",
    ("smtp", "username"): "optional: no login without it",
    ("smtp", "password"): "better: password_env",
    ("smtp", "password_env"): "the environment variable with the password",
    ("smtp", "from_name"): "the sender's name on acknowledgements",
    ("smtp", "max_attempts"): "transient failures, across restarts",
    ("llm", "model"): "or any litellm model string",
    ("llm", "api_base"): "for OpenAI-compatible servers and Ollama",
    ("llm", "api_key_env"): "the environment variable with the key",
    ("llm", "timeout_seconds"): "per call",
    ("llm", "max_tokens"): "longest answer",
    ("llm", "max_input_tokens"): "longest prompt: long threads keep the newest mail",
    ("llm", "max_attempts"): "calls per draft on 429, 5xx and timeouts",
    ("llm", "retry_deadline_seconds"): "no new attempt after this",
    ("llm", "classify"): "also classify incoming mail with the model",
    ("timeline", "critical"): "around the clock",
    ("timeline", "buffer"): "promise = target × buffer, rounded up to :00/:30",
    ("limits", "acknowledgements_per_sender_24h"): "backstop against loops",
    ("limits", "acknowledgements_per_minute"): "global circuit breaker",
    ("limits", "reference_prefix"): "incident references look like CR-1042",
    ("web", "port"): "0 picks a free port",
    ("web", "trusted_user_header"): "only behind an SSO proxy that strips it",
    ("web", "secure_cookies"): "default: when the request came over HTTPS",
    ("policies", "clock_seconds"): "how often the policies run",
    ("policies", "call_followup"): "an email after every call, within this",
    ("policies", "update_lead_minutes"): "draft the update this long before it is due",
    ("policies", "promise_lead_minutes"): "draft a delay notice this close to a promise",
    ("policies", "csms"): "round robin when an account has no owner",
    ("policies", "notify"): "told of every escalation",
    ("policies", "webhook_url"): "optional: JSON POST per escalation",
    ("policies", "desk_url"): "links in internal mail and webhooks",
    ("policies", "escalation"): "escalation rules (the defaults when left out)",
    ("team", "name"): "as in `codered users add`",
    ("team", "manager"): "told when a follow-up is overdue",
    ("accounts", "domain"): "matched by the customer's address",
    ("accounts", "owner"): "the CSM who owns its incidents",
}

HEADER = """\
# codered configuration, written by `codered init`.
# Run `codered init` again to change the answers: sections it does not ask about are kept.
# Secrets are not written here: each *_env key names the environment variable with the value.
# Any key can be overridden as CODERED_<SECTION>__<KEY>, e.g. CODERED_DATABASE__URL.
"""

EXAMPLES = {
    "team": [
        ("[[team]]", SECTION_COMMENTS["team"]),
        ('name = "alice"', KEY_COMMENTS[("team", "name")]),
        ('email = "alice@acme.example"', ""),
        ('manager = "maria"', KEY_COMMENTS[("team", "manager")]),
    ],
    "accounts": [
        ("[[accounts]]", SECTION_COMMENTS["accounts"]),
        ('domain = "contoso.example"', KEY_COMMENTS[("accounts", "domain")]),
        ('tier = "enterprise"', ""),
        ('owner = "alice"', KEY_COMMENTS[("accounts", "owner")]),
    ],
}
"""Commented-out examples for the lists a fresh file does not have yet."""

_COMMENT_COLUMN = 46


def _with_comment(line: str, comment: str | None) -> str:
    if not comment:
        return line
    if len(line) < _COMMENT_COLUMN:
        return f"{line:<{_COMMENT_COLUMN}}# {comment}"
    return f"{line}  # {comment}"


def _ordered_keys(section: str, table: Mapping[str, Any]) -> list[str]:
    model = SECTION_MODELS.get(section)
    known = [k for k in (model.model_fields if model else ()) if k in table]
    return known + [k for k in table if k not in known]


def _emit_table(
    lines: list[str], path: list[str], table: Mapping[str, Any], *, array: bool
) -> None:
    section = path[0]
    name = ".".join(toml_key(p) for p in path)
    header = f"[[{name}]]" if array else f"[{name}]"
    lines.append(_with_comment(header, SECTION_COMMENTS.get(section) if len(path) == 1 else None))
    nested: list[tuple[str, Any]] = []
    for key in _ordered_keys(section, table):
        value = table[key]
        if isinstance(value, dict):
            nested.append((key, value))
            continue
        comment = KEY_COMMENTS.get((section, key)) if len(path) == 1 else None
        text = f"{toml_key(key)} = {toml_value(value)}"
        if "\n" in text:
            if comment:
                lines.append(f"# {comment}")
            lines.append(text)
        else:
            lines.append(_with_comment(text, comment))
    for key, value in nested:
        _emit_table(lines, [*path, key], value, array=False)


def render_config(data: Mapping[str, Any], *, examples: bool = True) -> str:
    """The configuration ``data`` (as :func:`tomllib.loads` returns it) as commented TOML.

    Known sections come in the README's order, then any others as they were; the
    ``[[team]]`` and ``[[accounts]]`` lists get a commented-out example when absent."""
    lines = [HEADER.rstrip("\n")]
    plain = [k for k, v in data.items() if not isinstance(v, dict) and not _is_tables(v)]
    if plain:  # top-level keys must come before the first table
        lines.append("")
        lines += [f"{toml_key(k)} = {toml_value(data[k])}" for k in plain]
    order = [s for s in SECTION_MODELS if s in data]
    order += [k for k in data if k not in SECTION_MODELS and k not in plain]
    for section in SECTION_MODELS:
        if section in data and section not in plain:
            continue
        if examples and section in EXAMPLES and section not in data:
            order.append(section)
    for section in order:
        if section in plain:
            continue
        value = data.get(section)
        lines.append("")
        if value is None:  # an example for a list that is not there yet
            lines += [
                "# " + _with_comment(line, comment).rstrip() for line, comment in EXAMPLES[section]
            ]
        elif isinstance(value, dict):
            _emit_table(lines, [section], value, array=False)
        else:
            for index, item in enumerate(value):
                if index:
                    lines.append("")
                _emit_table(lines, [section], item, array=True)
    return "\n".join(lines) + "\n"


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


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    """A section's default values, for the sections a fresh file gets without asking."""
    return model().model_dump(exclude_none=True, exclude={"escalation"})


def _default_of(model: type[BaseModel], key: str) -> Any:
    return model.model_fields[key].get_default(call_default_factory=True)


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
            "Company name (signs the acknowledgements)", company.get("name"), _parse_text
        )
        company["timezone"] = self.ask(
            "Time zone (IANA name)", company.get("timezone") or machine_timezone(), parse_timezone
        )
        company["business_hours"] = self.ask(
            "Business hours",
            company.get("business_hours", _default_of(CompanySettings, "business_hours")),
            parse_business_hours,
        )
        company["business_days"] = self.ask(
            "Business days",
            company.get("business_days", _default_of(CompanySettings, "business_days")),
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
            _parse_text,
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
                detail = test_imap(box, password)
            except RuntimeError as exc:
                self.report(False, f"imap {box['name']}", str(exc))
                if self.prompter.confirm("Re-enter the IMAP settings?", True):
                    continue
                self.note("kept as given; `codered check` tests it again later")
                return
            self.report(True, f"imap {box['name']}", detail)
            return

    def imap_answers(self, box: dict[str, Any]) -> None:
        box["imap_host"] = self.ask("IMAP host", box.get("imap_host"), _parse_text)
        before = box.get("imap_security")
        security = self.ask("IMAP security (tls, starttls, none)", before or "tls", parse_security)
        box["imap_security"] = security
        port = box.get("imap_port") if before in (None, security) else None
        box["imap_port"] = self.ask("IMAP port", port or IMAP_PORTS[security], parse_port)
        box["imap_username"] = self.ask(
            "IMAP username", box.get("imap_username") or box["address"], _parse_text
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
            self.smtp_answers(smtp, first_box)
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
                detail = test_smtp(smtp, password)
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
            _parse_text,
        )

    def smtp_answers(self, smtp: dict[str, Any], first_box: Mapping[str, Any]) -> None:
        imap_host = str(first_box["imap_host"])
        guess = "smtp." + imap_host.removeprefix("imap.") if imap_host.startswith("imap.") else None
        smtp["host"] = self.ask("SMTP host", smtp.get("host") or guess or imap_host, _parse_text)
        before = smtp.get("security")
        security = self.ask(
            "SMTP security (tls, starttls, none)", before or "starttls", parse_security
        )
        smtp["security"] = security
        port = smtp.get("port") if before in (None, security) else None
        smtp["port"] = self.ask("SMTP port", port or SMTP_PORTS[security], parse_port)
        if "host" in smtp and smtp.get("username") is None and smtp.get("_asked"):
            default_user = "none"
        else:
            default_user = smtp.get("username") or str(first_box["imap_username"])
        username = self.ask('SMTP username ("none" for no login)', default_user, _parse_optional)
        smtp["_asked"] = True
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


def _fresh(path: Path) -> dict[str, Any]:
    """What a new file starts from: the sections the wizard does not ask, at their defaults."""
    del path
    return {
        "database": {},
        "company": {},
        "mailboxes": [
            {
                "folder": _default_of(MailboxSettings, "folder"),
                "max_message_mb": _default_of(MailboxSettings, "max_message_mb"),
                "poll_interval_seconds": _default_of(MailboxSettings, "poll_interval_seconds"),
            }
        ],
        "smtp": {
            "timeout_seconds": _default_of(SmtpSettings, "timeout_seconds"),
            "max_attempts": _default_of(SmtpSettings, "max_attempts"),
        },
        "llm": _defaults(LlmSettings),
        "timeline": _defaults(TimelineSettings),
        "limits": _defaults(LimitsSettings),
        "web": _defaults(WebSettings),
        "policies": _defaults(PolicySettings),
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
    data = existing or _fresh(path)
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
    smtp.pop("_asked", None)

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


def print_outcome(result: WizardResult, console: Console, environ: Iterable[str] = ()) -> None:
    """What was written, and what to do next."""
    del environ
    console.print()
    if result.backup is not None:
        console.print(
            f"Wrote {escape(str(result.path))} (the previous file is {escape(str(result.backup))}).",
            highlight=False,
        )
    else:
        console.print(f"Wrote {escape(str(result.path))}.", highlight=False)
    console.print("\n[bold]Next steps[/]")
    for line in next_steps(result):
        console.print(f"  {escape(line)}", highlight=False)
