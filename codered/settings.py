"""The configuration file: one TOML file, environment variables on top, secrets by name.

Why this shape: operators keep the file in version control, so secrets are
referenced by the *name* of an environment variable (``*_env`` keys) rather than
written into it. Any variable ``CODERED_<SECTION>__<KEY>`` overrides the file,
for example ``CODERED_DATABASE__URL``. A wrong or missing key stops the start
with a message that names the key and the file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from codered.settings_base import ConfigError, Section, Security, resolve_secret
from codered.settings_mailbox import MailboxSettings
from policies.model import Severity
from policies.timeline import BusinessCalendar, Target

__all__ = [
    "ConfigError",
    "MailboxSettings",
    "Security",
    "Settings",
    "load_settings",
    "resolve_config_path",
]

PER_MAILBOX_POLICIES = frozenset(
    {
        "call_followup",
        "update_critical",
        "update_high",
        "update_normal",
        "update_lead_minutes",
        "promise_lead_minutes",
        "csms",
        "notify",
        "webhook_url",
        "escalation",
    }
)
"""``[policies]`` keys a mailbox may set for itself; the rest (the clock's pace, the desk's
address) belong to the whole service."""


class DatabaseSettings(Section):
    url: str = "sqlite+aiosqlite:///codered.db"


class CompanySettings(Section):
    name: str
    timezone: str = "UTC"
    business_hours: str = "09:00-17:00"
    business_days: str = "mon-fri"
    holidays: str = ""

    @model_validator(mode="after")
    def _calendar_is_valid(self) -> CompanySettings:
        self.calendar()
        return self

    def calendar(self) -> BusinessCalendar:
        return BusinessCalendar.from_strings(
            timezone=self.timezone,
            hours=self.business_hours,
            days=self.business_days,
            holidays=self.holidays or None,
        )


class SmtpSettings(Section):
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Security = "starttls"
    username: str | None = None
    password: str | None = None
    password_env: str | None = None
    from_name: str = "Customer Success"
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=50)
    connections: int = Field(default=4, ge=1, le=32)
    """Messages the outbox sends at once, each over a kept-open connection of its own."""

    _password: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _password_resolves(self, info: ValidationInfo) -> SmtpSettings:
        self._password = resolve_secret(self.password, self.password_env, "password", info)
        return self

    def resolved_password(self) -> str | None:
        return self._password


class LlmSettings(Section):
    """The language model for drafting (and, optionally, classifying); ``offline`` for none."""

    model: str = "offline"
    api_base: str | None = None
    api_key_env: str | None = None
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    timeout_seconds: float = Field(default=20.0, gt=0)
    """Per model call."""
    max_tokens: int = Field(default=1200, ge=50)
    """Longest answer the model may write."""
    max_input_tokens: int = Field(default=6000, ge=1000)
    """Longest prompt we send: long threads keep the newest messages."""
    max_attempts: int = Field(default=3, ge=1, le=10)
    """Calls per draft for transient failures (429, 5xx, timeouts)."""
    retry_deadline_seconds: float = Field(default=60.0, gt=0)
    classify: bool = True
    """Also classify incoming mail with the model (the offline scorer stays the fallback)."""

    @field_validator("model")
    @classmethod
    def _model_named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError('name a litellm model string, or "offline"')
        return value.strip()

    def api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The key from the environment variable named by ``api_key_env``, read when needed."""
        env = os.environ if environ is None else environ
        return env.get(self.api_key_env) if self.api_key_env else None


class TimelineSettings(Section):
    """Severity targets to the next substantive update, and the under-promise buffer."""

    critical: str = "2 hours"
    high: str = "4 business hours"
    normal: str = "1 business day"
    buffer: float = Field(default=1.5, ge=1.0, le=10.0)

    @field_validator("critical", "high", "normal")
    @classmethod
    def _target_parses(cls, value: str) -> str:
        Target.parse(value)
        return value

    def targets(self) -> dict[Severity, Target]:
        return {
            Severity.CRITICAL: Target.parse(self.critical),
            Severity.HIGH: Target.parse(self.high),
            Severity.NORMAL: Target.parse(self.normal),
        }


class LimitsSettings(Section):
    """Backstops against loops: per sender and for the whole service."""

    acknowledgements_per_sender_24h: int = Field(default=3, ge=1)
    acknowledgements_per_minute: int = Field(default=1000, ge=1)
    """Global circuit breaker: above this, complaints are held for a person, not answered."""
    reference_prefix: str = Field(default="CR", pattern=r"^[A-Z]{1,8}$")


