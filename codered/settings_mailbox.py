"""One ``[[mailboxes]]`` entry: how to reach it, who it speaks as, and what differs for it.

Why a module of its own: a mailbox carries its connection, its identity, its
templates and its policy overrides, and the overrides are merged by
:meth:`codered.settings.Settings.for_mailbox` so that every policy reads one
settings object, whichever mailbox the incident came in on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from codered.settings_base import Section, Security, resolve_secret

__all__ = ["MailboxSettings", "load_templates"]


def load_templates(directory: str, info: ValidationInfo) -> dict[str, str]:
    """Read and check ``ack.<lang>.txt`` in ``directory``; a bad template stops the start.

    Checked at load, not at send: a placeholder typo found while an upset customer
    waits would leave them without an acknowledgement."""
    from mailer.acknowledgement import LANGUAGES, check_template

    context = info.context if isinstance(info.context, dict) else {}
    base = Path(context.get("base_dir", "."))
    folder = Path(directory) if Path(directory).is_absolute() else base / directory
    if not folder.is_dir():
        raise ValueError(f"templates: {folder} is not a directory")
    found: dict[str, str] = {}
    for language in LANGUAGES:
        path = folder / f"ack.{language}.txt"
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
            check_template(text)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"templates: {path}: {exc}") from None
        found[language] = text
    if not found:
        names = ", ".join(f"ack.{lang}.txt" for lang in LANGUAGES)
        raise ValueError(f"templates: {folder} holds none of {names}")
    return found


class MailboxSettings(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    address: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    imap_host: str
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_security: Security = "tls"
    imap_username: str
    imap_password: str | None = None
    imap_password_env: str | None = None
    folder: str = "INBOX"
    max_message_mb: float = Field(default=25.0, gt=0)
    poll_interval_seconds: float = Field(default=15.0, gt=0)
    authserv_id: str | None = None
    """Our receiving server's Authentication-Results id; its DMARC failures are held."""
    from_name: str | None = None
    """The display name of mail from this mailbox (default: ``[smtp] from_name``)."""
    smtp_host: str | None = None
    """This mailbox's own SMTP server (default: ``[smtp]``); the keys below go with it."""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Security = "starttls"
    smtp_username: str | None = None
    smtp_password_env: str | None = None
    file_sent: bool = True
    """Append each message we send to this mailbox's Sent folder, and flag what we answered."""
    sent_folder: str | None = None
    """The Sent folder; by default the one with the ``\\Sent`` attribute, else ``Sent``."""
    answered_keyword: str = Field(
        default="$Acknowledged", pattern=r"^[$A-Za-z][A-Za-z0-9_$-]{0,63}$"
    )
    auth: Literal["password", "oauth2"] = "password"
    """``oauth2``: sign in to IMAP (and this mailbox's own SMTP) with XOAUTH2 tokens."""
    oauth_provider: Literal["google", "microsoft", "custom"] | None = None
    oauth_client_id: str | None = None
    oauth_client_secret_env: str | None = None
    """Names the environment variable with the client secret (public clients have none)."""
    oauth_tenant: str = "common"
    """Microsoft only: the directory (tenant) id or domain."""
    oauth_token_url: str | None = None
    """The token endpoint; required for ``custom``, overrides the preset otherwise."""
    oauth_scope: str | None = None
    """Space-separated scopes; default: the provider preset's."""

    templates: str | None = None
    """A directory of ``ack.<lang>.txt`` files replacing the built-in acknowledgement for
    this mailbox (relative paths start at the configuration file's directory)."""
    company: dict[str, Any] | None = None
    """Keys of ``[company]`` that differ for this mailbox (name, time zone, hours)."""
    timeline: dict[str, Any] | None = None
    """Keys of ``[timeline]`` that differ for this mailbox (severity targets, buffer)."""
    policies: dict[str, Any] | None = None
    """Keys of ``[policies]`` that differ for this mailbox: its owner team (``csms``),
    cadence, follow-up, escalation, ``notify`` and webhook."""

    _password: str = PrivateAttr(default="")
    _templates: dict[str, str] = PrivateAttr(default_factory=dict)
    _client_secret: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _secrets_and_templates(self, info: ValidationInfo) -> MailboxSettings:
        value = resolve_secret(self.imap_password, self.imap_password_env, "imap_password", info)
        if self.auth == "oauth2":
            if self.oauth_provider is None:
                raise ValueError('auth = "oauth2" needs oauth_provider (google, microsoft, custom)')
            if not self.oauth_client_id:
                raise ValueError('auth = "oauth2" needs oauth_client_id')
            if self.oauth_provider == "custom" and not self.oauth_token_url:
                raise ValueError('oauth_provider = "custom" needs oauth_token_url')
            self._client_secret = resolve_secret(
                None, self.oauth_client_secret_env, "oauth_client_secret", info
            )
        elif value is None:
            raise ValueError("give imap_password or imap_password_env")
        self._password = value or ""
        if self.templates:
            self._templates = load_templates(self.templates, info)
        return self

    def password(self) -> str:
        return self._password

    def oauth_client_secret(self) -> str | None:
        return self._client_secret

    def acknowledgement_template(self, language: str) -> str | None:
        """This mailbox's own acknowledgement text in ``language``, if it has one."""
        return self._templates.get(language)
