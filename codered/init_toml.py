"""Writing the configuration file of ``codered init``: commented TOML that reads back the same."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

from pydantic import BaseModel

from codered.settings import (
    AccountSettings,
    CompanySettings,
    DatabaseSettings,
    LimitsSettings,
    LlmSettings,
    MailboxSettings,
    PolicySettings,
    SmtpSettings,
    TeamMember,
    TimelineSettings,
    WebSettings,
)

# --- writing TOML --------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


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
        pairs = (f"{toml_key(k)} = {toml_value(v, multiline=False)}" for k, v in value.items())
        return "{ " + ", ".join(pairs) + " }"
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
    tables = [k for k in data if k not in plain]
    order = [
        s for s in SECTION_MODELS if s in tables or (examples and s in EXAMPLES and s not in data)
    ]
    order += [k for k in tables if k not in SECTION_MODELS]
    for section in order:
        value = data.get(section)
        lines.append("")
        if value is None:  # an example for a list that is not there yet
            lines += [_with_comment(f"# {line}", comment) for line, comment in EXAMPLES[section]]
        elif isinstance(value, dict):
            _emit_table(lines, [section], value, array=False)
        else:
            for index, item in enumerate(value):
                if index:
                    lines.append("")
                _emit_table(lines, [section], item, array=True)
    return "\n".join(lines) + "\n"