class PipelineSettings(Section):
    """How stored mail is turned into decisions."""

    parse_worker: bool = True
    """Parse, classify and detect languages in a second process, on another core (about
    110 MB, most of it the language model's, which this process then never loads).
    False: all in this process."""


class TeamMember(Section):
    """Someone who gets internal mail: a CSM (with their manager) or a manager."""

    name: str
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    display_name: str = ""
    manager: str | None = None
    """The ``name`` of their manager, who is told when a follow-up is overdue."""


class AccountSettings(Section):
    """What we know about a customer account, matched by the domain of their address."""

    domain: str
    tier: str | None = None
    at_risk: bool = False
    owner: str | None = None
    """The CSM who owns this account's incidents."""


class PolicySettings(Section):
    """The policies on a clock: follow-up after calls, update cadence, promises, escalation."""

    clock_seconds: float = Field(default=30.0, gt=0, le=3600)
    call_followup: str = "2 business hours"
    update_critical: str = "2 hours"
    update_high: str = "1 business day"
    update_normal: str = "2 business days"
    update_lead_minutes: int = Field(default=60, ge=0, le=24 * 60)
    """Prepare the update draft this long before it is due."""
    promise_lead_minutes: int = Field(default=30, ge=0, le=24 * 60)
    """Draft a delay notice when a promise is this close and nothing was sent."""
    csms: list[str] = Field(default_factory=list)
    """Round robin for incidents whose account has no owner."""
    notify: list[str] = Field(default_factory=list)
    """Internal addresses told of every escalation (sales, account teams)."""
    webhook_url: str | None = None
    desk_url: str = "http://127.0.0.1:8025"
    """How links in internal mail and webhooks reach the review desk."""
    escalation: list[dict[str, Any]] | None = None
    """Escalation rules (see the README); the defaults when not given."""

    @field_validator("call_followup", "update_critical", "update_high", "update_normal")
    @classmethod
    def _interval_parses(cls, value: str) -> str:
        Target.parse(value)
        return value

    @field_validator("escalation")
    @classmethod
    def _rules_parse(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        from policies.escalation import rule_from_mapping

        for index, rule in enumerate(value or []):
            try:
                rule_from_mapping(rule)
            except ValueError as exc:
                raise ValueError(f"escalation rule #{index + 1}: {exc}") from None
        return value

    def cadence(self) -> dict[Severity, Target]:
        return {
            Severity.CRITICAL: Target.parse(self.update_critical),
            Severity.HIGH: Target.parse(self.update_high),
            Severity.NORMAL: Target.parse(self.update_normal),
        }


class WebSettings(Section):
    """The review desk and the JSON API, served by ``codered run`` and ``codered demo``."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8025, ge=0, le=65535)
    """0 picks a free port (tests)."""
    trusted_user_header: str | None = None
    """Behind a single-sign-on proxy: the header that names the signed-in user. Only set
    this when the proxy strips the header from client requests."""
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    login_attempts_per_15_minutes: int = Field(default=5, ge=1, le=1000)
    secure_cookies: bool | None = None
    """Mark cookies Secure; default: when the request came over HTTPS."""


class SecuritySettings(Section):
    """Where OAuth2 refresh tokens are kept (encrypted) and the key that encrypts them."""

    token_store: str | None = None
    """The JSON file of refresh tokens; default: ``codered-tokens.json`` next to a SQLite
    database, else in the working directory."""
    admin_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    """Who is told at once, by email, when a mailbox's OAuth2 refresh fails."""
    token_key_file: str | None = None
    """The Fernet key when ``$CODERED_TOKEN_KEY`` is not set; created with mode 0600 on
    first use. Default: ``codered-token.key`` next to the token file."""

    def token_store_path(self, settings: Settings) -> Path:
        if self.token_store:
            return Path(self.token_store)
        url = settings.database.url
        if url.startswith("sqlite") and ":///" in url and ":memory:" not in url:
            return Path(url.split(":///", 1)[1]).parent / "codered-tokens.json"
        return Path("codered-tokens.json")

    def key_file_path(self, settings: Settings) -> Path:
        if self.token_key_file:
            return Path(self.token_key_file)
        return self.token_store_path(settings).parent / "codered-token.key"


class Settings(Section):
    database: DatabaseSettings = DatabaseSettings()
    security: SecuritySettings = SecuritySettings()
    company: CompanySettings
    mailboxes: list[MailboxSettings] = Field(min_length=1)
    smtp: SmtpSettings
    llm: LlmSettings = LlmSettings()
    timeline: TimelineSettings = TimelineSettings()
    limits: LimitsSettings = LimitsSettings()
    pipeline: PipelineSettings = PipelineSettings()
    web: WebSettings = WebSettings()
    policies: PolicySettings = PolicySettings()
    team: list[TeamMember] = Field(default_factory=list)
    accounts: list[AccountSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _mailbox_names_unique(self) -> Settings:
        names = [m.name for m in self.mailboxes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"mailbox names must be unique, repeated: {', '.join(duplicates)}")
        return self

    _per_mailbox: dict[str, Settings] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _mailbox_overrides_valid(self) -> Settings:
        """Merge each mailbox's overrides now, so a wrong key stops the start with its name."""
        for mailbox in self.mailboxes:
            wrong = sorted(set(mailbox.policies or {}) - PER_MAILBOX_POLICIES)
            if wrong:
                raise ValueError(
                    f"mailbox {mailbox.name}: policies {', '.join(wrong)} can only be set "
                    "for the whole service, in [policies]"
                )
            try:
                merged = self.model_copy(
                    update={
                        section: type(getattr(self, section)).model_validate(
                            {**getattr(self, section).model_dump(), **overrides}
                        )
                        for section in ("company", "timeline", "policies")
                        if (overrides := getattr(mailbox, section))
                    }
                )
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(part) for part in e['loc'])}: "
                    + e["msg"].removeprefix("Value error, ")
                    for e in exc.errors()
                )
                raise ValueError(f"mailbox {mailbox.name}: {problems}") from None
            self._per_mailbox[mailbox.name] = merged
        return self

    def for_mailbox(self, name: str) -> Settings:
        """These settings as seen by ``name``: its company, timeline and policy overrides
        applied. An unknown mailbox (one removed from the file) sees the shared settings."""
        return self._per_mailbox.get(name, self)

    @property
    def own_addresses(self) -> frozenset[str]:
        return frozenset(m.address.lower() for m in self.mailboxes)

    def sender_name(self, mailbox: str) -> str:
        """The From display name for mail sent from ``mailbox``."""
        return self.mailbox(mailbox).from_name or self.smtp.from_name

    def member(self, name: str | None) -> TeamMember | None:
        return next((m for m in self.team if name and m.name == name), None)

    def account(self, email: str) -> AccountSettings | None:
        """The account of ``email``: its domain, or a parent domain, in ``[[accounts]]``."""
        domain = email.rpartition("@")[2].lower()
        for account in self.accounts:
            wanted = account.domain.lower().lstrip(".")
            if domain == wanted or domain.endswith("." + wanted):
                return account
        return None

    def mailbox(self, name: str) -> MailboxSettings:
        for mailbox in self.mailboxes:
            if mailbox.name == name:
                return mailbox
        raise KeyError(name)


