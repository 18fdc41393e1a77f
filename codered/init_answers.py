"""Checking the answers of ``codered init``, and testing the connections they describe."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel

from codered.settings import (
    MailboxSettings,
    SmtpSettings,
)

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


def parse_text(answer: str) -> str:
    value = answer.strip()
    if not value:
        raise ValueError("an answer is needed here")
    return value


def parse_optional(answer: str) -> str | None:
    value = answer.strip()
    return None if value.lower() in NONE_WORDS else value


def machine_timezone() -> str:
    """This machine's IANA zone name ($TZ, /etc/timezone, /etc/localtime), else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    with contextlib.suppress(OSError):
        candidates.append(os.readlink("/etc/localtime").partition("zoneinfo/")[2])
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


def try_imap(box: Mapping[str, Any], password: str) -> str:
    """Log in to the mailbox described by ``box`` (``[[mailboxes]]`` keys) and select its
    folder; one line on success, :class:`RuntimeError` with one line on failure."""
    from inbox.ports import ImapAccount
    from inbox.watcher import check_imap

    folder = str(box.get("folder", default_of(MailboxSettings, "folder")))
    poll = box.get("poll_interval_seconds", default_of(MailboxSettings, "poll_interval_seconds"))
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


def try_smtp(smtp: Mapping[str, Any], password: str | None) -> str:
    """Connect, secure and (with a username) log in as delivery would; send nothing."""
    import asyncio

    from mailer.deliver import SmtpServer, check_smtp

    timeout = smtp.get("timeout_seconds", default_of(SmtpSettings, "timeout_seconds"))
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


def model_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """A section's default values, for the sections a fresh file gets without asking."""
    return model().model_dump(exclude_none=True, exclude={"escalation"})


def default_of(model: type[BaseModel], key: str) -> Any:
    return model.model_fields[key].get_default(call_default_factory=True)