ENV_PREFIX = "CODERED_"


def _apply_env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """``CODERED_SMTP__HOST=x`` sets ``[smtp] host``; ``CODERED_MAILBOXES__0__FOLDER`` a mailbox."""
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        node: Any = data
        for part in path[:-1]:
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    node = None
                    break
                node = node[int(part)]
            else:
                node = node.setdefault(part, {})
            if not isinstance(node, dict | list):
                node = None
                break
        if isinstance(node, dict):
            node[path[-1]] = value
    return data


def _describe(error: ValidationError, path: Path) -> str:
    lines = [f"{path}: the configuration is not valid:"]
    for item in error.errors():
        location = _location(item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "this key is required but missing"
        elif item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling)"
        lines.append(f"  {location}: {message}")
    return "\n".join(lines)


def _location(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "(top level)"
    parts = [str(p) for p in loc]
    if parts[0] == "mailboxes" and len(parts) > 1:
        head = f"[[mailboxes]] #{int(parts[1]) + 1}"
        rest = parts[2:]
    else:
        head, rest = f"[{parts[0]}]", parts[1:]
    return f"{head} {'.'.join(rest)}".strip()


def resolve_config_path(given: Path | None, environ: Mapping[str, str] | None = None) -> Path:
    """``--config``, else ``$CODERED_CONFIG``, else ``./codered.toml``."""
    env = os.environ if environ is None else environ
    if given is not None:
        return given
    if env.get("CODERED_CONFIG"):
        return Path(env["CODERED_CONFIG"])
    return Path("codered.toml")


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, apply environment overrides, validate; :class:`ConfigError` on any problem."""
    env = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: configuration file not found (give --config PATH or set CODERED_CONFIG)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    data = _apply_env_overrides(data, env)
    try:
        return Settings.model_validate(data, context={"environ": env, "base_dir": str(path.parent)})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
